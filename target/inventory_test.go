package target

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/rmt-project/rmt/internal/shard"
)

// TestInventoryAndDeleteKeys: a single target's inventory counts every key of every db but
// rmtd's own (the checkpoint prefix), or with owns only those it reports, with a few names;
// DeleteKeys removes those owns reports, in every db, and leaves rmtd's own and the others.
func TestInventoryAndDeleteKeys(t *testing.T) {
	ctx := context.Background()
	dst := startRedis(t)
	for _, k := range []string{"a:1", "a:2", "a:3", "b:1", "rmt:checkpoint:n1"} {
		dst.Do(t, "SET", k, "v")
	}
	dst.Do(t, "MOVE", "a:3", "3")
	tg, err := New(KindSingle, Config{Servers: []shard.Server{{Addr: dst.Addr}}})
	if err != nil {
		t.Fatal(err)
	}
	ownsA := func(_ int, key []byte) bool { return bytes.HasPrefix(key, []byte("a:")) }

	inv, err := tg.Inventory(ctx, nil, "rmt:checkpoint")
	if err != nil || inv.Keys != 4 || len(inv.Sample) != 4 {
		t.Fatalf("inventory of every key: %+v, %v; want 4 keys", inv, err)
	}
	inv, err = tg.Inventory(ctx, ownsA, "rmt:checkpoint")
	slices.Sort(inv.Sample)
	if err != nil || inv.Keys != 3 || !slices.Equal(inv.Sample, []string{`"a:1"`, `"a:2"`, `db3:"a:3"`}) {
		t.Fatalf("inventory of the a: keys: %+v, %v", inv, err)
	}
	n, err := tg.DeleteKeys(ctx, ownsA, "rmt:checkpoint")
	if err != nil || n != 3 {
		t.Fatalf("DeleteKeys of the a: keys: %d, %v", n, err)
	}
	inv, err = tg.Inventory(ctx, nil, "rmt:checkpoint")
	if err != nil || inv.Keys != 1 || inv.Sample[0] != `"b:1"` {
		t.Fatalf("after DeleteKeys: %+v, %v; want b:1 alone", inv, err)
	}
	if dst.Do(t, "EXISTS", "rmt:checkpoint:n1") != int64(1) {
		t.Error("DeleteKeys removed rmtd's own checkpoint")
	}
}

// TestInventoryOwnUnitCheckpoints: the per-backend and per-slot checkpoint keys (with their
// hash tag) are rmtd's own on a cluster target too: not counted, and left by DeleteKeys of a
// source node owning every key (with owns nil, the only node, it is FLUSHALL).
func TestInventoryOwnUnitCheckpoints(t *testing.T) {
	ctx := context.Background()
	tc := startCluster(t, 3)
	own := []string{"rmt:checkpoint:127.0.0.1:6379", UnitCheckpointKey("rmt:checkpoint:127.0.0.1:6379", 2)}
	for _, s := range []int{0, 5000, 16383} {
		own = append(own, SlotCheckpointKey("rmt:checkpoint:127.0.0.1:6379", s))
	}
	data := []string{"k1", "k2", "{x}k3"}
	for _, k := range append(append([]string(nil), own...), data...) {
		do(t, tc.cli[tc.nodeOf(k)], nil, "SET", k, "v")
	}
	tg, err := New(KindCluster, Config{Servers: []shard.Server{{Addr: tc.nodes[0].Addr}}})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := tg.Inventory(ctx, nil, "rmt:checkpoint")
	if err != nil || inv.Keys != int64(len(data)) {
		t.Fatalf("inventory: %+v, %v; want the %d data keys only", inv, err, len(data))
	}
	all := func(int, []byte) bool { return true }
	if n, err := tg.DeleteKeys(ctx, all, "rmt:checkpoint"); err != nil || n != int64(len(data)) {
		t.Fatalf("DeleteKeys: %d, %v; want %d", n, err, len(data))
	}
	for _, k := range own {
		var n int
		do(t, tc.cli[tc.nodeOf(k)], &n, "EXISTS", k)
		if n != 1 {
			t.Errorf("DeleteKeys removed rmtd's own %s", k)
		}
	}
}
