package redistest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/mediocregopher/radix/v4"
)

// NutcrackerOptions describes one twemproxy pool.
type NutcrackerOptions struct {
	Backends     []*Redis // servers of the pool, in this order...
	Addrs        []string // ...followed by these "host:port" ones
	Names        []string // server names ("host:port:weight name"); empty: none
	Weights      []int    // per server; empty: 1 each
	Hash         string   // default fnv1a_64
	Distribution string   // default ketama
	HashTag      string   // e.g. "{}"; empty: none
	RedisAuth    string   // redis_auth: password of the backends and of the proxy
	Extra        []string // more pool lines, e.g. "timeout: 400"
}

// Nutcracker is one nutcracker (twemproxy) process started by StartNutcracker.
type Nutcracker struct {
	Addr      string // the pool's listen address
	Port      int
	StatsAddr string // its stats port (JSON on connect)
	Dir       string
	LogPath   string
	ConfPath  string
	Servers   []string // the "host:port:weight [name]" lines, in config order

	mu sync.Mutex
	p  *proc
}

// StartNutcracker writes a pool config into a temp dir and starts nutcracker on a free loopback
// port (stats on another), returning once it answers PING. It is killed when the test ends.
func StartNutcracker(t testing.TB, opts NutcrackerOptions) *Nutcracker {
	t.Helper()
	dir := t.TempDir()
	n := &Nutcracker{Dir: dir, LogPath: filepath.Join(dir, "nutcracker.log"), ConfPath: filepath.Join(dir, "nutcracker.yml")}
	addrs := make([]string, 0, len(opts.Backends)+len(opts.Addrs))
	for _, b := range opts.Backends {
		addrs = append(addrs, b.Addr)
	}
	addrs = append(addrs, opts.Addrs...)
	if len(addrs) == 0 {
		t.Fatalf("StartNutcracker: no servers")
	}
	for i, a := range addrs {
		w := 1
		if i < len(opts.Weights) {
			w = opts.Weights[i]
		}
		line := fmt.Sprintf("%s:%d", a, w)
		if i < len(opts.Names) && opts.Names[i] != "" {
			line += " " + opts.Names[i]
		}
		n.Servers = append(n.Servers, line)
	}
	printLogOnFailure(t, "nutcracker", func() string { return n.LogPath })
	t.Cleanup(func() {
		n.mu.Lock()
		p := n.p
		n.mu.Unlock()
		if p != nil {
			p.signal(syscall.SIGKILL, 0)
		}
	})
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var statsPort int
		if n.Port, err = freePort(); err != nil {
			break
		}
		if statsPort, err = freePort(); err != nil {
			break
		}
		n.Addr = fmt.Sprintf("127.0.0.1:%d", n.Port)
		n.StatsAddr = fmt.Sprintf("127.0.0.1:%d", statsPort)
		if err = os.WriteFile(n.ConfPath, []byte(opts.render(n.Addr, n.Servers)), 0o644); err != nil {
			break
		}
		if err = n.start(statsPort, opts.RedisAuth); err == nil || !isBindErr(err) {
			break
		}
	}
	if err != nil {
		t.Fatalf("StartNutcracker: %v", err)
	}
	return n
}

func (o NutcrackerOptions) render(listen string, servers []string) string {
	hash, dist := o.Hash, o.Distribution
	if hash == "" {
		hash = "fnv1a_64"
	}
	if dist == "" {
		dist = "ketama"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pool:\n  listen: %s\n  hash: %s\n  distribution: %s\n  redis: true\n  auto_eject_hosts: false\n", listen, hash, dist)
	if o.HashTag != "" {
		fmt.Fprintf(&b, "  hash_tag: %s\n", strconv.Quote(o.HashTag))
	}
	if o.RedisAuth != "" {
		fmt.Fprintf(&b, "  redis_auth: %s\n", strconv.Quote(o.RedisAuth))
	}
	for _, l := range o.Extra {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	b.WriteString("  servers:\n")
	for _, s := range servers {
		fmt.Fprintf(&b, "   - %s\n", s)
	}
	return b.String()
}

func (n *Nutcracker) start(statsPort int, auth string) error {
	p, err := startProc("nutcracker "+n.Addr, "nutcracker", n.LogPath,
		"-c", n.ConfPath, "-s", strconv.Itoa(statsPort), "-a", "127.0.0.1", "-o", n.LogPath,
		"-p", filepath.Join(n.Dir, "nutcracker.pid"))
	if err != nil {
		return err
	}
	ready := func(ctx context.Context) error {
		c, err := (radix.Dialer{AuthPass: auth}).Dial(ctx, "tcp", n.Addr)
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Do(ctx, radix.Cmd(nil, "PING"))
	}
	if err := waitReady(p, n.LogPath, startTimeout, ready); err != nil {
		p.signal(syscall.SIGKILL, 0)
		return err
	}
	n.mu.Lock()
	n.p = p
	n.mu.Unlock()
	return nil
}

// Kill sends SIGKILL to nutcracker and waits until it is reaped.
func (n *Nutcracker) Kill() {
	n.mu.Lock()
	p := n.p
	n.p = nil
	n.mu.Unlock()
	if p != nil {
		p.signal(syscall.SIGKILL, 0)
	}
}
