package source

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mediocregopher/radix/v4"
	"go.uber.org/zap"

	"github.com/rmt-project/rmt/internal/shard"
)

// Kinds of source, as the config's source.type names them.
const (
	KindSingle       = "single"
	KindRedisCluster = "redis cluster"
	KindTwemproxy    = "twemproxy"
	KindRDBFile      = "rdb file"
	KindAOFFile      = "aof file"
)

// Config is what every kind of source is built from; the daemon fills it from the job's config.
type Config struct {
	Kind string
	// Mode is source.mode: ModePSync (or ""), ModeScan or ModeScanLive. Each kind reads the
	// modes it has a constructor for (the registry).
	Mode    string
	Servers []string // host:port of the masters (a cluster: seeds), or the files' paths
	// Link is the template of every node's replica link: auth, TLS, timeout, listening port,
	// spool limits, logger. Its Addr, Dir and Resume are set per node.
	Link LinkOptions
	// Dir is common.dir: each node keeps its spool and snapshots in Dir/<node>.
	Dir string
	// SourceSafe is common.source_safe: one snapshot produced at a time per source host.
	SourceSafe bool
	// Dialer reaches the source's servers for control commands (a cluster's CLUSTER NODES),
	// with the same auth and TLS as the links.
	Dialer radix.Dialer
	// Backends are a twemproxy pool's servers, parsed from their lines, with the pool's Hash,
	// HashTag and Distribution.
	Backends                    []shard.Server
	Hash, HashTag, Distribution string
	// A sentinel source's master name, and the Sentinels' credentials (sentinel_auth); the
	// Sentinels are Servers, reached with the links' TLS.
	MasterName                 string
	SentinelUser, SentinelPass string
	// PreferReplica links a cluster's or a Sentinel master's node to one of its replicas.
	PreferReplica bool
	// BigKeyBytes is common.big_key_bytes: the scan modes read a key over it in pages rather
	// than by one DUMP (0: every key by DUMP).
	BigKeyBytes int64
	Logger      *zap.Logger
}

// Source is a configured source: its nodes, and what runs beside them (a cluster's slot-map
// watch).
type Source struct {
	Nodes []Node
	// watch runs until ctx ends; nil when the kind has nothing to watch.
	watch func(ctx context.Context)
	// unfollowed counts the masters serving slots that no node follows; nil: none can be.
	unfollowed func() int
	// cfg is the Config the source was opened with (MasterMoved dials with its Dialer).
	cfg Config
}

// Watch runs what the source needs beside its nodes (a cluster's slot map, read every few
// seconds) until ctx ends.
func (s *Source) Watch(ctx context.Context) {
	if s.watch != nil {
		s.watch(ctx)
	}
}

// NotFollowed is the number of masters that serve slots and that no node follows (a master
// added after the start): their keys are not migrated.
func (s *Source) NotFollowed() int {
	if s.unfollowed == nil {
		return 0
	}
	return s.unfollowed()
}

// kindMode is a kind of source read in a mode.
type kindMode struct{ kind, mode string }

// kinds is the registry: one constructor per kind of source and mode it can be read in.
var kinds = map[kindMode]func(ctx context.Context, c Config) (*Source, error){
	{KindSingle, ModePSync}:       openSingle,
	{KindRDBFile, ModePSync}:      openFiles(false),
	{KindAOFFile, ModePSync}:      openFiles(true),
	{KindRedisCluster, ModePSync}: openCluster,
	{KindTwemproxy, ModePSync}:    openTwemproxy,
	{KindSentinel, ModePSync}:     openSentinel,

	{KindSingle, ModeScan}:           openScanSingle(false),
	{KindSingle, ModeScanLive}:       openScanSingle(true),
	{KindRedisCluster, ModeScan}:     openScanCluster(false),
	{KindRedisCluster, ModeScanLive}: openScanCluster(true),
	{KindSentinel, ModeScan}:         openScanSentinel(false),
	{KindSentinel, ModeScanLive}:     openScanSentinel(true),
}

// Kinds lists the kinds of source this build can read, as source.type names them.
func Kinds() []string {
	var out []string
	for k := range kinds {
		if !slices.Contains(out, k.kind) {
			out = append(out, k.kind)
		}
	}
	slices.Sort(out)
	return out
}

// Modes lists the modes (source.mode) a kind of source can be read in.
func Modes(kind string) []string {
	var out []string
	for k := range kinds {
		if k.kind == kind {
			out = append(out, k.mode)
		}
	}
	slices.Sort(out)
	return out
}

// Open builds the source c describes. A cluster source asks its seeds for the masters, so this
// may do I/O, and fails when no seed answers.
func Open(ctx context.Context, c Config) (*Source, error) {
	if c.Mode == "" {
		c.Mode = ModePSync
	}
	open := kinds[kindMode{c.Kind, c.Mode}]
	if open == nil {
		if modes := Modes(c.Kind); len(modes) > 0 {
			return nil, fmt.Errorf("source: type %q is not read in mode %q (only %s)", c.Kind, c.Mode, strings.Join(modes, ", "))
		}
		return nil, fmt.Errorf("source: type %q is not supported", c.Kind)
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Link.Logger == nil {
		c.Link.Logger = c.Logger
	}
	s, err := open(ctx, c)
	if s != nil {
		s.cfg = c
	}
	return s, err
}

// NodeDir is where a node keeps its spool and snapshots: dir/<name>, the name made a file name.
func NodeDir(dir, name string) string {
	return filepath.Join(dir, strings.NewReplacer(":", "_", "/", "_", " ", "_").Replace(name))
}

// linkOptions is the template with one node's address and directory.
func (c Config) linkOptions(addr string) LinkOptions {
	o := c.Link
	o.Addr = addr
	o.Dir = NodeDir(c.Dir, addr)
	o.Resume = nil
	return o
}

// hostTurns is the source_safe gate the nodes of this source share; nil when off.
func (c Config) hostTurns() *hostTurns {
	if !c.SourceSafe {
		return nil
	}
	d := c.Dialer
	return newHostTurns(&d)
}

// openSingle is `single`: one node per server, each a replica link. With several servers into
// one target, a FLUSHALL of one of them must not wipe the others' keys.
func openSingle(_ context.Context, c Config) (*Source, error) {
	s := &Source{}
	hosts := c.hostTurns()
	var filter func(int) Filter
	if len(c.Servers) > 1 {
		filter = func(db int) Filter { return &streamFilter{db: db, several: true, log: c.Logger} }
	}
	for _, addr := range c.Servers {
		s.Nodes = append(s.Nodes, newReplicaNode(addr, c.linkOptions(addr), hosts, filter))
	}
	return s, nil
}

// openFiles is `rdb file` and `aof file`: one node per file.
func openFiles(isAOF bool) func(context.Context, Config) (*Source, error) {
	return func(_ context.Context, c Config) (*Source, error) {
		s := &Source{}
		for _, p := range c.Servers {
			s.Nodes = append(s.Nodes, newFileNode(p, isAOF))
		}
		return s, nil
	}
}
