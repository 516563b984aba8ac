package topology

import (
	"fmt"
	"math/bits"
	"net"
	"strconv"
	"strings"

	"github.com/rmt-project/rmt/internal/shard"
)

// SlotCount is the number of hash slots of a Redis Cluster.
const SlotCount = shard.SlotCount

// Options say how to read a topology reply.
type Options struct {
	// DefaultHost is the host of a node that the reply shows without one (an empty IP, or "?"):
	// the host the reply was asked of, as Redis means it (a node that never learned its own
	// address shows itself as ":7000"). "" leaves such a node without an address (not Usable).
	DefaultHost string
}

// Flags are a node's flags, as CLUSTER NODES lists them.
type Flags uint16

// Node flags (the words of CLUSTER NODES' third field).
const (
	FlagMyself     Flags = 1 << iota // myself: the node that answered
	FlagMaster                       // master
	FlagReplica                      // slave
	FlagPFail                        // fail?: unreachable to the node that answered, not yet agreed
	FlagFail                         // fail: failed, by agreement
	FlagHandshake                    // handshake: not yet a member
	FlagNoAddr                       // noaddr: no address known
	FlagNoFailover                   // nofailover
)

var flagNames = []struct {
	name string
	flag Flags
}{
	{"myself", FlagMyself}, {"master", FlagMaster}, {"slave", FlagReplica}, {"fail?", FlagPFail}, {"fail", FlagFail},
	{"handshake", FlagHandshake}, {"noaddr", FlagNoAddr}, {"nofailover", FlagNoFailover},
}

// parseFlags reads "myself,master" and the like; words it does not know (noflags, a future
// one) are left out.
func parseFlags(s string) Flags {
	var f Flags
	for w := range strings.SplitSeq(s, ",") {
		for _, n := range flagNames {
			if w == n.name {
				f |= n.flag
			}
		}
	}
	return f
}

// String lists the flags as CLUSTER NODES does, "myself,master"; "noflags" for none.
func (f Flags) String() string {
	var b strings.Builder
	for _, n := range flagNames {
		if f&n.flag != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(n.name)
		}
	}
	if b.Len() == 0 {
		return "noflags"
	}
	return b.String()
}

// Node is one node of a cluster.
type Node struct {
	ID       string // its 40-character name ("" when the reply gives none: old CLUSTER SLOTS)
	Addr     string // "host:port" to reach it (IPv6 in brackets); "" when it has none
	Hostname string // the hostname it announces (Redis 7), "" when none
	Flags    Flags
}

// Usable reports whether commands can be sent to the node: it has an address, is not failed
// (by agreement: fail? is only one node's view) and is not still in its handshake.
func (n *Node) Usable() bool {
	return n.Addr != "" && n.Flags&(FlagFail|FlagHandshake|FlagNoAddr) == 0
}

// Range is the slots Lo to Hi, both included.
type Range struct{ Lo, Hi int }

func (r Range) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(r.Lo)
	}
	return strconv.Itoa(r.Lo) + "-" + strconv.Itoa(r.Hi)
}

// Move is a slot being moved between two masters: Node is the ID of the master it comes from
// (in Master.Importing) or goes to (in Master.Migrating).
type Move struct {
	Slot int
	Node string
}

// Master is a master with the slots it serves, those being moved to or from it, and its
// replicas.
type Master struct {
	Node
	Slots []Range // served, in the reply's order
	// Importing are slots being moved to this master: still served by the other one, but their
	// keys already arrive here (by MIGRATE, RESTORE ... ASKING). Only CLUSTER NODES tells.
	Importing []Move
	// Migrating are slots being moved away, still in Slots until the move ends.
	Migrating []Move
	Replicas  []Node // in the reply's order, failed ones included (see Node.Usable)
}

// SlotSet returns the slots m serves as a set; with importing, those it imports as well (the
// slots whose keys its replication stream can carry).
func (m *Master) SlotSet(importing bool) SlotSet {
	var s SlotSet
	for _, r := range m.Slots {
		s.AddRange(r.Lo, r.Hi)
	}
	if importing {
		for _, mv := range m.Importing {
			s.Add(mv.Slot)
		}
	}
	return s
}

// Map is a cluster's topology as one node saw it.
type Map struct {
	// Masters are every master of the reply, in its order: failed, unreachable and slotless
	// ones included (see Serving).
	Masters []Master
}

// Serving returns the masters that are Usable and serve or import at least one slot, in the
// reply's order: the masters a migration reads from or writes to.
func (m *Map) Serving() []Master {
	var out []Master
	for _, ms := range m.Masters {
		if ms.Usable() && (len(ms.Slots) > 0 || len(ms.Importing) > 0) {
			out = append(out, ms)
		}
	}
	return out
}

// Table returns, for every slot, the address of the Usable master that serves it, "" for a slot
// none serves. Slots being moved stay with the master that serves them (MOVED and ASK replies
// say the rest).
func (m *Map) Table() []string {
	table := make([]string, SlotCount)
	for _, ms := range m.Masters {
		if !ms.Usable() {
			continue
		}
		for _, r := range ms.Slots {
			for s := r.Lo; s <= r.Hi; s++ {
				table[s] = ms.Addr
			}
		}
	}
	return table
}

// Unserved returns the first slot no Usable master serves, or -1 when every slot is served.
func (m *Map) Unserved() int {
	var served SlotSet
	for _, ms := range m.Masters {
		if ms.Usable() {
			for _, r := range ms.Slots {
				served.AddRange(r.Lo, r.Hi)
			}
		}
	}
	return served.FirstMissing()
}

// SlotSet is a set of hash slots. The zero value is empty; sets compare with ==.
type SlotSet [SlotCount / 64]uint64

// Has reports whether slot is in the set.
func (s *SlotSet) Has(slot int) bool {
	return slot >= 0 && slot < SlotCount && s[slot/64]&(1<<(slot%64)) != 0
}

// Add adds one slot (ignored when out of range).
func (s *SlotSet) Add(slot int) {
	if slot >= 0 && slot < SlotCount {
		s[slot/64] |= 1 << (slot % 64)
	}
}

// AddRange adds the slots lo to hi, both included (clipped to the valid slots).
func (s *SlotSet) AddRange(lo, hi int) {
	for i := max(lo, 0); i <= min(hi, SlotCount-1); i++ {
		s[i/64] |= 1 << (i % 64)
	}
}

// Empty reports whether the set holds no slot.
func (s *SlotSet) Empty() bool { return *s == SlotSet{} }

// Len returns the number of slots in the set.
func (s *SlotSet) Len() int {
	n := 0
	for _, w := range s {
		n += bits.OnesCount64(w)
	}
	return n
}

// SubsetOf reports whether every slot of s is in t.
func (s *SlotSet) SubsetOf(t *SlotSet) bool {
	for i, w := range s {
		if w&^t[i] != 0 {
			return false
		}
	}
	return true
}

// FirstMissing returns the first slot not in the set, or -1 when it holds them all.
func (s *SlotSet) FirstMissing() int {
	for i, w := range s {
		if w != ^uint64(0) {
			return i*64 + bits.TrailingZeros64(^w)
		}
	}
	return -1
}

// String writes the set as ranges, "0-5460,6000"; "none" when empty.
func (s *SlotSet) String() string {
	var b strings.Builder
	for i := 0; i < SlotCount; {
		if !s.Has(i) {
			i++
			continue
		}
		j := i
		for j+1 < SlotCount && s.Has(j+1) {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(Range{i, j}.String())
		i = j + 1
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// nodeAddr makes "host:port" of a reply's host and port: host "" or "?" is o.DefaultHost (and
// no address at all without one); port must be 1..65535.
func nodeAddr(host, port string, o Options) (string, error) {
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 || len(port) > 5 {
		return "", fmt.Errorf("port %q is not a number in 1..65535", clip(port))
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" || host == "?" {
		if o.DefaultHost == "" {
			return "", nil
		}
		host = o.DefaultHost
	}
	if strings.ContainsAny(host, " \t\r\n[]") {
		return "", fmt.Errorf("host %q", clip(host))
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}

// slotMarks records the slots the masters of one reply serve, so that a slot listed twice is an
// error (one node's view gives every slot one master) and the work stays bounded.
type slotMarks struct{ SlotSet }

func (m *slotMarks) mark(lo, hi int) error {
	if lo < 0 || hi >= SlotCount || lo > hi {
		return fmt.Errorf("slot range %d-%d is not within 0-%d", lo, hi, SlotCount-1)
	}
	for s := lo; s <= hi; s++ {
		if m.Has(s) {
			return fmt.Errorf("slot %d is listed twice", s)
		}
		m.Add(s)
	}
	return nil
}

// clip cuts s for an error message: input can be hostile and of any size.
func clip(s string) string {
	const n = 64
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
