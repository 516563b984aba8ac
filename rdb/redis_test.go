package rdb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// respConn is a minimal RESP2 client for tests against a real redis-server.
type respConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

type respError string

func (e respError) Error() string { return string(e) }

// startRedis runs redis-server on a random loopback port for the test, with extra arguments.
func startRedis(t testing.TB, dir string, extra ...string) *respConn {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed")
	}
	for attempt := 0; attempt < 5; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
			"--appendonly", "no", "--dir", dir}, extra...)
		cmd := exec.Command(bin, args...)
		var logBuf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Kill()
			<-exited
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		deadline := time.Now().Add(10 * time.Second)
		tick := time.NewTicker(20 * time.Millisecond)
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				rc := &respConn{t: t, c: c, br: bufio.NewReader(c)}
				if r, err := rc.do("PING"); err == nil && r == "PONG" {
					tick.Stop()
					t.Cleanup(func() {
						c.Close()
						stop()
						if t.Failed() {
							t.Logf("redis-server log:\n%s", logBuf.String())
						}
					})
					return rc
				}
				c.Close()
			}
			select {
			case <-exited:
			case <-tick.C:
				if time.Now().Before(deadline) {
					continue
				}
				stop()
				t.Fatalf("redis-server did not answer on %s:\n%s", addr, logBuf.String())
			}
			break // exited: port taken? try another
		}
		tick.Stop()
	}
	t.Fatal("redis-server would not start")
	return nil
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
