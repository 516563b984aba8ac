package source

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/aof"
)

// fakeServer answers each command a scanConn sends with the reply answer gives (RESP text).
func fakeServer(t *testing.T, answer func(args []string) string) *scanConn {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	go func() {
		r := aof.NewReader(b)
		var c aof.Command
		for r.Next(&c) == nil {
			args := make([]string, len(c.Args))
			for i, x := range c.Args {
				args[i] = string(x)
			}
			if _, err := b.Write([]byte(answer(args))); err != nil {
				return
			}
		}
	}()
	sc := &scanConn{addr: "fake:1", c: a, timeout: 5 * time.Second}
	sc.br = bufio.NewReaderSize(scanDeadlineReader{sc}, readBufSize)
	return sc
}

// TestKeyspaceWithoutInfo: a server that refuses INFO has its dbs found by SELECT and DBSIZE,
// from 0 until SELECT refuses one.
func TestKeyspaceWithoutInfo(t *testing.T) {
	db := "0"
	sc := fakeServer(t, func(args []string) string {
		switch strings.ToUpper(args[0]) {
		case "INFO":
			return "-ERR unknown command 'INFO', with args beginning with: 'keyspace' \r\n"
		case "SELECT":
			if args[1] > "2" || len(args[1]) > 1 {
				return "-ERR DB index is out of range\r\n"
			}
			db = args[1]
			return "+OK\r\n"
		case "DBSIZE":
			return map[string]string{"0": ":5\r\n", "1": ":0\r\n", "2": ":7\r\n"}[db]
		}
		return "-ERR unexpected\r\n"
	})
	got, err := keyspace(sc)
	if err != nil || len(got) != 2 || got[0] != 5 || got[2] != 7 {
		t.Fatalf("keyspace %v, %v", got, err)
	}
}

// TestScanConnReplies: replies parse whole, and malformed or oversized ones are errors that
// name the server, never panics.
func TestScanConnReplies(t *testing.T) {
	good := "*2\r\n$1\r\n0\r\n*3\r\n$1\r\na\r\n$-1\r\n:42\r\n"
	sc := &scanConn{addr: "fake:1", br: bufio.NewReader(strings.NewReader(good))}
	r, err := sc.read()
	if err != nil || len(r.Elems) != 2 || len(r.Elems[1].Elems) != 3 || !r.Elems[1].Elems[1].Null || r.Elems[1].Elems[2].Int != 42 {
		t.Fatalf("%+v %v", r, err)
	}
	for _, bad := range []string{"", "x\r\n", "$5\r\nab\r\n", "$-2\r\n", "*-2\r\n", ":12a\r\n", "$3\r\nabcXY",
		"$99999999999999999999\r\n", "*16777217\r\n", strings.Repeat("*1\r\n", 10) + ":1\r\n", "+ok\n",
		"$" + "536870913" + "\r\n"} {
		sc := &scanConn{addr: "fake:1", br: bufio.NewReader(strings.NewReader(bad))}
		if _, err := sc.read(); err == nil || !strings.Contains(err.Error(), "fake:1") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// FuzzScanConnReply: no reply makes the reader panic or hold more than its limits allow.
func FuzzScanConnReply(f *testing.F) {
	for _, s := range []string{"*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n", "$3\r\nabc\r\n", "-ERR x\r\n", ":-5\r\n", "*-1\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sc := &scanConn{addr: "fuzz:1", br: bufio.NewReader(bytes.NewReader(data))}
		for range 4 {
			if _, err := sc.read(); err != nil {
				if !errors.Is(err, errBadScanReply) && !strings.Contains(err.Error(), "reading a reply") {
					t.Fatalf("error %v", err)
				}
				return
			}
		}
	})
}
