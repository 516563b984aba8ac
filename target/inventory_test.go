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
