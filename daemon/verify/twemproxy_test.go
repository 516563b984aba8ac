package verify

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"
	"go.uber.org/zap"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/redisfmt"
)

// cjTwemPool is a twemproxy pool's server lines for backends rs, with the given weights.
func cjTwemPool(rs []*cjRedis, weights ...int) []string {
	var lines []string
	for i, r := range rs {
		lines = append(lines, r.Addr+":"+strconv.Itoa(weights[i])+" node"+strconv.Itoa(i))
	}
	return lines
}

// TestTwemproxyInsertAndCheck fills a twemproxy source pool with redis_testinsert (each key on
// the backend the ring picks), copies it into a twemproxy target pool of another shape, and
// checks it with redis_check: all OK, then one key off after it is deleted on its backend.
func TestTwemproxyInsertAndCheck(t *testing.T) {
	ctx := context.Background()
	srcNodes := []*cjRedis{cjStartRedis(t), cjStartRedis(t), cjStartRedis(t)}
	tgtNodes := []*cjRedis{cjStartRedis(t), cjStartRedis(t)}
	cfg := &conf.Config{
		Source: conf.Pool{Type: conf.TypeTwemproxy, Servers: cjTwemPool(srcNodes, 1, 1, 1), Hash: "fnv1a_64",
			Distribution: "ketama", HashTag: "{}", Timeout: 10 * time.Second},
		Target: conf.Pool{Type: conf.TypeTwemproxy, Servers: cjTwemPool(tgtNodes, 1, 2), Hash: "murmur",
			Distribution: "modula", Timeout: 10 * time.Second},
	}
	res, err := RunTestInsert(ctx, cfg, TestInsertOptions{Keys: 3000})
	if err != nil || res.Correct != 3000 {
		t.Fatalf("testinsert into a twemproxy pool: %+v %v", res, err)
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
		t.Fatalf("%d source and %d target backends", len(src.nodes), len(tgt.nodes))
	}
	var total int64
	for i, r := range srcNodes {
		n := r.Int("DBSIZE")
		if n < 500 {
			t.Fatalf("backend %d holds %d keys: not spread by the ring", i, n)
		}
		total += n
		keys, err := sampleDB(ctx, src.nodes[i], 0, 0, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if src.nodeFor(k) != src.nodes[i] {
				t.Fatalf("key %s on %s, the ring says %s", redisfmt.Quote(k), src.nodes[i].addr, src.nodeFor(k).addr)
			}
		}
	}
	if total != 3000 {
		t.Fatalf("%d keys in the source pool, want 3000", total)
	}
	// Samples come from every backend in proportion to its size.
	keys, err := sampleKeys(ctx, src, 300, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, k := range keys {
		per[k.node.addr]++
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
	if a, b := tgtNodes[0].Int("DBSIZE"), tgtNodes[1].Int("DBSIZE"); a < 600 || b < 2*a*8/10 {
		t.Fatalf("target backends hold %d and %d keys: weights 1 and 2 not followed", a, b)
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
		t.Fatalf("check of a copied pool: %+v\n%s", cres, out)
	}
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

func TestTwemproxyPoolRefused(t *testing.T) {
	for _, tc := range []struct {
		pool conf.Pool
		want string
	}{
		{conf.Pool{Type: conf.TypeTwemproxy, Servers: []string{"127.0.0.1:1:1", "127.0.0.1:2:1"}, Distribution: "random"}, "random"},
		{conf.Pool{Type: conf.TypeTwemproxy, Servers: []string{"127.0.0.1:1"}}, "servers[0]"},
		{conf.Pool{Type: conf.TypeTwemproxy}, "at least one server"},
		{conf.Pool{Type: conf.TypeTwemproxy, Servers: []string{"127.0.0.1:1:1"}, Hash: "sha1"}, "sha1"},
	} {
		err := checkNodeSetPool("target", tc.pool)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("pool %+v: error %v, want one naming %q", tc.pool, err, tc.want)
		}
	}
}
