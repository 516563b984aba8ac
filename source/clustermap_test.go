package source

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"

	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/internal/topology"
)

// TestClusterMapFallback: a user refused CLUSTER NODES (as on some managed services) gets the
// same slot map from CLUSTER SHARDS, and one refused both from CLUSTER SLOTS; one refused all
// three gets an error naming them.
func TestClusterMapFallback(t *testing.T) {
	c := redistest.StartCluster(t, 2)
	n := c.Nodes[0]
	for user, rules := range map[string]string{"noNodes": "-cluster|nodes", "noShards": "-cluster|nodes -cluster|shards",
		"none": "-cluster|nodes -cluster|shards -cluster|slots"} {
		n.Do(t, append([]interface{}{"ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all"}, toArgs(strings.Fields(rules))...)...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mapOf := func(user string) (*topology.Map, error) {
		conn, err := (radix.Dialer{AuthUser: user, AuthPass: "pw"}).Dial(ctx, "tcp", n.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return clusterMap(ctx, conn, n.Addr)
	}
	want, err := mapOf("default")
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"noNodes", "noShards"} {
		got, err := mapOf(user)
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		if !sameTable(got.Table(), want.Table()) || len(got.Serving()) != 2 {
			t.Errorf("%s: the slot map differs from CLUSTER NODES'", user)
		}
	}
	if _, err := mapOf("none"); err == nil || !strings.Contains(err.Error(), "CLUSTER SLOTS") {
		t.Errorf("none: %v", err)
	}
}

func toArgs(ss []string) []interface{} {
	out := make([]interface{}, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func sameTable(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
