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
	Name         string   // the pool's name in the config; "" = "pool" ("pool<i>" after the first)
	Backends     []*Redis // servers of the pool, in this order...
	Addrs        []string // ...followed by these "host:port" ones (or unix socket paths)
	Names        []string // server names ("host:port:weight name"); empty: none
	Weights      []int    // per server; empty: 1 each
	Hash         string   // default fnv1a_64
	Distribution string   // default ketama
	HashTag      string   // e.g. "{}"; empty: none
	RedisAuth    string   // redis_auth: password of the backends and of the proxy
	Extra        []string // more pool lines, e.g. "timeout: 400"
}

// Nutcracker is one nutcracker (twemproxy) process started by StartNutcracker or
// StartNutcrackerPools. Addr, Port and Servers are those of its first pool.
type Nutcracker struct {
	Addr      string // the pool's listen address
	Port      int
	StatsAddr string // its stats port (JSON on connect)
	Dir       string
	LogPath   string
	ConfPath  string
	Servers   []string         // the "host:port:weight [name]" lines, in config order
	Pools     []NutcrackerPool // every pool, in the order given

	mu sync.Mutex
	p  *proc
}

// NutcrackerPool is one pool of a running nutcracker.
type NutcrackerPool struct {
	Name    string
	Addr    string // its listen address
	Port    int
	Servers []string // the "host:port:weight [name]" lines, in config order

	auth string // its redis_auth, for the readiness check
}

// StartNutcracker writes a pool config into a temp dir and starts nutcracker on a free loopback
// port (stats on another), returning once it answers PING. It is killed when the test ends. A
// missing nutcracker fails the test (run `make deps`).
func StartNutcracker(t testing.TB, opts NutcrackerOptions) *Nutcracker {
	t.Helper()
	return StartNutcrackerPools(t, opts)
}

// StartNutcrackerPools is StartNutcracker for one nutcracker serving several pools, each on its
// own free port, returning once every pool answers PING.
func StartNutcrackerPools(t testing.TB, pools ...NutcrackerOptions) *Nutcracker {
	t.Helper()
	if len(pools) == 0 {
		t.Fatalf("StartNutcracker: no pool")
	}
	bin := NeedBinary(t, "nutcracker")
	dir := t.TempDir()
	n := &Nutcracker{Dir: dir, LogPath: filepath.Join(dir, "nutcracker.log"), ConfPath: filepath.Join(dir, "nutcracker.yml"),
		Pools: make([]NutcrackerPool, len(pools))}
	for i, o := range pools {
		servers, err := o.servers()
		if err != nil {
			t.Fatalf("StartNutcracker: pool %d: %v", i, err)
		}
		name := o.Name
		switch {
		case name != "":
		case i == 0:
			name = "pool"
		default:
			name = fmt.Sprintf("pool%d", i)
		}
		n.Pools[i] = NutcrackerPool{Name: name, Servers: servers, auth: o.RedisAuth}
	}
	n.Servers = n.Pools[0].Servers
	printLogOnFailure(t, "nutcracker", func() string { return n.LogPath })
	t.Cleanup(n.Kill)
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var ports []int // the pools', then the stats port
		if ports, err = freePorts(len(pools) + 1); err != nil {
			break
		}
		var conf strings.Builder
		for i := range n.Pools {
			p := &n.Pools[i]
			p.Port = ports[i]
			p.Addr = fmt.Sprintf("127.0.0.1:%d", p.Port)
			conf.WriteString(pools[i].render(p.Name, p.Addr, p.Servers))
		}
		n.Addr, n.Port = n.Pools[0].Addr, n.Pools[0].Port
		statsPort := ports[len(pools)]
		n.StatsAddr = fmt.Sprintf("127.0.0.1:%d", statsPort)
		if err = os.WriteFile(n.ConfPath, []byte(conf.String()), 0o644); err != nil {
			break
		}
		if err = n.start(bin, statsPort); err == nil || !isBindErr(err) {
			break
		}
	}
	if err != nil {
		t.Fatalf("StartNutcracker: %v", err)
	}
	return n
}

// servers returns the pool's server lines.
func (o NutcrackerOptions) servers() ([]string, error) {
	addrs := make([]string, 0, len(o.Backends)+len(o.Addrs))
	for _, b := range o.Backends {
		addrs = append(addrs, b.Addr)
	}
	addrs = append(addrs, o.Addrs...)
	if len(addrs) == 0 {
		return nil, fmt.Errorf("no servers")
	}
	var lines []string
	for i, a := range addrs {
		w := 1
		if i < len(o.Weights) {
			w = o.Weights[i]
		}
		line := fmt.Sprintf("%s:%d", a, w)
		if i < len(o.Names) && o.Names[i] != "" {
			line += " " + o.Names[i]
		}
		lines = append(lines, line)
	}
	return lines, nil
}

// render is the pool's part of the config file.
func (o NutcrackerOptions) render(name, listen string, servers []string) string {
	hash, dist := o.Hash, o.Distribution
	if hash == "" {
		hash = "fnv1a_64"
	}
	if dist == "" {
		dist = "ketama"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n  listen: %s\n  hash: %s\n  distribution: %s\n  redis: true\n  auto_eject_hosts: false\n", name, listen, hash, dist)
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

// start runs bin with the config file and waits until every pool answers PING.
func (n *Nutcracker) start(bin string, statsPort int) error {
	p, err := startProc("nutcracker "+n.Addr, bin, n.LogPath,
		"-c", n.ConfPath, "-s", strconv.Itoa(statsPort), "-a", "127.0.0.1", "-o", n.LogPath,
		"-p", filepath.Join(n.Dir, "nutcracker.pid"))
	if err != nil {
		return err
	}
	ready := func(ctx context.Context) error {
		for _, pool := range n.Pools {
			if err := pingPool(ctx, pool); err != nil {
				return fmt.Errorf("pool %s on %s: %w", pool.Name, pool.Addr, err)
			}
		}
		return nil
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

func pingPool(ctx context.Context, pool NutcrackerPool) error {
	c, err := (radix.Dialer{AuthPass: pool.auth}).Dial(ctx, "tcp", pool.Addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Do(ctx, radix.Cmd(nil, "PING"))
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
