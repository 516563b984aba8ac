package shard

// Helpers for the tests that check this package against real redis-server and nutcracker
// processes: each runs as a child of the test on a free loopback port, in t.TempDir(), and is
// killed in t.Cleanup. No helper here is used by the package itself.

import (
	"bufio"
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

// needBinary skips the test when a program is not installed.
func needBinary(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed: %v", name, err)
	}
}

// freePort returns a loopback TCP port that was free a moment ago. Callers retry when a bind
// fails anyway.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// freePorts returns n distinct loopback TCP ports that were free a moment ago: all are held
// open together, so the kernel cannot hand out one twice.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// errExited stops waitFor at once: the process it waits for is gone.
var errExited = errors.New("exited")

// waitFor polls cond until it returns nil or timeout passes, then fails with its last error.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) error {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if errors.Is(err, errExited) {
			return fmt.Errorf("%s: %w", what, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not ready after %v: %w", what, timeout, err)
		}
		<-tick.C
	}
}

// process is a child started by startProcess.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
}

// startProcess starts a program, arranges for it to be killed at Cleanup and, if the test
// failed, prints its log file.
func startProcess(t *testing.T, logPath string, name string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(name, args...)
	out, err := os.Create(logPath + ".out")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{}), log: logPath}
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			for _, f := range []string{logPath, logPath + ".out"} {
				if b, err := os.ReadFile(f); err == nil && len(b) > 0 {
					t.Logf("%s %s:\n%s", name, f, tail(b, 4000))
				}
			}
		}
	})
	return p
}

func (p *process) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// startRedis starts a redis-server on a free loopback port and returns "127.0.0.1:port" once
// it answers PING.
func startRedis(t *testing.T, extra ...string) string {
	t.Helper()
	needBinary(t, "redis-server")
	dir := t.TempDir()
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		port := freePort(t)
		args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--logfile", filepath.Join(dir, "redis.log")}
		args = append(args, extra...)
		p := startProcess(t, filepath.Join(dir, "redis.log"), "redis-server", args...)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		last = waitFor(t, 10*time.Second, "redis-server "+addr, func() error {
			if !p.alive() {
				return errExited
			}
			return ping(addr)
		})
		if last == nil {
			return addr
		}
		_ = p.cmd.Process.Kill()
	}
	t.Fatalf("redis-server: %v", last)
	return ""
}

func ping(addr string) error {
	c, err := dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	r, err := c.do("PING")
	if err != nil {
		return err
	}
	if s, _ := r.(string); s != "PONG" {
		return fmt.Errorf("PING: %v", r)
	}
	return nil
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
