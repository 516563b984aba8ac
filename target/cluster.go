package target

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/internal/shard"
	"github.com/rmt-project/rmt/internal/topology"
)

// ClusterOptions configure a writer to a `redis cluster` target.
type ClusterOptions struct {
	Servers     []string // seed nodes: the first that answers CLUSTER NODES gives the slot map
	NodeOptions          // for every master
}

// SkipCrossSlot counts, in Stats.Skipped, commands over keys of several slots that cannot be
// split (RENAME, SMOVE, *STORE, MSETNX, ... across slots): not applied, logged with their keys.
const SkipCrossSlot = "crossslot"

// Cluster writes to a Redis Cluster: a sharded writer (sharded.go) whose units are the hash
// slots and whose nodes are the masters of the slot map, read with CLUSTER NODES from the seeds
// (or any master met) and again whenever a MOVED says it changed. MOVED and ASK replies are
// followed without reordering a key's commands: every connection is drained, the slot map
// refreshed, and the redirected commands resent in their original order before any later one.
// With NodeOptions.CheckpointKey each slot keeps the source node's position
// (cluster_checkpoint.go): exactly once.
type Cluster struct{ *sharded }

var clusterKind = shardKind{name: "cluster", unit: "slot", units: "slots", crossReason: SkipCrossSlot}

// NewCluster asks the seed nodes for the slot map (CLUSTER NODES) and connects to every master.
// ctx bounds the whole life of the writer.
func NewCluster(ctx context.Context, o ClusterOptions) (*Cluster, error) {
	if len(o.Servers) == 0 {
		return nil, errors.New("target cluster: no servers")
	}
	r := &clusterRouter{seeds: o.Servers, conn: o.Conn, log: o.Logger}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	w, err := newSharded(ctx, clusterKind, r, o.NodeOptions)
	if err != nil {
		return nil, err
	}
	return &Cluster{w}, nil
}

// Masters returns the addresses of the masters in the current slot map, in slot order. It reads
// the writer goroutine's map: call it from that goroutine (or when no call is running).
func (c *Cluster) Masters() []string {
	var out []string
	for _, n := range c.serving() {
		out = append(out, n.addr)
	}
	return out
}

// clusterRouter routes by hash slot over the slot map of CLUSTER NODES.
type clusterRouter struct {
	seeds []string
	conn  Options
	log   *zap.Logger
	ctl   *Conn // control connection for CLUSTER NODES
}

func (r *clusterRouter) unit(key []byte) int { return shard.Slot(key) }

func (r *clusterRouter) redirects() bool { return true }

// checkpointUnits are the slots: a transaction on a cluster node must keep to one slot, so
// each slot keeps its own checkpoint (cluster_checkpoint.go).
func (r *clusterRouter) checkpointUnits() (int, bool) { return shard.SlotCount, true }

func (r *clusterRouter) close() {
	if r.ctl != nil {
		r.ctl.Close()
	}
}

// table reads the slot map with CLUSTER NODES from the control connection, dialing a seed or a
// known master when there is none (or it failed).
func (r *clusterRouter) table(ctx context.Context, known []string) ([]string, error) {
	var text []byte
	var lastErr error
	if r.ctl != nil {
		if text, lastErr = clusterNodes(ctx, r.ctl); text == nil {
			r.ctl.Close()
			r.ctl = nil
		}
	}
	for _, a := range append(append([]string(nil), r.seeds...), known...) {
		if text != nil {
			break
		}
		co := r.conn
		co.Addr, co.DB, co.Name, co.Logger, co.OnReply = a, 0, "control", r.log, nil
		ctl, err := Dial(ctx, co)
		if err != nil {
			lastErr = err
			continue
		}
		if text, lastErr = clusterNodes(ctx, ctl); text != nil {
			r.ctl = ctl
			break
		}
		ctl.Close()
		if refused(lastErr) { // CLUSTER NODES refused: SHARDS or SLOTS (clustermap.go)
			table, err := slotTableFallback(ctx, co)
			if err == nil {
				return table, nil
			}
			lastErr = errors.Join(lastErr, err)
		}
	}
	if text == nil {
		return nil, fmt.Errorf("target cluster: no node gave the slot map: %w", lastErr)
	}
	table, err := parseClusterNodes(text, r.ctl.Addr())
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", r.ctl.Addr(), err)
	}
	if ce := r.log.Check(zap.DebugLevel, "slot map read"); ce != nil {
		ce.Write(zap.String("from", r.ctl.Addr()), zap.Int("slots_served", len(table)-countEmpty(table)))
	}
	return table, nil
}

func countEmpty(table []string) int {
	n := 0
	for _, a := range table {
		if a == "" {
			n++
		}
	}
	return n
}

// clusterNodes asks ctl for CLUSTER NODES; it returns nil text on failure.
func clusterNodes(ctx context.Context, ctl *Conn) ([]byte, error) {
	rep, err := ctl.Do(ctx, "CLUSTER", "NODES")
	if err != nil {
		return nil, fmt.Errorf("target %s: CLUSTER NODES: %w", ctl.Addr(), err)
	}
	if rep.Kind != KindBulk || rep.Str == nil {
		return nil, fmt.Errorf("target %s: CLUSTER NODES: unexpected reply", ctl.Addr())
	}
	return rep.Str, nil
}

// parseClusterNodes reads CLUSTER NODES text, asked of dialed, into the address of each slot's
// master ("" for a slot no reachable master serves): see topology.ParseNodes. A node shown
// without its IP (one that never learned it) is on dialed's host.
func parseClusterNodes(text []byte, dialed string) ([]string, error) {
	host, _, _ := net.SplitHostPort(dialed)
	m, err := topology.ParseNodes(text, topology.Options{DefaultHost: host})
	if err != nil {
		return nil, err
	}
	return m.Table(), nil
}

// clusterTarget is a `redis cluster` target: a Cluster writer per source node.
type clusterTarget struct {
	routedTarget
	seeds []string
}

func newClusterTarget(c Config) (Target, error) {
	if len(c.Servers) == 0 {
		return nil, errors.New("target cluster: no servers")
	}
	t := &clusterTarget{routedTarget: routedTarget{cfg: c, name: clusterKind.name, checkpoints: true}}
	for _, s := range c.Servers {
		t.seeds = append(t.seeds, s.Addr)
	}
	return t, nil
}

func (t *clusterTarget) Writer(ctx context.Context, o WriterOptions) (Writer, error) {
	no, err := t.nodeOptions(o)
	if err != nil {
		return nil, err
	}
	w, err := NewCluster(ctx, ClusterOptions{Servers: t.seeds, NodeOptions: no})
	if err != nil {
		return nil, fmt.Errorf("target cluster %s: %w", strings.Join(t.seeds, ","), err)
	}
	return w, nil
}
