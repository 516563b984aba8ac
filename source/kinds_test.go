package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/internal/shard"
	"github.com/rmt-project/rmt/internal/topology"
)

// One test per kind of source, each driving the kind only through source.Open and the Node
// interface (drive_test.go) into an in-memory target (faketarget_test.go), then comparing that
// target with what the source holds.

// liveLink is the link template of the live kinds' tests: small spool segments, so that Trim
// has whole segments to free, and a short resync backoff.
func liveLink() LinkOptions {
	return LinkOptions{Timeout: 10 * time.Second, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		SpoolSegmentBytes: 4096, ResyncBackoffMin: 50 * time.Millisecond, ResyncBackoffMax: 100 * time.Millisecond}
}

const testLibrary = "#!lua name=rmtlib\nredis.register_function('rmtf', function() return 1 end)"

// TestSingleNode: a `single` source's node replicates a real master holding every type in dbs 0
// and 1: its snapshot and the writes made while it loads reach the target; Trim frees the
// stream already applied; Resync brings a new snapshot; Run ends with the context and closes
// Events.
func TestSingleNode(t *testing.T) {
	master := redistest.StartRedis(t)
	c0, c1 := clientOf(t, master.Addr), clientOf(t, master.Addr)
	c1.must(t, "SELECT", "1")
	fillAllTypes(clientSink(t, c0), "db0:", true)
	fillAllTypes(clientSink(t, c1), "db1:", true)
	c0.must(t, "FUNCTION", "LOAD", testLibrary)

	src := openKind(t, KindSingle, Config{Servers: []string{master.Addr}, Link: liveLink(), SourceSafe: true})
	if len(src.Nodes) != 1 {
		t.Fatalf("%d nodes", len(src.Nodes))
	}
	n := src.Nodes[0]
	if n.Name() != master.Addr || n.Finite() || n.FollowsFailovers() || n.Filter(0) != nil {
		t.Fatalf("node %s: finite %v, follows failovers %v, filter %v", n.Name(), n.Finite(), n.FollowsFailovers(), n.Filter(0))
	}
	if st := n.Stats(); !st.Live || st.Addr != master.Addr || st.Link.RDBTotal != -1 {
		t.Errorf("stats before Run: %+v", st)
	}
	if n.Resync(errors.New("before Run")) {
		t.Error("Resync before Run: there is no link to resync")
	}
	if _, err := n.Stream(context.Background(), 0); err == nil {
		t.Error("a stream before Run")
	}

	fake := newFakeTarget()
	d := startDrive(t, n, fake)
	snap := d.snapshot(30 * time.Second)
	if snap.Replid == "" || snap.Offset < 0 {
		t.Errorf("snapshot %s at %s %d", snap.Name, snap.Replid, snap.Offset)
	}
	// Written once the master forked for the snapshot: they come through the stream, spooled
	// while the snapshot loads.
	writeAfter(clientSink(t, c0), "db0:")
	writeAfter(clientSink(t, c1), "db1:")
	d.load(snap)
	d.replay(snap.Offset)
	applied := d.caughtUp(c0)
	compareFake(t, master.Dump(t), fake)
	checkLiveStats(t, n, master.Addr, master.Addr, applied)
	if d.replayCmds.Load() < 400 {
		t.Errorf("%d commands replayed: the writes after the snapshot did not come through the stream", d.replayCmds.Load())
	}

	// Trim frees the whole segments of the stream applied: it can no longer be read from the
	// snapshot's offset, but still from where it was applied.
	if err := n.Trim(applied); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := n.Stream(ctx, snap.Offset); !errors.Is(err, aof.ErrTrimmed) {
		t.Errorf("stream from %d after Trim(%d): %v, want ErrTrimmed", snap.Offset, applied, err)
	}
	if cmds, err := n.Stream(ctx, applied); err != nil {
		t.Errorf("stream from %d after Trim(%d): %v", applied, applied, err)
	} else {
		cmds.Close()
	}

	// Resync: a new snapshot, loaded into an empty target, then the stream after it.
	if err := d.endReplay(); err != nil {
		t.Fatal(err)
	}
	if !n.Resync(errors.New("test: the snapshot does not decode")) {
		t.Fatal("Resync refused")
	}
	d.fake = newFakeTarget()
	snap2 := d.snapshot(30 * time.Second)
	if snap2.Offset < applied {
		t.Errorf("new snapshot at %d, before the stream applied (%d)", snap2.Offset, applied)
	}
	c1.must(t, "SET", "db1:after-resync", "1")
	d.load(snap2)
	d.replay(snap2.Offset)
	applied = d.caughtUp(c0)
	compareFake(t, master.Dump(t), d.fake)
	checkLiveStats(t, n, master.Addr, master.Addr, applied)
	if st := n.Stats(); st.Link.Resyncs != 1 || st.Link.FullSyncs != 2 || st.Link.LastResyncError != "test: the snapshot does not decode" {
		t.Errorf("stats after Resync: %+v", st.Link)
	}
	d.stop()
}

// TestClusterNode: a `redis cluster` source of 3 masters is one node per master (found from one
// seed), each following failovers and keeping only the keys of its slots; together they bring
// the whole cluster to one target, and a FLUSHALL of one master does not reach it.
func TestClusterNode(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	clients := map[string]*rclient{}
	for _, r := range cl.Nodes {
		clients[r.Addr] = clientOf(t, r.Addr)
	}
	route := func(key string, args ...string) {
		clients[cl.NodeForSlot(shard.Slot([]byte(key))).Addr].must(t, args...)
	}
	for _, p := range []string{"a:", "b:", "c:"} {
		fillAllTypes(route, p, true)
	}

	src := openKind(t, KindRedisCluster, Config{Servers: []string{"127.0.0.1:1", cl.Addrs[1]}, Link: liveLink(), SourceSafe: true})
	if len(src.Nodes) != 3 {
		t.Fatalf("%d nodes for 3 masters", len(src.Nodes))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Watch(ctx)
	fake := newFakeTarget()
	drives := make([]*drive, len(src.Nodes))
	snaps := make([]SnapshotReady, len(src.Nodes))
	for i, n := range src.Nodes {
		if n.Name() != cl.Addrs[i] || !n.FollowsFailovers() || n.Finite() || n.Filter(0) == nil {
			t.Fatalf("node %d: %s (want %s), follows failovers %v, finite %v", i, n.Name(), cl.Addrs[i], n.FollowsFailovers(), n.Finite())
		}
		drives[i] = startDrive(t, n, fake)
	}
	for i, d := range drives { // source_safe: one host, so one snapshot after the other
		snaps[i] = d.snapshot(30 * time.Second)
	}
	for _, p := range []string{"a:", "b:", "c:"} {
		writeAfter(route, p)
	}
	for i, d := range drives {
		d.load(snaps[i])
		if d.snapshotKeys == 0 {
			t.Errorf("%s: an empty snapshot", d.node.Name())
		}
		d.replay(snaps[i].Offset)
	}
	for i, d := range drives {
		applied := d.caughtUp(clients[cl.Addrs[i]])
		checkLiveStats(t, d.node, cl.Addrs[i], cl.Addrs[i], applied)
	}
	want := cl.Dump(t)
	compareFake(t, want, fake)
	if nf := src.NotFollowed(); nf != 0 {
		t.Errorf("%d masters not followed", nf)
	}

	// One master's FLUSHALL concerns only its keys: it must not wipe the others' on the target.
	clients[cl.Addrs[1]].must(t, "FLUSHALL")
	drives[1].caughtUp(clients[cl.Addrs[1]])
	if n := drives[1].Skipped(ReasonFlushFromOneMaster); n != 1 {
		t.Errorf("FLUSHALL of one master: %d dropped, want 1", n)
	}
	compareFake(t, want, fake)
	for _, d := range drives {
		if n := d.Skipped(ReasonNotOwned); n != 0 {
			t.Errorf("%s: %d keys or commands not owned, in a cluster without dirty data", d.node.Name(), n)
		}
		d.stop()
	}

	// A slot map with a slot no master serves is refused (as its master's view has it at once).
	last := cl.Nodes[len(cl.Nodes)-1]
	last.Do(t, "CLUSTER", "DELSLOTS", topology.SlotCount-1)
	_, err := Open(ctx, Config{Kind: KindRedisCluster, Servers: []string{last.Addr}, Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "slot 16383 is not served") {
		t.Errorf("a map without slot 16383: %v", err)
	}
}

// keyHomed returns a key with prefix that pool places on backend i.
func keyHomed(t *testing.T, pool *topology.Pool, i int, prefix string) string {
	t.Helper()
	for k := range 100_000 {
		if key := prefix + strconv.Itoa(k); pool.Ring.Pick([]byte(key)) == i {
			return key
		}
	}
	t.Fatalf("no key for backend %d", i)
	return ""
}

// TestTwemproxyNode: a `twemproxy` source is one node per backend of the pool, each keeping only
// the keys the pool's ring places on it: keys written where the ring puts them all arrive, keys
// of another db (written around the proxy) too, and a stray key on the wrong backend, in the
// snapshot or in the stream, is dropped.
func TestTwemproxyNode(t *testing.T) {
	var servers []shard.Server
	var clients []*rclient
	var backends []*redistest.Redis
	for i := range 3 {
		r := redistest.StartRedis(t)
		backends = append(backends, r)
		clients = append(clients, clientOf(t, r.Addr))
		servers = append(servers, shard.Server{Addr: r.Addr, Weight: 1, Name: "s" + strconv.Itoa(i)})
	}
	pool, err := topology.NewPool(servers, "fnv1a_64", "ketama", "{}")
	if err != nil {
		t.Fatal(err)
	}
	route := func(key string, args ...string) { clients[pool.Ring.Pick([]byte(key))].must(t, args...) }
	fillAllTypes(route, "t:", true)
	fillAllTypes(route, "{tag}:", false) // one hash tag: all on one backend
	around := clientOf(t, backends[2].Addr)
	around.must(t, "SELECT", "1")
	around.must(t, "SET", "around:proxy", "db 1 is not the proxy's: kept")
	stray := keyHomed(t, pool, 1, "stray:")
	clients[0].must(t, "SET", stray, "on backend 0, the ring says 1")

	src := openKind(t, KindTwemproxy, Config{Backends: servers, Hash: "fnv1a_64", Distribution: "ketama", HashTag: "{}", Link: liveLink()})
	if len(src.Nodes) != 3 {
		t.Fatalf("%d nodes for 3 backends", len(src.Nodes))
	}
	fake := newFakeTarget()
	var drives []*drive
	for i, n := range src.Nodes {
		if n.Name() != servers[i].Addr || n.FollowsFailovers() || n.Finite() || n.Filter(0) == nil {
			t.Fatalf("node %d: %s, follows failovers %v, finite %v", i, n.Name(), n.FollowsFailovers(), n.Finite())
		}
		drives = append(drives, startDrive(t, n, fake))
	}
	var snaps []SnapshotReady
	for _, d := range drives {
		snaps = append(snaps, d.snapshot(30*time.Second))
	}
	writeAfter(route, "t:")
	writeAfter(route, "{tag}:")
	stray2 := keyHomed(t, pool, 2, "stray2:")
	clients[0].must(t, "SET", stray2, "written around the proxy, after the snapshot")
	other := keyHomed(t, pool, 1, "t:") // another backend's key, written and deleted around the proxy
	clients[0].must(t, "SET", other, "x")
	clients[0].must(t, "DEL", other)
	for i, d := range drives {
		d.load(snaps[i])
		d.replay(snaps[i].Offset)
	}
	for i, d := range drives {
		applied := d.caughtUp(clients[i])
		checkLiveStats(t, d.node, servers[i].Addr, servers[i].Addr, applied)
	}
	var parts []*redistest.Dataset
	for _, r := range backends {
		parts = append(parts, r.Dump(t))
	}
	want := redistest.MergeDatasets(t, "pool", parts...)
	delete(want.DBs[0], stray)
	delete(want.DBs[0], stray2)
	compareFake(t, want, fake)
	if fake.Keys(1) != 1 {
		t.Errorf("db 1 holds %d keys on the target, want 1", fake.Keys(1))
	}
	for i, d := range drives {
		wantDropped := 0
		if i == 0 {
			wantDropped = 4 // the stray key of the snapshot, then SET, SET and DEL in the stream
		}
		if n := d.Skipped(ReasonNotOwned); n != wantDropped {
			t.Errorf("%s: %d keys or commands dropped as not owned, want %d", d.node.Name(), n, wantDropped)
		}
		d.stop()
	}
}

// checkFileNode: what a file node says of itself.
func checkFileNode(t *testing.T, n Node, path string) {
	t.Helper()
	if n.Name() != path || !n.Finite() || n.FollowsFailovers() || n.Filter(0) != nil {
		t.Errorf("%s: name %s, finite %v, follows failovers %v, filter %v", path, n.Name(), n.Finite(), n.FollowsFailovers(), n.Filter(0))
	}
	if n.Resync(errors.New("bad checksum")) {
		t.Errorf("%s: Resync of a file: the same bytes would fail again", path)
	}
	if st := n.Stats(); st.Live || st.Name != path || st.Addr != path || st.Detail != "file" {
		t.Errorf("%s: stats %+v", path, st)
	}
}

// TestRDBFileNodes: an `rdb file` source of every fixture is one node per file, each a snapshot
// whole at once and an empty stream; what reaches the target is the fixture's JSON.
func TestRDBFileNodes(t *testing.T) {
	files, _ := filepath.Glob(redistest.Fixture(t, "*.rdb"))
	cases, _ := filepath.Glob(redistest.Fixture(t, "cases/*.rdb"))
	files = append(files, cases...)
	if len(files) < 10 {
		t.Fatalf("only %d fixtures", len(files))
	}
	src := openKind(t, KindRDBFile, Config{Servers: files})
	if len(src.Nodes) != len(files) {
		t.Fatalf("%d nodes for %d files", len(src.Nodes), len(files))
	}
	for i, n := range src.Nodes {
		path := files[i]
		t.Run(strings.TrimSuffix(filepath.Base(path), ".rdb"), func(t *testing.T) {
			checkFileNode(t, n, path)
			want, err := redistest.DatasetFromFixtureJSON(strings.TrimSuffix(path, ".rdb") + ".json")
			if err != nil {
				t.Fatal(err)
			}
			fake := newFakeTarget()
			d := startDrive(t, n, fake)
			snap := d.snapshot(10 * time.Second)
			d.returned(10 * time.Second) // a file offers its snapshot and returns
			d.load(snap)
			d.replay(snap.Offset)
			d.replayEnd(10 * time.Second)
			if d.replayCmds.Load() != 0 {
				t.Errorf("%d commands in the stream of an rdb file", d.replayCmds.Load())
			}
			if err := n.Trim(100); err != nil {
				t.Errorf("Trim: %v", err)
			}
			compareFake(t, want, fake)
		})
	}
}

// aofParts returns the files of a Redis 7 multi-part AOF directory in the manifest's order:
// the base, then the incremental files.
func aofParts(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.manifest"))
	if err != nil || len(m) != 1 {
		t.Fatalf("manifest in %s: %v %v", dir, m, err)
	}
	text, err := os.ReadFile(m[0])
	if err != nil {
		t.Fatal(err)
	}
	var base, incr []string
	for _, line := range strings.Split(string(text), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[0] != "file" {
			continue
		}
		switch f[5] {
		case "b":
			base = append(base, filepath.Join(dir, f[1]))
		case "i":
			incr = append(incr, filepath.Join(dir, f[1]))
		}
	}
	if len(base) != 1 {
		t.Fatalf("manifest %q: %d base files", text, len(base))
	}
	return append(base, incr...)
}

// concatFiles writes the files one after the other into a new file: a multi-part AOF made the
// single file of Redis before 7.
func concatFiles(t *testing.T, parts []string) string {
	t.Helper()
	var all []byte
	for _, p := range parts {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	out := filepath.Join(t.TempDir(), "appendonly.aof")
	if err := os.WriteFile(out, all, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAOFFileNodes: an `aof file` source, written by a real Redis (rewritten once, then written
// to), with and without an RDB preamble, as Redis 7's directory and as one file: the preamble
// is the snapshot, the commands are the stream, and together they are what the server holds.
// The stream can be taken up from any command's offset.
func TestAOFFileNodes(t *testing.T) {
	for _, preamble := range []bool{false, true} {
		yes := map[bool]string{false: "no", true: "yes"}[preamble]
		t.Run("preamble "+yes, func(t *testing.T) {
			srv := redistest.StartRedis(t, redistest.WithArgs("appendonly yes", "appendfsync always", "aof-use-rdb-preamble "+yes))
			c0, c1 := clientOf(t, srv.Addr), clientOf(t, srv.Addr)
			c1.must(t, "SELECT", "1")
			fillAllTypes(clientSink(t, c0), "a:", preamble) // a rewritten stream is XADD, XSETID, XCLAIM: not for the fake
			fillAllTypes(clientSink(t, c1), "b:", false)
			c0.must(t, "FUNCTION", "LOAD", testLibrary)
			dir := filepath.Join(srv.Dir, "appendonlydir")
			c0.must(t, "BGREWRITEAOF")
			redistest.WaitFor(t, 30*time.Second, func() error {
				if v := c0.infoField(t, "persistence", "aof_rewrite_in_progress"); v != "0" {
					return fmt.Errorf("aof_rewrite_in_progress:%s", v)
				}
				if v := c0.infoField(t, "persistence", "aof_rewrite_scheduled"); v != "0" {
					return fmt.Errorf("aof_rewrite_scheduled:%s", v)
				}
				if p := aofParts(t, dir); !strings.Contains(p[0], ".2.base.") {
					return fmt.Errorf("base %s: not rewritten yet", p[0])
				}
				return nil
			})
			writeAfter(clientSink(t, c0), "a:")
			writeAfter(clientSink(t, c1), "b:")
			want := srv.Dump(t)
			parts := aofParts(t, dir)
			if got := strings.HasSuffix(parts[0], ".rdb"); got != preamble {
				t.Fatalf("base %s", parts[0])
			}
			for _, path := range []string{dir, concatFiles(t, parts)} {
				t.Run(filepath.Base(path), func(t *testing.T) { checkAOFNode(t, path, preamble, want) })
			}
		})
	}
}

func checkAOFNode(t *testing.T, path string, preamble bool, want *redistest.Dataset) {
	src := openKind(t, KindAOFFile, Config{Servers: []string{path}})
	n := src.Nodes[0]
	checkFileNode(t, n, path)
	fake := newFakeTarget()
	d := startDrive(t, n, fake)
	snap := d.snapshot(10 * time.Second)
	d.returned(10 * time.Second)
	if snap.Offset != 0 {
		t.Errorf("snapshot offset %d: an AOF's stream starts at its first command", snap.Offset)
	}
	d.load(snap)
	if (d.snapshotKeys > 0) != preamble {
		t.Errorf("%d keys in the snapshot, preamble %v", d.snapshotKeys, preamble)
	}
	d.replay(snap.Offset)
	d.replayEnd(30 * time.Second)
	compareFake(t, want, fake)
	if err := n.Trim(d.applied.Load()); err != nil {
		t.Errorf("Trim: %v", err)
	}

	// The offsets of every command, read again from the start (a file keeps all, Trim or not).
	ctx := context.Background()
	var ends []int64
	cmds, err := n.Stream(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var c aof.Command
	var end int64
	for {
		if err := cmds.Next(&c); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		end += c.N
		ends = append(ends, end)
	}
	cmds.Close()
	if int64(len(ends)) != d.replayCmds.Load() || end != d.applied.Load() {
		t.Fatalf("read again: %d commands to %d; replayed %d to %d", len(ends), end, d.replayCmds.Load(), d.applied.Load())
	}
	// Taken up after command k: the commands after it, and nothing else.
	for _, k := range []int{0, len(ends) / 2, len(ends) - 1} {
		cmds, err := n.Stream(ctx, ends[k])
		if err != nil {
			t.Fatalf("stream from %d: %v", ends[k], err)
		}
		left := 0
		for cmds.Next(&c) == nil {
			left++
		}
		cmds.Close()
		if left != len(ends)-k-1 {
			t.Errorf("stream from %d (after command %d of %d): %d commands", ends[k], k+1, len(ends), left)
		}
	}
	if _, err := n.Stream(ctx, end+1); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("stream from past the file's end: %v", err)
	}
}
