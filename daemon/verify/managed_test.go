package verify

import (
	"context"
	"strings"
	"testing"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/internal/shard"
)

// TestClusterSlotMapRefusedByACL: a user refused CLUSTER SLOTS (as on some managed services) finds
// the cluster's masters and routes keys from CLUSTER SHARDS, one refused SHARDS too from
// CLUSTER NODES.
func TestClusterSlotMapRefusedByACL(t *testing.T) {
	c := redistest.StartCluster(t, 2)
	for user, rules := range map[string]string{"noSlots": "-cluster|slots", "noShards": "-cluster|slots -cluster|shards"} {
		args := []interface{}{"ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all"}
		for _, r := range strings.Fields(rules) {
			args = append(args, r)
		}
		for _, n := range c.Nodes {
			n.Do(t, args...)
		}
		p := conf.Default().Source
		p.Type = conf.TypeRedisCluster
		p.Servers = []string{c.Addrs[1]}
		p.RedisAuth = user + ":pw"
		s, err := openNodeSet(context.Background(), "source", p, 1)
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		if len(s.nodes) != 2 {
			t.Errorf("%s: %d nodes", user, len(s.nodes))
		}
		for _, k := range []string{"a", "b", "c", "{x}1", "zz"} {
			if got, want := s.nodeFor(k).addr, c.NodeForSlot(shard.Slot([]byte(k))).Addr; got != want {
				t.Errorf("%s: key %s routed to %s, want %s", user, k, got, want)
			}
		}
		s.Close()
	}
}
