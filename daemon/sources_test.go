package daemon

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/shard"
)

const nodesThreeMasters = `07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003,host3 master - 0 1426238318243 3 connected 10923-16383 [100-<-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca :30001@31001 myself,master - 0 0 1 connected 0-5460 [200->-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]
aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 127.0.0.1:30009@31009 master,fail - 0 0 9 disconnected
bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb 127.0.0.1:30010@31010 master - 0 0 10 connected
`

func TestParseClusterNodes(t *testing.T) {
	masters, err := parseClusterNodes(nodesThreeMasters, "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	got := describeMasters(masters)
	want := "127.0.0.1:30002:5461-10922 127.0.0.1:30003:100,10923-16383 10.0.0.1:30001:0-5460"
	if got != want {
		t.Fatalf("masters\n got %s\nwant %s", got, want)
	}
	if masters[0].id != "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1" {
		t.Errorf("id %q", masters[0].id)
	}

	bad := []struct{ name, text, want string }{
		{"slot not served", "x 127.0.0.1:1@2 master - 0 0 1 connected 0-16382\n", "slot 16383"},
		{"reversed range", "x 127.0.0.1:1@2 master - 0 0 1 connected 10-5\n", "bad slot field"},
		{"slot too big", "x 127.0.0.1:1@2 master - 0 0 1 connected 0-16384\n", "bad slot field"},
		{"bad importing", "x 127.0.0.1:1@2 master - 0 0 1 connected 0-16383 [x-<-y]\n", "bad slot field"},
		{"short line", "x 127.0.0.1:1@2 master\n", "fields"},
		{"bad address", "x nowhere master - 0 0 1 connected 0-16383\n", "address"},
		{"bad port", "x 127.0.0.1:99999@2 master - 0 0 1 connected 0-16383\n", "bad port"},
		{"empty", "", "slot 0"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseClusterNodes(tc.text, "h")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func FuzzParseClusterNodes(f *testing.F) {
	f.Add(nodesThreeMasters)
	f.Add("x :1@2 myself,master - 0 0 1 connected 0-16383 [5-<-y] [6->-z]\n")
	f.Add("x 127.0.0.1:1@2,h master - 0 0 1 connected 0-16383")
	f.Fuzz(func(t *testing.T, text string) {
		masters, err := parseClusterNodes(text, "h")
		if err != nil {
			return
		}
		var all slotSet
		for _, m := range masters {
			if m.slots.empty() {
				t.Fatalf("master %s without slots", m.addr)
			}
			for i := range shard.SlotCount {
				if m.slots.has(i) {
					all.add(i, i)
				}
			}
		}
		if s := all.firstMissing(); s >= 0 {
			t.Fatalf("slot %d unowned but no error", s)
		}
	})
}

func TestSlotSetString(t *testing.T) {
	var s slotSet
	if s.String() != "none" || !s.empty() {
		t.Fatalf("empty set: %s", s.String())
	}
	s.add(0, 3)
	s.add(5, 5)
	s.add(16380, 16383)
	if got := s.String(); got != "0-3,5,16380-16383" {
		t.Fatalf("got %s", got)
	}
	if !s.has(16383) || s.has(4) || s.has(-1) || s.has(16384) {
		t.Fatal("has")
	}
}

func testNode(o *owner, alone bool) *sourceNode {
	n := &sourceNode{addr: "127.0.0.1:1", alone: alone, log: zap.NewNop()}
	if o != nil {
		n.owner.Store(o)
	}
	return n
}

func TestOwnerRing(t *testing.T) {
	servers := []shard.Server{{Addr: "127.0.0.1:1", Weight: 1}, {Addr: "127.0.0.1:2", Weight: 1}, {Addr: "127.0.0.1:3", Weight: 1}}
	ring, err := shard.NewRing(servers, "fnv1a_64", "ketama", "{}")
	if err != nil {
		t.Fatal(err)
	}
	nodes := make([]*sourceNode, len(servers))
	for i := range servers {
		nodes[i] = testNode(&owner{ring: ring, index: i}, false)
	}
	for k := range 2000 {
		key := []byte(fmt.Sprintf("key:%d", k))
		owners := 0
		for i, n := range nodes {
			if n.keepKey(0, key) {
				owners++
				if ring.Pick(key) != i {
					t.Fatalf("key %s kept by %d, ring says %d", key, i, ring.Pick(key))
				}
			}
			if !n.keepKey(3, key) {
				t.Fatalf("key %s of db 3 dropped by %d: other dbs are kept", key, i)
			}
		}
		if owners != 1 {
			t.Fatalf("key %s has %d owners", key, owners)
		}
	}
	if nodes[0].dropped.Load() == 0 {
		t.Fatal("drops not counted")
	}
}

func cmdOf(args ...string) *aof.Command {
	c := &aof.Command{}
	for _, a := range args {
		c.Args = append(c.Args, []byte(a))
	}
	return c
}

func TestStreamOwnership(t *testing.T) {
	var slots slotSet
	mine := shard.Slot([]byte("mine"))
	slots.add(mine, mine)
	other := "other" // a different slot
	if shard.Slot([]byte(other)) == mine {
		t.Fatal("pick another key")
	}
	sharded := testNode(&owner{slots: &slots}, false)
	alone := testNode(&owner{slots: &slots}, true)
	plain := testNode(nil, false)
	cases := []struct {
		name string
		n    *sourceNode
		cmd  []string
		want string
	}{
		{"owned", sharded, []string{"SET", "mine", "v"}, ""},
		{"not owned", sharded, []string{"set", "other", "v"}, reasonNotOwned},
		{"not owned DEL", sharded, []string{"DEL", "other"}, reasonNotOwned},
		{"mixed applied", sharded, []string{"DEL", "mine", "other"}, ""},
		{"keyless", sharded, []string{"PING"}, ""},
		{"unknown", sharded, []string{"NOSUCH", "other"}, ""},
		{"flushall of one of several", sharded, []string{"FLUSHALL"}, reasonFlushFromOneMaster},
		{"flushdb of one of several", sharded, []string{"flushdb", "async"}, reasonFlushFromOneMaster},
		{"flushall of plain multi", plain, []string{"FLUSHALL"}, reasonFlushFromOneMaster},
		{"flushall alone", alone, []string{"FLUSHALL"}, ""},
		{"alone still filters", alone, []string{"SET", "other", "v"}, reasonNotOwned},
		{"plain keeps keys", plain, []string{"SET", "other", "v"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.n.streamFilter(0)
			if got := f.drop(cmdOf(tc.cmd...)); got != tc.want {
				t.Fatalf("drop(%v) = %q, want %q", tc.cmd, got, tc.want)
			}
		})
	}
	if f := testNode(nil, true).streamFilter(0); f != nil {
		t.Fatal("a lone node owning every key needs no filter")
	}
	var nilNode *sourceNode
	if nilNode.streamFilter(0).drop(cmdOf("FLUSHALL")) != "" || !nilNode.keepKey(0, []byte("x")) {
		t.Fatal("nil node must keep everything")
	}
}

func TestStreamOwnershipFollowsSelect(t *testing.T) {
	servers := []shard.Server{{Addr: "127.0.0.1:1", Weight: 1}, {Addr: "127.0.0.1:2", Weight: 1}}
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
	f := testNode(&owner{ring: ring, index: 0}, false).streamFilter(0)
	steps := []struct {
		cmd  []string
		want string
	}{
		{[]string{"SET", stray, "v"}, reasonNotOwned},
		{[]string{"SELECT", "2"}, ""},
		{[]string{"SET", stray, "v"}, ""}, // db 2: not the proxy's, kept
		{[]string{"SELECT", "0"}, ""},
		{[]string{"SET", stray, "v"}, reasonNotOwned},
	}
	for i, s := range steps {
		if got := f.drop(cmdOf(s.cmd...)); got != s.want {
			t.Fatalf("step %d %v: %q, want %q", i, s.cmd, got, s.want)
		}
	}
	if f := testNode(&owner{ring: ring, index: 0}, false).streamFilter(2); f.drop(cmdOf("SET", stray, "v")) != "" {
		t.Fatal("a replay starting in db 2 must keep keys")
	}
}

func TestTwemproxyBackends(t *testing.T) {
	p := conf.Pool{Servers: []string{"127.0.0.1:7001:1 a", "127.0.0.1:7002:2"}, Hash: "md5", Distribution: "modula", HashTag: "{}"}
	servers, ring, err := twemproxyBackends(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != 2 || servers[0].Addr != "127.0.0.1:7001" || servers[1].Weight != 2 || ring.Distribution() != "modula" {
		t.Fatalf("servers %+v, %s", servers, ring.Distribution())
	}
	for _, bad := range [][]string{
		{"127.0.0.1:7001:1", "127.0.0.1:7001:1 b"},
		{"127.0.0.1:x"},
		{"/tmp/redis.sock:1"},
	} {
		if _, _, err := twemproxyBackends(conf.Pool{Servers: bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestSourceSafe: nodes of one host take turns (the second waits until the first's snapshot is
// whole); nodes of other hosts, or without source_safe, do not wait.
func TestSourceSafe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g := newSourceGates(true, 1)
	node := func(addr string) *sourceNode { return &sourceNode{addr: addr, gates: g, log: zap.NewNop()} }
	a, b, other := node("127.0.0.1:1"), node("127.0.0.1:2"), node("127.0.0.2:1")
	if !a.waitHostTurn(ctx) {
		t.Fatal("a")
	}
	if !other.waitHostTurn(ctx) {
		t.Fatal("another host must not wait")
	}
	got := make(chan bool, 1)
	go func() { got <- b.waitHostTurn(ctx) }()
	select {
	case <-got:
		t.Fatal("b did not wait for a")
	case <-time.After(100 * time.Millisecond):
	}
	a.endHostTurn()
	a.endHostTurn() // idempotent: must not release b's turn
	if !<-got {
		t.Fatal("b never got its turn")
	}
	c := node("127.0.0.1:3")
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if c.waitHostTurn(short) {
		t.Fatal("c got a turn while b holds it")
	}
	b.endHostTurn()
	if !c.waitHostTurn(ctx) {
		t.Fatal("c")
	}

	off := &sourceNode{addr: "127.0.0.1:9", gates: newSourceGates(false, 1), log: zap.NewNop()}
	off2 := &sourceNode{addr: "127.0.0.1:8", gates: off.gates, log: zap.NewNop()}
	if !off.waitHostTurn(ctx) || !off2.waitHostTurn(ctx) {
		t.Fatal("source_safe off must not wait")
	}
}

// TestLoadGate: at most threads RDB loads at a time.
func TestLoadGate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g := newSourceGates(false, 2)
	n := &sourceNode{gates: g, log: zap.NewNop()}
	r1, err1 := n.waitLoadTurn(ctx)
	r2, err2 := n.waitLoadTurn(ctx)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if _, err := n.waitLoadTurn(short); err == nil {
		t.Fatal("a third load started with threads 2")
	}
	r1()
	r1() // idempotent
	r3, err := n.waitLoadTurn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.waitLoadTurn(short); err == nil {
		t.Fatal("double release let a third load in")
	}
	r2()
	r3()
	if cap(newSourceGates(false, 0).loads) < 1 {
		t.Fatal("threads 0: number of CPUs")
	}
}

// twoMasterView is the view of a cluster source with two followed masters: a:1 serving slots
// 0-8191 (s1) and b:1 the rest.
func twoMasterView() (v *clusterView, a, b *sourceNode, s1 slotSet) {
	var s2 slotSet
	s1.add(0, 8191)
	s2.add(8192, 16383)
	v = newClusterView(conf.Pool{}, zap.NewNop())
	a = &sourceNode{addr: "a:1", log: zap.NewNop()}
	b = &sourceNode{addr: "b:1", log: zap.NewNop()}
	a.owner.Store(&owner{slots: &s1})
	b.owner.Store(&owner{slots: &s2})
	v.add(a)
	v.add(b)
	return v, a, b, s1
}

func TestApplyClusterMap(t *testing.T) {
	v, a, b, _ := twoMasterView()
	var n1, n2 slotSet
	n1.add(0, 8000)
	n2.add(8001, 16383)
	v.applyLocked([]clusterMaster{{addr: "a:1", slots: &n1}, {addr: "b:1", slots: &n2}, {addr: "c:1", slots: &slotSet{}}})
	if !b.keepKey(0, keyInSlot(t, 8100)) || a.keepKey(0, keyInSlot(t, 8100)) {
		t.Fatal("slot 8100 moved from a to b")
	}
	if v.byAddr["c:1"] == nil {
		t.Fatal("new master not remembered")
	}
	if n := v.notFollowed(); n != 0 {
		t.Fatalf("a new master without slots counted as not followed: %d", n)
	}
	// Slots move to the new master (a reshard onto an added node, or a failover): not followed,
	// counted once however often the map is read, and no longer once it serves nothing.
	var n3 slotSet
	n3.add(8001, 9000)
	n2b := slotSet{}
	n2b.add(9001, 16383)
	for range 2 {
		v.applyLocked([]clusterMaster{{addr: "a:1", slots: &n1}, {addr: "b:1", slots: &n2b}, {addr: "c:1", slots: &n3}})
	}
	if n := v.notFollowed(); n != 1 {
		t.Fatalf("not followed: %d, want 1", n)
	}
	if b.keepKey(0, keyInSlot(t, 8100)) {
		t.Fatal("b keeps a slot that moved to c")
	}
	v.applyLocked([]clusterMaster{{addr: "a:1", slots: &n1}})
	if b.keepKey(0, keyInSlot(t, 9000)) {
		t.Fatal("a master gone keeps its slots")
	}
	if n := v.notFollowed(); n != 0 {
		t.Fatalf("a master gone still counted as not followed: %d", n)
	}
	// Rate limit: no read for a slot checked less than missGap ago, nor less than missFloor after
	// any miss (no I/O happens here).
	v.checked[7] = time.Now()
	if v.refreshForMiss("a:1", 7) {
		t.Fatal("refreshed within the slot's gap")
	}
	v.lastMiss = time.Now().Add(time.Hour)
	if v.refreshForMiss("a:1", 8) {
		t.Fatal("refreshed within the floor")
	}
	var nilView *clusterView
	if nilView.refreshForMiss("a:1", 0) {
		t.Fatal("nil view refreshed")
	}
}

func keyInSlot(t *testing.T, slot int) []byte {
	for i := 0; i < 1_000_000; i++ {
		k := []byte(fmt.Sprintf("k%d", i))
		if shard.Slot(k) == slot {
			return k
		}
	}
	t.Fatalf("no key for slot %d", slot)
	return nil
}

func TestSourceNodes(t *testing.T) {
	pool := []string{"127.0.0.1:7001:1 a", "127.0.0.1:7002:1 b"}
	cases := []struct {
		name   string
		typ    string
		dist   string
		server []string
		addrs  string
		owners bool
	}{
		{"single", conf.TypeSingle, "", []string{"127.0.0.1:1"}, "127.0.0.1:1", false},
		{"singles", conf.TypeSingle, "", []string{"127.0.0.1:1", "127.0.0.1:2"}, "127.0.0.1:1,127.0.0.1:2", false},
		{"ketama", conf.TypeTwemproxy, "ketama", pool, "127.0.0.1:7001,127.0.0.1:7002", true},
		{"modula", conf.TypeTwemproxy, "modula", pool, "127.0.0.1:7001,127.0.0.1:7002", true},
		{"random keeps every key", conf.TypeTwemproxy, "random", pool, "127.0.0.1:7001,127.0.0.1:7002", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := conf.Default()
			cfg.Source.Type, cfg.Source.Servers, cfg.Source.Distribution = tc.typ, tc.server, tc.dist
			d := &Daemon{cfg: cfg, log: zap.NewNop()}
			nodes, err := d.sourceNodes(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var addrs []string
			for _, n := range nodes {
				addrs = append(addrs, n.addr)
				if (n.owner.Load() != nil) != tc.owners {
					t.Errorf("%s: owner %v, want owners %v", n.addr, n.owner.Load(), tc.owners)
				}
				if n.alone != (len(nodes) == 1) {
					t.Errorf("%s: alone %v with %d nodes", n.addr, n.alone, len(nodes))
				}
				if n.gates != nodes[0].gates || !n.gates.perHost {
					t.Errorf("%s: gates not shared, or source_safe off", n.addr)
				}
			}
			if got := strings.Join(addrs, ","); got != tc.addrs {
				t.Fatalf("nodes %s, want %s", got, tc.addrs)
			}
		})
	}
	cfg := conf.Default()
	cfg.Source.Type, cfg.Source.Servers = conf.TypeRedisCluster, []string{"127.0.0.1:1"}
	if _, err := (&Daemon{cfg: cfg, log: zap.NewNop()}).sourceNodes(context.Background()); err == nil ||
		!strings.Contains(err.Error(), "no seed") {
		t.Fatalf("cluster with no seed answering: %v", err)
	}
}

// A new master serving every slot of a followed master that serves none any more (its replica,
// promoted) takes over that master's node job; a master that took only part of them does not.
func TestFollowFailover(t *testing.T) {
	v, a, b, s1 := twoMasterView()

	// Part of b's slots on a new master while b keeps the rest: a reshard, not a failover.
	var part, rest slotSet
	part.add(8192, 9000)
	rest.add(9001, 16383)
	v.applyLocked([]clusterMaster{{addr: "a:1", slots: &s1}, {addr: "b:1", slots: &rest}, {addr: "n:1", slots: &part}})
	if b.movedTo != "" || v.notFollowed() != 1 {
		t.Fatalf("a partial reshard taken for a failover: moved to %q, %d not followed", b.movedTo, v.notFollowed())
	}

	// a fails; its replica r:1 now serves a's slots.
	v.applyLocked([]clusterMaster{{addr: "r:1", slots: &s1}, {addr: "b:1", slots: &rest}, {addr: "n:1", slots: &part}})
	if a.movedTo != "r:1" || v.byAddr["r:1"] != a || v.byAddr["a:1"] != nil {
		t.Fatalf("a not followed to r:1: moved to %q, view %v", a.movedTo, v.byAddr)
	}
	if v.order[0] != "r:1" {
		t.Errorf("the map is still asked of a:1 first: %v", v.order)
	}
	if !a.keepKey(0, keyInSlot(t, 100)) || v.notFollowed() != 1 {
		t.Errorf("after the failover: slot 100 kept %v, %d not followed", a.keepKey(0, keyInSlot(t, 100)), v.notFollowed())
	}
}
