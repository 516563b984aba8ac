package verify

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/redisctl"
)

// cjRedis is a redis-server child of the test.
type cjRedis struct {
	Addr string
	t    testing.TB
	c    radix.Client
}

// cjBuffer is a bytes.Buffer safe for the server's output writer and the test.
type cjBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *cjBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *cjBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cjStartRedis runs redis-server on a random loopback port with the given extra arguments and
// kills it when the test ends. It retries when the port was taken meanwhile.
func cjStartRedis(t testing.TB, args ...string) *cjRedis {
	t.Helper()
	return cjStartRedisWith(t, radix.Dialer{}, "--port", args...)
}

// cjStartRedisWith is cjStartRedis with the random port given to portFlag ("--tls-port" for a
// TLS server) and d used to talk to the server.
func cjStartRedisWith(t testing.TB, d radix.Dialer, portFlag string, args ...string) *cjRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		all := append([]string{portFlag, strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
			"--appendonly", "no", "--dir", t.TempDir(), "--repl-diskless-sync-delay", "0"}, args...)
		cmd := exec.Command("redis-server", all...)
		out := &cjBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		addr := "127.0.0.1:" + strconv.Itoa(port)
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "--requirepass" {
				d.AuthPass = args[i+1]
			}
		}
		c, err := cjWaitUp(addr, d, exited)
		if err != nil {
			_ = cmd.Process.Kill()
			<-exited
			lastErr = fmt.Errorf("%w\n%s", err, out.String())
			continue
		}
		r := &cjRedis{Addr: addr, t: t, c: c}
		t.Cleanup(func() {
			c.Close()
			_ = cmd.Process.Kill()
			<-exited
			if t.Failed() {
				t.Logf("redis-server %s output:\n%s", addr, out.String())
			}
		})
		return r
	}
	t.Fatalf("redis-server did not start: %v", lastErr)
	return nil
}

// cjWaitUp polls PING until the server answers, it exits, or 10 s pass.
func cjWaitUp(addr string, d radix.Dialer, exited <-chan error) (radix.Client, error) {
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := (radix.PoolConfig{Size: 2, Dialer: d}).New(ctx, "tcp", addr)
		if err == nil {
			err = c.Do(ctx, radix.Cmd(nil, "PING"))
			if err == nil {
				cancel()
				return c, nil
			}
			c.Close()
		}
		cancel()
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no PING answer from %s: %w", addr, err)
		}
		select {
		case e := <-exited:
			return nil, fmt.Errorf("redis-server exited: %v", e)
		case <-tick.C:
		}
	}
}

// Do runs one command in db 0 and fails the test on error.
func (r *cjRedis) Do(args ...string) {
	r.t.Helper()
	if err := r.c.Do(context.Background(), radix.Cmd(nil, args[0], args[1:]...)); err != nil {
		r.t.Fatalf("%s %v: %v", r.Addr, args, err)
	}
}

// DoDB runs commands in db (on one connection, SELECT first).
func (r *cjRedis) DoDB(db int, cmds ...[]string) {
	r.t.Helper()
	err := r.c.Do(context.Background(), radix.WithConn("", func(ctx context.Context, c radix.Conn) error {
		if err := c.Do(ctx, radix.Cmd(nil, "SELECT", strconv.Itoa(db))); err != nil {
			return err
		}
		defer c.Do(ctx, radix.Cmd(nil, "SELECT", "0"))
		for _, a := range cmds {
			if err := c.Do(ctx, radix.Cmd(nil, a[0], a[1:]...)); err != nil {
				return fmt.Errorf("%v: %w", a, err)
			}
		}
		return nil
	}))
	if err != nil {
		r.t.Fatalf("%s db %d: %v", r.Addr, db, err)
	}
}

// Int runs a command answering an integer.
func (r *cjRedis) Int(args ...string) int64 {
	r.t.Helper()
	var n int64
	if err := r.c.Do(context.Background(), radix.Cmd(&n, args[0], args[1:]...)); err != nil {
		r.t.Fatalf("%s %v: %v", r.Addr, args, err)
	}
	return n
}

// Info returns one field of INFO.
func (r *cjRedis) Info(section, field string) string {
	r.t.Helper()
	var s string
	if err := r.c.Do(context.Background(), radix.Cmd(&s, "INFO", section)); err != nil {
		r.t.Fatalf("%s INFO: %v", r.Addr, err)
	}
	v, _ := redisctl.InfoField(s, field)
	return v
}

// copyFrom makes r an exact copy of src by replication, then detaches it.
func (r *cjRedis) copyFrom(src *cjRedis) {
	r.t.Helper()
	host, port, _ := net.SplitHostPort(src.Addr)
	r.Do("REPLICAOF", host, port)
	cjWaitFor(r.t, 20*time.Second, func() error {
		if s := r.Info("replication", "master_link_status"); s != "up" {
			return fmt.Errorf("master_link_status %q", s)
		}
		if s := r.Info("replication", "master_sync_in_progress"); s != "0" {
			return fmt.Errorf("master_sync_in_progress %q", s)
		}
		mo := src.Info("replication", "master_repl_offset")
		if ro := r.Info("replication", "slave_repl_offset"); ro != mo {
			return fmt.Errorf("replica offset %s, master %s", ro, mo)
		}
		return nil
	})
	r.Do("REPLICAOF", "NO", "ONE")
}

// cjWaitFor polls f until it returns nil or timeout passes, then fails with its last error.
func cjWaitFor(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %v", timeout, err)
		}
		<-tick.C
	}
}

// cjConfig is a config whose source and target are single servers.
func cjConfig(src, tgt *cjRedis) *conf.Config {
	cfg := &conf.Config{
		Source: conf.Pool{Type: conf.TypeSingle, Servers: []string{src.Addr}, Timeout: 10 * time.Second},
		Target: conf.Pool{Type: conf.TypeSingle, Timeout: 10 * time.Second},
	}
	if tgt != nil {
		cfg.Target.Servers = []string{tgt.Addr}
	}
	return cfg
}

func cjLines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }
