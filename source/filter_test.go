package source

import (
	"context"
	"fmt"
	"testing"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/shard"
	"github.com/rmt-project/rmt/internal/topology"
)

// The ownership filter (filter.go): which RDB keys and stream commands a node keeps. Ported from
// the daemon's sources_test.go of before the restructuring (TestOwnerRing, TestStreamOwnership,
// TestStreamOwnershipFollowsSelect), now against the Filter the kinds hand out.

// openKind opens a source of kind from c (no I/O for the kinds used here), with a temporary Dir.
func openKind(t *testing.T, kind string, c Config) *Source {
	t.Helper()
	c.Kind = kind
	if c.Dir == "" {
		c.Dir = t.TempDir()
	}
	s, err := Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// backends are n twemproxy servers 127.0.0.1:1..n of weight 1.
func backends(n int) []shard.Server {
	out := make([]shard.Server, n)
	for i := range out {
		out[i] = shard.Server{Addr: fmt.Sprintf("127.0.0.1:%d", i+1), Weight: 1}
	}
	return out
}

// ownershipOf is the ownership behind a node's filter, nil when the node keeps every key.
func ownershipOf(t *testing.T, n Node) *ownership {
	t.Helper()
	f := n.Filter(0)
	if f == nil {
		return nil
	}
	sf, ok := f.(*streamFilter)
	if !ok {
		t.Fatalf("%s: filter %T", n.Name(), f)
	}
	return sf.own
}

func cmdOf(args ...string) *aof.Command {
	c := &aof.Command{}
	for _, a := range args {
		c.Args = append(c.Args, []byte(a))
	}
	return c
}

// TestRingOwnership: each key of db 0 is kept by exactly the backend the pool's ring picks;
// keys of other dbs (written around the proxy) by every backend; drops are counted.
func TestRingOwnership(t *testing.T) {
	servers := backends(3)
	src := openKind(t, KindTwemproxy, Config{Backends: servers, Hash: "fnv1a_64", Distribution: "ketama", HashTag: "{}"})
	pool, err := topology.NewPool(servers, "fnv1a_64", "ketama", "{}")
	if err != nil {
		t.Fatal(err)
	}
	if len(src.Nodes) != len(servers) {
		t.Fatalf("%d nodes for %d backends", len(src.Nodes), len(servers))
	}
	filters := make([]Filter, len(src.Nodes))
	for i, n := range src.Nodes {
		filters[i] = n.Filter(0)
	}
	for k := range 2000 {
		key := fmt.Appendf(nil, "key:%d", k)
		owners := 0
		for i, f := range filters {
			if f.KeepKey(0, key) {
				owners++
				if pool.Ring.Pick(key) != i {
					t.Fatalf("key %s kept by %d, ring says %d", key, i, pool.Ring.Pick(key))
				}
			}
			if !f.KeepKey(3, key) {
				t.Fatalf("key %s of db 3 dropped by %d: other dbs are kept", key, i)
			}
		}
		if owners != 1 {
			t.Fatalf("key %s has %d owners", key, owners)
		}
	}
	if ownershipOf(t, src.Nodes[0]).dropped.Load() == 0 {
		t.Fatal("drops not counted")
	}
}

func TestStreamOwnership(t *testing.T) {
	var slots topology.SlotSet
	mine := shard.Slot([]byte("mine"))
	slots.Add(mine)
	other := "other" // a different slot
	if shard.Slot([]byte(other)) == mine {
		t.Fatal("pick another key")
	}
	own := &ownership{log: zap.NewNop()}
	own.set(slotOwner(slots))
	// sharded is a cluster master among several, alone the only one, plain a single source of
	// several servers (no ownership, but a FLUSHALL of one concerns only its keys).
	sharded := func() Filter { return &streamFilter{own: own, several: true, log: zap.NewNop()} }
	alone := func() Filter { return &streamFilter{own: own, log: zap.NewNop()} }
	plain := openKind(t, KindSingle, Config{Servers: []string{"127.0.0.1:1", "127.0.0.1:2"}}).Nodes[0].Filter
	cases := []struct {
		name   string
		filter func() Filter
		cmd    []string
		want   Reason
	}{
		{"owned", sharded, []string{"SET", "mine", "v"}, ReasonNone},
		{"not owned", sharded, []string{"set", "other", "v"}, ReasonNotOwned},
		{"not owned DEL", sharded, []string{"DEL", "other"}, ReasonNotOwned},
		{"mixed applied", sharded, []string{"DEL", "mine", "other"}, ReasonNone},
		{"keyless", sharded, []string{"PING"}, ReasonNone},
		{"unknown", sharded, []string{"NOSUCH", "other"}, ReasonNone},
		{"empty", sharded, nil, ReasonNone},
		{"flushall of one of several", sharded, []string{"FLUSHALL"}, ReasonFlushFromOneMaster},
		{"flushdb of one of several", sharded, []string{"flushdb", "async"}, ReasonFlushFromOneMaster},
		{"flushall of plain multi", func() Filter { return plain(0) }, []string{"FLUSHALL"}, ReasonFlushFromOneMaster},
		{"flushall alone", alone, []string{"FLUSHALL"}, ReasonNone},
		{"alone still filters", alone, []string{"SET", "other", "v"}, ReasonNotOwned},
		{"plain keeps keys", func() Filter { return plain(0) }, []string{"SET", "other", "v"}, ReasonNone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.filter().Drop(cmdOf(tc.cmd...)); got != tc.want {
				t.Fatalf("Drop(%v) = %q, want %q", tc.cmd, got, tc.want)
			}
		})
	}
	if f := openKind(t, KindSingle, Config{Servers: []string{"127.0.0.1:1"}}).Nodes[0].Filter(0); f != nil {
		t.Fatalf("a lone node owning every key needs no filter, got %T", f)
	}
	if f := plain(0); !f.KeepKey(0, []byte("x")) || !f.KeepKey(5, []byte("other")) {
		t.Fatal("a node without ownership must keep every key")
	}
}

// TestStreamOwnershipStaleMap: a command whose keys the node does not own asks whether the slot
// map is stale (a master takes a write only for a slot it serves or imports); when the map read
// again gives the node the slot, the command is applied.
func TestStreamOwnershipStaleMap(t *testing.T) {
	var none, all topology.SlotSet
	all.AddRange(0, topology.SlotCount-1)
	own := &ownership{log: zap.NewNop()}
	own.set(slotOwner(none))
	var asked []int
	refresh := false
	own.stale = func(slot int) bool {
		asked = append(asked, slot)
		if refresh {
			own.set(slotOwner(all))
		}
		return refresh
	}
	f := &streamFilter{own: own, several: true, log: zap.NewNop()}
	if r := f.Drop(cmdOf("SET", "k", "v")); r != ReasonNotOwned || len(asked) != 1 || asked[0] != shard.Slot([]byte("k")) {
		t.Fatalf("map not refreshed: %q, asked %v", r, asked)
	}
	refresh = true
	if r := f.Drop(cmdOf("SET", "k", "v")); r != ReasonNone || len(asked) != 2 {
		t.Fatalf("map refreshed, the slot now owned: %q, asked %v", r, asked)
	}
	if r := f.Drop(cmdOf("SET", "k", "v")); r != ReasonNone || len(asked) != 2 {
		t.Fatalf("an owned key asked for the map: %q, asked %v", r, asked)
	}
	if f.KeepKey(0, []byte("k")) != true {
		t.Fatal("KeepKey does not see the new map")
	}
}

func TestStreamOwnershipFollowsSelect(t *testing.T) {
	servers := backends(2)
	ring, err := shard.NewRing(servers, "fnv1a_64", "modula", "")
	if err != nil {
		t.Fatal(err)
	}
	var stray string
	for k := 0; stray == ""; k++ {
		if key := fmt.Sprintf("k%d", k); ring.Pick([]byte(key)) == 1 {
			stray = key
		}
	}
	node := openKind(t, KindTwemproxy, Config{Backends: servers, Hash: "fnv1a_64", Distribution: "modula"}).Nodes[0]
	f := node.Filter(0)
	steps := []struct {
		cmd  []string
		want Reason
	}{
		{[]string{"SET", stray, "v"}, ReasonNotOwned},
		{[]string{"SELECT", "2"}, ReasonNone},
		{[]string{"SET", stray, "v"}, ReasonNone}, // db 2: not the proxy's, kept
		{[]string{"SELECT", "x"}, ReasonNone},     // not a db: still in 2
		{[]string{"SET", stray, "v"}, ReasonNone},
		{[]string{"select", "0"}, ReasonNone},
		{[]string{"SET", stray, "v"}, ReasonNotOwned},
	}
	for i, s := range steps {
		if got := f.Drop(cmdOf(s.cmd...)); got != s.want {
			t.Fatalf("step %d %v: %q, want %q", i, s.cmd, got, s.want)
		}
	}
	if f := node.Filter(2); f.Drop(cmdOf("SET", stray, "v")) != ReasonNone {
		t.Fatal("a replay starting in db 2 must keep keys")
	}
}
