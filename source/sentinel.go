package source

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/internal/topology"
)

// A `sentinel` source: one replica node for the master that the Sentinels (Config.Servers)
// know as Config.MasterName. Its name is the master's name, which no failover changes: its
// directory, its checkpoint and its INFO line stay the same while its link moves. The
// Sentinels are watched (topology.Sentinels.Watch: +switch-master, and a look-up every
// sentinelWatchInterval): when the master moves, the link follows it and asks PSYNC with the
// replid and offset it had, which the promoted replica grants from its replid2 (a partial
// resync, no second snapshot). A failover during the snapshot ends that transfer; the link
// then gets its snapshot from the new master.
//
// With PreferReplica the link goes to a replica of the master instead (chained replication:
// the master never forks for rmtd), picked among the replicas the Sentinels list as healthy
// and linked to the master; it moves to another replica, or to the master if there is none,
// when that replica fails or replicates from another master than the Sentinels' one.

const sentinelWatchInterval = 5 * time.Second

// KindSentinel is a Sentinel-managed master.
const KindSentinel = "sentinel"

// sentinelTopology is the topology.Sentinels of c, reaching the Sentinels and the data nodes
// with the links' TLS.
func (c Config) sentinelTopology() (*topology.Sentinels, error) {
	timeout := min(max(c.Link.Timeout, time.Second), 10*time.Second)
	return topology.NewSentinels(topology.SentinelConfig{
		MasterName: c.MasterName, Sentinels: c.Servers,
		Username: c.SentinelUser, Password: c.SentinelPass,
		Dial:         topology.TLSDial(timeout, c.Link.TLS),
		DataUsername: c.Link.Username, DataPassword: c.Link.Password,
		Timeout: timeout,
	})
}

// sentinelSource is what the watch of a sentinel source holds.
type sentinelSource struct {
	sn     *topology.Sentinels
	node   followingNode
	prefer bool
	log    *zap.Logger
	master string // where the Sentinels said the master is, last time (watch goroutine only)
}

func openSentinel(ctx context.Context, c Config) (*Source, error) {
	hosts := c.hostTurns()
	return openSentinelNode(ctx, c, func(name, addr string) followingNode {
		n := newReplicaNode(name, c.linkOptions(name), hosts, nil)
		n.opts.Addr = addr
		return n
	})
}

// openScanSentinel is a sentinel source read by SCAN: its node reads the master of now (or,
// with PreferReplica, a replica of it), and follows it as the replica node does.
func openScanSentinel(live bool) func(context.Context, Config) (*Source, error) {
	return func(ctx context.Context, c Config) (*Source, error) {
		return openSentinelNode(ctx, c, func(name, addr string) followingNode {
			return newScanNode(name, addr, c, live, nil)
		})
	}
}

// openSentinelNode finds the master through the Sentinels and makes the node that reads it
// (at addr: the master, or with PreferReplica a replica of it), named after the master.
func openSentinelNode(ctx context.Context, c Config, newNode func(name, addr string) followingNode) (*Source, error) {
	sn, err := c.sentinelTopology()
	if err != nil {
		return nil, fmt.Errorf("sentinel source: %w", err)
	}
	master, err := sn.Master(ctx)
	if err != nil {
		return nil, fmt.Errorf("sentinel source: %w", err)
	}
	name := c.MasterName
	ss := &sentinelSource{sn: sn, prefer: c.PreferReplica, master: master,
		log: c.Logger.Named("sentinel-source").With(zap.String("master_name", name))}
	link := master
	if c.PreferReplica {
		link = ss.pickReplica(ctx, master, "")
	}
	ss.node = newNode(name, link)
	ss.log.Info("sentinel source", zap.String("master", master), zap.String("link", link),
		zap.Strings("sentinels", sn.Addrs()))
	return &Source{Nodes: []Node{ss.node}, watch: ss.watch}, nil
}

// watch follows the master until ctx ends; with PreferReplica it also checks the replica in
// use every sentinelWatchInterval.
func (ss *sentinelSource) watch(ctx context.Context) {
	moved := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ss.sn.Watch(ctx, ss.master, sentinelWatchInterval, func(addr string) {
			select {
			case moved <- addr:
			case <-ctx.Done():
			}
		})
	}()
	defer func() { <-done }()
	t := time.NewTicker(sentinelWatchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case addr := <-moved:
			ss.log.Warn("the Sentinels report a failover: following the new master", zap.String("was", ss.master),
				zap.String("now", addr))
			ss.master = addr
			ss.relink(ctx)
		case <-t.C:
			if ss.prefer {
				ss.relink(ctx)
			}
		}
	}
}

// relink moves the link where it should be now: the master, or with PreferReplica a healthy
// replica of it (the one in use if it still is).
func (ss *sentinelSource) relink(ctx context.Context) {
	to := ss.master
	if ss.prefer {
		to = ss.pickReplica(ctx, ss.master, ss.node.linkAddr())
	}
	ss.node.followIfMoved(to)
}

// pickReplica returns a replica to link to for master: keep when it is still a healthy
// replica of master (or master itself), else the healthy replica with the highest offset, else
// master. rmtd processes (which Sentinels list as replicas too) are never picked.
func (ss *sentinelSource) pickReplica(ctx context.Context, master, keep string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	reps, err := ss.sn.Replicas(ctx)
	if err != nil {
		ss.log.Warn("prefer_replica: the Sentinels did not list the replicas; linking to the master", zap.Error(err))
		return master
	}
	var ok []topology.Replica
	for _, r := range reps {
		if r.Healthy() && r.MasterAddr == master {
			ok = append(ok, r)
		}
	}
	if keep == master || slices.ContainsFunc(ok, func(r topology.Replica) bool { return r.Addr == keep }) {
		return keep
	}
	slices.SortFunc(ok, func(a, b topology.Replica) int {
		return cmp.Or(cmp.Compare(b.Offset, a.Offset), strings.Compare(a.Addr, b.Addr))
	})
	for _, r := range ok {
		if isRedis(ctx, ss.sn, r.Addr) {
			return r.Addr
		}
	}
	ss.log.Warn("prefer_replica: no healthy replica of the master; linking to the master", zap.String("master", master))
	return master
}

// isRedis reports whether addr is a Redis (or Valkey) server, not another rmtd: rmtd answers
// as a replica too, but has no redis_version.
func isRedis(ctx context.Context, sn *topology.Sentinels, addr string) bool {
	info, err := sn.Info(ctx, addr, "server")
	return err == nil && strings.Contains("\n"+info, "\nredis_version:")
}

// followIfMoved makes the link replicate from addr, unless it already does; it reports
// whether it moved.
func (n *replicaNode) followIfMoved(addr string) bool {
	if n.linkAddr() == addr {
		return false
	}
	n.follow(addr)
	return true
}
