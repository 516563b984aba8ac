package target

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/internal/shard"
)

func newCheckpointedTwemproxy(t testing.TB, p *testPool) *Twemproxy {
	t.Helper()
	w, err := NewTwemproxy(context.Background(), TwemproxyOptions{Servers: p.members, Hash: "fnv1a_64",
		Distribution: "ketama", HashTag: "{}", NodeOptions: NodeOptions{SourceRDBVersion: 10,
			CheckpointKey: testCheckpointKey, Replid: func() string { return "r1" }}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// incrStream is n INCRs over keys "ctr:0".."ctr:<keys-1>" in turn, with each command's end
// offset when the stream starts at from.
func incrStream(n, keys int, from int64) (cmds []*aof.Command, ends []int64) {
	end := from
	for i := range n {
		cmd := rawCmd("INCR", "ctr:"+strconv.Itoa(i%keys))
		end += cmd.N
		cmds, ends = append(cmds, cmd), append(ends, end)
	}
	return cmds, ends
}

// TestTwemproxyCheckpoints: each backend stores the source node's position in the batch of its
// commands, idle ones too; the target's ReadCheckpoint gives the lowest, and ClearCheckpoint
// removes every backend's.
func TestTwemproxyCheckpoints(t *testing.T) {
	p := startPool(t, 3, "fnv1a_64", "ketama")
	w := newCheckpointedTwemproxy(t, p)
	ctx := context.Background()
	if err := w.StartOplog(ctx, 100, 0); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		var v string
		do(t, p.cli[i], &v, "GET", UnitCheckpointKey(testCheckpointKey, i))
		if v != "r1 100 0" {
			t.Errorf("backend %d after StartOplog: checkpoint %q, want \"r1 100 0\"", i, v)
		}
	}
	cmds, ends := incrStream(3000, 50, 100)
	for i, cmd := range cmds {
		if err := w.Apply(cmd, ends[i]); err != nil {
			t.Fatal(err)
		}
	}
	end := ends[len(ends)-1]
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	if off, _ := w.Applied(); off != end {
		t.Fatalf("applied %d, want %d", off, end)
	}
	want := Checkpoint{Replid: "r1", Offset: end}.String()
	for i := range 3 {
		var v string
		do(t, p.cli[i], &v, "GET", UnitCheckpointKey(testCheckpointKey, i))
		if v != want {
			t.Errorf("backend %d: checkpoint %q, want %q", i, v, want)
		}
	}
	tg, err := New(KindTwemproxy, Config{Servers: p.members, Hash: "fnv1a_64", Distribution: "ketama", HashTag: "{}"})
	if err != nil {
		t.Fatal(err)
	}
	if tr := tg.Traits(); !tr.Checkpoint || !tr.CheckpointUnits {
		t.Errorf("traits %+v: want checkpoints per unit", tr)
	}
	// One backend behind: the lowest is where a restart resumes.
	do(t, p.cli[1], nil, "SET", UnitCheckpointKey(testCheckpointKey, 1), "r1 150 0")
	if cp, ok, err := tg.ReadCheckpoint(ctx, testCheckpointKey); err != nil || !ok || cp.Offset != 150 {
		t.Errorf("ReadCheckpoint: %+v %v %v, want offset 150", cp, ok, err)
	}
	do(t, p.cli[2], nil, "DEL", UnitCheckpointKey(testCheckpointKey, 2))
	if _, ok, err := tg.ReadCheckpoint(ctx, testCheckpointKey); err != nil || ok {
		t.Errorf("ReadCheckpoint with a backend without one: %v %v, want none", ok, err)
	}
	if err := tg.ClearCheckpoint(ctx, testCheckpointKey); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		var n int
		do(t, p.cli[i], &n, "EXISTS", UnitCheckpointKey(testCheckpointKey, i))
		if n != 0 {
			t.Errorf("backend %d: checkpoint left after ClearCheckpoint", i)
		}
	}
}

// TestTwemproxyResumeSkips: backends that stopped at different positions (as after a crash,
// each having run its commands up to its own checkpoint): the stream resent from the lowest
// runs each backend's commands after its own position only, so every counter ends exact.
func TestTwemproxyResumeSkips(t *testing.T) {
	p := startPool(t, 3, "fnv1a_64", "ketama")
	cmds, ends := incrStream(3000, 60, 0)
	stops := []int{500, 1700, 2600} // per backend: the commands it ran before the "crash"
	want := map[string]int{}
	ran := make([]map[string]int, 3)
	for i := range ran {
		ran[i] = map[string]int{}
	}
	for i, cmd := range cmds {
		k := string(cmd.Args[1])
		want[k]++
		if u := p.pick(k); i < stops[u] {
			ran[u][k]++
		}
	}
	for u := range 3 {
		for k, n := range ran[u] {
			do(t, p.cli[u], nil, "SET", k, strconv.Itoa(n))
		}
		do(t, p.cli[u], nil, "SET", UnitCheckpointKey(testCheckpointKey, u),
			Checkpoint{Replid: "r1", Offset: ends[stops[u]-1]}.String())
	}
	w := newCheckpointedTwemproxy(t, p)
	ctx := context.Background()
	from := ends[stops[0]-1]
	if err := w.StartOplog(ctx, from, 0); err != nil {
		t.Fatal(err)
	}
	for i := stops[0]; i < len(cmds); i++ {
		if err := w.Apply(cmds[i], ends[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	for k, n := range want {
		var v string
		do(t, p.cli[p.pick(k)], &v, "GET", k)
		if v != strconv.Itoa(n) {
			t.Errorf("%s = %s, want %d (applied twice or lost)", k, v, n)
		}
	}
	skipped := 0
	for i := stops[0]; i < len(cmds); i++ {
		if i < stops[p.pick(string(cmds[i].Args[1]))] {
			skipped++
		}
	}
	if got := w.Stats().Skipped[SkipAlreadyApplied]; got != uint64(skipped) {
		t.Errorf("already_applied %d, want %d", got, skipped)
	}
}

// TestTwemproxyResumeSplit: an MSET and a DEL over several backends resent after a restart run
// on the backends whose position is before them only.
func TestTwemproxyResumeSplit(t *testing.T) {
	p := startPool(t, 3, "fnv1a_64", "ketama")
	keys := make([]string, 3) // one key per backend, by backend index
	for i := 0; keys[0] == "" || keys[1] == "" || keys[2] == ""; i++ {
		k := "sk" + strconv.Itoa(i)
		if u := p.pick(k); keys[u] == "" {
			keys[u] = k
		}
	}
	stream := []*aof.Command{
		rawCmd("MSET", keys[0], "a", keys[1], "a", keys[2], "a"),
		rawCmd("APPEND", keys[0], "b"), rawCmd("APPEND", keys[1], "b"), rawCmd("APPEND", keys[2], "b"),
		rawCmd("MSET", keys[0], "c", keys[1], "c", keys[2], "c"),
	}
	var ends []int64
	var end int64
	for _, c := range stream {
		end += c.N
		ends = append(ends, end)
	}
	// Backends 0 and 1 stopped after their APPEND, 2 never began: the MSET must not run again
	// on 0 and 1, where the APPEND after it is passed over.
	do(t, p.cli[0], nil, "SET", keys[0], "ab")
	do(t, p.cli[1], nil, "SET", keys[1], "ab")
	positions := []int64{ends[1], ends[2], 0}
	for u, pos := range positions {
		do(t, p.cli[u], nil, "SET", UnitCheckpointKey(testCheckpointKey, u), Checkpoint{Replid: "r1", Offset: pos}.String())
	}
	w := newCheckpointedTwemproxy(t, p)
	ctx := context.Background()
	if err := w.StartOplog(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	for i, c := range stream[:4] { // the last MSET would hide a repeated APPEND
		if err := w.Apply(c, ends[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	for u, k := range keys {
		var v string
		do(t, p.cli[u], &v, "GET", k)
		if v != "ab" {
			t.Errorf("backend %d: %s = %q, want \"ab\"", u, k, v)
		}
	}
}

// TestTwemproxyCheckTargetLost: a backend that lost its checkpoint (restarted empty) is found
// by CheckTarget and by Reconnect, naming the backend.
func TestTwemproxyCheckTargetLost(t *testing.T) {
	p := startPool(t, 3, "fnv1a_64", "ketama")
	w := newCheckpointedTwemproxy(t, p)
	ctx := context.Background()
	if err := w.StartOplog(ctx, 10, 0); err != nil {
		t.Fatal(err)
	}
	cmds, ends := incrStream(300, 30, 10)
	for i, cmd := range cmds {
		if err := w.Apply(cmd, ends[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.CheckTarget(ctx); err != nil {
		t.Fatalf("CheckTarget on an intact pool: %v", err)
	}
	do(t, p.cli[2], nil, "FLUSHALL")
	err := w.CheckTarget(ctx)
	if !errors.Is(err, ErrTargetLost) {
		t.Fatalf("CheckTarget after a backend lost its data: %v, want ErrTargetLost", err)
	}
	t.Log(err)
	if _, _, err := w.Reconnect(ctx); !errors.Is(err, ErrTargetLost) {
		t.Fatalf("Reconnect after a backend lost its data: %v, want ErrTargetLost", err)
	}
}

// TestTwemproxyReconnectExact: the oplog connections are killed on the servers in the middle of
// the stream; after Reconnect the stream is resent from the position it returns, and every
// counter is exact (what ran before the kill is passed over by its backend's checkpoint).
func TestTwemproxyReconnectExact(t *testing.T) {
	p := startPool(t, 3, "fnv1a_64", "ketama")
	w := newCheckpointedTwemproxy(t, p)
	ctx := context.Background()
	if err := w.StartOplog(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	cmds, ends := incrStream(20000, 40, 0)
	want := map[string]int{}
	for _, c := range cmds {
		want[string(c.Args[1])]++
	}
	killed := false
	for i := 0; i < len(cmds); i++ {
		if i == 7000 && !killed {
			killed = true
			for u := range 3 {
				do(t, p.cli[u], nil, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
			}
		}
		err := w.Apply(cmds[i], ends[i])
		if err == nil && i%500 == 0 {
			err = w.Flush()
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrBroken) {
			t.Fatalf("at %d: %v", i, err)
		}
		off, _, rerr := w.Reconnect(ctx)
		for rerr != nil {
			t.Logf("reconnect: %v", rerr)
			off, _, rerr = w.Reconnect(ctx)
		}
		i = -1
		for i+1 < len(ends) && ends[i+1] <= off {
			i++
		}
	}
	if !killed {
		t.Fatal("the connections were never killed")
	}
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	for k, n := range want {
		var v string
		do(t, p.cli[p.pick(k)], &v, "GET", k)
		if v != strconv.Itoa(n) {
			t.Errorf("%s = %s, want %d", k, v, n)
		}
	}
	t.Logf("passed over as already applied: %d", w.Stats().Skipped[SkipAlreadyApplied])
}

// TestTwemproxyReplyLost: a backend runs its batch but the reply is lost (a proxy drops what
// the server sends) and the connection breaks. Reconnect reads that backend's checkpoint, and
// the stream resent from the position it returns passes over that backend's part of it.
func TestTwemproxyReplyLost(t *testing.T) {
	p := startPool(t, 3, "fnv1a_64", "ketama")
	mp := startMuteProxy(t, p.members[0].Addr)
	p.members[0].Addr = mp.addr // the ring goes by the servers' names: the same picks
	w := newCheckpointedTwemproxy(t, p)
	ctx := context.Background()
	if err := w.StartOplog(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	cmds, ends := incrStream(600, 30, 0)
	want := map[string]int{}
	for _, c := range cmds {
		want[string(c.Args[1])]++
	}
	for i := range 300 {
		if err := w.Apply(cmds[i], ends[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	mp.mute.Store(true)
	for i := 300; i < 600; i++ {
		if err := w.Apply(cmds[i], ends[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	key := UnitCheckpointKey(testCheckpointKey, 0)
	if err := redistest.Poll(5*time.Second, func() error {
		var v string
		do(t, p.cli[0], &v, "GET", key)
		if v != (Checkpoint{Replid: "r1", Offset: ends[599]}).String() {
			return fmt.Errorf("checkpoint %q", v)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	mp.breakAll()
	mp.mute.Store(false)
	off, _, err := w.Reconnect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if off >= ends[599] {
		t.Fatalf("Reconnect returned %d: the lost reply was not missed, nothing to test", off)
	}
	i := 0
	for i < len(ends) && ends[i] <= off {
		i++
	}
	for ; i < len(cmds); i++ {
		if err := w.Apply(cmds[i], ends[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	for k, n := range want {
		var v string
		do(t, p.cli[p.pick(k)], &v, "GET", k)
		if v != strconv.Itoa(n) {
			t.Errorf("%s = %s, want %d (backend %d)", k, v, n, p.pick(k))
		}
	}
	if w.Stats().Skipped[SkipAlreadyApplied] == 0 {
		t.Error("nothing passed over as already applied")
	}
}

// TestTwemproxyResumeFlushAll: a FLUSHALL goes to every backend as a part of that backend's
// batch; resent after a restart it runs only on the backends whose position is before it, so
// what a backend applied after it is not wiped, and what came before it on a backend still
// behind is applied and then flushed as on the source.
func TestTwemproxyResumeFlushAll(t *testing.T) {
	p := startPool(t, 3, "fnv1a_64", "ketama")
	keys := make([]string, 3) // one key per backend, by backend index
	for i := 0; keys[0] == "" || keys[1] == "" || keys[2] == ""; i++ {
		k := "fk" + strconv.Itoa(i)
		if u := p.pick(k); keys[u] == "" {
			keys[u] = k
		}
	}
	var stream []*aof.Command
	for _, k := range keys {
		stream = append(stream, rawCmd("INCR", k))
	}
	stream = append(stream, rawCmd("FLUSHALL"))
	for _, k := range keys {
		stream = append(stream, rawCmd("INCR", k), rawCmd("INCR", k))
	}
	var ends []int64
	var end int64
	for _, c := range stream {
		end += c.N
		ends = append(ends, end)
	}
	flush := 3
	// Backend 0 ran everything of its own up to its second INCR after the FLUSHALL; backend 1
	// stopped after its first INCR, before the FLUSHALL; backend 2 never began.
	do(t, p.cli[0], nil, "SET", keys[0], "2")
	do(t, p.cli[1], nil, "SET", keys[1], "1")
	positions := []int64{ends[flush+2], ends[0], 0}
	for u, pos := range positions {
		do(t, p.cli[u], nil, "SET", UnitCheckpointKey(testCheckpointKey, u), Checkpoint{Replid: "r1", Offset: pos}.String())
	}
	w := newCheckpointedTwemproxy(t, p)
	ctx := context.Background()
	if err := w.StartOplog(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	for i, c := range stream {
		if err := w.Apply(c, ends[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	for u, k := range keys {
		var v string
		do(t, p.cli[u], &v, "GET", k)
		if v != "2" {
			t.Errorf("backend %d: %s = %q, want \"2\"", u, k, v)
		}
		var cp string
		do(t, p.cli[u], &cp, "GET", UnitCheckpointKey(testCheckpointKey, u))
		if cp != (Checkpoint{Replid: "r1", Offset: end}).String() {
			t.Errorf("backend %d: checkpoint %q after the FLUSHALL, want offset %d", u, cp, end)
		}
	}
}

// TestTwemproxyStartOplogAgain: a StartOplog that fails on a backend that does not answer leaves
// nothing started, so the call made again once it answers starts the stream (it failed with
// "oplog already started" for ever), with and without checkpoints.
func TestTwemproxyStartOplogAgain(t *testing.T) {
	for _, key := range []string{"", testCheckpointKey} {
		t.Run("checkpoint="+key, func(t *testing.T) {
			p := startPool(t, 2, "fnv1a_64", "ketama")
			proxy := redistest.StartProxy(t, p.members[1].Addr)
			members := append([]shard.Server(nil), p.members...)
			members[1].Addr = proxy.Addr
			w, err := NewTwemproxy(context.Background(), TwemproxyOptions{Servers: members, Hash: "fnv1a_64",
				Distribution: "ketama", HashTag: "{}", NodeOptions: NodeOptions{SourceRDBVersion: 10,
					CheckpointKey: key, Replid: func() string { return "r1" }}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { w.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			proxy.Block()
			if err := w.StartOplog(ctx, 100, 0); err == nil {
				t.Fatal("StartOplog with a backend down: no error")
			}
			proxy.Unblock()
			if err := w.StartOplog(ctx, 100, 0); err != nil {
				t.Fatalf("StartOplog once the backend answers: %v", err)
			}
			cmds, ends := incrStream(200, 20, 100)
			for i, cmd := range cmds {
				if err := w.Apply(cmd, ends[i]); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := w.WaitOplog(ctx); err != nil {
				t.Fatal(err)
			}
			if off, _ := w.Applied(); off != ends[len(ends)-1] {
				t.Errorf("Applied %d, want %d", off, ends[len(ends)-1])
			}
		})
	}
}
