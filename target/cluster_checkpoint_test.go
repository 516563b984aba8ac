package target

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/shard"
)

func newCheckpointedCluster(t testing.TB, tc *testCluster) *Cluster {
	t.Helper()
	return newCluster(t, tc, ClusterOptions{NodeOptions: NodeOptions{CheckpointKey: testCheckpointKey,
		Replid: func() string { return "r1" }}})
}

// replayAll applies cmds (ending at ends) from the first after from, as the daemon does: on an
// error calling for it, Reconnect and resend from the position it returns. It returns how many
// times it reconnected.
func replayAll(t *testing.T, w Writer, cmds []*aof.Command, ends []int64, from int64) int {
	t.Helper()
	ctx := context.Background()
	reconnects := 0
	i := 0
	for i < len(ends) && ends[i] <= from {
		i++
	}
	for i < len(cmds) {
		err := w.Apply(cmds[i], ends[i])
		if err == nil {
			i++
			continue
		}
		if !errors.Is(err, ErrRetry) && !errors.Is(err, ErrBroken) {
			t.Fatalf("apply at %d: %v", ends[i], err)
		}
		var off int64
		for tries := 0; ; tries++ {
			if off, _, err = w.Reconnect(ctx); err == nil {
				break
			}
			if tries > 200 || errors.Is(err, ErrTargetLost) {
				t.Fatalf("reconnect: %v", err)
			}
		}
		reconnects++
		i = 0
		for i < len(ends) && ends[i] <= off {
			i++
		}
	}
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	return reconnects
}

// TestClusterCheckpoints: the base and each master's first slot are stored when the stream
// starts; each slot's commands go in transactions of that slot with its checkpoint; at the end
// the base is where the stream is, and the target's ReadCheckpoint finds it.
func TestClusterCheckpoints(t *testing.T) {
	tc := startCluster(t, 3)
	w := newCheckpointedCluster(t, tc)
	ctx := context.Background()
	if err := w.StartOplog(ctx, 100, 0); err != nil {
		t.Fatal(err)
	}
	baseNode := tc.nodeOf(testCheckpointKey)
	var v string
	do(t, tc.cli[baseNode], &v, "GET", testCheckpointKey)
	if v != "r1 100 0" {
		t.Errorf("base after StartOplog: %q, want \"r1 100 0\"", v)
	}
	for i := range 3 {
		first := i * shard.SlotCount / 3
		do(t, tc.cli[i], &v, "GET", SlotCheckpointKey(testCheckpointKey, first))
		if v != "r1 100 0" {
			t.Errorf("node %d, slot %d after StartOplog: %q, want \"r1 100 0\"", i, first, v)
		}
	}
	cmds, ends := incrStream(3000, 50, 100)
	replayAll(t, w, cmds, ends, 100)
	end := ends[len(ends)-1]
	if off, _ := w.Applied(); off != end {
		t.Fatalf("applied %d, want %d", off, end)
	}
	want := Checkpoint{Replid: "r1", Offset: end}.String()
	do(t, tc.cli[baseNode], &v, "GET", testCheckpointKey)
	if v != want {
		t.Errorf("base %q, want %q", v, want)
	}
	last := string(cmds[len(cmds)-1].Args[1])
	slot := shard.Slot([]byte(last))
	do(t, tc.cli[tc.nodeOf(last)], &v, "GET", SlotCheckpointKey(testCheckpointKey, slot))
	if v != want {
		t.Errorf("slot %d of the last command: checkpoint %q, want %q", slot, v, want)
	}
	for k := range 50 {
		key := "ctr:" + strconv.Itoa(k)
		do(t, tc.cli[tc.nodeOf(key)], &v, "GET", key)
		if v != "60" {
			t.Errorf("%s = %s, want 60", key, v)
		}
	}
	tg, err := New(KindCluster, Config{Servers: []shard.Server{{Addr: tc.nodes[0].Addr}}})
	if err != nil {
		t.Fatal(err)
	}
	if cp, ok, err := tg.ReadCheckpoint(ctx, testCheckpointKey); err != nil || !ok || cp.Offset != end {
		t.Errorf("ReadCheckpoint: %+v %v %v, want offset %d", cp, ok, err, end)
	}
	if err := w.CheckTarget(ctx); err != nil {
		t.Errorf("CheckTarget on an intact cluster: %v", err)
	}
}

// TestClusterResumeSkips: slots that stopped at different positions (as after a crash, each
// having run its commands up to its own checkpoint) and a base before them all: the stream
// resent from the base runs each slot's commands after its own position only.
func TestClusterResumeSkips(t *testing.T) {
	tc := startCluster(t, 3)
	cmds, ends := incrStream(3000, 60, 0)
	stop := func(slot int) int { return 500 + slot%2000 } // per slot: the commands it ran
	want, ran := map[string]int{}, map[string]int{}
	for i, cmd := range cmds {
		k := string(cmd.Args[1])
		want[k]++
		if i < stop(shard.Slot(cmd.Args[1])) {
			ran[k]++
		}
	}
	base := ends[499]
	for k, n := range ran {
		node := tc.cli[tc.nodeOf(k)]
		do(t, node, nil, "SET", k, strconv.Itoa(n))
		s := shard.Slot([]byte(k))
		do(t, node, nil, "SET", SlotCheckpointKey(testCheckpointKey, s), Checkpoint{Replid: "r1", Offset: ends[stop(s)-1]}.String())
	}
	do(t, tc.cli[tc.nodeOf(testCheckpointKey)], nil, "SET", testCheckpointKey, Checkpoint{Replid: "r1", Offset: base}.String())
	w := newCheckpointedCluster(t, tc)
	ctx := context.Background()
	if err := w.StartOplog(ctx, base, 0); err != nil {
		t.Fatal(err)
	}
	replayAll(t, w, cmds, ends, base)
	for k, n := range want {
		var v string
		do(t, tc.cli[tc.nodeOf(k)], &v, "GET", k)
		if v != strconv.Itoa(n) {
			t.Errorf("%s = %s, want %d (applied twice or lost)", k, v, n)
		}
	}
	skipped := 0
	for i := 500; i < len(cmds); i++ {
		if i < stop(shard.Slot(cmds[i].Args[1])) {
			skipped++
		}
	}
	if got := w.Stats().Skipped[SkipAlreadyApplied]; got != uint64(skipped) {
		t.Errorf("already_applied %d, want %d", got, skipped)
	}
}

// TestClusterCheckpointFlushAll: a FLUSHALL in the stream is a barrier: sent once everything
// before it is acknowledged, the base and the nodes' checkpoints stored again after it; the
// target then passes CheckTarget, and holds what came after it only.
func TestClusterCheckpointFlushAll(t *testing.T) {
	tc := startCluster(t, 3)
	w := newCheckpointedCluster(t, tc)
	ctx := context.Background()
	if err := w.StartOplog(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	before, _ := incrStream(300, 30, 0)
	after, _ := incrStream(90, 30, 0)
	stream := append(append(before, rawCmd("FLUSHALL")), after...)
	var ends []int64
	var end int64
	for _, c := range stream {
		end += c.N
		ends = append(ends, end)
	}
	replayAll(t, w, stream, ends, 0)
	for k := range 30 {
		key := "ctr:" + strconv.Itoa(k)
		var v string
		do(t, tc.cli[tc.nodeOf(key)], &v, "GET", key)
		if v != "3" {
			t.Errorf("%s = %s, want 3", key, v)
		}
	}
	var v string
	do(t, tc.cli[tc.nodeOf(testCheckpointKey)], &v, "GET", testCheckpointKey)
	if v != (Checkpoint{Replid: "r1", Offset: end}).String() {
		t.Errorf("base %q after the FLUSHALL, want offset %d", v, end)
	}
	if err := w.CheckTarget(ctx); err != nil {
		t.Errorf("CheckTarget after the FLUSHALL: %v", err)
	}
}

// TestClusterCheckTargetLost: a master that lost its data (flushed behind rmtd's back, as when
// it restarts empty) is found by CheckTarget and by Reconnect, naming it.
func TestClusterCheckTargetLost(t *testing.T) {
	tc := startCluster(t, 3)
	w := newCheckpointedCluster(t, tc)
	ctx := context.Background()
	if err := w.StartOplog(ctx, 10, 0); err != nil {
		t.Fatal(err)
	}
	cmds, ends := incrStream(300, 30, 10)
	replayAll(t, w, cmds, ends, 10)
	lost := (tc.nodeOf(testCheckpointKey) + 1) % 3 // not the base's node
	do(t, tc.cli[lost], nil, "FLUSHALL")
	err := w.CheckTarget(ctx)
	if !errors.Is(err, ErrTargetLost) {
		t.Fatalf("CheckTarget after a master lost its data: %v, want ErrTargetLost", err)
	}
	t.Log(err)
	if _, _, err := w.Reconnect(ctx); !errors.Is(err, ErrTargetLost) {
		t.Fatalf("Reconnect after a master lost its data: %v, want ErrTargetLost", err)
	}
}

// TestClusterCheckpointReconnect: the oplog connections are killed on the servers in the middle
// of the stream, then a slot moves to another master under it (its batches MOVED); each time
// the stream is resent from the position Reconnect returns, and every counter is exact.
func TestClusterCheckpointReconnect(t *testing.T) {
	tc := startCluster(t, 3)
	w := newCheckpointedCluster(t, tc)
	ctx := context.Background()
	if err := w.StartOplog(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	cmds, ends := incrStream(30000, 40, 0)
	want := map[string]int{}
	for _, c := range cmds {
		want[string(c.Args[1])]++
	}
	const moving = "ctr:7"
	slot := shard.Slot([]byte(moving))
	from := tc.nodeOf(moving)
	to := (from + 1) % 3
	ids := make([]string, 3)
	for i, c := range tc.cli {
		do(t, c, &ids[i], "CLUSTER", "MYID")
	}
	q1, q2 := len(cmds)/3, 2*len(cmds)/3
	reconnects := replayAll(t, w, cmds[:q1], ends[:q1], 0)
	for i := range 3 {
		do(t, tc.cli[i], nil, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
	}
	reconnects += replayAll(t, w, cmds[:q2], ends[:q2], ends[q1-1])
	if err := moveSlot(tc, slot, from, to, ids[from], ids[to]); err != nil {
		t.Fatal(err)
	}
	moved := replayAll(t, w, cmds, ends, ends[q2-1])
	if moved < 1 {
		t.Errorf("no reconnect after the slot moved: its batch was not redirected")
	}
	if st := w.Stats(); st.Retried == 0 || st.Errors["retry_MOVED"] != 0 || st.Errors["retry_ASK"] != 0 {
		t.Errorf("after the move: retried %d, errors %v: a redirect is to be counted as retried, not as an error",
			st.Retried, st.Errors)
	}
	reconnects += moved
	for k, n := range want {
		var v string
		node := tc.nodeOf(k)
		if k == moving {
			node = to
		}
		do(t, tc.cli[node], &v, "GET", k)
		if v != strconv.Itoa(n) {
			t.Errorf("%s = %s, want %d", k, v, n)
		}
	}
	var cp string
	do(t, tc.cli[to], &cp, "GET", SlotCheckpointKey(testCheckpointKey, slot))
	if cp != (Checkpoint{Replid: "r1", Offset: ends[len(ends)-1]}).String() && cp == "" {
		t.Errorf("the moved slot's checkpoint is not on its new master")
	}
	if reconnects < 2 {
		t.Errorf("%d reconnects: the kill or the move went unnoticed", reconnects)
	}
	t.Logf("%d reconnects, %d passed over as already applied", reconnects, w.Stats().Skipped[SkipAlreadyApplied])
}

// checkWhileStreaming runs CheckTarget in a loop while cmds are applied (flushing often, so
// that batches are acknowledged during the reads): a batch acknowledged in the middle of a
// check is no loss, and none may be reported.
func checkWhileStreaming(t *testing.T, w Writer, cmds []*aof.Command, ends []int64) {
	t.Helper()
	ctx := context.Background()
	stop := make(chan struct{})
	lost := make(chan error, 1)
	checks := 0
	go func() {
		defer close(lost)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := w.CheckTarget(ctx); errors.Is(err, ErrTargetLost) {
				lost <- err
				return
			}
			checks++
		}
	}()
	for i, c := range cmds {
		if err := w.Apply(c, ends[i]); err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	close(stop)
	if err := <-lost; err != nil {
		t.Fatalf("a healthy target reported as having lost data: %v", err)
	}
	if checks < 3 {
		t.Errorf("only %d checks ran during the stream", checks)
	}
}

// TestClusterCheckTargetWhileBatchesRun: see checkWhileStreaming.
func TestClusterCheckTargetWhileBatchesRun(t *testing.T) {
	tc := startCluster(t, 3)
	w := newCheckpointedCluster(t, tc)
	if err := w.StartOplog(context.Background(), 0, 0); err != nil {
		t.Fatal(err)
	}
	cmds, ends := incrStream(60000, 20, 0)
	checkWhileStreaming(t, w, cmds, ends)
}

// TestTwemproxyCheckTargetWhileBatchesRun: see checkWhileStreaming.
func TestTwemproxyCheckTargetWhileBatchesRun(t *testing.T) {
	p := startPool(t, 3, "fnv1a_64", "ketama")
	w := newCheckpointedTwemproxy(t, p)
	if err := w.StartOplog(context.Background(), 0, 0); err != nil {
		t.Fatal(err)
	}
	cmds, ends := incrStream(60000, 20, 0)
	checkWhileStreaming(t, w, cmds, ends)
}
