package target

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"

	"github.com/rmt-project/rmt/internal/shard"
	"github.com/rmt-project/rmt/rdb"
)

// A recorded migration, driven through target.New and the Writer interface into every kind of
// target, as the daemon drives it: the snapshot of a source (its keys of every type in dbs 0
// and 1, as DUMP gives them), then a stream of commands that the source runs too. What each
// target holds afterwards must be what the source holds: all of it on a single target, db 0 on
// a cluster or a pool (each key on the node its slot or the ring names), the snapshot in an rdb
// file.

// recordedCmd is one command of the recorded stream; filtered ones are passed with Skip (the
// daemon's filter) and never run on the source.
type recordedCmd struct {
	args     []string
	filtered bool
}

func recordedStream() []recordedCmd {
	exp := strconv.FormatInt(time.Now().Add(2*time.Hour).UnixMilli(), 10)
	var out []recordedCmd
	for _, args := range [][]string{
		{"SELECT", "0"},
		{"SET", "s1", "a"},
		{"INCR", "int"},
		{"INCR", "int"},
		{"APPEND", "str", "-more"},
		{"RPUSH", "list", "c"},
		{"HSET", "hash", "f3", "v3"},
		{"ZADD", "zset", "7", "d"},
		{"SADD", "set", "w"},
		{"MSET", "m1", "1", "m2", "2", "m3", "3", "m4", "4"}, // split per node where it must
		{"DEL", "m2", "bigset", "missing"},
		{"PEXPIREAT", "s1", exp},
		{"MULTI"},
		{"INCR", "{t}a"},
		{"INCR", "{t}a"},
		{"SET", "{t}b", "x"},
		{"EXEC"},
		{"PING"},
		{"XADD", "stream", "4-0", "f", "z"},
		{"SELECT", "1"},
		{"SET", "db1key", "v"},
		{"DEL", "str"},
		{"SELECT", "0"},
		{"UNLINK", "long", "m3"},
		{"PUBLISH", "ch", "m"},
	} {
		out = append(out, recordedCmd{args: args})
	}
	return append(out, recordedCmd{args: []string{"SET", "filtered", "x"}, filtered: true},
		recordedCmd{args: []string{"INCR", "int"}})
}

// recordSnapshot fills the source's dbs and returns its keys as a decoder would give them.
func recordSnapshot(t *testing.T, src string, dbs []int) []*rdb.Entry {
	t.Helper()
	ctx := context.Background()
	sc := client(t, src)
	var out []*rdb.Entry
	for _, db := range dbs {
		fillSource(t, sc, db)
		c, err := radix.Dialer{SelectDB: strconv.Itoa(db)}.Dial(ctx, "tcp", src)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		if err := c.Do(ctx, radix.Cmd(&keys, "KEYS", "*")); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			var payload []byte
			var pexp int64
			if err := c.Do(ctx, radix.Cmd(&payload, "DUMP", k)); err != nil {
				t.Fatal(err)
			}
			if err := c.Do(ctx, radix.Cmd(&pexp, "PEXPIRETIME", k)); err != nil {
				t.Fatal(err)
			}
			e := &rdb.Entry{}
			entryFromDump(t, e, db, k, payload)
			if pexp > 0 {
				e.ExpireMs = pexp
			}
			out = append(out, e)
		}
		c.Close()
	}
	return out
}

// runOnSource runs the stream's commands (not the filtered ones) on the source, in order, on one
// connection so that SELECT holds.
func runOnSource(t *testing.T, src string, stream []recordedCmd) {
	t.Helper()
	ctx := context.Background()
	c, err := radix.Dialer{}.Dial(ctx, "tcp", src)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, rc := range stream {
		if !rc.filtered {
			if err := c.Do(ctx, radix.Cmd(nil, rc.args[0], rc.args[1:]...)); err != nil {
				t.Fatalf("source: %v: %v", rc.args, err)
			}
		}
	}
}

// drive loads the snapshot and applies the stream through w, as the daemon does, and returns
// the offset after the stream.
func drive(t *testing.T, w Writer, entries []*rdb.Entry, stream []recordedCmd) int64 {
	t.Helper()
	ctx := context.Background()
	for _, e := range entries {
		err := w.Restore(e)
		if errors.Is(err, ErrNeedsRewrite) {
			err = w.Rewrite(e, nil)
		}
		if err != nil {
			t.Fatalf("Restore %q: %v", e.Key, err)
		}
	}
	if err := w.WaitRDB(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.StartOplog(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	var end int64
	for _, rc := range stream {
		cmd := rawCmd(rc.args...)
		end += cmd.N
		if rc.filtered {
			w.Skip(cmd, end, "filtered")
			continue
		}
		if err := w.Apply(cmd, end); err != nil {
			t.Fatalf("Apply %v: %v", rc.args, err)
		}
	}
	if err := w.Flush(); err != nil { // the stream has nothing more for now
		t.Fatal(err)
	}
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	if off, db := w.Applied(); off != end || db != 0 {
		t.Fatalf("Applied() = %d, %d; want %d, 0", off, db, end)
	}
	return end
}

// sameKeys compares what a target holds with what the source holds.
func sameKeys(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: key %q: got %.200q, want %.200q", what, k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: key %q is not on the source", what, k)
		}
	}
}

// checkStats checks what every kind counts the same way.
func checkStats(t *testing.T, st Stats, skipped map[string]uint64) {
	t.Helper()
	for reason, n := range skipped {
		if st.Skipped[reason] != n {
			t.Errorf("skipped %s = %d, want %d (all: %v)", reason, st.Skipped[reason], n, st.Skipped)
		}
	}
	if len(st.Errors) != 0 {
		t.Errorf("errors %v (%s)", st.Errors, st.LastError)
	}
}

func TestKindsFromRecordedStream(t *testing.T) {
	src := startRedis(t)
	entries := recordSnapshot(t, src.Addr, []int{0, 1})
	snap := []map[string]string{readBack(t, src.Addr, 0), readBack(t, src.Addr, 1)}
	stream := recordedStream()
	runOnSource(t, src.Addr, stream)
	want := []map[string]string{readBack(t, src.Addr, 0), readBack(t, src.Addr, 1)}
	if want[0]["{t}a"] != "string:2" || want[0]["int"] != "string:123459" || want[1]["db1key"] != "string:v" {
		t.Fatalf("the source did not run the stream: %q %q %q", want[0]["{t}a"], want[0]["int"], want[1]["db1key"])
	}
	db1Keys := uint64(len(snap[1]))
	ctx := context.Background()
	wo := WriterOptions{Name: src.Addr, SourceRDBVersion: 10}
	newTarget := func(t *testing.T, kind string, c Config) Target {
		t.Helper()
		tg, err := New(kind, c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tg.Close() })
		return tg
	}
	writer := func(t *testing.T, tg Target, o WriterOptions) Writer {
		t.Helper()
		w, err := tg.Writer(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		return w
	}

	t.Run("single", func(t *testing.T) {
		dst := startRedis(t)
		tg := newTarget(t, KindSingle, Config{Servers: []shard.Server{{Addr: dst.Addr, Weight: 1}}, Conns: 2})
		if tr := tg.Traits(); !tr.Stream || !tr.Checkpoint {
			t.Fatalf("traits %+v", tr)
		}
		o := wo
		o.CheckpointKey, o.Replid = "rmt:checkpoint:test", func() string { return "recorded" }
		w := writer(t, tg, o)
		end := drive(t, w, entries, stream)
		cp, ok, err := tg.ReadCheckpoint(ctx, o.CheckpointKey)
		if err != nil || !ok || cp != (Checkpoint{Replid: "recorded", Offset: end, DB: 0}) {
			t.Fatalf("checkpoint %+v, %v, %v; want offset %d", cp, ok, err, end)
		}
		got := readBack(t, dst.Addr, 0)
		delete(got, o.CheckpointKey)
		sameKeys(t, "db 0", want[0], got)
		sameKeys(t, "db 1", want[1], readBack(t, dst.Addr, 1))
		checkStats(t, w.Stats(), map[string]uint64{SkipControl: 1, SkipPubSub: 1, "filtered": 1})
		if err := tg.ClearCheckpoint(ctx, o.CheckpointKey); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := tg.ReadCheckpoint(ctx, o.CheckpointKey); ok || err != nil {
			t.Fatalf("checkpoint still there after ClearCheckpoint: %v, %v", ok, err)
		}
		if flushed, err := tg.FlushAll(ctx); !flushed || err != nil {
			t.Fatalf("FlushAll: %v, %v", flushed, err)
		}
		if n := len(readBack(t, dst.Addr, 0)) + len(readBack(t, dst.Addr, 1)); n != 0 {
			t.Fatalf("%d keys after FlushAll", n)
		}
	})

	// The routed kinds hold db 0 only: the snapshot's db 1 and the stream's commands there are
	// skipped and counted.
	routed := map[string]uint64{SkipControl: 1, SkipPubSub: 1, "filtered": 1, SkipDBNonZero: db1Keys, SkipSelectNonZero: 2}
	checkRouted := func(t *testing.T, tg Target, w Writer, nodes []string, home func(key string) int, hasDB1, checkpoints bool) {
		t.Helper()
		if tr := tg.Traits(); !tr.Stream || tr.Checkpoint != checkpoints {
			t.Fatalf("traits %+v", tr)
		}
		got := map[string]string{}
		for i, addr := range nodes {
			for k, v := range readBack(t, addr, 0) {
				if home(k) != i {
					t.Errorf("key %q on node %d, its home is %d", k, i, home(k))
				}
				got[k] = v
			}
			if hasDB1 { // a cluster node has none
				if n := len(readBack(t, addr, 1)); n != 0 {
					t.Errorf("node %d holds %d keys in db 1", i, n)
				}
			}
		}
		sameKeys(t, "db 0", want[0], got)
		checkStats(t, w.Stats(), routed)
		if _, ok, err := tg.ReadCheckpoint(ctx, "rmt:checkpoint:test"); ok || err != nil {
			t.Errorf("ReadCheckpoint: %v, %v; want none", ok, err)
		}
		if flushed, err := tg.FlushAll(ctx); flushed || err != nil {
			t.Errorf("FlushAll: %v, %v; want not done", flushed, err)
		}
		if w, err := tg.Writer(ctx, WriterOptions{CheckpointKey: "k"}); !checkpoints && err == nil {
			t.Error("a writer with a checkpoint key was made")
		} else if checkpoints && err != nil {
			t.Errorf("a writer with a checkpoint key: %v", err)
		} else if w != nil {
			w.Close()
		}
	}

	t.Run("redis cluster", func(t *testing.T) {
		tc := startCluster(t, 3)
		tg := newTarget(t, KindCluster, Config{Servers: []shard.Server{{Addr: tc.nodes[1].Addr}}})
		w := writer(t, tg, wo)
		drive(t, w, entries, stream)
		checkRouted(t, tg, w, tc.addrs(), tc.nodeOf, false, true)
	})

	t.Run("twemproxy", func(t *testing.T) {
		p := startPool(t, 3, "murmur", "modula")
		tg := newTarget(t, KindTwemproxy, Config{Servers: p.members, Hash: "murmur", Distribution: "modula", HashTag: "{}"})
		w := writer(t, tg, wo)
		drive(t, w, entries, stream)
		var addrs []string
		for _, s := range p.servers {
			addrs = append(addrs, s.Addr)
		}
		checkRouted(t, tg, w, addrs, p.pick, true, true)
	})

	t.Run("redis cluster checkpointed", func(t *testing.T) {
		tc := startCluster(t, 3)
		tg := newTarget(t, KindCluster, Config{Servers: []shard.Server{{Addr: tc.nodes[1].Addr}}})
		cwo := wo
		cwo.CheckpointKey, cwo.Replid = "rmt:checkpoint:src", func() string { return "r1" }
		w := writer(t, tg, cwo)
		drive(t, w, entries, stream)
		if cp, ok, err := tg.ReadCheckpoint(ctx, cwo.CheckpointKey); err != nil || !ok || cp.Replid != "r1" {
			t.Errorf("ReadCheckpoint of the base: %+v %v %v", cp, ok, err)
		}
		if err := tg.ClearCheckpoint(ctx, cwo.CheckpointKey); err != nil {
			t.Fatal(err)
		}
		for _, a := range tc.addrs() { // ClearCheckpoint left none of rmtd's own keys
			var keys []string
			do(t, client(t, a), &keys, "KEYS", cwo.CheckpointKey+"*")
			if len(keys) > 0 {
				t.Errorf("node %s: %v left after ClearCheckpoint", a, keys)
			}
		}
		checkRouted(t, tg, w, tc.addrs(), tc.nodeOf, false, true)
	})

	t.Run("twemproxy checkpointed", func(t *testing.T) {
		p := startPool(t, 3, "murmur", "modula")
		tg := newTarget(t, KindTwemproxy, Config{Servers: p.members, Hash: "murmur", Distribution: "modula", HashTag: "{}"})
		cwo := wo
		cwo.CheckpointKey, cwo.Replid = "rmt:checkpoint:src", func() string { return "r1" }
		w := writer(t, tg, cwo)
		drive(t, w, entries, stream)
		var addrs []string
		for _, s := range p.servers {
			addrs = append(addrs, s.Addr)
		}
		for i, a := range addrs { // rmtd's own keys, not data: checkRouted compares every key
			c := client(t, a)
			do(t, c, nil, "DEL", UnitCheckpointKey(cwo.CheckpointKey, i))
		}
		checkRouted(t, tg, w, addrs, p.pick, true, true)
	})

	t.Run("rdb file", func(t *testing.T) {
		dir := t.TempDir()
		tg := newTarget(t, KindRDBFile, Config{Servers: []shard.Server{{Addr: filepath.Join(dir, "dump.rdb")}},
			Nodes: func() int { return 1 }})
		if tr := tg.Traits(); tr.Stream || tr.Checkpoint {
			t.Fatalf("traits %+v", tr)
		}
		w, err := tg.Writer(ctx, wo)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if err := w.Restore(e); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.WaitRDB(ctx); err != nil {
			t.Fatal(err)
		}
		if err := w.StartOplog(ctx, 0, 0); !errors.Is(err, ErrNoOplog) {
			t.Fatalf("StartOplog: %v, want ErrNoOplog", err)
		}
		if err := w.Apply(rawCmd("SET", "a", "b"), 10); !errors.Is(err, ErrNoOplog) {
			t.Fatalf("Apply: %v, want ErrNoOplog", err)
		}
		w.Skip(rawCmd("SET", "a", "b"), 10, "filtered")
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := w.WaitOplog(ctx); err != nil {
			t.Fatal(err)
		}
		checkStats(t, w.Stats(), map[string]uint64{})
		if err := w.Close(); err != nil { // the only node: the file is finished
			t.Fatal(err)
		}
		loaded := startRedis(t, "--dir", dir, "--dbfilename", "dump.rdb")
		sameKeys(t, "db 0", snap[0], readBack(t, loaded.Addr, 0))
		sameKeys(t, "db 1", snap[1], readBack(t, loaded.Addr, 1))
	})
}

// TestRDBFileAbandon: a source node that never makes its Writer leaves the file unfinished, not
// renamed into place, once the others are done.
func TestRDBFileAbandon(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.rdb")
	tg, err := New(KindRDBFile, Config{Servers: []shard.Server{{Addr: path}}, Nodes: func() int { return 2 }})
	if err != nil {
		t.Fatal(err)
	}
	w, err := tg.Writer(context.Background(), WriterOptions{Name: "a", SourceRDBVersion: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Restore(stringEntry(0, "k", "v", 0)); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitRDB(context.Background()); err != nil {
		t.Fatal(err)
	}
	tg.Abandon()
	if err := w.Close(); err == nil {
		t.Fatal("the file was finished although a node never joined")
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "*")); len(matches) != 0 {
		t.Fatalf("left behind: %v", matches)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, tt := range []struct {
		kind string
		c    Config
	}{
		{"sentinel", Config{Servers: []shard.Server{{Addr: "127.0.0.1:1"}}}},
		{KindSingle, Config{}},
		{KindCluster, Config{}},
		{KindRDBFile, Config{}},
		{KindTwemproxy, Config{}},
		{KindTwemproxy, Config{Servers: []shard.Server{{Addr: "127.0.0.1:1", Weight: 1}}, Distribution: "random"}},
	} {
		if _, err := New(tt.kind, tt.c); err == nil {
			t.Errorf("New(%q, %+v) made a target", tt.kind, tt.c)
		}
	}
	if k := Kinds(); len(k) != 5 || k[0] != KindRDBFile {
		t.Errorf("kinds %v", k)
	}
}
