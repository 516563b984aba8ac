package test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"
)

// Redis is one redis-server process started by StartRedis. Its fields do not change after the
// start: Restart brings it back on the same port with the same directory and configuration.
type Redis struct {
	Addr    string // "127.0.0.1:<port>"
	Port    int
	Dir     string // its working directory: config, RDB file, log
	LogPath string
	Version string // redis_version from INFO server, e.g. "7.0.15"

	bin      string
	confPath string
	user     string // credentials the harness's clients use ("" = none)
	pass     string

	mu     sync.Mutex
	p      *proc
	client radix.Client
}

// RedisOption changes how StartRedis configures a server.
type RedisOption func(*redisConfig)

type redisConfig struct {
	cluster  bool
	bin      string
	lines    []string
	rdb      string
	password string
	aclUser  string
	aclPass  string
}

// WithArgs adds configuration lines, in redis.conf syntax ("hash-max-listpack-entries 4",
// "replicaof 127.0.0.1 6380"). Later lines override earlier ones, as in redis.conf.
func WithArgs(lines ...string) RedisOption {
	return func(c *redisConfig) { c.lines = append(c.lines, lines...) }
}

// WithRDB copies the RDB file at path into the server's directory as its dbfilename, so the
// server loads it at start (and again at every Restart).
func WithRDB(path string) RedisOption { return func(c *redisConfig) { c.rdb = path } }

// WithPassword sets requirepass; the harness's own clients authenticate with it.
func WithPassword(pass string) RedisOption { return func(c *redisConfig) { c.password = pass } }

// WithACLUser adds an ACL user with every permission; the harness's own clients log in as it.
// Unless WithPassword is given too, the default user is switched off.
func WithACLUser(user, pass string) RedisOption {
	return func(c *redisConfig) { c.aclUser, c.aclPass = user, pass }
}

// WithCluster enables cluster mode (cluster-enabled, nodes.conf in Dir, a free bus port).
// StartCluster uses it; a lone node has no slots until CLUSTER ADDSLOTS.
func WithCluster() RedisOption { return func(c *redisConfig) { c.cluster = true } }

// WithBinary runs another redis-server (or valkey-server) binary than the one on PATH.
func WithBinary(path string) RedisOption { return func(c *redisConfig) { c.bin = path } }

// StartRedis starts redis-server on a free loopback port and returns once it answers PING with
// loading:0. The server is killed and reaped when the test ends.
func StartRedis(t testing.TB, opts ...RedisOption) *Redis {
	t.Helper()
	cfg := redisConfig{bin: "redis-server"}
	for _, o := range opts {
		o(&cfg)
	}
	dir := t.TempDir()
	r := &Redis{
		bin:      cfg.bin,
		Dir:      dir,
		LogPath:  filepath.Join(dir, "redis.log"),
		confPath: filepath.Join(dir, "redis.conf"),
	}
	switch {
	case cfg.aclUser != "":
		r.user, r.pass = cfg.aclUser, cfg.aclPass
	case cfg.password != "":
		r.pass = cfg.password
	}
	if cfg.rdb != "" {
		if err := copyFile(cfg.rdb, filepath.Join(dir, "dump.rdb")); err != nil {
			t.Fatalf("StartRedis: %v", err)
		}
	}
	printLogOnFailure(t, "redis-server", func() string { return r.LogPath })
	t.Cleanup(r.cleanup)

	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if r.Port, err = freePort(); err != nil {
			break
		}
		r.Addr = fmt.Sprintf("127.0.0.1:%d", r.Port)
		var conf string
		if conf, err = cfg.render(r.Port, dir); err != nil {
			break
		}
		if err = os.WriteFile(r.confPath, []byte(conf), 0o644); err != nil {
			break
		}
		if err = r.start(); err == nil || !isBindErr(err) {
			break
		}
	}
	if err != nil {
		t.Fatalf("StartRedis: %v", err)
	}
	info, err := r.info(context.Background(), "server")
	if err != nil {
		t.Fatalf("StartRedis %s: %v", r.Addr, err)
	}
	r.Version = info["redis_version"]
	return r
}

func (c *redisConfig) render(port int, dir string) (string, error) {
	var b strings.Builder
	if c.cluster {
		// The bus port defaults to port+10000, impossible above 55535: pick a free one.
		bus, err := freePort()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "cluster-enabled yes\ncluster-config-file nodes.conf\ncluster-port %d\ncluster-node-timeout 5000\n", bus)
	}
	fmt.Fprintf(&b, "port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n", port, quoteConf(dir), quoteConf(filepath.Join(dir, "redis.log")))
	b.WriteString("daemonize no\nsave \"\"\nappendonly no\nrepl-diskless-sync-delay 0\ndbfilename dump.rdb\n")
	if c.password != "" {
		fmt.Fprintf(&b, "requirepass %s\n", quoteConf(c.password))
	}
	if c.aclUser != "" {
		fmt.Fprintf(&b, "user %s on >%s ~* &* +@all\n", c.aclUser, c.aclPass)
		if c.password == "" {
			b.WriteString("user default off\n") // so that only the ACL user gets in
		}
	}
	for _, l := range c.lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// quoteConf quotes a value for redis.conf.
func quoteConf(s string) string { return strconv.Quote(s) }

func isBindErr(err error) bool { return err != nil && strings.Contains(err.Error(), errBind.Error()) }

// start runs the server with the current config file and waits until it is ready.
func (r *Redis) start() error {
	p, err := startProc("redis-server "+r.Addr, r.bin, r.LogPath, r.confPath)
	if err != nil {
		return err
	}
	if err := waitReady(p, r.LogPath, startTimeout, r.ready); err != nil {
		p.signal(syscall.SIGKILL, 0)
		return err
	}
	r.mu.Lock()
	r.p = p
	r.mu.Unlock()
	return nil
}

// ready is true when PING answers and the server is not loading a dataset.
func (r *Redis) ready(ctx context.Context) error {
	c, err := r.dialer().Dial(ctx, "tcp", r.Addr)
	if err != nil {
		return err
	}
	defer c.Close()
	var s string
	if err := c.Do(ctx, radix.Cmd(&s, "INFO", "persistence")); err != nil {
		return err
	}
	if !strings.Contains(s, "loading:0") {
		return fmt.Errorf("%s still loading", r.Addr)
	}
	return c.Do(ctx, radix.Cmd(nil, "PING"))
}

func (r *Redis) dialer() radix.Dialer {
	return radix.Dialer{AuthUser: r.user, AuthPass: r.pass}
}

// cleanup closes the harness's client and kills the server.
func (r *Redis) cleanup() {
	r.mu.Lock()
	c := r.client
	r.client = nil
	p := r.p
	r.mu.Unlock()
	if c != nil {
		c.Close()
	}
	if p != nil {
		p.signal(syscall.SIGKILL, 0)
	}
}

// Client returns a radix client (a small pool) for this server, authenticated as the harness
// is. It is cached, and closed when the test ends or the server is stopped or restarted.
func (r *Redis) Client(t testing.TB) radix.Client {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.client != nil {
		return r.client
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := (radix.PoolConfig{Dialer: r.dialer(), Size: 2, PingInterval: -1}).New(ctx, "tcp", r.Addr)
	if err != nil {
		t.Fatalf("redis %s: client: %v", r.Addr, err)
	}
	r.client = c
	return c
}

// Do runs one command and returns its reply: string for bulk and simple strings, int64,
// []interface{} of those, or nil. An error reply fails the test; use DoErr to expect one.
func (r *Redis) Do(t testing.TB, args ...interface{}) interface{} {
	t.Helper()
	v, err := r.DoErr(t, args...)
	if err != nil {
		t.Fatalf("redis %s: %v", r.Addr, err)
	}
	return v
}

// DoErr is Do that returns an error reply (or an I/O error) instead of failing the test.
func (r *Redis) DoErr(t testing.TB, args ...interface{}) (interface{}, error) {
	t.Helper()
	if len(args) == 0 {
		t.Fatalf("redis %s: Do with no command", r.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var v interface{}
	err := r.Client(t).Do(ctx, radix.FlatCmd(&v, fmt.Sprint(args[0]), args[1:]...))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fmt.Sprint(args...), err)
	}
	return plainReply(v), nil
}

// DoString is Do for a command whose reply is a string (or nil, returned as "").
func (r *Redis) DoString(t testing.TB, args ...interface{}) string {
	t.Helper()
	switch v := r.Do(t, args...).(type) {
	case nil:
		return ""
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	default:
		t.Fatalf("redis %s: %v: reply %T, want a string", r.Addr, args, v)
		return ""
	}
}

// plainReply turns radix's default reply values into strings, int64, []interface{} and nil.
func plainReply(v interface{}) interface{} {
	switch v := v.(type) {
	case []byte:
		if v == nil { // radix's nil bulk string
			return nil
		}
		return string(v)
	case []interface{}:
		out := make([]interface{}, len(v))
		for i := range v {
			out[i] = plainReply(v[i])
		}
		return out
	default:
		return v
	}
}

// Info returns one INFO section as a map.
func (r *Redis) Info(t testing.TB, section string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := r.info(ctx, section)
	if err != nil {
		t.Fatalf("redis %s: %v", r.Addr, err)
	}
	return m
}

func (r *Redis) info(ctx context.Context, section string) (map[string]string, error) {
	c, err := r.dialer().Dial(ctx, "tcp", r.Addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return infoConn(ctx, c, section)
}

// infoConn runs INFO section on c and parses it.
func infoConn(ctx context.Context, c radix.Client, section string) (map[string]string, error) {
	var s string
	if err := c.Do(ctx, radix.Cmd(&s, "INFO", section)); err != nil {
		return nil, fmt.Errorf("INFO %s: %w", section, err)
	}
	return parseInfo(s), nil
}

// parseInfo parses INFO text: "key:value" lines, "#" section headers skipped.
func parseInfo(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = v
		}
	}
	return m
}

// Pid returns the server's process id (0 when it is not running).
func (r *Redis) Pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p == nil || r.p.done() {
		return 0
	}
	return r.p.pid()
}

// Kill sends SIGKILL and waits until the process is reaped.
func (r *Redis) Kill() { r.halt(syscall.SIGKILL) }

// Stop sends SIGTERM (SIGKILL after 10 s) and waits until the process is reaped. With the
// harness's config (save "") nothing is written to disk.
func (r *Redis) Stop() { r.halt(syscall.SIGTERM) }

func (r *Redis) halt(sig syscall.Signal) {
	r.mu.Lock()
	c, p := r.client, r.p
	r.client, r.p = nil, nil
	r.mu.Unlock()
	if c != nil {
		c.Close()
	}
	if p != nil {
		p.signal(sig, 10*time.Second)
	}
}

// Restart stops the server (if running) and starts it again on the same port, with the same
// directory and configuration; it loads dump.rdb from Dir if there is one. Clients obtained
// from Client before are closed: call Client again.
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	r.Stop()
	// The port was just released; another process may grab it meanwhile, so retry briefly.
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := r.start()
		if err == nil {
			return
		}
		if !isBindErr(err) || time.Now().After(deadline) {
			t.Fatalf("restart redis %s: %v", r.Addr, err)
		}
		<-tick.C
	}
}

// InstalledRedisVersion returns the version of the redis-server on PATH ("7.0.15"), from
// `redis-server --version`, without starting a server.
func InstalledRedisVersion(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("redis-server", "--version").Output()
	if err != nil {
		t.Fatalf("redis-server --version: %v", err)
	}
	for _, f := range strings.Fields(string(out)) {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			return v
		}
	}
	t.Fatalf("redis-server --version: no v= in %q", out)
	return ""
}

// SkipBeforeVersion skips the test when the server is older than min ("7.0", "6.2.3").
func SkipBeforeVersion(t testing.TB, r *Redis, min string) {
	t.Helper()
	if compareVersions(r.Version, min) < 0 {
		t.Skipf("needs Redis %s or newer, server %s is %s", min, r.Addr, r.Version)
	}
}

// compareVersions compares dotted version numbers numerically: -1, 0 or 1.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return out.Close()
}
