package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/shard"
	"github.com/rmt-project/rmt/source"
)

// TestLoadGate: at most common.threads snapshot loads at a time. Ported from the daemon's
// sources_test.go of before the restructuring.
func TestLoadGate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g := newLoadGate(2)
	// full reports whether a load must wait (for longer than 50 ms).
	full := func() bool {
		short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancelShort()
		release, err := g.wait(short)
		if err == nil {
			release()
		}
		return err != nil
	}
	r1, err1 := g.wait(ctx)
	r2, err2 := g.wait(ctx)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if !full() {
		t.Fatal("a third load started with threads 2")
	}
	r1()
	r1() // idempotent: must not end r2's turn
	r3, err := g.wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !full() {
		t.Fatal("double release let a third load in")
	}
	r2()
	r3()
	if full() {
		t.Fatal("no load runs, yet a new one waits")
	}
	if cap(newLoadGate(0)) < 1 {
		t.Fatal("threads 0: number of CPUs")
	}
}

// TestSourceConfig: the job's source section becomes the source.Config its kind is opened from
// (servers parsed once, a pool's backends with their weights and names, source_safe for live
// sources only), and source.Open makes the nodes from it. Ported from the daemon's
// TestSourceNodes and TestTwemproxyBackends of before the restructuring; what the nodes own is
// source's TestOpenNodes.
func TestSourceConfig(t *testing.T) {
	pool := []string{"127.0.0.1:7001:1 a", "127.0.0.1:7002:2"}
	cases := []struct {
		name     string
		typ      string
		dist     string
		servers  []string
		names    string
		backends []shard.Server
		safe     bool
	}{
		{"single", conf.TypeSingle, "", []string{"127.0.0.1:1"}, "127.0.0.1:1", []shard.Server{{Addr: "127.0.0.1:1", Weight: 1}}, true},
		{"singles", conf.TypeSingle, "", []string{"127.0.0.1:1", "127.0.0.1:2"}, "127.0.0.1:1,127.0.0.1:2", nil, true},
		{"ketama", conf.TypeTwemproxy, "ketama", pool, "127.0.0.1:7001,127.0.0.1:7002",
			[]shard.Server{{Addr: "127.0.0.1:7001", Weight: 1, Name: "a"}, {Addr: "127.0.0.1:7002", Weight: 2}}, true},
		{"modula", conf.TypeTwemproxy, "modula", pool, "127.0.0.1:7001,127.0.0.1:7002", nil, true},
		{"random", conf.TypeTwemproxy, "random", pool, "127.0.0.1:7001,127.0.0.1:7002", nil, true},
		{"rdb files", conf.TypeRDBFile, "", []string{"/tmp/a.rdb", "b.rdb"}, "/tmp/a.rdb,b.rdb", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := conf.Default()
			cfg.Source.Type, cfg.Source.Servers, cfg.Source.Distribution = tc.typ, tc.servers, tc.dist
			cfg.Target.Servers = []string{"127.0.0.1:2"}
			cfg.Common.Dir = t.TempDir()
			d, err := New(cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			sc, err := d.sourceConfig(8888)
			if err != nil {
				t.Fatal(err)
			}
			if sc.Kind != tc.typ || sc.Dir != cfg.Common.Dir || sc.SourceSafe != tc.safe || sc.Link.ListeningPort != 8888 ||
				sc.Distribution != tc.dist || sc.Hash != cfg.Source.Hash || sc.HashTag != cfg.Source.HashTag {
				t.Errorf("config %+v", sc)
			}
			if got := strings.Join(sc.Servers, ","); got != tc.names {
				t.Errorf("servers %s, want %s", got, tc.names)
			}
			for i, b := range tc.backends {
				if i >= len(sc.Backends) || sc.Backends[i] != b {
					t.Errorf("backends %+v, want %+v", sc.Backends, tc.backends)
					break
				}
			}
			src, err := source.Open(context.Background(), sc)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, n := range src.Nodes {
				names = append(names, n.Name())
			}
			if got := strings.Join(names, ","); got != tc.names {
				t.Fatalf("nodes %s, want %s", got, tc.names)
			}
		})
	}

	for _, tc := range []struct {
		name    string
		typ     string
		servers []string
		want    string
	}{
		{"pool server twice", conf.TypeTwemproxy, []string{"127.0.0.1:7001:1", "127.0.0.1:7001:1 b"}, "both 127.0.0.1:7001"},
		{"pool port not a number", conf.TypeTwemproxy, []string{"127.0.0.1:x"}, "servers[0]"},
		{"pool unix socket", conf.TypeTwemproxy, []string{"/tmp/redis.sock:1"}, "servers[0]"},
		{"cluster with no seed answering", conf.TypeRedisCluster, []string{"127.0.0.1:1"}, "no seed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := conf.Default()
			cfg.Source.Type, cfg.Source.Servers = tc.typ, tc.servers
			cfg.Source.Timeout = time.Second
			cfg.Target.Servers = []string{"127.0.0.1:2"}
			cfg.Common.Dir = t.TempDir()
			d, err := New(cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			sc, err := d.sourceConfig(0)
			if err == nil {
				_, err = source.Open(context.Background(), sc)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
}
