package source

import (
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/internal/shard"
	"github.com/rmt-project/rmt/internal/topology"
)

// The cluster source's slot map (cluster.go's clusterView): how a new map changes what each
// followed master owns, which masters count as not followed, the rate limit of the reads made
// for a miss, and the failovers followed. Ported from the daemon's sources_test.go of before the
// restructuring (TestApplyClusterMap, TestFollowFailover).

// master is a serving master of a slot map.
func master(addr string, ranges ...topology.Range) topology.Master {
	return topology.Master{Node: topology.Node{Addr: addr, Flags: topology.FlagMaster}, Slots: ranges}
}

func slotsOf(ranges ...topology.Range) topology.SlotSet {
	var s topology.SlotSet
	for _, r := range ranges {
		s.AddRange(r.Lo, r.Hi)
	}
	return s
}

// viewMaster adds a followed master to v, as openCluster does: a node whose filter reads the
// master's ownership.
func viewMaster(v *clusterView, addr string, slots topology.SlotSet) *replicaNode {
	own := &ownership{log: zap.NewNop()}
	own.set(slotOwner(slots))
	n := newReplicaNode(addr, LinkOptions{}, nil, func(db int) Filter {
		return &streamFilter{own: own, several: true, db: db, log: zap.NewNop()}
	})
	n.follows = true
	v.byAddr[addr] = &clusterMaster{node: n, own: own}
	v.order = append(v.order, addr)
	return n
}

// twoMasterView is the view of a cluster source with two followed masters: a:1 serving slots
// 0-8191 (s1) and b:1 the rest.
func twoMasterView() (v *clusterView, a, b *replicaNode, s1 topology.SlotSet) {
	v = &clusterView{log: zap.NewNop(), byAddr: map[string]*clusterMaster{}, checked: map[int]time.Time{}}
	s1 = slotsOf(topology.Range{Lo: 0, Hi: 8191})
	a = viewMaster(v, "a:1", s1)
	b = viewMaster(v, "b:1", slotsOf(topology.Range{Lo: 8192, Hi: 16383}))
	return v, a, b, s1
}

// keeps says whether n's filter keeps a key of slot.
func keeps(t *testing.T, n Node, slot int) bool {
	t.Helper()
	return n.Filter(0).KeepKey(0, keyInSlot(t, slot))
}

func keyInSlot(t *testing.T, slot int) []byte {
	t.Helper()
	for i := 0; i < 1_000_000; i++ {
		k := fmt.Appendf(nil, "k%d", i)
		if shard.Slot(k) == slot {
			return k
		}
	}
	t.Fatalf("no key for slot %d", slot)
	return nil
}

func (v *clusterView) notFollowed() int { return int(v.unfollowed.Load()) }

func TestApplyClusterMap(t *testing.T) {
	v, a, b, _ := twoMasterView()
	n1, n2 := topology.Range{Lo: 0, Hi: 8000}, topology.Range{Lo: 8001, Hi: 16383}
	v.applyLocked([]topology.Master{master("a:1", n1), master("b:1", n2), master("c:1")})
	if !keeps(t, b, 8100) || keeps(t, a, 8100) {
		t.Fatal("slot 8100 moved from a to b")
	}
	if v.byAddr["c:1"] == nil || v.byAddr["c:1"].node != nil {
		t.Fatal("new master not remembered, or given a node")
	}
	if n := v.notFollowed(); n != 0 {
		t.Fatalf("a new master without slots counted as not followed: %d", n)
	}
	// Slots move to the new master (a reshard onto an added node): not followed, counted once
	// however often the map is read, and no longer once it serves nothing.
	n3, n2b := topology.Range{Lo: 8001, Hi: 9000}, topology.Range{Lo: 9001, Hi: 16383}
	for range 2 {
		v.applyLocked([]topology.Master{master("a:1", n1), master("b:1", n2b), master("c:1", n3)})
	}
	if n := v.notFollowed(); n != 1 {
		t.Fatalf("not followed: %d, want 1", n)
	}
	if keeps(t, b, 8100) {
		t.Fatal("b keeps a slot that moved to c")
	}
	v.applyLocked([]topology.Master{master("a:1", n1)})
	if keeps(t, b, 9000) {
		t.Fatal("a master gone keeps its slots")
	}
	if n := v.notFollowed(); n != 0 {
		t.Fatalf("a master gone still counted as not followed: %d", n)
	}
	// An importing slot is the importing master's too: its stream carries the keys moved in.
	imp := master("b:1", n2)
	imp.Importing = []topology.Move{{Slot: 100, Node: "aid"}}
	v.applyLocked([]topology.Master{master("a:1", n1), imp})
	if !keeps(t, b, 100) || !keeps(t, a, 100) || !keeps(t, b, 8001) {
		t.Fatal("an importing slot: kept by both the importing and the serving master")
	}
}

// TestRefreshForMissRateLimit: a miss reads the map at most once per slot per missGap, and not
// within missFloor of any other miss. Every address here fails to dial: what shows whether a
// read was attempted is that the miss was recorded.
func TestRefreshForMissRateLimit(t *testing.T) {
	v, _, _, _ := twoMasterView()
	v.limit = 100 * time.Millisecond
	now := time.Now()
	v.checked[7] = now
	if v.refreshForMiss("a:1", 7) || v.checked[7] != now || !v.lastMiss.IsZero() {
		t.Fatal("read the map within the slot's gap")
	}
	floor := time.Now().Add(time.Hour)
	v.lastMiss = floor
	if v.refreshForMiss("a:1", 8) || !v.checked[8].IsZero() || v.lastMiss != floor {
		t.Fatal("read the map within the floor")
	}
	v.lastMiss = time.Time{}
	if v.refreshForMiss("a:1", 9) { // attempted: nothing answers
		t.Fatal("a map read from nowhere")
	}
	if v.checked[9].IsZero() || v.lastMiss.IsZero() {
		t.Fatal("a miss outside the limits did not try to read the map")
	}
}

// A new master serving every slot of a followed master that serves none any more (its replica,
// promoted) takes over that master's node; a master that took only part of them does not.
func TestFollowFailover(t *testing.T) {
	v, a, b, _ := twoMasterView()
	s1 := topology.Range{Lo: 0, Hi: 8191}

	// Part of b's slots on a new master while b keeps the rest: a reshard, not a failover.
	part, rest := topology.Range{Lo: 8192, Hi: 9000}, topology.Range{Lo: 9001, Hi: 16383}
	v.applyLocked([]topology.Master{master("a:1", s1), master("b:1", rest), master("n:1", part)})
	if b.movedTo != "" || v.notFollowed() != 1 {
		t.Fatalf("a partial reshard taken for a failover: moved to %q, %d not followed", b.movedTo, v.notFollowed())
	}

	// a fails; its replica r:1 now serves a's slots.
	v.applyLocked([]topology.Master{master("r:1", s1), master("b:1", rest), master("n:1", part)})
	if a.movedTo != "r:1" || v.byAddr["r:1"] == nil || v.byAddr["r:1"].node != a || v.byAddr["a:1"] != nil {
		t.Fatalf("a not followed to r:1: moved to %q, view %v", a.movedTo, v.byAddr)
	}
	if v.order[0] != "r:1" {
		t.Errorf("the map is still asked of a:1 first: %v", v.order)
	}
	if !keeps(t, a, 100) || v.notFollowed() != 1 {
		t.Errorf("after the failover: slot 100 kept %v, %d not followed", keeps(t, a, 100), v.notFollowed())
	}
	if a.Name() != "a:1" || a.Stats().Name != "a:1" {
		t.Errorf("a followed failover renamed the node: %q", a.Name())
	}
	select {
	case ev := <-a.Events():
		if fo, ok := ev.(FailedOver); !ok || fo.From != "a:1" || fo.To != "r:1" {
			t.Errorf("event %#v, want FailedOver a:1 → r:1", ev)
		}
	default:
		t.Error("no FailedOver event")
	}

	// Two followed masters that both lost their slots to one new master: which one it
	// replaced cannot be told, so neither follows.
	v, a, b, _ = twoMasterView()
	v.applyLocked([]topology.Master{master("z:1", topology.Range{Lo: 0, Hi: 16383})})
	if a.movedTo != "" || b.movedTo != "" || v.notFollowed() != 1 {
		t.Fatalf("an ambiguous takeover followed: a → %q, b → %q, %d not followed", a.movedTo, b.movedTo, v.notFollowed())
	}
}
