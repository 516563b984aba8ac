package rdb

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
)

// respConn is a minimal RESP2 client for tests against a real redis-server.
type respConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

type respError string

func (e respError) Error() string { return string(e) }

// startRedis starts a redis-server (internal/redistest) in dir, with extra command-line
// arguments, and returns a connection to it, closed when the test ends.
func startRedis(t testing.TB, dir string, extra ...string) *respConn {
	t.Helper()
	r := redistest.StartRedis(t, redistest.WithDir(dir), redistest.WithFlags(extra...))
	c, err := net.DialTimeout("tcp", r.Addr, 5*time.Second)
	if err != nil {
		t.Fatalf("redis-server %s: %v", r.Addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &respConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (rc *respConn) do(args ...any) (any, error) {
	var b []byte
	b = fmt.Appendf(b, "*%d\r\n", len(args))
	for _, a := range args {
		var s []byte
		switch v := a.(type) {
		case string:
			s = []byte(v)
		case []byte:
			s = v
		case int:
			s = strconv.AppendInt(nil, int64(v), 10)
		case int64:
			s = strconv.AppendInt(nil, v, 10)
		default:
			rc.t.Fatalf("bad arg %T", a)
		}
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(s), s)
	}
	_ = rc.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := rc.c.Write(b); err != nil {
		return nil, err
	}
	return rc.read()
}

func (rc *respConn) read() (any, error) {
	line, err := rc.br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 {
		return nil, errors.New("short reply line")
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, respError(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, _ := strconv.Atoi(body)
		if n < 0 {
			return nil, nil
		}
		p := make([]byte, n+2)
		if _, err := io.ReadFull(rc.br, p); err != nil {
			return nil, err
		}
		return p[:n], nil
	case '*':
		n, _ := strconv.Atoi(body)
		if n < 0 {
			return nil, nil
		}
		out := make([]any, n)
		for i := range out {
			v, err := rc.read()
			if err != nil {
				if _, ok := err.(respError); !ok {
					return nil, err
				}
				v = err
			}
			out[i] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("bad reply %q", line)
}

// must runs a command and fails the test on an error reply.
func (rc *respConn) must(args ...any) any {
	rc.t.Helper()
	v, err := rc.do(args...)
	if err != nil {
		rc.t.Fatalf("%v: %v", args, err)
	}
	return v
}
