package target

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/internal/shard"
)

// testCluster is a Redis Cluster of masters, slots split evenly in order.
type testCluster struct {
	nodes []*redistest.Redis
	cli   []radix.Client
}

// startCluster starts a cluster of n masters (redistest.StartCluster: node i has the slots from
// i*16384/n) with a client for each node.
func startCluster(t testing.TB, n int) *testCluster {
	t.Helper()
	tc := &testCluster{nodes: redistest.StartCluster(t, n).Nodes}
	for _, s := range tc.nodes {
		tc.cli = append(tc.cli, client(t, s.Addr))
	}
	return tc
}

func (tc *testCluster) addrs() []string {
	var out []string
	for _, s := range tc.nodes {
		out = append(out, s.Addr)
	}
	return out
}

// nodeOf returns the index of the node StartCluster gave key's slot to.
func (tc *testCluster) nodeOf(key string) int {
	return shard.Slot([]byte(key)) * len(tc.nodes) / shard.SlotCount
}

func newCluster(t testing.TB, tc *testCluster, o ClusterOptions) *Cluster {
	t.Helper()
	o.Servers = tc.addrs()[:1]
	if o.SourceRDBVersion == 0 {
		o.SourceRDBVersion = 10
	}
	c, err := NewCluster(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestParseClusterNodes(t *testing.T) {
	text := "" +
		"07c3 127.0.0.1:30004@31004 slave e7d1 0 1426238317239 4 connected\n" +
		"67ed 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922 [10923->-292f]\n" +
		"292f :30003@31003 myself,master - 0 0 3 connected 10923-16383\n" +
		"6ec2 127.0.0.1:30005@31005,host.example master,fail - 1426238316232 1426238315228 5 connected\n" +
		"e7d1 127.0.0.1:30001@31001 master - 0 1426238316232 1 connected 0-5459 5460\n"
	owners, err := parseClusterNodes([]byte(text), "127.0.0.1:30003")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		slot int
		want string
	}{{0, "127.0.0.1:30001"}, {5459, "127.0.0.1:30001"}, {5460, "127.0.0.1:30001"}, {5461, "127.0.0.1:30002"},
		{10922, "127.0.0.1:30002"}, {10923, "127.0.0.1:30003"}, {16383, "127.0.0.1:30003"}} {
		if owners[tt.slot] != tt.want {
			t.Errorf("slot %d: %q, want %q", tt.slot, owners[tt.slot], tt.want)
		}
	}
	for _, bad := range []string{
		"a 127.0.0.1:1@2 master - 0 0 1 connected 0-16384\n",
		"a 127.0.0.1:1@2 master - 0 0 1 connected 5-3\n",
		"a 127.0.0.1:1@2 master - 0 0 1 connected x\n",
		"a nohost master - 0 0 1 connected 1\n",
	} {
		if _, err := parseClusterNodes([]byte(bad), "x:1"); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestClusterRestore(t *testing.T) {
	tc := startCluster(t, 3)
	w := newCluster(t, tc, ClusterOptions{})
	if got := w.Masters(); len(got) != 3 {
		t.Fatalf("masters %v", got)
	}
	const n = 3000
	want := make([]int, 3)
	for i := range n {
		k := "key:" + strconv.Itoa(i)
		if i%10 == 0 {
			k = "{tag}:" + strconv.Itoa(i)
		}
		want[tc.nodeOf(k)]++
		if err := w.Restore(stringEntry(0, k, "v"+strconv.Itoa(i), 0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Restore(stringEntry(1, "other-db", "v", 0)); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitRDB(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, c := range tc.cli {
		var size int
		do(t, c, &size, "DBSIZE")
		if size != want[i] {
			t.Errorf("node %d holds %d keys, want %d", i, size, want[i])
		}
	}
	var v string
	do(t, tc.cli[tc.nodeOf("key:7")], &v, "GET", "key:7")
	if v != "v7" {
		t.Errorf("key:7 = %q", v)
	}
	st := w.Stats()
	if st.Restored != n || st.Skipped[SkipDBNonZero] != 1 || len(st.Errors) != 0 {
		t.Errorf("stats: restored %d, skipped %v, errors %v", st.Restored, st.Skipped, st.Errors)
	}
	if addrs := strings.Split(st.Addr, ","); len(addrs) != 3 || len(st.Conns) != 3*2 {
		t.Errorf("stats: addr %q, %d conns", st.Addr, len(st.Conns))
	}
}

// applyAll applies a stream and returns the offset after it.
func applyAll(t *testing.T, w *Cluster, from int64, stream [][]string) int64 {
	t.Helper()
	end := from
	for _, args := range stream {
		cmd := rawCmd(args...)
		end += cmd.N
		if err := w.Apply(cmd, end); err != nil {
			t.Fatal(err)
		}
	}
	return end
}

func TestClusterApplyRouting(t *testing.T) {
	tc := startCluster(t, 3)
	w := newCluster(t, tc, ClusterOptions{})
	ctx := context.Background()
	if err := w.StartOplog(ctx, 100, 0); err != nil {
		t.Fatal(err)
	}
	// a, b, c and d hash to different nodes; {t}x and {t}y share a slot.
	stream := [][]string{
		{"SELECT", "0"},
		{"SET", "old", "1"},
		{"FLUSHALL"},
		{"MSET", "a", "1", "b", "2", "c", "3", "d", "4", "a", "5"},
		{"SET", "e", "x"},
		{"SET", "f", "y"},
		{"DEL", "e", "f", "missing"},
		{"RENAME", "a", "b"}, // across slots: not applied
		{"MULTI"},
		{"SET", "{t}x", "1"},
		{"INCR", "{t}x"},
		{"SET", "{t}y", "z"},
		{"EXEC"},
		{"MULTI"},
		{"SET", "tx1", "1"},
		{"SET", "tx2", "2"},
		{"EXEC"},
		{"PING"},
		{"SELECT", "1"},
		{"SET", "db1", "v"},
		{"SELECT", "0"},
		{"EVAL", "return 1", "0"},
		{"NOSUCHCOMMAND", "k"},
		{"FUNCTION", "FLUSH"},
	}
	end := applyAll(t, w, 100, stream)
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	if off, db := w.Applied(); off != end || db != 0 {
		t.Fatalf("Applied() = %d, %d; want %d, 0", off, db, end)
	}
	want := map[string]string{"a": "5", "b": "2", "c": "3", "d": "4", "{t}x": "2", "{t}y": "z", "tx1": "1", "tx2": "2"}
	total := 0
	for i, c := range tc.cli {
		var keys []string
		do(t, c, &keys, "KEYS", "*")
		total += len(keys)
		for _, k := range keys {
			if tc.nodeOf(k) != i {
				t.Errorf("key %q on node %d, its slot is on %d", k, i, tc.nodeOf(k))
			}
			var v string
			do(t, c, &v, "GET", k)
			if v != want[k] {
				t.Errorf("%q = %q, want %q", k, v, want[k])
			}
		}
	}
	if total != len(want) {
		t.Errorf("%d keys on the cluster, want %d", total, len(want))
	}
	st := w.Stats()
	for reason, n := range map[string]uint64{SkipCrossSlot: 1, CountMultiSplit: 1, SkipControl: 1,
		SkipSelectNonZero: 1, SkipNoKey: 1, SkipUnknown: 1} {
		if st.Skipped[reason] != n {
			t.Errorf("skipped %s = %d, want %d (all: %v)", reason, st.Skipped[reason], n, st.Skipped)
		}
	}
	if len(st.Errors) != 0 {
		t.Errorf("errors %v", st.Errors)
	}
	if len(st.Conns) != 3*2+3 {
		t.Errorf("%d conns, want 9", len(st.Conns))
	}
	ns := w.NodeStats()
	if len(ns) != 3 {
		t.Fatalf("%d node stats", len(ns))
	}
	var sent uint64
	for i, n := range ns {
		if len(n.Conns) != 3 || n.Conns[2].Addr != n.Addr || !strings.Contains(st.Addr, n.Addr) {
			t.Errorf("node %d: addr %s, conns %+v", i, n.Addr, n.Conns)
		}
		sent += n.Conns[2].Sent
	}
	if sent < 20 {
		t.Errorf("oplog conns sent %d commands in all", sent)
	}
}

// TestClusterApplyOffsetWaits checks that Applied stays before a command whose reply is not in
// on one master while the others answer.
func TestClusterApplyOffsetWaits(t *testing.T) {
	tc := startCluster(t, 3)
	w := newCluster(t, tc, ClusterOptions{})
	ctx := context.Background()
	if err := w.StartOplog(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	// Pause node 0's clients: its replies wait while others come back.
	do(t, tc.cli[0], nil, "CLIENT", "PAUSE", "1500", "WRITE")
	var k0, k1 string
	for i := 0; k0 == "" || k1 == ""; i++ {
		k := "k" + strconv.Itoa(i)
		switch tc.nodeOf(k) {
		case 0:
			k0 = k
		case 1:
			k1 = k
		}
	}
	first := applyAll(t, w, 0, [][]string{{"SET", k1, "1"}})
	paused := applyAll(t, w, first, [][]string{{"SET", k0, "1"}})
	end := applyAll(t, w, paused, [][]string{{"SET", k1, "2"}})
	// Once node 1's two replies are in, the paused node's reply is still out.
	w.mu.Lock()
	n1 := w.byAddr[tc.nodes[1].Addr].oplog
	w.mu.Unlock()
	if err := redistest.Poll(time.Second, func() error {
		if n := n1.Stats().Replies; n != 2 {
			return fmt.Errorf("node 1 oplog: %d replies", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if off, _ := w.Applied(); off != first {
		t.Fatalf("applied %d while a reply is out; want %d", off, first)
	}
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	if off, _ := w.Applied(); off != end {
		t.Fatalf("applied %d, want %d", off, end)
	}
}

// TestClusterMovedUnderLoad moves a slot (IMPORTING/MIGRATING, MIGRATE key by key, SETSLOT NODE)
// while INCRs, split MSETs and transactions on its keys flow: every counter must end exact.
func TestClusterMovedUnderLoad(t *testing.T) {
	tc := startCluster(t, 3)
	w := newCluster(t, tc, ClusterOptions{NodeOptions: NodeOptions{Conn: Options{Window: 64}}})
	ctx := context.Background()
	if err := w.StartOplog(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	const tag = "{mv}"
	slot := shard.Slot([]byte(tag))
	from := tc.nodeOf(tag)
	to := (from + 1) % 3
	var ids []string
	for _, i := range []int{from, to} {
		var id string
		do(t, tc.cli[i], &id, "CLUSTER", "MYID")
		ids = append(ids, id)
	}
	const keys = 40
	started := make(chan struct{})
	moved := make(chan error, 1)
	go func() {
		<-started
		moved <- moveSlot(tc, slot, from, to, ids[0], ids[1])
	}()
	var end int64
	rounds := 0
	var movedErr error
	done := false
	for !done || rounds < 400 {
		var stream [][]string
		for k := range keys {
			stream = append(stream, []string{"INCR", tag + strconv.Itoa(k)})
		}
		// New keys created during the move (ASK for keys not on the old node yet).
		stream = append(stream, []string{"INCR", tag + "new" + strconv.Itoa(rounds)},
			[]string{"MSET", tag + "m", strconv.Itoa(rounds), "other" + strconv.Itoa(rounds%50), "x"},
			// Two keys of the moving slot: TRYAGAIN while one has moved and the other not.
			[]string{"MSET", tag + "p1", strconv.Itoa(rounds), tag + "p2", strconv.Itoa(rounds)},
			[]string{"MULTI"}, []string{"INCR", tag + "tx"}, []string{"INCR", tag + "tx"}, []string{"EXEC"})
		end = applyAll(t, w, end, stream)
		rounds++
		if rounds == 100 {
			close(started)
		}
		if !done && rounds > 100 {
			select {
			case movedErr = <-moved:
				done = true
			default:
			}
		}
		if rounds > 100000 {
			t.Fatal("the slot move never finished")
		}
	}
	if movedErr != nil {
		t.Fatal(movedErr)
	}
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	if off, _ := w.Applied(); off != end {
		t.Errorf("applied %d, want %d", off, end)
	}
	dst := tc.cli[to]
	for k := range keys {
		var v int
		do(t, dst, &v, "GET", tag+strconv.Itoa(k))
		if v != rounds {
			t.Errorf("counter %d = %d, want %d", k, v, rounds)
		}
	}
	var v int
	do(t, dst, &v, "GET", tag+"tx")
	if v != 2*rounds {
		t.Errorf("transaction counter %d, want %d", v, 2*rounds)
	}
	do(t, dst, &v, "GET", tag+"m")
	if v != rounds-1 {
		t.Errorf("MSET key %d, want %d", v, rounds-1)
	}
	for _, k := range []string{"p1", "p2"} {
		do(t, dst, &v, "GET", tag+k)
		if v != rounds-1 {
			t.Errorf("MSET key %s %d, want %d", k, v, rounds-1)
		}
	}
	var size int
	do(t, tc.cli[from], &size, "CLUSTER", "COUNTKEYSINSLOT", strconv.Itoa(slot))
	if size != 0 {
		t.Errorf("%d keys left in the moved slot on the old node", size)
	}
	do(t, dst, &size, "CLUSTER", "COUNTKEYSINSLOT", strconv.Itoa(slot))
	if size != keys+rounds+4 {
		t.Errorf("%d keys in the moved slot, want %d", size, keys+rounds+4)
	}
	st := w.Stats()
	if st.Retried == 0 || len(st.Errors) != 0 {
		t.Errorf("retried %d, errors %v: the move was not seen or cost errors", st.Retried, st.Errors)
	}
	w.mu.Lock()
	t.Logf("%d rounds, %d commands resent (%d after MOVED/ASK, %d after TRYAGAIN)", rounds, st.Retried,
		w.redirected, w.retried)
	w.mu.Unlock()
}

// moveSlot moves slot from node `from` to node `to` the way redis-cli --cluster reshard does.
func moveSlot(tc *testCluster, slot, from, to int, fromID, toID string) error {
	ctx := context.Background()
	s := strconv.Itoa(slot)
	src, dst := tc.cli[from], tc.cli[to]
	if err := dst.Do(ctx, radix.Cmd(nil, "CLUSTER", "SETSLOT", s, "IMPORTING", fromID)); err != nil {
		return err
	}
	if err := src.Do(ctx, radix.Cmd(nil, "CLUSTER", "SETSLOT", s, "MIGRATING", toID)); err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(tc.nodes[to].Addr)
	for {
		var keys []string
		if err := src.Do(ctx, radix.Cmd(&keys, "CLUSTER", "GETKEYSINSLOT", s, "3")); err != nil {
			return err
		}
		if len(keys) == 0 {
			break
		}
		args := append([]string{host, port, "", "0", "5000", "KEYS"}, keys...)
		if err := src.Do(ctx, radix.Cmd(nil, "MIGRATE", args...)); err != nil {
			return err
		}
	}
	// The new owner first, then the old one (as redis-cli does), then the rest.
	order := []int{to, from}
	for i := range tc.cli {
		if i != to && i != from {
			order = append(order, i)
		}
	}
	for _, i := range order {
		if err := tc.cli[i].Do(ctx, radix.Cmd(nil, "CLUSTER", "SETSLOT", s, "NODE", toID)); err != nil {
			return err
		}
	}
	return nil
}

// TestClusterRestoreRedirected loads keys through a stale slot map: one slot already given to
// another master (MOVED), another being migrated (ASK). Every key must land on its new owner.
func TestClusterRestoreRedirected(t *testing.T) {
	tc := startCluster(t, 3)
	w := newCluster(t, tc, ClusterOptions{})
	ctx := context.Background()
	ids := make([]string, 3)
	for i, c := range tc.cli {
		do(t, c, &ids[i], "CLUSTER", "MYID")
	}
	movedTag, askTag := "{a}", "{b}"
	mSlot, aSlot := strconv.Itoa(shard.Slot([]byte(movedTag))), strconv.Itoa(shard.Slot([]byte(askTag)))
	mFrom, aFrom := tc.nodeOf(movedTag), tc.nodeOf(askTag)
	mTo, aTo := (mFrom+1)%3, (aFrom+2)%3
	// The slot of {a} changes owner everywhere (it holds no key yet).
	for _, i := range []int{mTo, mFrom, 3 - mTo - mFrom} {
		do(t, tc.cli[i], nil, "CLUSTER", "SETSLOT", mSlot, "NODE", ids[mTo])
	}
	// The slot of {b} is being migrated: a key not on the old node gets ASK.
	do(t, tc.cli[aTo], nil, "CLUSTER", "SETSLOT", aSlot, "IMPORTING", ids[aFrom])
	do(t, tc.cli[aFrom], nil, "CLUSTER", "SETSLOT", aSlot, "MIGRATING", ids[aTo])
	const n = 200
	for i := range n {
		for _, tag := range []string{movedTag, askTag, "plain"} {
			k := tag + strconv.Itoa(i)
			if err := w.Restore(stringEntry(0, k, "v"+strconv.Itoa(i), 0)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.WaitRDB(ctx); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{aTo, aFrom, 3 - aTo - aFrom} {
		do(t, tc.cli[i], nil, "CLUSTER", "SETSLOT", aSlot, "NODE", ids[aTo])
	}
	count := func(node int, slot string) int {
		var k int
		do(t, tc.cli[node], &k, "CLUSTER", "COUNTKEYSINSLOT", slot)
		return k
	}
	if got := count(mTo, mSlot); got != n {
		t.Errorf("MOVED slot: %d keys on the new owner, want %d", got, n)
	}
	if got := count(aTo, aSlot); got != n {
		t.Errorf("ASK slot: %d keys on the importing node, want %d", got, n)
	}
	var v string
	do(t, tc.cli[aTo], &v, "GET", askTag+"7")
	if v != "v7" {
		t.Errorf("%s7 = %q", askTag, v)
	}
	st := w.Stats()
	if st.Restored != 3*n || len(st.Errors) != 0 || st.Retried < n+1 {
		t.Errorf("restored %d, errors %v, retried %d", st.Restored, st.Errors, st.Retried)
	}
}

// TestClusterReconnect cuts one master's oplog connection: Apply reports ErrBroken, Reconnect
// gives the acknowledged position, and the stream resent from there ends exact: INCRs the other
// masters acknowledged after that position are not run twice.
func TestClusterReconnect(t *testing.T) {
	tc := startCluster(t, 3)
	w := newCluster(t, tc, ClusterOptions{})
	ctx := context.Background()
	if err := w.StartOplog(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	var stream [][]string
	var ends []int64
	var end int64
	for i := range 3000 {
		args := []string{"INCR", "k" + strconv.Itoa(i%300)}
		stream = append(stream, args)
		end += rawCmd(args...).N
		ends = append(ends, end)
	}
	applyAll(t, w, 0, stream[:1000])
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	if off, _ := w.Applied(); off != ends[999] {
		t.Fatalf("applied %d, want %d", off, ends[999])
	}
	do(t, tc.cli[0], nil, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
	i, broke := 1000, false
	for ; i < len(stream); i++ {
		cmd := rawCmd(stream[i]...)
		if err := w.Apply(cmd, ends[i]); err != nil {
			if !errors.Is(err, ErrBroken) {
				t.Fatalf("Apply: %v, want ErrBroken", err)
			}
			broke = true
			break
		}
	}
	if !broke {
		if err := w.WaitOplog(ctx); err == nil {
			t.Fatal("the cut connection was never noticed")
		}
	}
	off, db, err := w.Reconnect(ctx)
	if err != nil || db != 0 || off < ends[999] {
		t.Fatalf("Reconnect: %d, %d, %v; want at least %d", off, db, err, ends[999])
	}
	from := 0
	for from < len(ends) && ends[from] <= off {
		from++
	}
	t.Logf("broke at %d (%v), resend from %d", i, broke, from)
	applyAll(t, w, off, stream[from:])
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := w.Applied(); got != end {
		t.Fatalf("applied %d, want %d", got, end)
	}
	for k := range 300 {
		key := "k" + strconv.Itoa(k)
		var v string
		do(t, tc.cli[tc.nodeOf(key)], &v, "GET", key)
		if v != "10" {
			t.Fatalf("%s = %q, want 10: commands acknowledged before the cut ran again, or were lost", key, v)
		}
	}
	st := w.Stats()
	t.Logf("%d commands passed over as already applied", st.Skipped[SkipAlreadyApplied])
}

// BenchmarkClusterApply forwards SET commands over every slot through a 3-master cluster's
// ordered pipelines, plain and checkpointed (consecutive keys are in different slots: about
// one transaction per command); the timed part includes the wait for the last reply.
func BenchmarkClusterApply(b *testing.B) {
	b.Run("plain", func(b *testing.B) {
		benchClusterApply(b, newCluster(b, startCluster(b, 3), ClusterOptions{}))
	})
	b.Run("checkpointed", func(b *testing.B) {
		benchClusterApply(b, newCheckpointedCluster(b, startCluster(b, 3)))
	})
}

func benchClusterApply(b *testing.B, w *Cluster) {
	ctx := context.Background()
	if err := w.StartOplog(ctx, 0, 0); err != nil {
		b.Fatal(err)
	}
	var cmd aof.Command
	var end int64
	val := strings.Repeat("v", 100)
	b.ReportAllocs()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		key := "key:" + strconv.Itoa(i)
		cmd.Raw = aof.AppendCommandString(cmd.Raw[:0], "SET", key, val)
		cmd.Args = append(cmd.Args[:0], []byte("SET"), []byte(key), []byte(val))
		cmd.N = int64(len(cmd.Raw))
		end += cmd.N
		if err := w.Apply(&cmd, end); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.WaitOplog(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
	if off, _ := w.Applied(); off != end {
		b.Fatalf("applied %d, want %d", off, end)
	}
}

// TestClusterTryAgain sends an MSET over two keys of a slot being migrated, one already moved:
// the node answers TRYAGAIN until the move ends; the MSET is resent (by the resolver, the
// stream being idle) and lands on the new owner.
func TestClusterTryAgain(t *testing.T) {
	tc := startCluster(t, 3)
	w := newCluster(t, tc, ClusterOptions{})
	ctx := context.Background()
	if err := w.StartOplog(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	const tag = "{ta}"
	slot := strconv.Itoa(shard.Slot([]byte(tag)))
	from := tc.nodeOf(tag)
	to := (from + 1) % 3
	ids := make([]string, 3)
	for i, c := range tc.cli {
		do(t, c, &ids[i], "CLUSTER", "MYID")
	}
	end := applyAll(t, w, 0, [][]string{{"SET", tag + "1", "a"}, {"SET", tag + "2", "b"}})
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	do(t, tc.cli[to], nil, "CLUSTER", "SETSLOT", slot, "IMPORTING", ids[from])
	do(t, tc.cli[from], nil, "CLUSTER", "SETSLOT", slot, "MIGRATING", ids[to])
	host, port, _ := net.SplitHostPort(tc.nodes[to].Addr)
	do(t, tc.cli[from], nil, "MIGRATE", host, port, tag+"1", "0", "5000")
	end = applyAll(t, w, end, [][]string{{"MSET", tag + "1", "x", tag + "2", "y"}})
	if err := redistest.Poll(10*time.Second, func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.retried == 0 {
			return fmt.Errorf("no TRYAGAIN yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if off, _ := w.Applied(); off == end {
		t.Fatal("applied past a refused MSET")
	}
	do(t, tc.cli[from], nil, "MIGRATE", host, port, tag+"2", "0", "5000")
	for _, i := range []int{to, from, 3 - to - from} {
		do(t, tc.cli[i], nil, "CLUSTER", "SETSLOT", slot, "NODE", ids[to])
	}
	if err := redistest.Poll(10*time.Second, func() error {
		if off, _ := w.Applied(); off != end {
			return fmt.Errorf("applied %d, want %d", off, end)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{tag + "1": "x", tag + "2": "y"} {
		var v string
		do(t, tc.cli[to], &v, "GET", k)
		if v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	if st := w.Stats(); len(st.Errors) != 0 {
		t.Errorf("errors %v", st.Errors)
	}
}

// TestClusterAppliedPrefix checks the applied position: it moves over the acknowledged prefix
// of the stream only, a split command counts once all its parts are in, skips pass with it.
func TestClusterAppliedPrefix(t *testing.T) {
	type op struct {
		push      int64 // end offset of a command to push (0: none)
		parts     int   // replies it awaits (0: a skip)
		reply     int   // index of a pushed command to acknowledge once (-1: none)
		wantApply int64
	}
	for _, tc := range []struct {
		name string
		ops  []op
	}{
		{"in order", []op{{10, 1, -1, 0}, {20, 1, -1, 0}, {0, 0, 0, 10}, {0, 0, 1, 20}}},
		{"out of order", []op{{10, 1, -1, 0}, {20, 1, -1, 0}, {0, 0, 1, 0}, {0, 0, 0, 20}}},
		{"split waits for every part", []op{{10, 3, -1, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 10}}},
		{"skip alone", []op{{10, 0, -1, 10}, {20, 0, -1, 20}}},
		{"skip behind a pending", []op{{10, 1, -1, 0}, {15, 0, -1, 0}, {20, 0, -1, 0}, {0, 0, 0, 20}}},
		{"skip between", []op{{10, 1, -1, 0}, {15, 0, -1, 0}, {20, 1, -1, 0}, {0, 0, 0, 15}, {0, 0, 2, 20}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Cluster{&sharded{errs: map[string]uint64{}, skipped: map[string]uint64{}}}
			var seqs []uint64
			for i, o := range tc.ops {
				if o.push > 0 {
					seqs = append(seqs, c.push(o.push, o.parts))
				}
				if o.reply >= 0 {
					c.mu.Lock()
					c.done(seqs[o.reply])
					c.mu.Unlock()
				}
				if off, _ := c.Applied(); off != o.wantApply {
					t.Fatalf("step %d: applied %d, want %d", i, off, o.wantApply)
				}
			}
		})
	}
}

func FuzzParseClusterNodes(f *testing.F) {
	f.Add("67ed 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922 [10923->-292f]\n")
	f.Add("292f :30003@31003 myself,master - 0 0 3 connected 10923-16383\n")
	f.Add("a 127.0.0.1:1@2 master - 0 0 1 connected 0-16384\n")
	f.Fuzz(func(t *testing.T, text string) {
		owners, err := parseClusterNodes([]byte(text), "127.0.0.1:1")
		if err != nil {
			return
		}
		for _, a := range owners {
			if a != "" && !strings.Contains(a, ":") {
				t.Fatalf("owner %q has no port", a)
			}
		}
	})
}

// TestClusterRewrite routes keys sent as native commands: a value over BigKeyBytes, and one the
// decoder did not hold (ErrNeedsRewrite, then Rewrite with a reader, as the daemon does).
func TestClusterRewrite(t *testing.T) {
	tc := startCluster(t, 3)
	w := newCluster(t, tc, ClusterOptions{NodeOptions: NodeOptions{BigKeyBytes: 4}})
	ctx := context.Background()
	keys := []string{"a", "b", "c", "d", "e", "f"}
	for _, k := range keys {
		if err := w.Restore(stringEntry(0, k, "value-"+k, 0)); err != nil {
			t.Fatal(err)
		}
	}
	e := stringEntry(0, "held-elsewhere", "far", 0)
	raw := e.Value
	e.Value = nil
	if err := w.Restore(e); !errors.Is(err, ErrNeedsRewrite) {
		t.Fatalf("Restore without a value: %v, want ErrNeedsRewrite", err)
	}
	if err := w.Rewrite(e, strings.NewReader(string(raw))); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitRDB(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"held-elsewhere": "far"}
	for _, k := range keys {
		want[k] = "value-" + k
	}
	for k, v := range want {
		var got string
		do(t, tc.cli[tc.nodeOf(k)], &got, "GET", k)
		if got != v {
			t.Errorf("%s = %q on node %d, want %q", k, got, tc.nodeOf(k), v)
		}
	}
	// The string not held goes as one RESTORE read from its reader (see Single.Rewrite).
	if st := w.Stats(); st.Rewritten != uint64(len(keys)) || st.RestoresFromFile != 1 || len(st.Errors) != 0 {
		t.Errorf("rewritten %d, restored from a reader %d, errors %v", st.Rewritten, st.RestoresFromFile, st.Errors)
	}
}

// TestClusterKeepAcked checks which commands a resend after Reconnect passes over: those
// acknowledged by every master concerned, up to the first acknowledged by some only.
func TestClusterKeepAcked(t *testing.T) {
	c := &Cluster{&sharded{errs: map[string]uint64{}, skipped: map[string]uint64{}}}
	s1 := c.push(10, 1) // no reply: resent
	s2 := c.push(20, 1) // acknowledged: passed over
	c.push(25, 0)       // a skip
	s3 := c.push(30, 2) // one part of two acknowledged: resent whole
	s4 := c.push(40, 1) // acknowledged, but after s3: resent
	c.mu.Lock()
	c.done(s2)
	c.done(s3)
	c.done(s4)
	c.keepAcked()
	c.mu.Unlock()
	_ = s1
	c.seqs = seqQueue{}
	for _, tt := range []struct {
		end  int64
		want bool
	}{{10, false}, {20, true}, {20, false}, {30, false}, {40, false}} {
		if got := c.alreadyApplied(tt.end); got != tt.want {
			t.Errorf("alreadyApplied(%d) = %v, want %v", tt.end, got, tt.want)
		}
	}
	if c.skipped[SkipAlreadyApplied] != 1 {
		t.Errorf("already_applied %d, want 1", c.skipped[SkipAlreadyApplied])
	}
}
