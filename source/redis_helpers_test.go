package source

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
	"strings"
	"testing"
	"time"
)

// redisProc is a redis-server started by a test on a random loopback port.
type redisProc struct {
	addr   string
	port   int
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
}

func needRedis(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startRedis starts redis-server in dir (a new temporary one if ""), on port (a random free
// one if 0, retried if the bind fails), with the test defaults and then args.
func startRedis(t testing.TB, port int, dir string, args ...string) *redisProc {
	t.Helper()
	needRedis(t)
	if dir == "" {
		dir = t.TempDir()
	}
	fixed := port != 0
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		p := port
		if !fixed {
			p = freePort(t)
		}
		r, err := tryStartRedis(t, p, dir, args)
		if err == nil {
			return r
		}
		lastErr = err
	}
	t.Fatalf("starting redis-server: %v", lastErr)
	return nil
}

func tryStartRedis(t testing.TB, port int, dir string, extra []string) (*redisProc, error) {
	logPath := filepath.Join(dir, "redis-"+strconv.Itoa(port)+".log")
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", logPath, "--repl-diskless-sync-delay", "0", "--enable-debug-command", "local"}
	cmd := exec.Command("redis-server", append(args, extra...)...)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &redisProc{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), port: port, dir: dir, cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(r.exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := dialRedis(r.addr)
		if err == nil {
			_, err = c.do("PING")
			c.close()
			if err == nil || strings.Contains(err.Error(), "NOAUTH") {
				break
			}
		}
		select {
		case <-r.exited:
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("redis-server on port %d exited: %s", port, tail(string(log), 800))
		default:
		}
		if time.Now().After(deadline) {
			r.kill()
			return nil, fmt.Errorf("redis-server on port %d not ready: %v", port, err)
		}
		time.Sleep(10 * time.Millisecond) // polling interval of a readiness check
	}
	t.Cleanup(func() {
		r.kill()
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("redis-server %s log:\n%s", r.addr, tail(string(log), 3000))
		}
	})
	return r, nil
}

func (r *redisProc) kill() {
	r.cmd.Process.Kill()
	<-r.exited
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// client opens a connection to the server, authenticated with auth if given.
func (r *redisProc) client(t testing.TB, auth ...string) *rclient {
	t.Helper()
	c, err := dialRedis(r.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	if len(auth) > 0 {
		if _, err := c.do(append([]string{"AUTH"}, auth...)...); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// rclient is a minimal RESP client for tests: it returns every reply as a string (arrays as
// their elements joined by "\n") and error replies as errors.
type rclient struct {
	c  net.Conn
	br *bufio.Reader
}

func dialRedis(addr string) (*rclient, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	return &rclient{c: c, br: bufio.NewReader(c)}, nil
}

func (c *rclient) close() { c.c.Close() }

func (c *rclient) do(args ...string) (string, error) {
	c.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.c.Write([]byte(cmd(args...))); err != nil {
		return "", err
	}
	return c.reply()
}

func (c *rclient) must(t testing.TB, args ...string) string {
	t.Helper()
	s, err := c.do(args...)
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	return s
}

func (c *rclient) reply() (string, error) {
	line, err := c.br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply line")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(c.br, b); err != nil {
			return "", err
		}
		return string(b[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", err
		}
		var parts []string
		for i := 0; i < n; i++ {
			s, err := c.reply()
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, "\n"), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

// infoField returns a field of INFO <section>.
func (c *rclient) infoField(t testing.TB, section, field string) string {
	t.Helper()
	info := c.must(t, "INFO", section)
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return v
		}
	}
	return ""
}

// waitFor polls cond until it returns nil or the timeout passes, then fails with its last error.
func waitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}
