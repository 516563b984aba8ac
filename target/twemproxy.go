package target

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rmt-project/rmt/internal/shard"
	"github.com/rmt-project/rmt/internal/topology"
)

// TwemproxyOptions configure a writer to a `twemproxy` target: the pool's backends, written to
// directly, never through the proxy.
type TwemproxyOptions struct {
	Servers      []shard.Server // the pool's servers, as its "host:port:weight [name]" lines say
	Hash         string         // twemproxy's hash: "" means fnv1a_64
	HashTag      string         // "" or two bytes, e.g. "{}"
	Distribution string         // ketama or modula ("" means ketama); random is refused
	NodeOptions                 // for every backend
}

// SkipCrossNode counts, in Stats.Skipped, commands over keys of several backends that cannot be
// split (RENAME, SMOVE, LMOVE, *STORE, MSETNX, ... across backends): not applied, logged with
// their keys.
const SkipCrossNode = "crossnode"

// ErrRandomDistribution is returned by NewTwemproxy for a pool with `distribution: random`:
// twemproxy writes each request to a random backend, so a key written there cannot be found
// again, by twemproxy or anyone else.
var ErrRandomDistribution = errors.New("target twemproxy: distribution random cannot be a target: a key written to a random backend cannot be read back")

// Twemproxy writes to a twemproxy pool's backends: a sharded writer (sharded.go) whose units are
// the backends, each key going straight to the one nutcracker would pick for it (its hash,
// hash_tag and distribution, bit-exact: internal/topology.Pool). A backend is a plain Redis, so
// RDB strings go many to one MSET, and nothing redirects. With NodeOptions.CheckpointKey each
// backend keeps the source node's position (sharded_checkpoint.go): exactly once.
type Twemproxy struct{ *sharded }

var twemproxyKind = shardKind{name: "twemproxy", unit: "backend", units: "backends", crossReason: SkipCrossNode,
	multiKey: true}

// NewTwemproxy builds the pool's ring and connects to every backend. ctx bounds the whole life
// of the writer.
func NewTwemproxy(ctx context.Context, o TwemproxyOptions) (*Twemproxy, error) {
	pool, err := twemproxyPool(o.Servers, o.Hash, o.Distribution, o.HashTag)
	if err != nil {
		return nil, err
	}
	return newTwemproxyOn(ctx, pool, o.NodeOptions)
}

// twemproxyPool builds a pool's ring, refusing a random one.
func twemproxyPool(servers []shard.Server, hash, distribution, hashTag string) (*topology.Pool, error) {
	pool, err := topology.NewPool(servers, hash, distribution, hashTag)
	if err != nil {
		return nil, fmt.Errorf("target twemproxy: %w", err)
	}
	if !pool.Ring.Deterministic() {
		return nil, ErrRandomDistribution
	}
	return pool, nil
}

func newTwemproxyOn(ctx context.Context, pool *topology.Pool, o NodeOptions) (*Twemproxy, error) {
	w, err := newSharded(ctx, twemproxyKind, ringRouter{pool}, o)
	if err != nil {
		return nil, err
	}
	return &Twemproxy{w}, nil
}

// ringRouter routes by the pool's ring: a unit is a backend's index in the pool.
type ringRouter struct{ pool *topology.Pool }

func (r ringRouter) unit(key []byte) int { return r.pool.Ring.Pick(key) }

// table is the pool's backends: a ring never moves (rmt models auto_eject_hosts: false).
func (r ringRouter) table(context.Context, []string) ([]string, error) { return r.pool.Addrs(), nil }

// redirects is false: a backend is no cluster node, a MOVED from it is an error reply.
func (r ringRouter) redirects() bool { return false }

func (r ringRouter) close() {}

// checkpointUnits: every backend keeps the checkpoints of the commands it takes.
func (r ringRouter) checkpointUnits() (int, bool) { return len(r.pool.Addrs()), false }

// twemproxyTarget is a `twemproxy` target: a Twemproxy writer per source node, over the one
// pool (its ring built once, by New).
type twemproxyTarget struct {
	routedTarget
	pool *topology.Pool
}

func newTwemproxyTarget(c Config) (Target, error) {
	pool, err := twemproxyPool(c.Servers, c.Hash, c.Distribution, c.HashTag)
	if err != nil {
		return nil, err
	}
	return &twemproxyTarget{routedTarget: routedTarget{cfg: c, name: twemproxyKind.name, checkpoints: true,
		units: pool.Addrs()}, pool: pool}, nil
}

func (t *twemproxyTarget) Writer(ctx context.Context, o WriterOptions) (Writer, error) {
	no, err := t.nodeOptions(o)
	if err != nil {
		return nil, err
	}
	w, err := newTwemproxyOn(ctx, t.pool, no)
	if err != nil {
		return nil, fmt.Errorf("target twemproxy %s: %w", strings.Join(t.pool.Addrs(), ","), err)
	}
	return w, nil
}
