package redistest

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

	"github.com/rmt-project/rmt/internal/redisfmt"
)

// Redis is one redis-server process started by StartRedis. Its fields do not change after the
// start: Restart brings it back on the same port with the same directory and configuration.
type Redis struct {
	Addr    string // "127.0.0.1:<port>"
	Port    int
	TLSAddr string // with WithTLS: "127.0.0.1:<tls-port>", where it serves TLS; else ""
	TLSPort int
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
	dir      string
	port     int
	tls      *tlsFiles
}

type tlsFiles struct{ cert, key, ca string }

// WithArgs adds configuration lines, in redis.conf syntax ("hash-max-listpack-entries 4",
// "replicaof 127.0.0.1 6380"). Later lines override earlier ones, as in redis.conf.
func WithArgs(lines ...string) RedisOption {
	return func(c *redisConfig) { c.lines = append(c.lines, lines...) }
}

// WithFlags adds configuration given as redis-server's command-line arguments ("--maxmemory",
// "10mb", "--save", ""): each "--name" starts a line, the arguments after it are its values,
// quoted as redis-server quotes them. The lines join those of WithArgs, in the order given.
func WithFlags(args ...string) RedisOption {
	return func(c *redisConfig) { c.lines = append(c.lines, flagLines(args)...) }
}

// flagLines turns command-line arguments into config lines, as redis-server does with the
// arguments after its config file.
func flagLines(args []string) []string {
	var lines []string
	for _, a := range args {
		if name, ok := strings.CutPrefix(a, "--"); ok && name != "" {
			lines = append(lines, name)
			continue
		}
		if len(lines) == 0 {
			lines = append(lines, "")
		}
		lines[len(lines)-1] += " " + quoteConf(a)
	}
	return lines
}

// WithRDB copies the RDB file at path into the server's directory as its dbfilename, so the
// server loads it at start (and again at every Restart).
func WithRDB(path string) RedisOption { return func(c *redisConfig) { c.rdb = path } }

// WithPassword sets requirepass; the harness's own clients authenticate with it. (They do also
// with a requirepass given by WithArgs or WithFlags, as long as it has no spaces.)
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

// WithDir runs the server in dir (config, log, RDB and AOF files) instead of a new temporary
// directory: to load files put there before, or to start a server where another one ran.
func WithDir(dir string) RedisOption { return func(c *redisConfig) { c.dir = dir } }

// WithPort makes the server listen on port instead of a free one, with no retry if the port is
// taken: for a server that must come back where another one was killed.
func WithPort(port int) RedisOption { return func(c *redisConfig) { c.port = port } }

// WithTLS makes the server also serve TLS on a second free port (TLSAddr), with the given
// certificate, key and CA files, not asking clients for a certificate. The harness itself
// keeps talking to the plain port.
func WithTLS(certFile, keyFile, caFile string) RedisOption {
	return func(c *redisConfig) { c.tls = &tlsFiles{cert: certFile, key: keyFile, ca: caFile} }
}

// StartRedis starts redis-server on a free loopback port and returns once it answers INFO with
// loading:0. The server is killed and reaped when the test ends. A missing redis-server fails
// the test (run `make deps`).
func StartRedis(t testing.TB, opts ...RedisOption) *Redis {
	t.Helper()
	cfg := redisConfig{bin: "redis-server"}
	for _, o := range opts {
		o(&cfg)
	}
	bin := NeedBinary(t, cfg.bin)
	dir := cfg.dir
	if dir == "" {
		dir = t.TempDir()
	}
	r := &Redis{
		bin:      bin,
		Dir:      dir,
		LogPath:  filepath.Join(dir, "redis.log"),
		confPath: filepath.Join(dir, "redis.conf"),
	}
	if cfg.aclUser != "" {
		r.user, r.pass = cfg.aclUser, cfg.aclPass
	} else {
		r.pass = cfg.requirepass()
	}
	if cfg.rdb != "" {
		if err := CopyFile(cfg.rdb, filepath.Join(dir, "dump.rdb")); err != nil {
			t.Fatalf("StartRedis: %v", err)
		}
	}
	printLogOnFailure(t, "redis-server", func() string { return r.LogPath })
	t.Cleanup(r.cleanup)

	attempts := 5
	if cfg.port != 0 {
		attempts = 1
	}
	var err error
	for attempt := 0; attempt < attempts; attempt++ {
		var ports []int // the server's, the bus's, TLS's
		if ports, err = freePorts(3); err != nil {
			break
		}
		if cfg.port != 0 {
			ports[0] = cfg.port
		}
		r.Port = ports[0]
		r.Addr = fmt.Sprintf("127.0.0.1:%d", r.Port)
		if cfg.tls != nil {
			r.TLSPort = ports[2]
			r.TLSAddr = fmt.Sprintf("127.0.0.1:%d", r.TLSPort)
		}
		conf := cfg.render(r.Port, ports[1], r.TLSPort, dir)
		if err = os.WriteFile(r.confPath, []byte(conf), 0o644); err != nil {
			break
		}
		if r.Version, err = r.start(); err == nil || !isBindErr(err) {
			break
		}
	}
	if err != nil {
		t.Fatalf("StartRedis: %v", err)
	}
	return r
}

// requirepass is the password the server will require: the last requirepass line, or
// WithPassword's.
func (c *redisConfig) requirepass() string {
	pass := c.password
	for _, l := range c.lines {
		if f := strings.Fields(l); len(f) == 2 && strings.EqualFold(f[0], "requirepass") {
			pass = f[1]
			if u, err := strconv.Unquote(pass); err == nil {
				pass = u
			}
		}
	}
	return pass
}

// render writes the config file: the harness's lines, then the options' (which can override
// them). bus and tlsPort are used only in cluster mode and with WithTLS.
func (c *redisConfig) render(port, bus, tlsPort int, dir string) string {
	var b strings.Builder
	if c.cluster {
		// The bus port defaults to port+10000, impossible above 55535: use a free one.
		fmt.Fprintf(&b, "cluster-enabled yes\ncluster-config-file nodes.conf\ncluster-port %d\ncluster-node-timeout 5000\n", bus)
	}
	fmt.Fprintf(&b, "port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n", port, quoteConf(dir), quoteConf(filepath.Join(dir, "redis.log")))
	b.WriteString("daemonize no\nsave \"\"\nappendonly no\nrepl-diskless-sync-delay 0\ndbfilename dump.rdb\n")
	if c.tls != nil {
		fmt.Fprintf(&b, "tls-port %d\ntls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\ntls-auth-clients no\n",
			tlsPort, quoteConf(c.tls.cert), quoteConf(c.tls.key), quoteConf(c.tls.ca))
	}
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
	return b.String()
}

// quoteConf quotes a value for redis.conf as redis-server quotes its own (sdscatrepr), which is
// what its config parser reads back.
func quoteConf(s string) string { return redisfmt.Quote(s) }

func isBindErr(err error) bool { return err != nil && strings.Contains(err.Error(), errBind.Error()) }

// start runs the server with the current config file, waits until it is ready and returns its
// version.
func (r *Redis) start() (string, error) {
	p, err := startProc("redis-server "+r.Addr, r.bin, r.LogPath, r.confPath)
	if err != nil {
		return "", err
	}
	var version string
	ready := func(ctx context.Context) error {
		v, err := r.ready(ctx, p.pid())
		version = v
		return err
	}
	if err := waitReady(p, r.LogPath, startTimeout, ready); err != nil {
		p.signal(syscall.SIGKILL, 0)
		return "", err
	}
	r.mu.Lock()
	r.p = p
	r.mu.Unlock()
	return version, nil
}

// ready returns the server's version once INFO answers, from process pid (not another server
// that holds the port while pid fails to bind it), and the server is not loading a dataset. It
// uses one connection, closed at once: a server with maxclients 1 is then free for the test.
func (r *Redis) ready(ctx context.Context, pid int) (string, error) {
	c, err := r.dialer().Dial(ctx, "tcp", r.Addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	info, err := infoConn(ctx, c, "default")
	if err != nil {
		return "", err
	}
	if got := info["process_id"]; got != strconv.Itoa(pid) {
		return "", fmt.Errorf("%s is served by process %s, not by the one started (%d)", r.Addr, got, pid)
	}
	if info["loading"] != "0" {
		return "", fmt.Errorf("%s still loading", r.Addr)
	}
	return info["redis_version"], nil
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
	c, err := (radix.PoolConfig{Dialer: r.dialer(), Size: 1, PingInterval: -1}).New(ctx, "tcp", r.Addr) // one: a server may take only one client (maxclients 1)
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
	return ParseInfo(s), nil
}

// ParseInfo parses INFO text (or CLUSTER INFO's): "key:value" lines, "#" section headers skipped.
func ParseInfo(s string) map[string]string {
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

// Exited returns a channel that is closed when the server's process exits (already closed when
// it is not running): for a server that shuts itself down, e.g. after SHUTDOWN.
func (r *Redis) Exited() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return r.p.exited
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
		_, err := r.start()
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

// CopyFile copies the file at src to dst (created or truncated).
func CopyFile(src, dst string) error {
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
