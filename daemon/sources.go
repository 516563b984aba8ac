package daemon

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mediocregopher/radix/v4"
	"go.uber.org/zap"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/redisctl"
	"github.com/rmt-project/rmt/internal/shard"
	"github.com/rmt-project/rmt/source"
)

// A job's source nodes: what Run makes a node job of, for every source type.
//
//   - single: each of source.servers.
//   - redis cluster: every master that serves slots, found from the first of source.servers
//     that answers CLUSTER NODES; each keeps only the keys of the slots it owns (or imports).
//   - twemproxy: each backend ("host:port:weight [name]"); each keeps only the keys the pool's
//     ring places on it (in db 0; see ownership.go).
//   - rdb file, aof file: each file.
//
// Every node shares the job's gates: common.source_safe (one RDB produced at a time per source
// host) and common.threads (RDB loads in parallel).

// sourceNode is one node job's place in the source: its address, the keys it owns, and the gates
// it shares with the other nodes. A nil *sourceNode owns every key and waits for nothing.
type sourceNode struct {
	addr  string // host:port of a master, or a file
	kind  string // conf.Type* of the source
	gates *sourceGates
	alone bool // the job's only source node: its FLUSHALL/FLUSHDB concern the whole target

	owner atomic.Pointer[owner] // nil: every key is this node's
	view  *clusterView          // a cluster source's slot map; nil for other sources
	log   *zap.Logger

	turnMu sync.Mutex
	turn   func() // releases the host gate; nil when not holding it

	dropped atomic.Int64 // keys and commands dropped as not owned, for the log's rate limit

	// notFollowed marks a master that appeared after the start: it has no node job, and its
	// slots (owner) are what rmtd does not migrate.
	notFollowed bool
	// The node job's replica link, once made, and the address a failover moved the master to
	// (followFailoversLocked).
	linkMu  sync.Mutex
	link    *source.Link
	movedTo string
}

// setLink records the node job's link, moved at once if the master already moved.
func (n *sourceNode) setLink(l *source.Link) {
	n.linkMu.Lock()
	n.link = l
	to := n.movedTo
	n.linkMu.Unlock()
	if to != "" {
		l.Follow(to)
	}
}

// moveTo makes the node job's link, now or once made, follow the master at addr.
func (n *sourceNode) moveTo(addr string) {
	n.linkMu.Lock()
	n.movedTo = addr
	l := n.link
	n.linkMu.Unlock()
	if l != nil {
		l.Follow(addr)
	}
}

// sourceNodes lists the job's source nodes. A cluster source is asked for its masters, so
// this does I/O and fails when no seed answers.
func (d *Daemon) sourceNodes(ctx context.Context) ([]*sourceNode, error) {
	cfg := d.cfg
	gates := newSourceGates(cfg.Common.SourceSafe && !conf.IsFile(cfg.Source.Type), cfg.Common.Threads)
	var nodes []*sourceNode
	add := func(addr string, o *owner) {
		n := &sourceNode{addr: addr, kind: cfg.Source.Type, gates: gates, log: d.log.With(zap.String("node", addr))}
		if o != nil {
			n.owner.Store(o)
		}
		nodes = append(nodes, n)
	}
	switch cfg.Source.Type {
	case conf.TypeRedisCluster:
		masters, err := discoverClusterSource(ctx, cfg.Source)
		if err != nil {
			return nil, err
		}
		view := newClusterView(cfg.Source, d.log.Named("cluster-source"))
		for _, m := range masters {
			add(m.addr, &owner{slots: m.slots})
			view.add(nodes[len(nodes)-1])
		}
		d.log.Info("redis cluster source", zap.Int("masters", len(masters)), zap.String("slots", describeMasters(masters)))
	case conf.TypeTwemproxy:
		backends, ring, err := twemproxyBackends(cfg.Source)
		if err != nil {
			return nil, err
		}
		if !ring.Deterministic() {
			d.log.Warn("twemproxy source with distribution random: a key's home cannot be known, every key of every backend is kept")
		}
		for i, b := range backends {
			var o *owner
			if ring.Deterministic() {
				o = &owner{ring: ring, index: i}
			}
			add(b.Addr, o)
		}
	default:
		for _, s := range cfg.Source.Servers {
			add(s, nil)
		}
	}
	if len(nodes) == 1 {
		nodes[0].alone = true
	}
	return nodes, nil
}

// twemproxyBackends parses source.servers as twemproxy's own config lines and builds the pool's
// ring over them, in the same order.
func twemproxyBackends(p conf.Pool) ([]shard.Server, *shard.Ring, error) {
	servers := make([]shard.Server, 0, len(p.Servers))
	seen := map[string]bool{}
	for i, line := range p.Servers {
		s, err := shard.ParseServer(line)
		if err != nil {
			return nil, nil, fmt.Errorf("source.servers[%d] %q: %w", i, line, err)
		}
		if _, _, err := net.SplitHostPort(s.Addr); err != nil {
			return nil, nil, fmt.Errorf("source.servers[%d] %q: a replica link needs host:port: %w", i, line, err)
		}
		if seen[s.Addr] {
			return nil, nil, fmt.Errorf("source.servers[%d] %q: backend %s listed twice", i, line, s.Addr)
		}
		seen[s.Addr] = true
		servers = append(servers, s)
	}
	ring, err := shard.NewRing(servers, p.Hash, p.Distribution, p.HashTag)
	if err != nil {
		return nil, nil, fmt.Errorf("source twemproxy pool: %w", err)
	}
	return servers, ring, nil
}

// clusterMaster is one master of a cluster source and the slots it owns or imports.
type clusterMaster struct {
	addr  string
	id    string
	slots *slotSet
}

// discoverClusterSource asks the seeds in turn for CLUSTER NODES and returns the masters.
func discoverClusterSource(ctx context.Context, p conf.Pool) ([]clusterMaster, error) {
	var lastErr error
	for _, seed := range p.Servers {
		masters, err := clusterNodesOf(ctx, p, seed)
		if err == nil {
			return masters, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("redis cluster source: no seed of %s answered CLUSTER NODES: %w", strings.Join(p.Servers, ","), lastErr)
}

// clusterNodesOf asks one node for CLUSTER NODES.
func clusterNodesOf(ctx context.Context, p conf.Pool, addr string) ([]clusterMaster, error) {
	dialer, err := redisctl.Dialer(p)
	if err != nil {
		return nil, err
	}
	timeout := p.Timeout
	if timeout <= 0 || timeout > 10*time.Second {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := dialer.Dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	defer c.Close()
	var text string
	if err := c.Do(ctx, radix.Cmd(&text, "CLUSTER", "NODES")); err != nil {
		return nil, fmt.Errorf("%s: CLUSTER NODES: %w", addr, err)
	}
	host, _, _ := net.SplitHostPort(addr)
	masters, err := parseClusterNodes(text, host)
	if err != nil {
		return nil, fmt.Errorf("%s: CLUSTER NODES: %w", addr, err)
	}
	return masters, nil
}

// parseClusterNodes reads the masters of a CLUSTER NODES reply, each with the slots it serves
// and those it imports ("[slot-<-id]": keys of a slot being migrated in arrive in its stream by
// RESTORE). Masters that are failed, without address, or serve no slot are left out. An empty
// IP means seedHost (a node that never learned its own address). Every slot must be served.
func parseClusterNodes(text, seedHost string) ([]clusterMaster, error) {
	var masters []clusterMaster
	var served slotSet
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 8 {
			return nil, fmt.Errorf("line %d: %d fields, want at least 8: %q", n+1, len(f), line)
		}
		flags := "," + f[2] + ","
		if !strings.Contains(flags, ",master,") || strings.Contains(flags, ",fail,") ||
			strings.Contains(flags, ",noaddr,") || strings.Contains(flags, ",handshake,") {
			continue
		}
		addr, err := clusterNodeAddr(f[1], seedHost)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		m := clusterMaster{addr: addr, id: f[0], slots: &slotSet{}}
		for _, s := range f[8:] {
			if err := m.slots.addField(s, &served); err != nil {
				return nil, fmt.Errorf("line %d (%s): %w", n+1, addr, err)
			}
		}
		if m.slots.empty() {
			continue
		}
		masters = append(masters, m)
	}
	if slot := served.firstMissing(); slot >= 0 {
		return nil, fmt.Errorf("slot %d is not served by any master", slot)
	}
	return masters, nil
}

// clusterNodeAddr turns "ip:port@cport[,hostname]" into "ip:port".
func clusterNodeAddr(field, seedHost string) (string, error) {
	a, _, _ := strings.Cut(field, "@")
	a, _, _ = strings.Cut(a, ",")
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", field, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return "", fmt.Errorf("address %q: bad port", field)
	}
	if host == "" || host == "?" {
		host = seedHost
	}
	return net.JoinHostPort(host, port), nil
}

// describeMasters is "addr:lo-hi,lo-hi addr:..." for the log.
func describeMasters(masters []clusterMaster) string {
	var b strings.Builder
	for i, m := range masters {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(m.addr)
		b.WriteByte(':')
		b.WriteString(m.slots.String())
	}
	return b.String()
}

// clusterView is a cluster source's slot map as rmtd last saw it, shared by its masters' node
// jobs. It is read again every clusterWatchInterval, and at once when a master's stream writes a
// key of a slot the map does not give it: a master accepts a write only for a slot it serves or
// imports, so the map is stale (a reshard), unless the command is the expiry of a stray key,
// which then stays dropped. Such reads are limited to one per slot per missGap, and one per
// missFloor in all, so a flood of stray expiries cannot stall the stream.
type clusterView struct {
	pool conf.Pool
	log  *zap.Logger

	mu     sync.Mutex
	byAddr map[string]*sourceNode
	order  []string // masters to ask, in discovery order
	last   time.Time
	// lastMiss and checked rate-limit the reads made for a miss (refreshForMiss).
	lastMiss time.Time
	checked  map[int]time.Time // slot → when a miss on it last read the map

	// unfollowed is notFollowed's answer, kept by applyLocked: INFO must not wait for v.mu,
	// which a refresh holds while it dials (a dead master's host can take its whole timeout).
	unfollowed atomic.Int64
}

const (
	missGap   = time.Second
	missFloor = 10 * time.Millisecond
)

func newClusterView(pool conf.Pool, log *zap.Logger) *clusterView {
	return &clusterView{pool: pool, log: log, byAddr: map[string]*sourceNode{}, checked: map[int]time.Time{}}
}

func (v *clusterView) add(n *sourceNode) {
	v.byAddr[n.addr] = n
	v.order = append(v.order, n.addr)
	n.view = v
}

// watchCluster reads a cluster source's slot map every interval until ctx ends.
func (d *Daemon) watchCluster(ctx context.Context, nodes []*sourceNode, interval time.Duration) {
	if len(nodes) == 0 || nodes[0].view == nil {
		return
	}
	v := nodes[0].view
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v.mu.Lock()
		err := v.refreshLocked(ctx, "")
		v.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			v.log.Debug("source slot map not read", zap.Error(err))
		}
	}
}

// refreshForMiss reads the slot map again, asking addr first, after addr's stream wrote a key of
// slot that the map does not give it; unless a miss on slot did so less than missGap ago, or any
// miss less than missFloor ago. It reports whether it did.
func (v *clusterView) refreshForMiss(addr string, slot int) bool {
	if v == nil {
		return false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	now := time.Now()
	if now.Sub(v.checked[slot]) < missGap || now.Sub(v.lastMiss) < missFloor {
		return false
	}
	v.checked[slot], v.lastMiss = now, now
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := v.refreshLocked(ctx, addr); err != nil {
		v.log.Warn("source slot map not read", zap.Error(err))
		return false
	}
	return true
}

// refreshLocked asks first (if any), then every known master, for the slot map and installs it.
func (v *clusterView) refreshLocked(ctx context.Context, first string) error {
	v.last = time.Now()
	addrs := v.order
	if n, ok := v.byAddr[first]; !ok || n.notFollowed {
		first = "" // a master replaced since (a failover): v.order has its successor
	}
	if first != "" {
		addrs = append([]string{first}, addrs...)
	}
	var err error
	for _, a := range addrs {
		var masters []clusterMaster
		if masters, err = clusterNodesOf(ctx, v.pool, a); err == nil {
			v.applyLocked(masters)
			return nil
		}
	}
	return err
}

// applyLocked installs a new slot map on the known masters and logs what changed.
func (v *clusterView) applyLocked(masters []clusterMaster) {
	v.followFailoversLocked(masters)
	seen := map[string]bool{}
	for _, m := range masters {
		seen[m.addr] = true
		n, ok := v.byAddr[m.addr]
		if !ok {
			n = &sourceNode{addr: m.addr, notFollowed: true} // never a node job
			n.owner.Store(&owner{slots: &slotSet{}})
			v.byAddr[m.addr] = n
		}
		old := n.owner.Load()
		if n.notFollowed {
			if !m.slots.empty() && *old.slots != *m.slots {
				v.log.Error("a source master rmtd does not follow serves slots: their keys are NOT migrated until rmtd restarts",
					zap.String("master", m.addr), zap.String("slots", m.slots.String()))
			}
			n.owner.Store(&owner{slots: m.slots})
			continue
		}
		if old == nil || old.slots == nil || *old.slots == *m.slots {
			continue
		}
		v.log.Warn("the source cluster's slot map changed: ownership of this master updated (a reshard of the source during a migration is not fully supported)",
			zap.String("master", m.addr), zap.String("was", old.slots.String()), zap.String("now", m.slots.String()))
		n.owner.Store(&owner{slots: m.slots})
	}
	for addr, n := range v.byAddr {
		if seen[addr] || n.notFollowed {
			if !seen[addr] {
				n.owner.Store(&owner{slots: &slotSet{}})
			}
			continue
		}
		if o := n.owner.Load(); o != nil && o.slots != nil && !o.slots.empty() {
			v.log.Warn("a source master no longer serves slots", zap.String("master", addr),
				zap.String("was", o.slots.String()))
			n.owner.Store(&owner{slots: &slotSet{}})
		}
	}
	v.countNotFollowedLocked()
}

// followFailoversLocked finds the masters that replaced a followed one: a new master serving
// every slot of a followed master that serves none now, as a replica promoted by a failover
// does. The followed master's node job goes on with it: its link follows the new address
// (source.Link.Follow), and a promoted replica grants the partial resync. A failed master is
// left out of the map (parseClusterNodes) and a map with a slot nobody serves is refused, so
// between the failure and the promotion nothing changes here.
func (v *clusterView) followFailoversLocked(masters []clusterMaster) {
	served := make(map[string]*slotSet, len(masters))
	for _, m := range masters {
		served[m.addr] = m.slots
	}
	for _, m := range masters {
		if n, ok := v.byAddr[m.addr]; m.slots.empty() || ok && !n.notFollowed {
			continue
		}
		var from string
		candidates := 0
		for addr, n := range v.byAddr {
			if n.notFollowed || served[addr] != nil && !served[addr].empty() {
				continue
			}
			if o := n.owner.Load(); o != nil && o.slots != nil && !o.slots.empty() && o.slots.subsetOf(m.slots) {
				from = addr
				candidates++
			}
		}
		if candidates != 1 {
			continue
		}
		n := v.byAddr[from]
		v.log.Warn("a source master was replaced (failover): its node job follows the master that took its slots",
			zap.String("master", from), zap.String("now", m.addr), zap.String("slots", m.slots.String()))
		delete(v.byAddr, from)
		v.byAddr[m.addr] = n
		for i, a := range v.order {
			if a == from {
				v.order[i] = m.addr
			}
		}
		n.moveTo(m.addr)
	}
}

// notFollowed counts the masters that serve slots and have no node job: their keys are not
// migrated (INFO errors_source_master_not_followed).
func (v *clusterView) notFollowed() int { return int(v.unfollowed.Load()) }

// countNotFollowedLocked sets what notFollowed returns.
func (v *clusterView) countNotFollowedLocked() {
	n := 0
	for _, m := range v.byAddr {
		if o := m.owner.Load(); m.notFollowed && o != nil && !o.slots.empty() {
			n++
		}
	}
	v.unfollowed.Store(int64(n))
}

// sourceGates are the limits shared by a job's source nodes.
type sourceGates struct {
	perHost bool // common.source_safe
	mu      sync.Mutex
	hosts   map[string]chan struct{} // one token per source host
	loads   chan struct{}            // common.threads tokens for RDB loads
}

func newSourceGates(perHost bool, threads int) *sourceGates {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	return &sourceGates{perHost: perHost, hosts: map[string]chan struct{}{}, loads: make(chan struct{}, threads)}
}

func (g *sourceGates) host(addr string) chan struct{} {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		h = addr
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.hosts[h]
	if c == nil {
		c = make(chan struct{}, 1)
		g.hosts[h] = c
	}
	return c
}

// acquire takes a token of c, or gives up when ctx ends.
func acquire(ctx context.Context, c chan struct{}) (release func(), ok bool) {
	select {
	case c <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-c }) }, true
	case <-ctx.Done():
		return nil, false
	}
}

// waitHostTurn blocks, with common.source_safe, until no other node of this node's host is
// producing an RDB for the job; endHostTurn (on FullSync, Continue, Disconnected, or the end of
// the node job) lets the next one go. It returns false when ctx ended first. The turn is taken
// once, before the link's first connection: a later full sync (after a reconnect) does not wait,
// and a link that fails before its snapshot is whole gives its turn away rather than hold up the
// host's other nodes for as long as its master is unreachable.
func (n *sourceNode) waitHostTurn(ctx context.Context) bool {
	if n == nil || n.gates == nil || !n.gates.perHost {
		return true
	}
	c := n.gates.host(n.addr)
	select {
	case c <- struct{}{}:
	default:
		n.log.Info("source_safe: waiting for another node of this host to finish sending its RDB")
		select {
		case c <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		n.log.Info("source_safe: this node's turn to send its RDB")
	}
	var once sync.Once
	n.turnMu.Lock()
	n.turn = func() { once.Do(func() { <-c }) }
	n.turnMu.Unlock()
	return true
}

// endHostTurn releases the host gate if this node holds it. Safe to call any number of times.
func (n *sourceNode) endHostTurn() {
	if n == nil {
		return
	}
	n.turnMu.Lock()
	turn := n.turn
	n.turn = nil
	n.turnMu.Unlock()
	if turn != nil {
		turn()
	}
}

// waitLoadTurn blocks until fewer than common.threads RDB loads run, and returns the function
// that ends this one's turn.
func (n *sourceNode) waitLoadTurn(ctx context.Context) (func(), error) {
	if n == nil || n.gates == nil {
		return func() {}, nil
	}
	release, ok := acquire(ctx, n.gates.loads)
	if !ok {
		return nil, ctx.Err()
	}
	return release, nil
}

// clusterWatchInterval is how often a cluster source's slot map is compared with the nodes'.
const clusterWatchInterval = 5 * time.Second
