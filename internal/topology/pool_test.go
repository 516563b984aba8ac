package topology

import (
	"strings"
	"testing"

	"github.com/rmt-project/rmt/internal/shard"
)

func TestNewPool(t *testing.T) {
	servers := []shard.Server{{Addr: "127.0.0.1:7001", Weight: 1, Name: "a"}, {Addr: "127.0.0.1:7002", Weight: 2}}
	p, err := NewPool(servers, "murmur", "modula", "{}")
	if err != nil {
		t.Fatal(err)
	}
	ring, err := shard.NewRing(servers, "murmur", "modula", "{}")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "{x}1", "{x}2", "user:42"} {
		if got, want := p.Ring.Pick([]byte(k)), ring.Pick([]byte(k)); got != want {
			t.Errorf("%s on %d, the ring says %d", k, got, want)
		}
	}
	if a := p.Addrs(); len(a) != 2 || a[0] != "127.0.0.1:7001" || a[1] != "127.0.0.1:7002" {
		t.Errorf("addrs %v", a)
	}
	servers[0].Addr = "changed"
	if p.Servers[0].Addr != "127.0.0.1:7001" {
		t.Error("the pool shares the caller's slice")
	}
	for _, tt := range []struct {
		name    string
		servers []shard.Server
		hash    string
		want    string
	}{
		{"none", nil, "", "no servers"},
		{"no port", []shard.Server{{Addr: "nonsense", Weight: 1}}, "", "host:port"},
		{"unix socket", []shard.Server{{Addr: "/tmp/redis.sock", Weight: 1}}, "", "host:port"},
		{"twice", []shard.Server{{Addr: "127.0.0.1:1", Weight: 1, Name: "a"}, {Addr: "127.0.0.1:1", Weight: 1, Name: "b"}}, "", "both 127.0.0.1:1"},
		{"weight 0", []shard.Server{{Addr: "127.0.0.1:1"}}, "", "weight"},
		{"same name", []shard.Server{{Addr: "127.0.0.1:1", Weight: 1, Name: "a"}, {Addr: "127.0.0.1:2", Weight: 1, Name: "a"}}, "", "same name"},
		{"unknown hash", []shard.Server{{Addr: "127.0.0.1:1", Weight: 1}}, "sha1", "sha1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewPool(tt.servers, tt.hash, "", ""); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
