package test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/daemon/verify"
	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/internal/shard"
)

// twemproxyPool names backends as twemproxy servers ("host:port:1 sN") and returns the lines and
// the ring nutcracker would use with hash, distribution and tag.
func twemproxyPool(t *testing.T, backends []*redistest.Redis, hash, distribution, tag string) ([]string, *shard.Ring) {
	t.Helper()
	var lines []string
	var servers []shard.Server
	for i, b := range backends {
		line := fmt.Sprintf("%s:1 s%d", b.Addr, i)
		s, err := shard.ParseServer(line)
		if err != nil {
			t.Fatal(err)
		}
		lines, servers = append(lines, line), append(servers, s)
	}
	ring, err := shard.NewRing(servers, hash, distribution, tag)
	if err != nil {
		t.Fatal(err)
	}
	return lines, ring
}

func topologyConfig(t *testing.T) *conf.Config {
	cfg := conf.Default()
	cfg.File = "test"
	cfg.Common.Listen = "127.0.0.1:0"
	cfg.Common.Dir = t.TempDir()
	cfg.Common.CheckpointKey = "" // a single-target feature
	return cfg
}

// TestClusterToCluster: a 3-master cluster into a 4-master cluster (another slot layout) under
// live writes, with a slot moved on the target during the oplog phase: the target ends equal.
func TestClusterToCluster(t *testing.T) {
	src := redistest.StartCluster(t, 3)
	dst := redistest.StartCluster(t, 4)
	owner := func(key string) *redistest.Redis { return src.NodeForKey(t, key) }
	for i := range 2000 {
		mustWrite(t, owner, i, "before")
	}
	cfg := topologyConfig(t)
	cfg.Source.Type, cfg.Source.Servers = conf.TypeRedisCluster, src.Addrs[:1]
	cfg.Target.Type, cfg.Target.Servers = conf.TypeRedisCluster, dst.Addrs[2:3]
	r := StartRmtd(t, cfg)
	stop := liveWrites(t, owner, 3000)
	waitPhase(t, r, "oplog", 60*time.Second)

	settleEpochs(t, dst)
	slot := int(dst.Nodes[0].Do(t, "CLUSTER", "KEYSLOT", "live:8").(int64))
	from := dst.NodeForSlot(slot)
	to := dst.Nodes[(indexOf(dst.Nodes, from)+1)%len(dst.Nodes)]
	moveSlotOf(t, dst, slot, from, to)
	t.Logf("slot %d moved on the target from %s to %s", slot, from.Addr, to.Addr)
	written := stop()
	t.Logf("%d live writes", written)
	waitSourcesCaughtUp(t, r, src.Nodes, 60*time.Second)
	compareDumps(t, src.Dump(t), dst.Dump(t), 1000)
	m := r.Info(t)
	if m["source_nodes_count"] != "3" || m["source2"] == "" || m["total_errors"] != "0" {
		t.Errorf("INFO: source_nodes_count %s, source2 %q, total_errors %s", m["source_nodes_count"], m["source2"], m["total_errors"])
	}
	// Every target master has its line.
	if m["target_nodes_count"] != "4" || m["target3"] == "" || m["target4"] != "" {
		t.Errorf("INFO: target_nodes_count %s, target lines: %q %q", m["target_nodes_count"], m["target3"], m["target4"])
	}
}

// TestTwemproxyToCluster: a twemproxy pool of 3 backends into a 3-master cluster under live
// writes: the target ends equal to the merged backends.
func TestTwemproxyToCluster(t *testing.T) {
	backends := []*redistest.Redis{redistest.StartRedis(t), redistest.StartRedis(t), redistest.StartRedis(t)}
	dst := redistest.StartCluster(t, 3)
	lines, ring := twemproxyPool(t, backends, "murmur", "modula", "{}")
	owner := func(key string) *redistest.Redis { return backends[ring.Pick([]byte(key))] }
	for i := range 2000 {
		mustWrite(t, owner, i, "before")
	}
	cfg := topologyConfig(t)
	cfg.Source.Type, cfg.Source.Servers = conf.TypeTwemproxy, lines
	cfg.Source.Hash, cfg.Source.Distribution, cfg.Source.HashTag = "murmur", "modula", "{}"
	cfg.Target.Type, cfg.Target.Servers = conf.TypeRedisCluster, dst.Addrs[:1]
	r := StartRmtd(t, cfg)
	stop := liveWrites(t, owner, 3000)
	waitPhase(t, r, "oplog", 60*time.Second)
	stop()
	waitSourcesCaughtUp(t, r, backends, 60*time.Second)
	var parts []*redistest.Dataset
	for _, b := range backends {
		parts = append(parts, b.Dump(t))
	}
	compareDumps(t, redistest.MergeDatasets(t, "backends", parts...), dst.Dump(t), 1000)
}

// TestCheckIgnoresStrays: redis_check on a twemproxy source does not report the keys a backend
// holds but does not own (the migration drops them) as missing on the target.
func TestCheckIgnoresStrays(t *testing.T) {
	backends := []*redistest.Redis{redistest.StartRedis(t), redistest.StartRedis(t)}
	dst := redistest.StartRedis(t)
	lines, ring := twemproxyPool(t, backends, "fnv1a_64", "ketama", "")
	for i := range 300 {
		key := fmt.Sprintf("k:%d", i)
		backends[ring.Pick([]byte(key))].Do(t, "SET", key, "v")
	}
	for i, b := range backends {
		b.Do(t, "SET", strayKey(t, ring, i, "check"), "stray")
	}
	cfg := topologyConfig(t)
	cfg.Source.Type, cfg.Source.Servers = conf.TypeTwemproxy, lines
	cfg.Source.Hash, cfg.Source.Distribution = "fnv1a_64", "ketama"
	cfg.Target.Servers = []string{dst.Addr}
	r := StartRmtd(t, cfg)
	waitPhase(t, r, "oplog", 30*time.Second)
	waitSourcesCaughtUp(t, r, backends, 30*time.Second)
	res, err := verify.RunCheck(context.Background(), cfg, verify.CheckOptions{Keys: 1000, Rounds: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Checked != 300 || res.OK != 300 {
		t.Errorf("checked %d, OK %d; want 300 and 300 (the 2 strays left out): %+v", res.Checked, res.OK, res.Bad)
	}
}
