package daemon

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/redisfmt"
	"github.com/rmt-project/rmt/internal/shard"
)

// RMT's dirty-data filter. A master of a cluster, or a backend of a twemproxy pool, may hold keys
// that are not its own: leftovers of a reshard, of a failed MIGRATE, of a pool whose servers
// changed, or keys written straight to the backend. On the target they would overwrite (or, by
// their expiry's DEL, delete) the live key that its rightful node sends. So a node's RDB keys
// and stream commands whose keys it does not own are dropped and counted (skipped_not_owned).
//
// Decisions:
//   - A stream command is dropped when none of its keys is owned, applied when all are. One with
//     both (only a direct multi-key write on a twemproxy backend can do that) is applied whole
//     and logged: splitting it would change its meaning, dropping it would lose owned keys.
//   - twemproxy serves db 0 only; the ring says nothing about keys of other dbs, which were
//     written around the proxy on purpose: they are kept, as any single source's would be.
//   - twemproxy with distribution random: a key's home cannot be known; every key is kept.
//   - FLUSHALL/FLUSHDB from one node of several concern only that node's keys, but would wipe
//     every node's keys on the target (design rule 6): they are skipped
//     (skipped_flush_from_one_master) and logged as errors. With a single source node they pass.

// Skip reasons of ownership, in INFO as skipped_<reason>.
const (
	reasonNotOwned           = "not_owned"
	reasonFlushFromOneMaster = "flush_from_one_master"
)

// owner says which keys a source node owns: a cluster master's slots, or a twemproxy backend's
// place in the pool's ring. It is immutable; a new slot map installs a new one.
type owner struct {
	slots *slotSet
	ring  *shard.Ring
	index int // this backend's index in the ring
}

// owns reports whether key, in db, is the node's.
func (o *owner) owns(db int, key []byte) bool {
	switch {
	case o == nil:
		return true
	case o.slots != nil:
		return o.slots.has(shard.Slot(key))
	case o.ring != nil:
		return db != 0 || o.ring.Pick(key) == o.index
	}
	return true
}

// keepKey reports whether an RDB key (of db) is this node's; a dropped one is logged (the first
// ones each, then one line in logEvery).
func (n *sourceNode) keepKey(db int, key []byte) bool {
	if n == nil {
		return true
	}
	if n.owner.Load().owns(db, key) {
		return true
	}
	n.logDrop("RDB key", db, key)
	return false
}

const (
	logFirstDrops = 20
	logEveryDrop  = 10000
)

func (n *sourceNode) logDrop(what string, db int, key []byte) {
	c := n.dropped.Add(1)
	if c <= logFirstDrops || c%logEveryDrop == 0 {
		n.log.Warn(what+" not owned by this source node: dropped (dirty data)", zap.String("key", redisfmt.Quote(string(key))),
			zap.Int("db", db), zap.Int("slot", shard.Slot(key)), zap.Int64("dropped_so_far", c))
	}
}

// streamOwnership filters one replay of a node's stream: it follows SELECT to know the db.
type streamOwnership struct {
	n    *sourceNode
	db   int
	keys [][]byte
}

// streamFilter starts the ownership filter of a replay that begins in db; nil when the node owns
// every key and is the job's only node.
func (n *sourceNode) streamFilter(db int) *streamOwnership {
	if n == nil || (n.alone && n.owner.Load() == nil) {
		return nil
	}
	return &streamOwnership{n: n, db: db}
}

// drop returns the reason to skip cmd, or "" to apply it.
func (s *streamOwnership) drop(cmd *aof.Command) string {
	if s == nil || len(cmd.Args) == 0 {
		return ""
	}
	name := cmd.Args[0]
	switch {
	case len(name) == 6 && bytes.EqualFold(name, []byte("select")):
		if len(cmd.Args) == 2 {
			if db, err := strconv.Atoi(string(cmd.Args[1])); err == nil {
				s.db = db
			}
		}
		return ""
	case bytes.EqualFold(name, []byte("flushall")) || bytes.EqualFold(name, []byte("flushdb")):
		if s.n.alone {
			return ""
		}
		s.n.log.Error("FLUSHALL/FLUSHDB on one source node of several: NOT applied, it would wipe the other nodes' keys on the target",
			zap.String("command", strings.ToUpper(string(name))), zap.Int("db", s.db))
		return reasonFlushFromOneMaster
	}
	o := s.n.owner.Load()
	if o == nil {
		return ""
	}
	s.keys = aof.LookupArgs(cmd.Args).Keys(cmd.Args, s.keys[:0])
	owned := countOwned(o, s.db, s.keys)
	if owned == 0 && len(s.keys) > 0 && s.n.view.refreshForMiss(s.n.addr, shard.Slot(s.keys[0])) {
		owned = countOwned(s.n.owner.Load(), s.db, s.keys) // the master took the write: is the map stale?
	}
	switch {
	case owned == len(s.keys):
		return ""
	case owned == 0:
		s.n.logDrop(strings.ToUpper(string(name)), s.db, s.keys[0])
		return reasonNotOwned
	}
	s.n.log.Warn("command over owned and not owned keys: applied whole", zap.String("command", strings.ToUpper(string(name))),
		zap.Int("keys", len(s.keys)), zap.Int("owned", owned), zap.String("first_key", redisfmt.Quote(string(s.keys[0]))))
	return ""
}

func countOwned(o *owner, db int, keys [][]byte) int {
	n := 0
	for _, k := range keys {
		if o.owns(db, k) {
			n++
		}
	}
	return n
}

// slotSet is a set of cluster hash slots. It is comparable with ==.
type slotSet [shard.SlotCount / 64]uint64

func (s *slotSet) has(slot int) bool {
	return slot >= 0 && slot < shard.SlotCount && s[slot/64]&(1<<(slot%64)) != 0
}

func (s *slotSet) add(lo, hi int) {
	for i := lo; i <= hi; i++ {
		s[i/64] |= 1 << (i % 64)
	}
}

func (s *slotSet) subsetOf(t *slotSet) bool {
	for i, w := range s {
		if w&^t[i] != 0 {
			return false
		}
	}
	return true
}

func (s *slotSet) empty() bool {
	for _, w := range s {
		if w != 0 {
			return false
		}
	}
	return true
}

// firstMissing is the first slot not in the set, or -1.
func (s *slotSet) firstMissing() int {
	for i := range shard.SlotCount {
		if !s.has(i) {
			return i
		}
	}
	return -1
}

// addField adds one slot field of a CLUSTER NODES line: "N", "N-M", "[N-<-id]" (importing: the
// node's too, but not yet served) or "[N->-id]" (migrating: already in its ranges). Served slots
// are added to served as well.
func (s *slotSet) addField(f string, served *slotSet) error {
	if strings.HasPrefix(f, "[") {
		body := strings.TrimSuffix(strings.TrimPrefix(f, "["), "]")
		num, rest, ok := strings.Cut(body, "-")
		slot, err := strconv.Atoi(num)
		if !ok || err != nil || slot < 0 || slot >= shard.SlotCount {
			return fmt.Errorf("bad slot field %q", f)
		}
		if strings.HasPrefix(rest, "<-") {
			s.add(slot, slot)
		}
		return nil
	}
	loS, hiS, isRange := strings.Cut(f, "-")
	lo, err := strconv.Atoi(loS)
	hi := lo
	if err == nil && isRange {
		hi, err = strconv.Atoi(hiS)
	}
	if err != nil || lo < 0 || hi < lo || hi >= shard.SlotCount {
		return fmt.Errorf("bad slot field %q", f)
	}
	s.add(lo, hi)
	served.add(lo, hi)
	return nil
}

// String is the set as ranges, "0-5460,6000".
func (s *slotSet) String() string {
	var b strings.Builder
	for i := 0; i < shard.SlotCount; {
		if !s.has(i) {
			i++
			continue
		}
		j := i
		for j+1 < shard.SlotCount && s.has(j+1) {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(i))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(j))
		}
		i = j + 1
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}
