package shard

// Helpers for the tests that check this package against real redis-server and nutcracker
// processes, which internal/redistest starts (each a child of the test on a free loopback port,
// killed in t.Cleanup). No helper here is used by the package itself.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
)

// startRedis starts a redis-server (internal/redistest) with extra command-line arguments and
// returns "127.0.0.1:port".
func startRedis(t *testing.T, extra ...string) string {
	t.Helper()
	return redistest.StartRedis(t, redistest.WithFlags(extra...)).Addr
}

// conn is a minimal RESP2 client: enough to pipeline commands and read replies.
type conn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

type respError string

func (e respError) Error() string { return string(e) }

func dial(addr string) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return &conn{c: c, r: bufio.NewReader(c), w: bufio.NewWriter(c)}, nil
}

func (c *conn) Close() error { return c.c.Close() }

// send buffers one command; args are string or []byte.
func (c *conn) send(args ...any) {
	fmt.Fprintf(c.w, "*%d\r\n", len(args))
	for _, a := range args {
		var b []byte
		switch v := a.(type) {
		case string:
			b = []byte(v)
		case []byte:
			b = v
		case int:
			b = strconv.AppendInt(nil, int64(v), 10)
		default:
			panic(fmt.Sprintf("send: %T", a)) // test programming error
		}
		fmt.Fprintf(c.w, "$%d\r\n", len(b))
		c.w.Write(b)
		c.w.WriteString("\r\n")
	}
}

func (c *conn) flush() error { return c.w.Flush() }

// read returns one reply: string (simple), []byte (bulk, nil for null), int64, []any, or a
// respError value for an error reply.
func (c *conn) read() (any, error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("bad reply line %q", line)
	}
	body := string(line[1 : len(line)-2])
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return respError(body), nil
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 || n > 1<<20 {
			return nil, fmt.Errorf("bad bulk length %q", body)
		}
		if n < 0 {
			return []byte(nil), nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, b); err != nil {
			return nil, err
		}
		return b[:n], nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 || n > 1<<20 {
			return nil, fmt.Errorf("bad array length %q", body)
		}
		if n < 0 {
			return []any(nil), nil
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = c.read(); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("bad reply type %q", line)
}

// do sends one command and returns its reply; an error reply is returned as an error.
func (c *conn) do(args ...any) (any, error) {
	c.send(args...)
	if err := c.flush(); err != nil {
		return nil, err
	}
	r, err := c.read()
	if err != nil {
		return nil, err
	}
	if e, ok := r.(respError); ok {
		return nil, e
	}
	return r, nil
}

// scanAll returns every key of db 0 of a server, by SCAN.
func scanAll(addr string) ([]string, error) {
	c, err := dial(addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var keys []string
	cursor := "0"
	for {
		r, err := c.do("SCAN", cursor, "COUNT", "1000")
		if err != nil {
			return nil, err
		}
		a, ok := r.([]any)
		if !ok || len(a) != 2 {
			return nil, fmt.Errorf("SCAN reply %v", r)
		}
		cur, _ := a[0].([]byte)
		ks, _ := a[1].([]any)
		for _, k := range ks {
			b, _ := k.([]byte)
			keys = append(keys, string(b))
		}
		cursor = string(cur)
		if cursor == "0" {
			return keys, nil
		}
	}
}

func quote(s string) string {
	if len(s) > 60 {
		return strconv.Quote(s[:60]) + "..." + strconv.Itoa(len(s)) + "B"
	}
	return strconv.Quote(s)
}
