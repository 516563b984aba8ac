package aof

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// redisConn is a minimal RESP2 client for tests, talking to a redis-server started by
// startRedis on a unix socket (no TCP port at all).
type redisConn struct {
	c  net.Conn
	br *bufio.Reader
}

// startRedis starts a redis-server child on a unix socket in a temporary directory and returns
// a connection to it. The server is killed in t.Cleanup. The test is skipped when there is no
// redis-server binary.
func startRedis(t *testing.T, extra ...string) *redisConn {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed")
	}
	dir, err := os.MkdirTemp("", "aofredis") // short: a socket path has ~100 bytes at most
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "redis.sock")
	args := append([]string{"--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no", "--dir", dir}, extra...)
	cmd := exec.Command(bin, args...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("redis-server log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			rc := &redisConn{c: c, br: bufio.NewReader(c)}
			t.Cleanup(func() { c.Close() })
			if _, err := rc.do("PING"); err == nil {
				return rc
			}
			c.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server not answering on %s: %v", sock, err)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition against a deadline
	}
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
