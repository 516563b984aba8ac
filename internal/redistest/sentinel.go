package redistest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"
)

// Sentinel is one `redis-server --sentinel` process started by StartSentinel, on a free
// loopback port, with its config (which Sentinel rewrites) and log in Dir.
type Sentinel struct {
	Addr    string
	Port    int
	Dir     string
	LogPath string

	mu sync.Mutex
	p  *proc
}

// SentinelOptions configure the Sentinels of a group.
type SentinelOptions struct {
	MasterName string // "mymaster" when empty
	Quorum     int    // 2 when 0
	// DownAfter and FailoverTimeout are the master's down-after-milliseconds and
	// failover-timeout: 2 s and 10 s when 0, so a failover takes a few seconds.
	DownAfter       time.Duration
	FailoverTimeout time.Duration
	AuthPass        string   // sentinel auth-pass: the data nodes' requirepass
	RequirePass     string   // the Sentinels' own requirepass ("" none)
	Lines           []string // more sentinel.conf lines
}

func (o *SentinelOptions) defaults() {
	if o.MasterName == "" {
		o.MasterName = "mymaster"
	}
	if o.Quorum == 0 {
		o.Quorum = 2
	}
	if o.DownAfter == 0 {
		o.DownAfter = 2 * time.Second
	}
	if o.FailoverTimeout == 0 {
		o.FailoverTimeout = 10 * time.Second
	}
}

// StartSentinel starts a Sentinel monitoring master under o.MasterName and returns once it
// answers SENTINEL MASTERS with it. It is killed and reaped when the test ends.
func StartSentinel(t testing.TB, master *Redis, o SentinelOptions) *Sentinel {
	t.Helper()
	o.defaults()
	bin := NeedBinary(t, "redis-server")
	dir := t.TempDir()
	s := &Sentinel{Dir: dir, LogPath: filepath.Join(dir, "sentinel.log")}
	printLogOnFailure(t, "sentinel", func() string { return s.LogPath })
	t.Cleanup(s.Kill)
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if s.Port, err = freePort(); err != nil {
			break
		}
		s.Addr = fmt.Sprintf("127.0.0.1:%d", s.Port)
		if err = os.WriteFile(filepath.Join(dir, "sentinel.conf"), []byte(o.render(s.Port, dir, master.Port)), 0o644); err != nil {
			break
		}
		if err = s.start(bin, o); err == nil || !isBindErr(err) {
			break
		}
	}
	if err != nil {
		t.Fatalf("StartSentinel: %v", err)
	}
	return s
}

func (o *SentinelOptions) render(port int, dir string, masterPort int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\ndaemonize no\n", port, quoteConf(dir),
		quoteConf(filepath.Join(dir, "sentinel.log")))
	fmt.Fprintf(&b, "sentinel monitor %s 127.0.0.1 %d %d\n", o.MasterName, masterPort, o.Quorum)
	fmt.Fprintf(&b, "sentinel down-after-milliseconds %s %d\n", o.MasterName, o.DownAfter.Milliseconds())
	fmt.Fprintf(&b, "sentinel failover-timeout %s %d\n", o.MasterName, o.FailoverTimeout.Milliseconds())
	fmt.Fprintf(&b, "sentinel parallel-syncs %s 1\n", o.MasterName)
	if o.AuthPass != "" {
		fmt.Fprintf(&b, "sentinel auth-pass %s %s\n", o.MasterName, quoteConf(o.AuthPass))
	}
	if o.RequirePass != "" {
		fmt.Fprintf(&b, "requirepass %s\n", quoteConf(o.RequirePass))
	}
	for _, l := range o.Lines {
		b.WriteString(l + "\n")
	}
	return b.String()
}

func (s *Sentinel) start(bin string, o SentinelOptions) error {
	p, err := startProc("sentinel "+s.Addr, bin, s.LogPath, filepath.Join(s.Dir, "sentinel.conf"), "--sentinel")
	if err != nil {
		return err
	}
	ready := func(ctx context.Context) error {
		c, err := (radix.Dialer{AuthPass: o.RequirePass}).Dial(ctx, "tcp", s.Addr)
		if err != nil {
			return err
		}
		defer c.Close()
		var addr []string
		if err := c.Do(ctx, radix.Cmd(&addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", o.MasterName)); err != nil {
			return err
		}
		if len(addr) != 2 {
			return fmt.Errorf("sentinel %s does not know %s yet", s.Addr, o.MasterName)
		}
		return nil
	}
	if err := waitReady(p, s.LogPath, startTimeout, ready); err != nil {
		p.signal(syscall.SIGKILL, 0)
		return err
	}
	s.mu.Lock()
	s.p = p
	s.mu.Unlock()
	return nil
}

// Kill sends SIGKILL and waits until the process is reaped.
func (s *Sentinel) Kill() {
	s.mu.Lock()
	p := s.p
	s.p = nil
	s.mu.Unlock()
	if p != nil {
		p.signal(syscall.SIGKILL, 0)
	}
}

// Do runs one command on the Sentinel and returns its reply as Redis.Do does.
func (s *Sentinel) Do(t testing.TB, args ...string) interface{} {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := radix.Dial(ctx, "tcp", s.Addr)
	if err != nil {
		t.Fatalf("sentinel %s: %v", s.Addr, err)
	}
	defer c.Close()
	var v interface{}
	if err := c.Do(ctx, radix.Cmd(&v, args[0], args[1:]...)); err != nil {
		t.Fatalf("sentinel %s: %v: %v", s.Addr, args, err)
	}
	return plainReply(v)
}

// masterAddr asks the Sentinel where the master is.
func (s *Sentinel) masterAddr(ctx context.Context, name string) (string, error) {
	c, err := radix.Dial(ctx, "tcp", s.Addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	var addr []string
	if err := c.Do(ctx, radix.Cmd(&addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)); err != nil {
		return "", err
	}
	if len(addr) != 2 {
		return "", fmt.Errorf("sentinel %s: no master %s", s.Addr, name)
	}
	return addr[0] + ":" + addr[1], nil
}

// SwitchMasterTimes returns when the Sentinel logged +switch-master, in its log's order.
func (s *Sentinel) SwitchMasterTimes(t testing.TB) []time.Time {
	t.Helper()
	return logEventTimes(t, s.LogPath, "+switch-master")
}

// logEventTimes reads a Redis log's lines with event and parses their time
// ("12345:X 02 Jan 2006 15:04:05.000 # +switch-master ...", local time).
func logEventTimes(t testing.TB, path, event string) []time.Time {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("log %s: %v", path, err)
	}
	defer f.Close()
	var out []time.Time
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, " "+event+" ") {
			continue
		}
		_, rest, ok := strings.Cut(line, " ")
		if !ok || len(rest) < 24 {
			continue
		}
		at, err := time.ParseInLocation("02 Jan 2006 15:04:05.000", rest[:24], time.Local)
		if err != nil {
			t.Fatalf("log %s: line %q: %v", path, line, err)
		}
		out = append(out, at)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("log %s: %v", path, err)
	}
	return out
}

// SentinelGroup is a Sentinel-managed deployment: a master, its replicas and the Sentinels
// that watch it, all on loopback.
type SentinelGroup struct {
	Name      string
	Master    *Redis // the master at the start (Current says where it is now)
	Replicas  []*Redis
	Sentinels []*Sentinel
	Nodes     []*Redis // Master, then Replicas
	opts      SentinelOptions
}

// StartSentinelGroup starts a master with replicas replicas (each synced) and sentinels
// Sentinels (3 and quorum 2 for a failover that needs a majority), every data node started
// with opts. It returns once every Sentinel knows every replica and the other Sentinels.
func StartSentinelGroup(t testing.TB, replicas, sentinels int, so SentinelOptions, opts ...RedisOption) *SentinelGroup {
	t.Helper()
	so.defaults()
	g := &SentinelGroup{Name: so.MasterName, opts: so}
	g.Master = StartRedis(t, opts...)
	g.Nodes = append(g.Nodes, g.Master)
	for range replicas {
		r := StartRedis(t, opts...)
		r.ReplicaOf(t, g.Master)
		g.Replicas = append(g.Replicas, r)
		g.Nodes = append(g.Nodes, r)
	}
	for range sentinels {
		g.Sentinels = append(g.Sentinels, StartSentinel(t, g.Master, so))
	}
	g.WaitKnown(t, replicas, 30*time.Second)
	return g
}

// SentinelAddrs are the Sentinels' addresses.
func (g *SentinelGroup) SentinelAddrs() []string {
	out := make([]string, len(g.Sentinels))
	for i, s := range g.Sentinels {
		out[i] = s.Addr
	}
	return out
}

// WaitKnown waits until every Sentinel lists at least replicas replicas of the master that
// are up and knows every other Sentinel: then a failover can be agreed.
func (g *SentinelGroup) WaitKnown(t testing.TB, replicas int, timeout time.Duration) {
	t.Helper()
	WaitFor(t, timeout, func() error {
		for _, s := range g.Sentinels {
			m := sentinelFields(s.Do(t, "SENTINEL", "MASTER", g.Name))
			if m["num-slaves"] == "" || atoiOr(m["num-slaves"]) < replicas {
				return fmt.Errorf("sentinel %s: %s replicas, want %d", s.Addr, m["num-slaves"], replicas)
			}
			if atoiOr(m["num-other-sentinels"]) < len(g.Sentinels)-1 {
				return fmt.Errorf("sentinel %s knows %s other sentinels, want %d", s.Addr, m["num-other-sentinels"], len(g.Sentinels)-1)
			}
		}
		return nil
	})
}

// sentinelFields turns a flat [k1 v1 k2 v2 ...] reply into a map.
func sentinelFields(v interface{}) map[string]string {
	m := map[string]string{}
	arr, _ := v.([]interface{})
	for i := 0; i+1 < len(arr); i += 2 {
		k, _ := arr[i].(string)
		val, _ := arr[i+1].(string)
		m[k] = val
	}
	return m
}

func atoiOr(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// CurrentAddr asks the Sentinels in turn where the master is now.
func (g *SentinelGroup) CurrentAddr(t testing.TB) string {
	t.Helper()
	addr, err := g.currentAddr()
	if err != nil {
		t.Fatalf("sentinel group %s: %v", g.Name, err)
	}
	return addr
}

func (g *SentinelGroup) currentAddr() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	for _, s := range g.Sentinels {
		var addr string
		if addr, err = s.masterAddr(ctx, g.Name); err == nil {
			return addr, nil
		}
	}
	return "", err
}

// Current returns the data node that the Sentinels say is the master now.
func (g *SentinelGroup) Current(t testing.TB) *Redis {
	t.Helper()
	addr := g.CurrentAddr(t)
	for _, r := range g.Nodes {
		if r.Addr == addr {
			return r
		}
	}
	t.Fatalf("sentinel group %s: master %s is none of its nodes", g.Name, addr)
	return nil
}

// Resolve returns a function for WriterOptions.Resolve: where the master is now, or "" when
// no Sentinel answers.
func (g *SentinelGroup) Resolve() func() string {
	return func() string {
		addr, _ := g.currentAddr()
		return addr
	}
}

// WaitFailover waits until every Sentinel names a master other than from, and that node says
// it is a master; it returns the new master.
func (g *SentinelGroup) WaitFailover(t testing.TB, from *Redis, timeout time.Duration) *Redis {
	t.Helper()
	var now *Redis
	WaitFor(t, timeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var addr string
		for _, s := range g.Sentinels {
			a, err := s.masterAddr(ctx, g.Name)
			if err != nil {
				return err
			}
			if a == from.Addr {
				return fmt.Errorf("sentinel %s still names %s", s.Addr, a)
			}
			if addr != "" && a != addr {
				return fmt.Errorf("sentinels disagree: %s and %s", addr, a)
			}
			addr = a
		}
		for _, r := range g.Nodes {
			if r.Addr == addr && r.Pid() != 0 {
				if role := r.Info(t, "replication")["role"]; role != "master" {
					return fmt.Errorf("%s says role %s", addr, role)
				}
				now = r
				return nil
			}
		}
		return fmt.Errorf("master %s is none of the running nodes", addr)
	})
	return now
}

// KillMasterQuiet makes master quiet before killing it: writes are paused (CLIENT PAUSE WRITE:
// clients wait, the replication stream goes on) until every replica listed in its INFO
// replication has all of its stream (those are its replicas and rmtd), then it is killed. So a
// failover loses no acknowledged write, and which replica is ahead is not left to chance.
// It returns when the kill happened.
func KillMasterQuiet(t testing.TB, master *Redis, timeout time.Duration) time.Time {
	t.Helper()
	master.Do(t, "CLIENT", "PAUSE", int(timeout.Milliseconds())+5000, "WRITE")
	WaitFor(t, timeout, func() error {
		info := master.Info(t, "replication")
		off := info["master_repl_offset"]
		n := atoiOr(info["connected_slaves"])
		for i := range n {
			line := info["slave"+strconv.Itoa(i)]
			if !strings.Contains(line, ",offset="+off+",") {
				return fmt.Errorf("replica %s behind master offset %s", line, off)
			}
		}
		return nil
	})
	at := time.Now()
	master.Kill()
	return at
}
