package verify

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/redisctl"
	"github.com/rmt-project/rmt/internal/redistest"
)

// cjRedis is a redis-server child of the test (internal/redistest) and a client of it.
type cjRedis struct {
	Addr string
	t    testing.TB
	c    radix.Client
}

// cjStartRedis runs redis-server (internal/redistest) with the given extra command-line
// arguments; it is killed when the test ends.
func cjStartRedis(t testing.TB, args ...string) *cjRedis {
	t.Helper()
	return cjOf(t, redistest.StartRedis(t, redistest.WithFlags(args...)))
}

// cjOf is the cjRedis of a harness server, with the harness's client.
func cjOf(t testing.TB, r *redistest.Redis) *cjRedis {
	t.Helper()
	return &cjRedis{Addr: r.Addr, t: t, c: r.Client(t)}
}

// cjStartRedisTLS is cjStartRedis serving TLS with these files (redistest.WithTLS): Addr is the
// TLS port, and the client reaches it through d, which must trust the server.
func cjStartRedisTLS(t testing.TB, d radix.Dialer, certFile, keyFile, caFile string) *cjRedis {
	t.Helper()
	r := redistest.StartRedis(t, redistest.WithTLS(certFile, keyFile, caFile))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := (radix.PoolConfig{Size: 2, Dialer: d}).New(ctx, "tcp", r.TLSAddr)
	if err == nil {
		if err = c.Do(ctx, radix.Cmd(nil, "PING")); err != nil {
			c.Close()
		}
	}
	if err != nil {
		t.Fatalf("redis-server %s over TLS: %v", r.TLSAddr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &cjRedis{Addr: r.TLSAddr, t: t, c: c}
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
	redistest.WaitFor(r.t, 20*time.Second, func() error {
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
