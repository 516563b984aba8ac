package aof

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

// redisConn is a minimal RESP2 client for tests, talking to a redis-server started by
// startRedis.
type redisConn struct {
	c  net.Conn
	br *bufio.Reader
}

// startRedis starts a redis-server (internal/redistest) with extra command-line arguments and
// returns a connection to it, closed when the test ends.
func startRedis(t *testing.T, extra ...string) *redisConn {
	t.Helper()
	r := redistest.StartRedis(t, redistest.WithFlags(extra...))
	c, err := net.DialTimeout("tcp", r.Addr, 5*time.Second)
	if err != nil {
		t.Fatalf("redis-server %s: %v", r.Addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &redisConn{c: c, br: bufio.NewReader(c)}
}

// redisError is an error reply.
type redisError string

func (e redisError) Error() string { return string(e) }

func (r *redisConn) do(args ...string) (any, error) {
	if err := r.c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return nil, err
	}
	if _, err := r.c.Write(AppendCommandString(nil, args...)); err != nil {
		return nil, err
	}
	return r.reply()
}

func (r *redisConn) reply() (any, error) {
	line, err := r.br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 {
		return nil, fmt.Errorf("short reply line %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, redisError(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r.br, b); err != nil {
			return nil, err
		}
		return string(b[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, err
		}
		var out []any
		for i := 0; i < n; i++ {
			v, err := r.reply()
			var re redisError
			if err != nil && !errors.As(err, &re) {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}
