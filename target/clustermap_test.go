package target

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/internal/redistest"
)

// TestClusterTableFallback: a cluster target whose user is refused CLUSTER NODES (as on some
// managed services) reads the same slot map from CLUSTER SHARDS, or with SHARDS refused too,
// from CLUSTER SLOTS.
func TestClusterTableFallback(t *testing.T) {
	c := redistest.StartCluster(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	table := func(user string) []string {
		t.Helper()
		r := &clusterRouter{seeds: []string{c.Addrs[0]}, log: zap.NewNop(),
			conn: Options{Username: user, Password: "pw", Timeout: 5 * time.Second}}
		if user == "" {
			r.conn.Password = ""
		}
		defer r.close()
		tab, err := r.table(ctx, nil)
		if err != nil {
			t.Fatalf("user %q: %v", user, err)
		}
		return tab
	}
	want := table("")
	for user, rules := range map[string][]interface{}{"noNodes": {"-cluster|nodes"},
		"noShards": {"-cluster|nodes", "-cluster|shards"}} {
		c.Nodes[0].Do(t, append([]interface{}{"ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all"}, rules...)...)
		if got := table(user); !slices.Equal(got, want) {
			t.Errorf("%s: the slot map differs from CLUSTER NODES'", user)
		}
	}
}
