package source

import (
	"bytes"
	"strconv"
	"strings"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/redisfmt"
	"github.com/rmt-project/rmt/internal/shard"
)

// RMT's dirty-data filter. A master of a cluster, or a backend of a twemproxy pool, may hold
// keys that are not its own: leftovers of a reshard, of a failed MIGRATE, of a pool whose
// servers changed, or keys written straight to the backend. On the target they would overwrite
// (or, by their expiry's DEL, delete) the live key that their rightful node sends. So a node's
// RDB keys and stream commands whose keys it does not own are dropped and counted
// (skipped_not_owned).
//
//   - A stream command is dropped when none of its keys is owned, applied when all are. One with
//     both (only a direct multi-key write on a twemproxy backend can do that) is applied whole
//     and logged: splitting it would change its meaning, dropping it would lose owned keys.
//   - twemproxy serves db 0 only; the ring says nothing about keys of other dbs, which were
//     written around the proxy on purpose: they are kept.
//   - FLUSHALL/FLUSHDB from one node of several concern only that node's keys, but would wipe
//     every node's keys on the target (design rule 6): they are dropped
//     (skipped_flush_from_one_master) and logged as errors. With a single node they pass.

// owner says which keys a node owns: a cluster master's slots, a twemproxy backend's place in
// the ring. It is immutable; a new slot map installs a new one.
type owner interface {
	owns(db int, key []byte) bool
}

// ringOwner is a twemproxy backend's share of the pool's ring, in db 0.
type ringOwner struct {
	ring  *shard.Ring
	index int
}

func (o ringOwner) owns(db int, key []byte) bool { return db != 0 || o.ring.Pick(key) == o.index }

// ownership is what a node's filters share: the node's current owner, the count of what was
// dropped (for the log's rate limit), and how to check a miss against a fresh slot map.
type ownership struct {
	current atomic.Pointer[owner] // nil: every key is the node's
	dropped atomic.Int64
	log     *zap.Logger
	// stale, when set, is asked after a command of the node's stream wrote only keys the node
	// does not own: a master accepts a write only for a slot it serves or imports, so the map
	// may be old (a reshard). It reports whether it read the map again.
	stale func(slot int) bool
}

func (o *ownership) set(ow owner) { o.current.Store(&ow) }

func (o *ownership) get() owner {
	if p := o.current.Load(); p != nil {
		return *p
	}
	return nil
}

const (
	logFirstDrops = 20
	logEveryDrop  = 10000
)

// logDrop logs a dropped key: the first ones each, then one line in logEveryDrop.
func (o *ownership) logDrop(what string, db int, key []byte) {
	c := o.dropped.Add(1)
	if c <= logFirstDrops || c%logEveryDrop == 0 {
		o.log.Warn(what+" not owned by this source node: dropped (dirty data)", zap.String("key", redisfmt.Quote(string(key))),
			zap.Int("db", db), zap.Int("slot", shard.Slot(key)), zap.Int64("dropped_so_far", c))
	}
}

// streamFilter is the Filter of one pass or replay of a node: it follows SELECT to know the db.
type streamFilter struct {
	own     *ownership // nil: every key is the node's
	several bool       // the node is one of several on the target: its FLUSHALL is dropped
	db      int
	keys    [][]byte
	log     *zap.Logger
}

func (f *streamFilter) KeepKey(db int, key []byte) bool {
	if f.own == nil {
		return true
	}
	ow := f.own.get()
	if ow == nil || ow.owns(db, key) {
		return true
	}
	f.own.logDrop("RDB key", db, key)
	return false
}

func (f *streamFilter) Drop(cmd *aof.Command) Reason {
	if len(cmd.Args) == 0 {
		return ReasonNone
	}
	name := cmd.Args[0]
	switch {
	case len(name) == 6 && bytes.EqualFold(name, []byte("select")):
		if len(cmd.Args) == 2 {
			if db, err := strconv.Atoi(string(cmd.Args[1])); err == nil {
				f.db = db
			}
		}
		return ReasonNone
	case bytes.EqualFold(name, []byte("flushall")) || bytes.EqualFold(name, []byte("flushdb")):
		if !f.several {
			return ReasonNone
		}
		f.log.Error("FLUSHALL/FLUSHDB on one source node of several: NOT applied, it would wipe the other nodes' keys on the target",
			zap.String("command", strings.ToUpper(string(name))), zap.Int("db", f.db))
		return ReasonFlushFromOneMaster
	}
	if f.own == nil {
		return ReasonNone
	}
	ow := f.own.get()
	if ow == nil {
		return ReasonNone
	}
	f.keys = aof.LookupArgs(cmd.Args).Keys(cmd.Args, f.keys[:0])
	owned := countOwned(ow, f.db, f.keys)
	if owned == 0 && len(f.keys) > 0 && f.own.stale != nil && f.own.stale(shard.Slot(f.keys[0])) {
		owned = countOwned(f.own.get(), f.db, f.keys) // the master took the write: was the map stale?
	}
	switch {
	case owned == len(f.keys):
		return ReasonNone
	case owned == 0:
		f.own.logDrop(strings.ToUpper(string(name)), f.db, f.keys[0])
		return ReasonNotOwned
	}
	f.log.Warn("command over owned and not owned keys: applied whole", zap.String("command", strings.ToUpper(string(name))),
		zap.Int("keys", len(f.keys)), zap.Int("owned", owned), zap.String("first_key", redisfmt.Quote(string(f.keys[0]))))
	return ReasonNone
}

func countOwned(o owner, db int, keys [][]byte) int {
	if o == nil {
		return len(keys)
	}
	n := 0
	for _, k := range keys {
		if o.owns(db, k) {
			n++
		}
	}
	return n
}
