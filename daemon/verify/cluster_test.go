package verify

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"
	"go.uber.org/zap"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/redisfmt"
	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/internal/shard"
	"github.com/rmt-project/rmt/internal/topology"
)

// cjStartCluster starts a cluster of n masters (redistest.StartCluster: the slots split evenly
// in order, every node at cluster_state:ok).
func cjStartCluster(t *testing.T, n int) []*cjRedis {
	t.Helper()
	var nodes []*cjRedis
	for _, r := range redistest.StartCluster(t, n).Nodes {
		nodes = append(nodes, cjOf(t, r))
	}
	return nodes
}

func cjAddrs(rs []*cjRedis) []string {
	var a []string
	for _, r := range rs {
		a = append(a, r.Addr)
	}
	return a
}

// cjCopyKeys copies every key of the source set to the target set (DUMP, RESTORE ... ABSTTL),
// db by db (a cluster target keeps everything in db 0).
func cjCopyKeys(t *testing.T, src, tgt *nodeSet) int {
	t.Helper()
	ctx := context.Background()
	copied := 0
	for _, n := range src.nodes {
		ks, err := n.keyspace(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for db := range ks {
			keys, err := sampleDB(ctx, n, db, 0, 1<<30) // SCAN path: every key
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				var payload string
				var exp int64
				if err := n.do(ctx, db, radix.Cmd(&payload, "DUMP", k)); err != nil {
					t.Fatal(err)
				}
				if err := n.do(ctx, db, radix.Cmd(&exp, "PEXPIRETIME", k)); err != nil {
					t.Fatal(err)
				}
				exp = max(exp, 0)
				if err := tgt.nodeFor(k).do(ctx, tgt.dbFor(db), radix.Cmd(nil, "RESTORE", k,
					strconv.FormatInt(exp, 10), payload, "ABSTTL", "REPLACE")); err != nil {
					t.Fatalf("RESTORE %s: %v", redisfmt.Quote(k), err)
				}
				copied++
			}
		}
	}
	return copied
}

func TestClusterInsertAndCheck(t *testing.T) {
	ctx := context.Background()
	srcNodes, tgtNodes := cjStartCluster(t, 3), cjStartCluster(t, 2)
	cfg := &conf.Config{
		Source: conf.Pool{Type: conf.TypeRedisCluster, Servers: cjAddrs(srcNodes[1:2]), Timeout: 10 * time.Second},
		Target: conf.Pool{Type: conf.TypeRedisCluster, Servers: []string{"127.0.0.1:1", tgtNodes[0].Addr}, Timeout: 10 * time.Second},
	}
	res, err := RunTestInsert(ctx, cfg, TestInsertOptions{Keys: 3000})
	if err != nil || res.Correct != 3000 {
		t.Fatalf("testinsert into a cluster: %+v %v", res, err)
	}
	var total int64
	for _, r := range srcNodes {
		n := r.Int("DBSIZE")
		if n < 800 {
			t.Fatalf("%s holds %d keys: not spread by slot", r.Addr, n)
		}
		total += n
	}
	if total != 3000 {
		t.Fatalf("%d keys in the source cluster, want 3000", total)
	}

	src, err := openNodeSet(ctx, "source", cfg.Source, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tgt, err := openNodeSet(ctx, "target", cfg.Target, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	if len(src.nodes) != 3 || len(tgt.nodes) != 2 {
		t.Fatalf("discovered %d source and %d target masters", len(src.nodes), len(tgt.nodes))
	}
	// Samples come from every master in proportion to its size.
	keys, err := sampleKeys(ctx, src, 300, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, k := range keys {
		per[k.node.addr]++
		if src.nodeFor(k.key) != k.node {
			t.Fatalf("key %s sampled on %s, routed to %s", redisfmt.Quote(k.key), k.node.addr, src.nodeFor(k.key).addr)
		}
	}
	for _, r := range srcNodes {
		want := float64(r.Int("DBSIZE")) * 300 / 3000
		if got := float64(per[r.Addr]); got < want-1 || got > want+1 {
			t.Fatalf("%d keys sampled on %s, want about %.1f", per[r.Addr], r.Addr, want)
		}
	}

	if n := cjCopyKeys(t, src, tgt); n != 3000 {
		t.Fatalf("copied %d keys", n)
	}
	out := &strings.Builder{}
	opts := cjFastCheck(nil)
	opts.Out = out
	opts.Keys = 3000
	cres, err := RunCheck(ctx, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if cres.Checked != 3000 || cres.OK != 3000 {
		t.Fatalf("check of a copied cluster: %+v\n%s", cres, out)
	}
	// Change one key on whichever target master holds it.
	k := keys[0].key
	if err := tgt.nodeFor(k).do(ctx, 0, radix.Cmd(nil, "DEL", k)); err != nil {
		t.Fatal(err)
	}
	cres, err = RunCheck(ctx, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if cres.ValueDiff != 1 || cres.OK != 2999 || cres.Bad[0].Key != k {
		t.Fatalf("after deleting %s: %+v", redisfmt.Quote(k), cres)
	}
}

// A single source with several dbs checked against a cluster target: every db maps to db 0.
func TestCheckSingleToCluster(t *testing.T) {
	ctx := context.Background()
	src := cjStartRedis(t)
	tgtNodes := cjStartCluster(t, 2)
	src.DoDB(0, []string{"SET", "a", "1"}, []string{"SET", "b", "2"})
	src.DoDB(5, []string{"SET", "c", "3"}, []string{"HSET", "d", "f", "v"})
	cfg := cjConfig(src, nil)
	cfg.Target = conf.Pool{Type: conf.TypeRedisCluster, Servers: cjAddrs(tgtNodes), Timeout: 10 * time.Second}
	s, err := openNodeSet(ctx, "source", cfg.Source, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := openNodeSet(ctx, "target", cfg.Target, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cjCopyKeys(t, s, d)
	res, err := RunCheck(ctx, cfg, cjFastCheck(nil))
	if err != nil || res.Checked != 4 || res.OK != 4 {
		t.Fatalf("%+v %v", res, err)
	}
}

// parseClusterSlots is what discoverCluster makes of a CLUSTER SLOTS reply asked of seedHost:
// the master address of every slot and the masters, in order of first appearance.
func parseClusterSlots(reply []interface{}, seedHost string) (table, masters []string, err error) {
	m, err := topology.ParseSlots(reply, topology.Options{DefaultHost: seedHost})
	if err != nil {
		return nil, nil, err
	}
	return routes(m)
}

func TestParseClusterSlots(t *testing.T) {
	full := []interface{}{
		[]interface{}{int64(0), int64(8191), []interface{}{[]byte("10.0.0.1"), int64(7000), []byte("id1")}},
		[]interface{}{int64(8192), int64(16383), []interface{}{[]byte(""), int64(7001), []byte("id2")},
			[]interface{}{[]byte("10.0.0.3"), int64(7002), []byte("id3")}},
	}
	table, masters, err := parseClusterSlots(full, "seed")
	if err != nil || fmt.Sprint(masters) != "[10.0.0.1:7000 seed:7001]" || table[8191] != "10.0.0.1:7000" || table[8192] != "seed:7001" {
		t.Fatalf("%v %v %v", masters, table[8191], err)
	}
	bad := [][]interface{}{
		full[:1], // slots 8192.. unserved
		{[]interface{}{int64(0), int64(16384), []interface{}{[]byte("h"), int64(1)}}},
		{[]interface{}{int64(5), int64(4), []interface{}{[]byte("h"), int64(1)}}},
		{[]interface{}{int64(0), int64(16383), []interface{}{[]byte("h"), int64(0)}}},
		{[]interface{}{int64(0), int64(16383)}},
		{"junk"},
	}
	for i, b := range bad {
		if _, _, err := parseClusterSlots(b, "seed"); err == nil {
			t.Errorf("case %d accepted", i)
		}
	}
}

// TestClusterSlotMapFallback: a seed that refuses CLUSTER SLOTS (here by ACL) is asked for
// CLUSTER SHARDS, then CLUSTER NODES; the masters and the routing are the same whichever answers.
func TestClusterSlotMapFallback(t *testing.T) {
	ctx := context.Background()
	cl := redistest.StartCluster(t, 3)
	seed := cl.Nodes[1]
	pool := conf.Pool{Type: conf.TypeRedisCluster, Servers: []string{seed.Addr}, Timeout: 10 * time.Second}
	sorted := slices.Sorted(slices.Values(cl.Addrs))
	want := strings.Join(sorted, ",")
	for _, tc := range []struct {
		name   string
		refuse []string
		err    string
	}{
		{"CLUSTER SLOTS", nil, ""},
		{"CLUSTER SHARDS", []string{"slots"}, ""},
		{"CLUSTER NODES", []string{"slots", "shards"}, ""},
		{"none", []string{"slots", "shards", "nodes"}, "the slot map is refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seed.Do(t, "ACL", "SETUSER", "default", "+@all")
			for _, sub := range tc.refuse {
				seed.Do(t, "ACL", "SETUSER", "default", "-cluster|"+sub)
			}
			s, err := openNodeSet(ctx, "source", pool, 1)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "CLUSTER NODES") {
					t.Fatalf("err %v, want one containing %q and naming every query", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var addrs []string
			for _, n := range s.nodes {
				addrs = append(addrs, n.addr)
			}
			slices.Sort(addrs)
			if got := strings.Join(addrs, ","); got != want {
				t.Fatalf("masters %s, want %s", got, want)
			}
			for i := range 300 {
				k := "key:" + strconv.Itoa(i)
				if got, want := s.nodeFor(k).addr, cl.NodeForSlot(shard.Slot([]byte(k))).Addr; got != want {
					t.Fatalf("key %s routed to %s, its slot is on %s", k, got, want)
				}
			}
		})
	}
	seed.Do(t, "ACL", "SETUSER", "default", "+@all")
}
