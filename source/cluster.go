package source

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mediocregopher/radix/v4"
	"github.com/mediocregopher/radix/v4/resp/resp3"
	"go.uber.org/zap"

	"github.com/rmt-project/rmt/internal/shard"
	"github.com/rmt-project/rmt/internal/topology"
)

// A `redis cluster` source: one replica node per master that serves slots, found from the first
// seed that answers CLUSTER NODES; each keeps only the keys of the slots it serves or imports
// (filter.go). The slot map is read again every clusterWatchInterval, and at once when a
// master's stream writes a key of a slot the map does not give it (a master accepts a write
// only for a slot it serves or imports, so the map is stale: a reshard), unless the command is
// the expiry of a stray key, which then stays dropped. Such reads are limited to one per slot per
// missGap and one per missFloor in all, so a flood of stray expiries cannot stall the stream.
//
// A failover is followed: a new master that serves every slot of a followed master that serves
// none any more (its replica, promoted) takes over that master's node, whose link moves to it
// and asks the same replid and offset, which a promoted replica grants from its replid2. A
// master added later and given slots by a reshard is not followed (ordering two masters'
// streams during a reshard is unsolved): it is counted (NotFollowed) and logged.

const (
	clusterWatchInterval = 5 * time.Second
	missGap              = time.Second
	missFloor            = 10 * time.Millisecond
)

// clusterMaster is one followed master: its node and its ownership.
type clusterMaster struct {
	node followingNode // nil for a master no node follows
	own  *ownership
}

// followingNode is a node that can follow its master to another address (a failover): a
// replica node, a scan node.
type followingNode interface {
	Node
	follow(addr string)
	linkAddr() string               // the node it reads from now (prefer_replica: a replica)
	followIfMoved(addr string) bool // follow addr unless already there; whether it moved
}

// clusterView is a cluster source's slot map as rmtd last saw it, shared by its nodes.
type clusterView struct {
	dial   radix.Dialer
	limit  time.Duration // per slot-map read
	log    *zap.Logger
	prefer bool // source.prefer_replica: links go to a replica of each master (prefer.go)

	mu     sync.Mutex
	byAddr map[string]*clusterMaster // by the master's current address
	order  []string                  // masters to ask, in discovery order
	// lastMiss and checked rate-limit the reads made for a miss (refreshForMiss).
	lastMiss time.Time
	checked  map[int]time.Time // slot → when a miss on it last read the map

	// unfollowed is NotFollowed's answer, kept by apply: INFO must not wait for mu, which a
	// refresh holds while it dials (a dead master's host can take its whole timeout).
	unfollowed atomic.Int64
}

// openCluster discovers the masters from the seeds and makes a replica node of each.
func openCluster(ctx context.Context, c Config) (*Source, error) {
	hosts := c.hostTurns()
	return openClusterNodes(ctx, c, func(ms topology.Master, own *ownership, filter func(db int) Filter) followingNode {
		n := newReplicaNode(ms.Addr, c.linkOptions(ms.Addr), hosts, filter)
		n.follows, n.own = true, own
		if c.PreferReplica {
			n.opts.Addr = replicaLink(ms, "")
			c.Logger.Info("prefer_replica: the master's node links to its replica", zap.String("master", ms.Addr),
				zap.String("link", n.opts.Addr))
		}
		return n
	})
}

// openClusterNodes discovers the masters from the seeds and makes a node of each with newNode.
func openClusterNodes(ctx context.Context, c Config, newNode func(ms topology.Master, own *ownership, filter func(db int) Filter) followingNode) (*Source, error) {
	v := &clusterView{dial: c.Dialer, limit: min(max(c.Link.Timeout, time.Second), 10*time.Second),
		log: c.Logger.Named("cluster-source"), byAddr: map[string]*clusterMaster{}, checked: map[int]time.Time{},
		prefer: c.PreferReplica}
	m, err := v.discover(ctx, c.Servers)
	if err != nil {
		return nil, err
	}
	masters := m.Serving()
	sortByFirstSlot(masters)
	s := &Source{watch: v.watch, unfollowed: func() int { return int(v.unfollowed.Load()) }}
	several := len(masters) > 1
	var desc []string
	for _, ms := range masters {
		own := &ownership{log: c.Logger.With(zap.String("node", ms.Addr))}
		own.set(slotOwner(ms.SlotSet(true)))
		addr := ms.Addr
		own.stale = func(slot int) bool { return v.refreshForMiss(addr, slot) }
		n := newNode(ms, own, func(db int) Filter {
			return &streamFilter{own: own, several: several, db: db, log: own.log}
		})
		v.byAddr[ms.Addr] = &clusterMaster{node: n, own: own}
		v.order = append(v.order, ms.Addr)
		s.Nodes = append(s.Nodes, n)
		set := ms.SlotSet(true)
		desc = append(desc, ms.Addr+":"+set.String())
	}
	c.Logger.Info("redis cluster source", zap.Int("masters", len(masters)), zap.String("slots", strings.Join(desc, " ")))
	return s, nil
}

// sortByFirstSlot orders masters by the first slot they serve: the order common.shard counts in.
func sortByFirstSlot(ms []topology.Master) {
	first := func(m topology.Master) int {
		s := m.SlotSet(false)
		for i := range topology.SlotCount {
			if s.Has(i) {
				return i
			}
		}
		return topology.SlotCount
	}
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && first(ms[j]) < first(ms[j-1]); j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

// slotOwner is a cluster master's slots.
type slotOwner topology.SlotSet

func (o slotOwner) owns(_ int, key []byte) bool {
	s := topology.SlotSet(o)
	return s.Has(shard.Slot(key))
}

// discover asks the seeds in turn for CLUSTER NODES; every slot must be served.
func (v *clusterView) discover(ctx context.Context, seeds []string) (*topology.Map, error) {
	var lastErr error
	for _, seed := range seeds {
		m, err := v.nodesOf(ctx, seed)
		if err == nil {
			if slot := m.Unserved(); slot >= 0 {
				return nil, fmt.Errorf("redis cluster source %s: slot %d is not served by any master", seed, slot)
			}
			return m, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("redis cluster source: no seed of %s gave its slot map: %w", strings.Join(seeds, ","), lastErr)
}

// nodesOf asks one node for the slot map: CLUSTER NODES, or where a service refuses it,
// CLUSTER SHARDS (7.0+), then CLUSTER SLOTS.
func (v *clusterView) nodesOf(ctx context.Context, addr string) (*topology.Map, error) {
	ctx, cancel := context.WithTimeout(ctx, v.limit)
	defer cancel()
	c, err := v.dial.Dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	defer c.Close()
	return clusterMap(ctx, c, addr)
}

// clusterMap asks c, a connection to addr, for the slot map: CLUSTER NODES, CLUSTER SHARDS,
// CLUSTER SLOTS, each tried when the one before is refused (an error reply).
func clusterMap(ctx context.Context, c radix.Conn, addr string) (*topology.Map, error) {
	host, _, _ := net.SplitHostPort(addr)
	o := topology.Options{DefaultHost: host}
	var text string
	err := c.Do(ctx, radix.Cmd(&text, "CLUSTER", "NODES"))
	if err == nil {
		m, err := topology.ParseNodes([]byte(text), o)
		if err != nil {
			return nil, fmt.Errorf("%s: CLUSTER NODES: %w", addr, err)
		}
		return m, nil
	}
	var refused resp3.SimpleError
	if !errors.As(err, &refused) {
		return nil, fmt.Errorf("%s: CLUSTER NODES: %w", addr, err)
	}
	errs := []error{fmt.Errorf("CLUSTER NODES: %w", err)}
	for _, sub := range []string{"SHARDS", "SLOTS"} {
		var reply []any
		err := c.Do(ctx, radix.Cmd(&reply, "CLUSTER", sub))
		if errors.As(err, &refused) {
			errs = append(errs, fmt.Errorf("CLUSTER %s: %w", sub, err))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: CLUSTER %s: %w", addr, sub, err)
		}
		parse := topology.ParseShards
		if sub == "SLOTS" {
			parse = topology.ParseSlots
		}
		m, err := parse(reply, o)
		if err != nil {
			return nil, fmt.Errorf("%s: CLUSTER %s: %w", addr, sub, err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("%s: the slot map is refused: %w", addr, errors.Join(errs...))
}

// watch reads the slot map every clusterWatchInterval until ctx ends.
func (v *clusterView) watch(ctx context.Context) {
	t := time.NewTicker(clusterWatchInterval)
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

// refreshForMiss reads the slot map again, asking addr first, after addr's stream wrote a key
// of slot that the map does not give it; unless a miss on slot did so less than missGap ago, or
// any miss less than missFloor ago. It reports whether it did.
func (v *clusterView) refreshForMiss(addr string, slot int) bool {
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
// A map with a slot nobody serves (between a master's failure and its replica's promotion) is
// not installed.
func (v *clusterView) refreshLocked(ctx context.Context, first string) error {
	addrs := v.order
	if m, ok := v.byAddr[first]; ok && m.node != nil {
		addrs = append([]string{first}, addrs...)
	}
	var err error
	for _, a := range addrs {
		var m *topology.Map
		if m, err = v.nodesOf(ctx, a); err != nil {
			continue
		}
		if slot := m.Unserved(); slot >= 0 {
			return fmt.Errorf("%s: slot %d is not served by any master", a, slot)
		}
		v.applyLocked(m.Serving())
		return nil
	}
	return err
}

// applyLocked installs a new slot map on the known masters and logs what changed.
func (v *clusterView) applyLocked(masters []topology.Master) {
	v.followFailoversLocked(masters)
	if v.prefer {
		for _, ms := range masters {
			if m, ok := v.byAddr[ms.Addr]; ok && m.node != nil {
				if to := replicaLink(ms, m.node.linkAddr()); m.node.followIfMoved(to) {
					v.log.Warn("prefer_replica: the link moves to another node of its master", zap.String("master", ms.Addr),
						zap.String("link", to))
				}
			}
		}
	}
	seen := map[string]bool{}
	for _, ms := range masters {
		seen[ms.Addr] = true
		slots := ms.SlotSet(true)
		m, ok := v.byAddr[ms.Addr]
		if !ok {
			m = &clusterMaster{own: &ownership{log: v.log}} // never a node
			m.own.set(slotOwner{})
			v.byAddr[ms.Addr] = m
		}
		old := topology.SlotSet(m.own.get().(slotOwner))
		if old == slots {
			continue
		}
		if m.node == nil {
			if !slots.Empty() {
				v.log.Error("a source master rmtd does not follow serves slots: their keys are NOT migrated until rmtd restarts",
					zap.String("master", ms.Addr), zap.String("slots", slots.String()))
			}
		} else {
			v.log.Warn("the source cluster's slot map changed: ownership of this master updated (a reshard of the source during a migration is not fully supported)",
				zap.String("master", ms.Addr), zap.String("was", old.String()), zap.String("now", slots.String()))
		}
		m.own.set(slotOwner(slots))
	}
	for addr, m := range v.byAddr {
		if seen[addr] {
			continue
		}
		if old := topology.SlotSet(m.own.get().(slotOwner)); !old.Empty() {
			if m.node != nil {
				v.log.Warn("a source master no longer serves slots", zap.String("master", addr), zap.String("was", old.String()))
			}
			m.own.set(slotOwner{})
		}
	}
	n := 0
	for _, m := range v.byAddr {
		if s := topology.SlotSet(m.own.get().(slotOwner)); m.node == nil && !s.Empty() {
			n++
		}
	}
	v.unfollowed.Store(int64(n))
}

// followFailoversLocked finds the masters that replaced a followed one: a new master serving
// every slot of a followed master that serves none now, as a replica promoted by a failover
// does. The followed master's node goes on with it.
func (v *clusterView) followFailoversLocked(masters []topology.Master) {
	served := make(map[string]topology.SlotSet, len(masters))
	for _, ms := range masters {
		served[ms.Addr] = ms.SlotSet(false)
	}
	for _, ms := range masters {
		slots := ms.SlotSet(true)
		if m, ok := v.byAddr[ms.Addr]; slots.Empty() || ok && m.node != nil {
			continue
		}
		var from string
		candidates := 0
		for addr, m := range v.byAddr {
			if s, ok := served[addr]; m.node == nil || ok && !s.Empty() {
				continue
			}
			if old := topology.SlotSet(m.own.get().(slotOwner)); !old.Empty() && old.SubsetOf(&slots) {
				from = addr
				candidates++
			}
		}
		if candidates != 1 {
			continue
		}
		m := v.byAddr[from]
		v.log.Warn("a source master was replaced (failover): its node follows the master that took its slots",
			zap.String("master", from), zap.String("now", ms.Addr), zap.String("slots", slots.String()))
		delete(v.byAddr, from)
		v.byAddr[ms.Addr] = m
		for i, a := range v.order {
			if a == from {
				v.order[i] = ms.Addr
			}
		}
		if v.prefer {
			m.node.followIfMoved(replicaLink(ms, m.node.linkAddr()))
			continue
		}
		m.node.follow(ms.Addr)
	}
}
