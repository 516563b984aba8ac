package source

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/shard"
)

// TestOpenNodes: source.Open makes one node per server (a pool's backends in its order), with
// ownership where the kind knows a key's home, the FLUSHALL rule where a node is one of several,
// and one source_safe gate shared by all. Ported from the daemon's TestSourceNodes of before the
// restructuring (the part that went from daemon.sourceConfig's output to the nodes).
func TestOpenNodes(t *testing.T) {
	pool := []shard.Server{{Addr: "127.0.0.1:7001", Weight: 1, Name: "a"}, {Addr: "127.0.0.1:7002", Weight: 1, Name: "b"}}
	cases := []struct {
		name     string
		kind     string
		dist     string
		servers  []string
		backends []shard.Server
		names    string
		owners   bool // each node owns only its keys
		several  bool // each node's FLUSHALL is dropped
	}{
		{"single", KindSingle, "", []string{"127.0.0.1:1"}, nil, "127.0.0.1:1", false, false},
		{"singles", KindSingle, "", []string{"127.0.0.1:1", "127.0.0.1:2"}, nil, "127.0.0.1:1,127.0.0.1:2", false, true},
		{"ketama", KindTwemproxy, "ketama", nil, pool, "127.0.0.1:7001,127.0.0.1:7002", true, true},
		{"modula", KindTwemproxy, "modula", nil, pool, "127.0.0.1:7001,127.0.0.1:7002", true, true},
		{"random keeps every key", KindTwemproxy, "random", nil, pool, "127.0.0.1:7001,127.0.0.1:7002", false, true},
		{"one backend", KindTwemproxy, "ketama", nil, pool[:1], "127.0.0.1:7001", true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := openKind(t, tc.kind, Config{Servers: tc.servers, Backends: tc.backends, Distribution: tc.dist, SourceSafe: true})
			var names []string
			var hosts *hostTurns
			for i, n := range src.Nodes {
				names = append(names, n.Name())
				rn, ok := n.(*replicaNode)
				if !ok {
					t.Fatalf("%s: %T, want a replica node", n.Name(), n)
				}
				if i == 0 {
					hosts = rn.hosts
				}
				if rn.hosts == nil || rn.hosts != hosts {
					t.Errorf("%s: source_safe gate %p, not the one of the others (%p)", n.Name(), rn.hosts, hosts)
				}
				if n.Finite() || n.FollowsFailovers() {
					t.Errorf("%s: finite %v, follows failovers %v", n.Name(), n.Finite(), n.FollowsFailovers())
				}
				own := ownershipOf(t, n)
				if (own != nil && own.get() != nil) != tc.owners {
					t.Errorf("%s: ownership %v, want owners %v", n.Name(), own, tc.owners)
				}
				if ro, ok := ringOf(own); ok && ro.ring.Distribution() != tc.dist {
					t.Errorf("%s: ring of distribution %s, want %s", n.Name(), ro.ring.Distribution(), tc.dist)
				}
				several := false
				if f := n.Filter(0); f != nil {
					several = f.(*streamFilter).several
				}
				if several != tc.several {
					t.Errorf("%s: one of several %v with %d nodes", n.Name(), several, len(src.Nodes))
				}
			}
			if got := strings.Join(names, ","); got != tc.names {
				t.Fatalf("nodes %s, want %s", got, tc.names)
			}
			if src.NotFollowed() != 0 {
				t.Errorf("not followed: %d", src.NotFollowed())
			}
		})
	}
	off := openKind(t, KindSingle, Config{Servers: []string{"127.0.0.1:1", "127.0.0.1:2"}})
	if off.Nodes[0].(*replicaNode).hosts != nil {
		t.Error("source_safe off: a gate all the same")
	}
}

// TestOpenRefused: what Open refuses, with the reason.
func TestOpenRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"unknown kind", Config{Kind: "sentinel?"}, "not supported"},
		{"cluster with no seed answering", Config{Kind: KindRedisCluster, Servers: []string{"127.0.0.1:1"}, Link: LinkOptions{Timeout: time.Second}}, "no seed"},
		{"pool without servers", Config{Kind: KindTwemproxy}, "no servers"},
		{"pool server twice", Config{Kind: KindTwemproxy, Backends: []shard.Server{{Addr: "127.0.0.1:1", Weight: 1}, {Addr: "127.0.0.1:1", Weight: 1, Name: "b"}}}, "both"},
		{"pool unknown hash", Config{Kind: KindTwemproxy, Backends: backends(1), Hash: "sha1"}, "sha1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.Dir = t.TempDir()
			if _, err := Open(ctx, tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
	if k := Kinds(); strings.Join(k, ",") != "aof file,rdb file,redis cluster,sentinel,single,twemproxy" {
		t.Errorf("kinds %q", k)
	}
}

// ringOf is the ring owner behind o, if it has one.
func ringOf(o *ownership) (ringOwner, bool) {
	if o == nil {
		return ringOwner{}, false
	}
	ro, ok := o.get().(ringOwner)
	return ro, ok
}
