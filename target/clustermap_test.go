package target

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rmt-project/rmt/aof"
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

// TestCheckpointsWithoutCLIENT: a target that refuses CLIENT (and CONFIG, COMMAND) takes a
// checkpointed stream; the log says what the missing CLIENT KILL cannot guarantee.
func TestCheckpointsWithoutCLIENT(t *testing.T) {
	dst := redistest.StartRedis(t, redistest.WithArgs(`rename-command CLIENT ""`, `rename-command CONFIG ""`,
		`rename-command COMMAND ""`))
	core, logs := observer.New(zap.WarnLevel)
	w := newSingle(t, dst.Addr, SingleOptions{CheckpointKey: testCheckpointKey, Replid: func() string { return "r1" },
		Logger: zap.New(core)})
	ctx := context.Background()
	if err := w.StartOplog(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	stream := []*aof.Command{rawCmd("SELECT", "0"), rawCmd("SET", "a", "1"), rawCmd("INCR", "n")}
	if err := applyStream(t, w, stream, 0); err != nil {
		t.Fatal(err)
	}
	cp, ok, err := ReadCheckpoint(ctx, Options{Addr: dst.Addr}, testCheckpointKey)
	if err != nil || !ok || cp.Offset != streamEnd(stream) {
		t.Fatalf("checkpoint %+v %v %v", cp, ok, err)
	}
	if logs.FilterMessageSnippet("refuses CLIENT ID").Len() != 1 {
		t.Errorf("no warning about CLIENT: %v", logs.All())
	}
}
