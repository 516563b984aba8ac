package verify

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mediocregopher/radix/v4"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/confpool"
	"github.com/rmt-project/rmt/internal/redisctl"
)

// nodeSet is one side (source or target) of a -C job: the Redis servers that hold the data and
// the rule that maps a key to the server holding it. Only `single` exists today; cluster and
// twemproxy sets plug in by filling nodes and route.
type nodeSet struct {
	side  string // "source" or "target", for errors and logs
	kind  string // conf.Type*
	nodes []*cmdNode
	route func(key string) *cmdNode
}

// cmdNode is one Redis server of a nodeSet, with one small connection pool per db it was used in.
type cmdNode struct {
	addr     string
	side     string
	dialer   radix.Dialer
	timeout  time.Duration // per command; 0: only the context's deadline
	poolSize int

	mu    sync.Mutex
	pools map[int]radix.Client

	version [3]int // from INFO server; {0,0,0} when unknown
}

// openNodeSet connects to every server of pool p (one connection in db 0, to learn the
// version). poolSize is the number of connections opened per db on first use.
func openNodeSet(ctx context.Context, side string, p conf.Pool, poolSize int) (*nodeSet, error) {
	if err := checkNodeSetPool(side, p); err != nil {
		return nil, err
	}
	d, err := confpool.Dialer(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", side, err)
	}
	if poolSize < 1 {
		poolSize = 1
	}
	newNode := func(addr string) *cmdNode {
		return &cmdNode{addr: addr, side: side, dialer: d, timeout: p.Timeout, poolSize: poolSize,
			pools: map[int]radix.Client{}}
	}
	s := &nodeSet{side: side, kind: p.Type}
	switch p.Type {
	case conf.TypeRedisCluster:
		if err := s.discoverCluster(ctx, p.Servers, newNode); err != nil {
			return nil, err
		}
	case conf.TypeTwemproxy:
		if err := s.openTwemproxy(p, newNode); err != nil {
			return nil, err
		}
	case conf.TypeSentinel:
		addr, err := sentinelMaster(ctx, side, p)
		if err != nil {
			return nil, err
		}
		n := newNode(addr)
		s.nodes = []*cmdNode{n}
		s.route = func(string) *cmdNode { return n }
	default:
		n := newNode(serverAddr(p.Servers[0]))
		s.nodes = []*cmdNode{n}
		s.route = func(string) *cmdNode { return n }
	}
	for _, n := range s.nodes {
		if err := n.loadVersion(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// checkNodeSetPool says whether openNodeSet can serve pool p, without connecting.
func checkNodeSetPool(side string, p conf.Pool) error {
	switch p.Type {
	case conf.TypeSingle:
		if len(p.Servers) != 1 {
			return fmt.Errorf("%s: type %q wants exactly one server, got %d", side, p.Type, len(p.Servers))
		}
	case conf.TypeRedisCluster:
		if len(p.Servers) == 0 {
			return fmt.Errorf("%s: type %q wants at least one server", side, p.Type)
		}
	case conf.TypeTwemproxy:
		if _, err := twemproxyPool(side, p); err != nil {
			return err
		}
	case conf.TypeSentinel:
		if len(p.Servers) == 0 || p.MasterName == "" {
			return fmt.Errorf("%s: type %q wants its Sentinels and master_name", side, p.Type)
		}
	case "":
		return fmt.Errorf("%s: pool type is empty", side)
	default:
		return fmt.Errorf("%s: type %q is not supported by this job yet (only %q, %q, %q and %q)", side, p.Type,
			conf.TypeSingle, conf.TypeRedisCluster, conf.TypeTwemproxy, conf.TypeSentinel)
	}
	return nil
}

// dbFor maps a source db to the db the set keeps it in: a cluster or a twemproxy pool has only
// db 0.
func (s *nodeSet) dbFor(db int) int {
	if s.kind == conf.TypeRedisCluster || s.kind == conf.TypeTwemproxy {
		return 0
	}
	return db
}

// serverAddr strips what twemproxy-style server lines carry after host:port (":weight name").
func serverAddr(server string) string {
	f := strings.Fields(server)
	if len(f) == 0 {
		return server
	}
	addr := f[0]
	if _, _, err := net.SplitHostPort(addr); err != nil {
		if i := strings.LastIndexByte(addr, ':'); i > 0 {
			if _, _, err := net.SplitHostPort(addr[:i]); err == nil {
				return addr[:i]
			}
		}
	}
	return addr
}

// nodeFor returns the server that holds key.
func (s *nodeSet) nodeFor(key string) *cmdNode { return s.route(key) }

// Close closes every connection of the set.
func (s *nodeSet) Close() {
	for _, n := range s.nodes {
		n.close()
	}
}

func (n *cmdNode) String() string { return n.side + " " + n.addr }

// client returns the pool of connections selected to db, dialing it on first use.
func (n *cmdNode) client(ctx context.Context, db int) (radix.Client, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c, ok := n.pools[db]; ok {
		return c, nil
	}
	d := n.dialer
	if db != 0 {
		d.SelectDB = strconv.Itoa(db)
	}
	c, err := (radix.PoolConfig{Dialer: d, Size: n.poolSize}).New(ctx, "tcp", n.addr)
	if err != nil {
		return nil, fmt.Errorf("%s: connect (db %d): %w", n, db, err)
	}
	n.pools[db] = c
	return c, nil
}

// do runs a on a connection selected to db, within the node's per-command timeout.
func (n *cmdNode) do(ctx context.Context, db int, a radix.Action) error {
	c, err := n.client(ctx, db)
	if err != nil {
		return err
	}
	if n.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.timeout)
		defer cancel()
	}
	return c.Do(ctx, a)
}

func (n *cmdNode) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for db, c := range n.pools {
		_ = c.Close()
		delete(n.pools, db)
	}
}

// loadVersion reads redis_version from INFO server.
func (n *cmdNode) loadVersion(ctx context.Context) error {
	var info string
	if err := n.do(ctx, 0, radix.Cmd(&info, "INFO", "server")); err != nil {
		return fmt.Errorf("%s: INFO server: %w", n, err)
	}
	v, ok := redisctl.InfoField(info, "redis_version")
	if !ok {
		return nil // unknown: the newest commands will be tried and errors reported per key
	}
	n.version = parseVersion(v)
	return nil
}

// atLeast reports whether the node runs at least version major.minor (unknown counts as new).
func (n *cmdNode) atLeast(major, minor int) bool {
	if n.version == [3]int{} {
		return true
	}
	return n.version[0] > major || n.version[0] == major && n.version[1] >= minor
}

// keyspace reads INFO keyspace: the number of keys of every db that has any.
func (n *cmdNode) keyspace(ctx context.Context) (map[int]int64, error) {
	var info string
	if err := n.do(ctx, 0, radix.Cmd(&info, "INFO", "keyspace")); err != nil {
		return nil, fmt.Errorf("%s: INFO keyspace: %w", n, err)
	}
	return redisctl.ParseKeyspace(info)
}

// parseVersion turns "7.0.15" into {7,0,15}; missing or bad parts are 0.
func parseVersion(s string) [3]int {
	var v [3]int
	for i, p := range strings.SplitN(s, ".", 3) {
		n, err := strconv.Atoi(p)
		if err != nil {
			break
		}
		v[i] = n
	}
	return v
}

// apportion splits n between buckets in proportion to their sizes (largest remainder), never
// giving a bucket more than its size. When the sizes add up to n or less, every bucket gets its
// size.
func apportion(n int, sizes []int64) []int {
	out := make([]int, len(sizes))
	if n <= 0 {
		return out
	}
	var total int64
	for _, s := range sizes {
		if s > 0 {
			total += s
		}
	}
	if total <= int64(n) {
		for i, s := range sizes {
			if s > 0 {
				out[i] = int(s)
			}
		}
		return out
	}
	// total > n: the floors never exceed a size, and at most len(sizes) units are left, each
	// going to a different bucket whose share had a remainder (so it has room).
	type rem struct {
		i int
		r int64
	}
	rems := make([]rem, 0, len(sizes))
	given := 0
	for i, s := range sizes {
		if s <= 0 {
			continue
		}
		// n*s/total without overflow for realistic sizes: n ≤ 2^31, s ≤ 2^40.
		q := apportionMulDiv(int64(n), s, total)
		out[i] = int(q.quo)
		given += int(q.quo)
		rems = append(rems, rem{i, q.rem})
	}
	for left := n - given; left > 0; left-- {
		best := -1
		for j, r := range rems {
			if r.r > 0 && (best < 0 || r.r > rems[best].r) {
				best = j
			}
		}
		if best < 0 {
			break
		}
		out[rems[best].i]++
		rems[best].r = 0
	}
	return out
}

type apportionQuoRem struct{ quo, rem int64 }

// apportionMulDiv computes a*b/c and its remainder without overflowing when a*b does not fit.
func apportionMulDiv(a, b, c int64) apportionQuoRem {
	if a == 0 || b <= (1<<62)/a {
		p := a * b
		return apportionQuoRem{p / c, p % c}
	}
	// Fall back to float for absurd sizes; the remainder only orders the leftovers.
	f := float64(a) * float64(b) / float64(c)
	q := int64(f)
	return apportionQuoRem{q, int64((f - float64(q)) * float64(c))}
}
