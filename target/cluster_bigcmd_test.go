package target

import (
	"context"
	"strconv"
	"testing"

	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/internal/shard"
)

// TestClusterBigCommands: big commands of every kind through a cluster target whose slot map is
// stale for two of their keys (MOVED on every chunk until the map is read again) leave the
// cluster as the same commands leave a single server; DEL and MSET over keys of every node are
// split per slot; the position is the stream's end.
func TestClusterBigCommands(t *testing.T) {
	in := bigStream(20_000)
	cmds := readBig(t, in)
	ref := startRedis(t)
	sendRaw(t, ref.Addr, in, len(cmds))

	tc := startCluster(t, 3)
	w := newCluster(t, tc, ClusterOptions{NodeOptions: NodeOptions{Conn: Options{Window: 64, WindowBytes: 1 << 20}}})
	ids := make([]string, 3)
	for i, c := range tc.cli {
		do(t, c, &ids[i], "CLUSTER", "MYID")
	}
	ctx := context.Background()
	if err := w.StartOplog(ctx, 0, 0); err != nil { // reads the slot map
		t.Fatal(err)
	}
	// The slots of "set" and "hash" (empty yet) change owner behind the writer's back.
	for _, key := range []string{"set", "hash"} {
		slot := strconv.Itoa(shard.Slot([]byte(key)))
		from := tc.nodeOf(key)
		to := (from + 1) % 3
		for _, i := range []int{to, from, 3 - to - from} {
			do(t, tc.cli[i], nil, "CLUSTER", "SETSLOT", slot, "NODE", ids[to])
		}
	}
	var end int64
	for _, c := range cmds {
		end += c.N
		if err := w.Apply(c, end); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	if off, _ := w.Applied(); off != int64(len(in)) {
		t.Fatalf("applied %d, want %d", off, len(in))
	}
	st := w.Stats()
	if len(st.Errors) != 0 || st.Retried == 0 || st.BigChunked+st.BigStreamed != uint64(countBig(cmds)) {
		t.Fatalf("errors %v, retried %d, big commands %d chunked, %d whole", st.Errors, st.Retried, st.BigChunked, st.BigStreamed)
	}
	cl := &redistest.Cluster{Nodes: tc.nodes, Addrs: tc.addrs()}
	redistest.CompareDatasets(t, ref.Dump(t), cl.Dump(t))
}

// TestTwemproxyBigCommands: the same through a twemproxy pool's backends: every chunk on the
// backend nutcracker would pick for its key.
func TestTwemproxyBigCommands(t *testing.T) {
	in := bigStream(10_000)
	cmds := readBig(t, in)
	ref := startRedis(t)
	sendRaw(t, ref.Addr, in, len(cmds))
	p := startPool(t, 3, "fnv1a_64", "ketama")
	w := newTwemproxy(t, p, "fnv1a_64", "ketama")
	ctx := context.Background()
	var end int64
	for _, c := range cmds {
		end += c.N
		if err := w.Apply(c, end); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	if off, _ := w.Applied(); off != int64(len(in)) {
		t.Fatalf("applied %d, want %d", off, len(in))
	}
	if st := w.Stats(); len(st.Errors) != 0 {
		t.Fatalf("errors %v", st.Errors)
	}
	var parts []*redistest.Dataset
	for i, s := range p.servers {
		parts = append(parts, s.Dump(t))
		for _, k := range p.keysOf(t, i) {
			if p.pick(k) != i {
				t.Fatalf("key %q on backend %d, not %d", k, i, p.pick(k))
			}
		}
	}
	redistest.CompareDatasets(t, ref.Dump(t), redistest.MergeDatasets(t, "pool", parts...))
}
