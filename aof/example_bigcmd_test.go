package aof_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/rmt-project/rmt/aof"
)

// Example_replay is the replay loop of a spool in big-command mode, and the two ways a target
// writer sends a big command: whole, copied in pieces from the spool, or re-chunked into
// commands of 1000 members.
func Example_replay() {
	dir, _ := os.MkdirTemp("", "rmt-example")
	defer os.RemoveAll(dir)
	sp, _ := aof.OpenSpool(dir, aof.SpoolOptions{})
	defer sp.Close()
	const applied = 1000 // where the target stands (a checkpoint)
	sp.Reset(applied)
	sadd := []string{"SADD", "set"}
	for i := 0; i < 2500; i++ {
		sadd = append(sadd, "member:"+strconv.Itoa(i))
	}
	sp.Append(aof.AppendCommandString(nil, "SET", "k", "v"))
	sp.Append(aof.AppendCommandString(nil, sadd...))
	sp.Append(aof.AppendCommandString(nil, "SET", "big", strings.Repeat("x", 50_000)))
	sp.Sync()

	sr, _ := sp.NewReader(context.Background(), applied)
	defer sr.Close()
	r := aof.NewStreamReader(sr, applied) // Start, Rest and errors in replication offsets
	r.SetHold(16 << 10)                   // small for the example; the default is 2 MiB
	var (
		c    aof.Command
		conn bytes.Buffer // the target connection
		buf  = make([]byte, 64<<10)
	)
	for i := 0; i < 3; i++ {
		if err := r.Next(&c); err != nil {
			fmt.Println(err)
			return
		}
		end := applied + r.Offset() // the offset to checkpoint once the reply is in
		if !c.Big() {
			conn.Write(c.Raw) // as today
			fmt.Printf("%s: %d bytes held, offset %d\n", c.Args[0], c.N, end)
			continue
		}
		fmt.Printf("%s %s: big, %d arguments, %d bytes, %d held\n", c.Args[0], c.Args[1], c.NArgs, c.N, len(c.Args))
		if string(c.Args[0]) == "SET" {
			// (a) The command whole to the socket, copied from the spool in pieces.
			n, err := aof.WriteCommand(&conn, &c, sr, buf)
			fmt.Println("  sent whole:", n, err)
			continue
		}
		// (b) Re-chunked: SADD set <1000 members>, then the next 1000, ...
		a := c.Arguments(sr)
		a.Next() // SADD
		a.Next() // the key
		var members [][]byte
		flush := func() {
			args := append([][]byte{[]byte("SADD"), []byte("set")}, members...)
			conn.Write(aof.AppendCommand(nil, args...))
			fmt.Println("  sent SADD set with", len(members), "members")
			members = members[:0]
		}
		for {
			size, err := a.Next()
			if err == io.EOF {
				break
			}
			if size > aof.HeadArgBytes {
				fmt.Println("  a member too big to re-chunk:", size) // send it whole instead
				return
			}
			m, _ := a.Append(nil, 0)
			if members = append(members, m); len(members) == 1000 {
				flush()
			}
		}
		if len(members) > 0 {
			flush()
		}
	}
	// Output:
	// SET: 27 bytes held, offset 1027
	// SADD set: big, 2502 arguments, 43816 bytes, 976 held
	//   sent SADD set with 1000 members
	//   sent SADD set with 1000 members
	//   sent SADD set with 500 members
	// SET big: big, 3 arguments, 50032 bytes, 2 held
	//   sent whole: 50032 <nil>
}
