package target

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/redistest"
)

// bigHold is the hold limit of the tests' stream readers: commands over it come out big.
const bigHold = 4 << 10

// bigStream is a stream of big commands of every kind the writers re-chunk or send whole, with
// small ones around them, and how many of them are big.
func bigStream(n int) []byte {
	var in []byte
	add := func(args ...string) { in = aof.AppendCommandString(in, args...) }
	list := func(cmd, key string, width int, f func(i int) []string) {
		args := []string{cmd, key}
		for i := 0; i < n/width; i++ {
			args = append(args, f(i)...)
		}
		add(args...)
	}
	s := strconv.Itoa
	add("SET", "small", "v")
	list("SADD", "set", 1, func(i int) []string { return []string{"member:" + s(i)} })
	list("SREM", "set", 1, func(i int) []string { return []string{"member:" + s(i*3)} })
	list("RPUSH", "rlist", 1, func(i int) []string { return []string{"r" + s(i)} })
	list("LPUSH", "llist", 1, func(i int) []string { return []string{"l" + s(i)} })
	list("LPUSH", "rlist", 1, func(i int) []string { return []string{"x" + s(i)} })
	list("HSET", "hash", 2, func(i int) []string { return []string{"f" + s(i), strings.Repeat("v", i%50)} })
	list("HMSET", "hash2", 2, func(i int) []string { return []string{"f" + s(i), "w" + s(i)} })
	list("HDEL", "hash", 1, func(i int) []string { return []string{"f" + s(i*2)} })
	list("ZADD", "zset", 2, func(i int) []string { return []string{s(i % 97), "z" + s(i)} })
	list("ZREM", "zset", 1, func(i int) []string { return []string{"z" + s(i*5)} })
	list("PFADD", "hll", 1, func(i int) []string { return []string{"e" + s(i)} })
	// ZADD with flags goes whole.
	args := []string{"ZADD", "zset", "GT", "CH"}
	for i := 0; i < n/2; i++ {
		args = append(args, s(1000+i), "z"+s(i))
	}
	add(args...)
	args = []string{"MSET"}
	for i := 0; i < n/2; i++ {
		args = append(args, "k:"+s(i), "val:"+s(i))
	}
	add(args...)
	args = []string{"DEL"}
	for i := 0; i < n/2; i += 2 {
		args = append(args, "k:"+s(i))
	}
	add(args...)
	args = []string{"UNLINK", "rlist"}
	for i := 0; i < n/4; i++ {
		args = append(args, "none:"+s(i))
	}
	add(args...)
	add("SET", "bigvalue", strings.Repeat("abcdefgh", n))
	add("APPEND", "bigvalue", strings.Repeat("z", 3*bigHold))
	add("SET", "after", "all")
	return in
}

// readBig reads every command of in in big-command mode (hold bigHold), Input set.
func readBig(t *testing.T, in []byte) []*aof.Command {
	t.Helper()
	r := aof.NewStreamReader(bytes.NewReader(in), 0)
	r.SetHold(bigHold)
	r.SetInput(bytes.NewReader(in))
	var out []*aof.Command
	for {
		c := new(aof.Command)
		err := r.Next(c)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if !c.Big() {
			c.Raw = bytes.Clone(c.Raw)
			c.Args = nil
			if err := aof.NewReader(bytes.NewReader(c.Raw)).Next(c); err != nil {
				t.Fatal(err)
			}
			c.Raw = bytes.Clone(c.Raw)
			args := make([][]byte, len(c.Args))
			for i, a := range c.Args {
				args[i] = bytes.Clone(a)
			}
			c.Args = args
		} else {
			args := make([][]byte, len(c.Args))
			for i, a := range c.Args {
				args[i] = bytes.Clone(a)
			}
			c.Args = args
		}
		out = append(out, c)
	}
}

// sendRaw writes in to the server at addr on a plain connection and reads one reply per command:
// the reference the writers must match.
func sendRaw(t *testing.T, addr string, in []byte, cmds int) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	go nc.Write(in)
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	rr := replyReader{br: bufio.NewReaderSize(nc, 64<<10)}
	var rep Reply
	for range cmds {
		if err := rr.read(&rep); err != nil {
			t.Fatalf("reference: %v", err)
		}
	}
}

func countBig(cmds []*aof.Command) int {
	n := 0
	for _, c := range cmds {
		if c.Big() {
			n++
		}
	}
	return n
}

// TestSingleBigCommands: big commands of every kind, re-chunked or whole, leave a single target
// as the same commands sent as they are leave another, with and without checkpoints; the
// position is the stream's end, each big command counted once.
func TestSingleBigCommands(t *testing.T) {
	in := bigStream(20_000)
	cmds := readBig(t, in)
	if countBig(cmds) < 15 {
		t.Fatalf("only %d big commands", countBig(cmds))
	}
	ref := startRedis(t)
	sendRaw(t, ref.Addr, in, len(cmds))
	for _, cp := range []string{"", testCheckpointKey} {
		t.Run("checkpoint="+strconv.FormatBool(cp != ""), func(t *testing.T) {
			dst := startRedis(t)
			ctx := context.Background()
			w, err := NewSingle(ctx, SingleOptions{Conn: Options{Addr: dst.Addr}, CheckpointKey: cp})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if err := applyStream(t, w, cmds, 0); err != nil {
				t.Fatal(err)
			}
			if off, _ := w.Applied(); off != int64(len(in)) {
				t.Fatalf("applied %d, want %d", off, len(in))
			}
			st := w.Stats()
			if st.BigChunked+st.BigStreamed != uint64(countBig(cmds)) || st.BigStreamed != 3 || st.BigChunks < 100 {
				t.Fatalf("big commands: %d chunked (%d chunks), %d whole; errors %v", st.BigChunked, st.BigChunks, st.BigStreamed, st.Errors)
			}
			if len(st.Errors) != 0 {
				t.Fatalf("errors %v", st.Errors)
			}
			if cp != "" {
				dst.Do(t, "DEL", cp)
			}
			redistest.CompareRedis(t, ref.Addr, dst.Addr)
		})
	}
}

// TestSingleBigCommandRefused: a big command the target refuses (WRONGTYPE on every chunk) is
// counted once, logged with its key, and the stream goes on.
func TestSingleBigCommandRefused(t *testing.T) {
	var in []byte
	in = aof.AppendCommandString(in, "SET", "str", "v")
	args := []string{"SADD", "str"}
	for i := range 5000 {
		args = append(args, "m"+strconv.Itoa(i))
	}
	in = aof.AppendCommandString(in, args...)
	in = aof.AppendCommandString(in, "SET", "after", "v")
	cmds := readBig(t, in)
	for _, cp := range []string{"", testCheckpointKey} {
		dst := startRedis(t)
		w, err := NewSingle(context.Background(), SingleOptions{Conn: Options{Addr: dst.Addr}, CheckpointKey: cp})
		if err != nil {
			t.Fatal(err)
		}
		// Checkpointed, the WRONGTYPE errors come in the EXEC of the SADD's own batch.
		if err := applyStream(t, w, cmds, 0); err != nil {
			t.Fatal(err)
		}
		st := w.Stats()
		if st.Errors["WRONGTYPE"] != 1 || st.BigChunks < 2 {
			t.Fatalf("errors %v (%d chunks), want WRONGTYPE counted once", st.Errors, st.BigChunks)
		}
		if dst.DoString(t, "GET", "after") != "v" {
			t.Fatal("the stream did not go on")
		}
		if off, _ := w.Applied(); off != int64(len(in)) {
			t.Fatalf("applied %d, want %d", off, len(in))
		}
		w.Close()
	}
}

// TestSingleBigCommandInputGone: a big command whose input cannot be read again breaks the
// connection rather than leave half of it on the target; the position stays before it.
func TestSingleBigCommandInputGone(t *testing.T) {
	var in []byte
	in = aof.AppendCommandString(in, "SET", "before", "v")
	args := []string{"RPUSH", "list"}
	for i := range 5000 {
		args = append(args, "e"+strconv.Itoa(i))
	}
	in = aof.AppendCommandString(in, args...)
	cmds := readBig(t, in)
	cut := bytes.NewReader(in[:len(in)/2]) // the input ends in the middle of the RPUSH
	cmds[1].Input = cut
	dst := startRedis(t)
	w, err := NewSingle(context.Background(), SingleOptions{Conn: Options{Addr: dst.Addr}, CheckpointKey: testCheckpointKey})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	err = applyStream(t, w, cmds, 0)
	if !errors.Is(err, ErrBroken) {
		t.Fatalf("err %v, want ErrBroken", err)
	}
	if n := dst.Do(t, "EXISTS", "list"); n != int64(0) {
		t.Fatalf("half the RPUSH was applied (EXISTS %v)", n)
	}
	// The RPUSH is a batch of its own, never executed: the stream resends from it, or from the
	// SET before it (its batch, closed before the RPUSH's, ran or not as the connection broke).
	off, _, err := w.Reconnect(context.Background())
	if err != nil || off != cmds[0].N && off != 0 {
		t.Fatalf("Reconnect: offset %d, %v; want %d or 0", off, err, cmds[0].N)
	}
	cmds[1].Input = bytes.NewReader(in)
	if err := applyStream(t, w, cmds, off); err != nil {
		t.Fatal(err)
	}
	if n := dst.Do(t, "LLEN", "list"); n != int64(5000) || dst.DoString(t, "GET", "before") != "v" {
		t.Fatalf("LLEN %v after the resend", n)
	}
}
