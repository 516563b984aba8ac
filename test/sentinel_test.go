package test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/daemon/verify"
	"github.com/rmt-project/rmt/internal/redistest"
)

// sentinelSourceConfig is a job from a Sentinel-managed master into dst.
func sentinelSourceConfig(t *testing.T, g *redistest.SentinelGroup, dst string) *conf.Config {
	cfg := conf.Default()
	cfg.File = "test"
	cfg.Source.Type = conf.TypeSentinel
	cfg.Source.Servers = g.SentinelAddrs()
	cfg.Source.MasterName = g.Name
	cfg.Target.Servers = []string{dst}
	cfg.Common.Listen = "127.0.0.1:0"
	cfg.Common.Dir = filepath.Join(t.TempDir(), "data")
	return cfg
}

// infoInt reads an integer field of a server's INFO section.
func infoInt(t *testing.T, r *redistest.Redis, section, field string) int64 {
	t.Helper()
	v := r.Info(t, section)[field]
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("%s INFO %s %s: %q", r.Addr, section, field, v)
	}
	return n
}

// waitSentinelsSeeRmtd waits until every Sentinel lists rmtd (its admin port) as a replica of
// the group's master, with priority 0.
func waitSentinelsSeeRmtd(t *testing.T, g *redistest.SentinelGroup, r *Rmtd) {
	t.Helper()
	_, port := splitAddr(r.Admin)
	redistest.WaitFor(t, 30*time.Second, func() error {
		for _, s := range g.Sentinels {
			reps, _ := s.Do(t, "SENTINEL", "REPLICAS", g.Name).([]interface{})
			found := false
			for _, rep := range reps {
				f := fields(rep)
				if f["port"] == port {
					if f["slave-priority"] != "0" || f["flags"] != "slave" || f["master-link-status"] != "ok" {
						return fmt.Errorf("sentinel %s sees rmtd as %v", s.Addr, f)
					}
					found = true
				}
			}
			if !found {
				return fmt.Errorf("sentinel %s does not list rmtd (port %s) among %d replicas", s.Addr, port, len(reps))
			}
		}
		return nil
	})
}

func fields(v interface{}) map[string]string {
	m := map[string]string{}
	arr, _ := v.([]interface{})
	for i := 0; i+1 < len(arr); i += 2 {
		k, _ := arr[i].(string)
		val, _ := arr[i+1].(string)
		m[k] = val
	}
	return m
}

func splitAddr(addr string) (string, string) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:]
		}
	}
	return addr, ""
}

// TestSentinelSourceFailover: a Sentinel-managed master (1 replica, 3 Sentinels, quorum 2)
// under live writes is killed in the stream phase; rmtd follows the promoted replica with a
// partial resync (its sync_partial_ok counts it, its sync_full does not), and the writes made
// before and after the failover are all on the target.
func TestSentinelSourceFailover(t *testing.T) {
	g := redistest.StartSentinelGroup(t, 1, 3, redistest.SentinelOptions{})
	dst := redistest.StartRedis(t)
	w := redistest.StartWriter(t, g.Master.Addr, redistest.WriterOptions{DBs: []int{0, 3}, Rate: 2000, Seed: 11,
		Reconnect: true, Resolve: g.Resolve()})
	redistest.WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), 1000) })
	r := StartRmtd(t, sentinelSourceConfig(t, g, dst.Addr))
	waitPhase(t, r, "oplog", 60*time.Second)
	waitSentinelsSeeRmtd(t, g, r)
	replica := g.Replicas[0]
	fullBefore, partialBefore := infoInt(t, replica, "stats", "sync_full"), infoInt(t, replica, "stats", "sync_partial_ok")
	opsAtKill := w.Ops()
	redistest.KillMasterQuiet(t, g.Master, 10*time.Second)
	now := g.WaitFailover(t, g.Master, 30*time.Second)
	if now != replica {
		t.Fatalf("new master %s, want %s", now.Addr, replica.Addr)
	}
	redistest.WaitFor(t, 30*time.Second, func() error { return atLeast(w.Ops(), opsAtKill+3000) })
	stats := w.Stop()
	t.Logf("writer: %s", stats)
	waitCaughtUp(t, r, now, 60*time.Second)
	if got := infoInt(t, now, "stats", "sync_partial_ok"); got != partialBefore+1 {
		t.Errorf("new master's sync_partial_ok %d, want %d (rmtd's partial resync)", got, partialBefore+1)
	}
	if got := infoInt(t, now, "stats", "sync_full"); got != fullBefore {
		t.Errorf("new master's sync_full %d, want %d: rmtd took a second snapshot", got, fullBefore)
	}
	compareDumps(t, now.Dump(t), withoutCheckpoints(dst.Dump(t)), 1000)
	m := r.Info(t)
	if m["source0.port"] != strconv.Itoa(now.Port) || m["source0.full_syncs"] != "1" {
		t.Errorf("INFO source0 %q: want port %d and 1 full sync", m["source0"], now.Port)
	}
}

// switchDelay kills g's master (quietly: no write is lost) and returns the time from the kill
// to the first +switch-master any of its Sentinels logged.
func switchDelay(t *testing.T, g *redistest.SentinelGroup) time.Duration {
	t.Helper()
	killed := redistest.KillMasterQuiet(t, g.Master, 10*time.Second)
	g.WaitFailover(t, g.Master, 40*time.Second)
	var first time.Time
	redistest.WaitFor(t, 10*time.Second, func() error {
		for _, s := range g.Sentinels {
			for _, at := range s.SwitchMasterTimes(t) {
				if first.IsZero() || at.Before(first) {
					first = at
				}
			}
		}
		if first.IsZero() {
			return fmt.Errorf("no +switch-master in the Sentinels' logs")
		}
		return nil
	})
	return first.Sub(killed)
}

// TestSentinelFailoverNotSlowed: the same failover (master, 1 replica, 3 Sentinels, quorum 2,
// down-after 2 s, failover-timeout 10 s) with and without rmtd replicating the master (a
// `single` source: any kind of source may have Sentinels watching it). rmtd takes the
// Sentinel's SLAVEOF at once, so +switch-master comes no later than one INFO period (1 s during
// a failover) after the time without rmtd, far from the failover timeout that a replica which
// ignored SLAVEOF would cost; and the Sentinels keep their connections to rmtd's admin port.
func TestSentinelFailoverNotSlowed(t *testing.T) {
	so := redistest.SentinelOptions{DownAfter: 2 * time.Second, FailoverTimeout: 10 * time.Second}
	alone := redistest.StartSentinelGroup(t, 1, 3, so)
	without := switchDelay(t, alone)

	g := redistest.StartSentinelGroup(t, 1, 3, so)
	dst := redistest.StartRedis(t)
	w := redistest.StartWriter(t, g.Master.Addr, redistest.WriterOptions{Rate: 1000, Seed: 5, Reconnect: true, Resolve: g.Resolve()})
	cfg := conf.Default()
	cfg.File = "test"
	cfg.Source.Servers = []string{g.Master.Addr}
	cfg.Target.Servers = []string{dst.Addr}
	cfg.Common.Listen = "127.0.0.1:0"
	cfg.Common.Dir = filepath.Join(t.TempDir(), "data")
	r := StartRmtd(t, cfg)
	waitPhase(t, r, "oplog", 60*time.Second)
	waitSentinelsSeeRmtd(t, g, r)
	with := switchDelay(t, g)
	t.Logf("+switch-master after the kill: %v without rmtd, %v with rmtd", without.Round(time.Millisecond), with.Round(time.Millisecond))
	if with > without+1500*time.Millisecond || with >= so.FailoverTimeout {
		t.Errorf("the failover took %v with rmtd, %v without", with, without)
	}
	// Once the Sentinels know rmtd as a replica of the new master (their +switch-master made
	// them connect again), they keep their connections: a refused SUBSCRIBE would make each
	// reconnect about 3 times a second.
	waitSentinelsSeeRmtd(t, g, r)
	conns, since := atoi(t, r.Info(t)["total_connections_received"]), time.Now()
	now := g.Current(t)
	ops := w.Ops()
	redistest.WaitFor(t, 20*time.Second, func() error { return atLeast(w.Ops(), ops+3000) })
	if n := atoi(t, r.Info(t)["total_connections_received"]) - conns; n > 2 { // 1: this INFO's
		t.Errorf("%d new connections to the admin port in %v: the Sentinels reconnect", n, time.Since(since))
	}
	w.Stop()
	waitCaughtUp(t, r, now, 60*time.Second)
	compareDumps(t, now.Dump(t), withoutCheckpoints(dst.Dump(t)), 100)
}

// TestClusterToSentinelTargetFailover: a 3-master cluster under live writes into a
// Sentinel-managed target whose master is killed (not quietly: its replica may be behind) in
// the stream phase. The writers move to the promoted replica and resend from the checkpoint it
// holds: it ends equal to the source.
func TestClusterToSentinelTargetFailover(t *testing.T) {
	src := redistest.StartCluster(t, 3)
	g := redistest.StartSentinelGroup(t, 1, 3, redistest.SentinelOptions{})
	owner := func(key string) *redistest.Redis { return src.NodeForKey(t, key) }
	for i := range 2000 {
		mustWrite(t, owner, i, "before")
	}
	cfg := topologyConfig(t)
	cfg.Common.CheckpointKey = conf.DefaultCheckpointKey // exactly once into the target's master
	cfg.Source.Type, cfg.Source.Servers = conf.TypeRedisCluster, src.Addrs[:1]
	cfg.Target.Type, cfg.Target.Servers, cfg.Target.MasterName = conf.TypeSentinel, g.SentinelAddrs(), g.Name
	r := StartRmtd(t, cfg)
	stop := liveWrites(t, owner, 3000)
	waitPhase(t, r, "oplog", 60*time.Second)
	g.Master.Kill()
	now := g.WaitFailover(t, g.Master, 30*time.Second)
	more := liveWrites(t, owner, 2000) // writes made after the failover, beside the first writer's
	more()
	t.Logf("%d live writes", stop())
	waitSourcesCaughtUp(t, r, src.Nodes, 60*time.Second)
	compareDumps(t, src.Dump(t), withoutCheckpoints(now.Dump(t)), 2000)
	m := r.Info(t)
	if m["target0.port"] != strconv.Itoa(now.Port) || m["target1"] != "" {
		t.Errorf("INFO targets %q %q: want only the new master %s", m["target0"], m["target1"], now.Addr)
	}
	if !strings.Contains(r.LogBuf.String(), "resent from the checkpoint the new master holds") {
		t.Error("the move to the new master is not logged")
	}
}

// TestClusterPreferReplica: with source.prefer_replica, rmtd links to the replica of each of 3
// masters: the masters count no full sync for rmtd (they fork for nobody), the replicas one
// each, and the target ends equal to the cluster under live writes. INFO shows the replica each
// link uses (ip, port) and the master it stands for (name).
func TestClusterPreferReplica(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	reps := cl.AddReplicas(t)
	dst := redistest.StartRedis(t)
	owner := func(key string) *redistest.Redis { return cl.NodeForKey(t, key) }
	for i := range 1500 {
		mustWrite(t, owner, i, "before")
	}
	full := func(nodes []*redistest.Redis) []int64 {
		var out []int64
		for _, n := range nodes {
			out = append(out, infoInt(t, n, "stats", "sync_full"))
		}
		return out
	}
	masterFull, replicaFull := full(cl.Nodes), full(reps)
	cfg := topologyConfig(t)
	cfg.Source.Type, cfg.Source.Servers, cfg.Source.PreferReplica = conf.TypeRedisCluster, cl.Addrs[:1], true
	cfg.Target.Servers = []string{dst.Addr}
	r := StartRmtd(t, cfg)
	stop := liveWrites(t, owner, 3000)
	waitPhase(t, r, "oplog", 60*time.Second)
	t.Logf("%d live writes", stop())
	waitSourcesCaughtUp(t, r, reps, 60*time.Second)
	compareDumps(t, cl.Dump(t), dst.Dump(t), 1500)
	if got := full(cl.Nodes); !slices.Equal(got, masterFull) {
		t.Errorf("masters' sync_full %v, was %v: rmtd made a master fork", got, masterFull)
	}
	for i, got := range full(reps) {
		if got != replicaFull[i]+1 {
			t.Errorf("replica %s sync_full %d, want %d (rmtd's snapshot)", reps[i].Addr, got, replicaFull[i]+1)
		}
	}
	m := r.Info(t)
	for i := range 3 {
		p := "source" + strconv.Itoa(i)
		if !slices.ContainsFunc(reps, func(rep *redistest.Redis) bool { return strconv.Itoa(rep.Port) == m[p+".port"] }) ||
			!slices.Contains(cl.Addrs, m[p+".name"]) {
			t.Errorf("INFO %s: %q: want a replica's port and its master as name", p, m[p])
		}
	}
}

// TestSentinelClusterDRPair is the disaster-recovery pair: a 3-master cluster is migrated into
// a Sentinel-managed deployment under live writes (redis_check agrees), the job is stopped, and
// the reverse job runs (the Sentinel deployment as source, with redis_testinsert writing into
// it through its Sentinels, the cluster as target), after which the cluster equals the Sentinel
// deployment again (redis_check agrees).
func TestSentinelClusterDRPair(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	g := redistest.StartSentinelGroup(t, 1, 3, redistest.SentinelOptions{})
	owner := func(key string) *redistest.Redis { return cl.NodeForKey(t, key) }
	for i := range 1500 {
		mustWrite(t, owner, i, "before")
	}
	there := topologyConfig(t)
	there.Common.CheckpointKey = conf.DefaultCheckpointKey
	there.Source.Type, there.Source.Servers = conf.TypeRedisCluster, cl.Addrs[:1]
	there.Target.Type, there.Target.Servers, there.Target.MasterName = conf.TypeSentinel, g.SentinelAddrs(), g.Name
	r := StartRmtd(t, there)
	stop := liveWrites(t, owner, 2000)
	waitPhase(t, r, "oplog", 60*time.Second)
	stop()
	waitSourcesCaughtUp(t, r, cl.Nodes, 60*time.Second)
	compareDumps(t, cl.Dump(t), withoutCheckpoints(g.Master.Dump(t)), 1500)
	ctx := context.Background()
	if res, err := verify.RunCheck(ctx, there, verify.CheckOptions{Keys: 500, Rounds: 1}); err != nil || res.OK != res.Checked || res.Checked == 0 {
		t.Fatalf("redis_check cluster → sentinel: %+v, %v", res, err)
	}
	r.Stop(t)

	back := topologyConfig(t) // no checkpoints: the target is a cluster
	back.Source.Type, back.Source.Servers, back.Source.MasterName = conf.TypeSentinel, g.SentinelAddrs(), g.Name
	back.Target.Type, back.Target.Servers = conf.TypeRedisCluster, cl.Addrs[1:2]
	// The cluster holds the data rmtd read from it, not what rmtd wrote: the way back replaces it.
	back.Common.TargetNotEmpty = conf.TargetNotEmptyFlush
	r2 := StartRmtd(t, back)
	w := redistest.StartWriter(t, g.Master.Addr, redistest.WriterOptions{Rate: 2000, Seed: 21})
	waitPhase(t, r2, "oplog", 60*time.Second)
	// Streams left out: their groups' entries-read does not replicate on Redis 7.0 (see
	// compareDumps), which redis_check would report.
	ins, err := verify.RunTestInsert(ctx, back, verify.TestInsertOptions{Keys: 500,
		Types: verify.InsertAll &^ verify.InsertStream})
	if err != nil || ins.Correct != 500 {
		t.Fatalf("redis_testinsert into the Sentinel master: %+v, %v", ins, err)
	}
	redistest.WaitFor(t, 20*time.Second, func() error { return atLeast(w.Ops(), 3000) })
	w.Stop()
	waitCaughtUp(t, r2, g.Master, 60*time.Second)
	compareDumps(t, withoutCheckpoints(g.Master.Dump(t)), withoutCheckpoints(cl.Dump(t)), 2000)
	if res, err := verify.RunCheck(ctx, back, verify.CheckOptions{Keys: 500, Rounds: 1}); err != nil || res.OK != res.Checked || res.Checked == 0 {
		t.Fatalf("redis_check sentinel → cluster: %+v, %v", res, err)
	}
}

// TestSentinelPreferReplica: with prefer_replica a sentinel source links to a replica (the
// master forks for nobody), follows the replica's own master change when the master fails
// over, and never takes a second snapshot.
func TestSentinelPreferReplica(t *testing.T) {
	g := redistest.StartSentinelGroup(t, 2, 3, redistest.SentinelOptions{})
	dst := redistest.StartRedis(t)
	w := redistest.StartWriter(t, g.Master.Addr, redistest.WriterOptions{Rate: 2000, Seed: 31, Reconnect: true, Resolve: g.Resolve()})
	redistest.WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), 1000) })
	masterFull := infoInt(t, g.Master, "stats", "sync_full")
	cfg := sentinelSourceConfig(t, g, dst.Addr)
	cfg.Source.PreferReplica = true
	r := StartRmtd(t, cfg)
	waitPhase(t, r, "oplog", 60*time.Second)
	m := r.Info(t)
	var via *redistest.Redis
	for _, rep := range g.Replicas {
		if m["source0.port"] == strconv.Itoa(rep.Port) {
			via = rep
		}
	}
	if via == nil || m["source0.name"] != g.Name {
		t.Fatalf("INFO source0 %q: want a replica's port and name %s", m["source0"], g.Name)
	}
	if got := infoInt(t, g.Master, "stats", "sync_full"); got != masterFull {
		t.Errorf("master's sync_full %d, was %d: it forked for rmtd", got, masterFull)
	}
	if got := infoInt(t, via, "stats", "sync_full"); got != 1 {
		t.Errorf("replica %s sync_full %d, want 1 (rmtd's snapshot)", via.Addr, got)
	}
	opsAtKill := w.Ops()
	redistest.KillMasterQuiet(t, g.Master, 10*time.Second)
	now := g.WaitFailover(t, g.Master, 30*time.Second)
	redistest.WaitFor(t, 30*time.Second, func() error { return atLeast(w.Ops(), opsAtKill+3000) })
	w.Stop()
	redistest.WaitFor(t, 60*time.Second, func() error {
		repl := now.Info(t, "replication")
		m, err := adminInfo(r.Admin)
		if err != nil {
			return err
		}
		if m["source0.replid"] != repl["master_replid"] || m["source0.applied_offset"] != repl["master_repl_offset"] {
			return fmt.Errorf("new master %s at %s %s, rmtd %s", now.Addr, repl["master_replid"], repl["master_repl_offset"], m["source0"])
		}
		return nil
	})
	compareDumps(t, now.Dump(t), withoutCheckpoints(dst.Dump(t)), 1000)
	if m := r.Info(t); m["source0.full_syncs"] != "1" {
		t.Errorf("INFO source0 %q: want 1 full sync", m["source0"])
	}
}

// TestSentinelFailoverDuringSnapshot: the master fails over while rmtd's first snapshot is
// still being produced (rdb-key-save-delay makes it slow): rmtd takes its snapshot from the new
// master, and the target ends equal to it.
func TestSentinelFailoverDuringSnapshot(t *testing.T) {
	g := redistest.StartSentinelGroup(t, 1, 3, redistest.SentinelOptions{})
	for i := range 4000 {
		g.Master.Do(t, "SET", "k:"+strconv.Itoa(i), i)
	}
	redistest.WaitReplicaSynced(t, g.Master, g.Replicas[0], 10*time.Second)
	g.Master.Do(t, "CONFIG", "SET", "rdb-key-save-delay", "5000") // 5 ms a key: 20 s for the snapshot
	dst := redistest.StartRedis(t)
	r := StartRmtd(t, sentinelSourceConfig(t, g, dst.Addr))
	_, port := splitAddr(r.Admin)
	redistest.WaitFor(t, 20*time.Second, func() error {
		if line := replicaLine(g.Master.Info(t, "replication"), port); !strings.Contains(line, "state=wait_bgsave") &&
			!strings.Contains(line, "state=send_bulk") {
			return fmt.Errorf("rmtd's snapshot is not in progress: %q", line)
		}
		return nil
	})
	g.Master.Kill()
	now := g.WaitFailover(t, g.Master, 30*time.Second)
	w := redistest.StartWriter(t, now.Addr, redistest.WriterOptions{Rate: 2000, Seed: 41})
	waitPhase(t, r, "oplog", 60*time.Second)
	redistest.WaitFor(t, 20*time.Second, func() error { return atLeast(w.Ops(), 2000) })
	w.Stop()
	waitCaughtUp(t, r, now, 60*time.Second)
	compareDumps(t, now.Dump(t), withoutCheckpoints(dst.Dump(t)), 4000)
	if got := infoInt(t, now, "stats", "sync_full"); got != 1 {
		t.Errorf("new master's sync_full %d, want 1 (rmtd's snapshot)", got)
	}
}

// TestClusterPreferReplicaFailover: with prefer_replica, a master's replica that rmtd links to
// is promoted (CLUSTER FAILOVER) between two rounds of live writes (a write during the switch
// would get MOVED): the link stays on it, now the master, with a partial resync, and the target
// ends equal to the cluster.
func TestClusterPreferReplicaFailover(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	reps := cl.AddReplicas(t)
	dst := redistest.StartRedis(t)
	owner := func(key string) *redistest.Redis {
		slot := int(reps[1].Do(t, "CLUSTER", "KEYSLOT", key).(int64))
		if n := cl.NodeForSlot(slot); n != cl.Nodes[0] || reps[0].Info(t, "replication")["role"] != "master" {
			return n
		}
		return reps[0]
	}
	cfg := topologyConfig(t)
	cfg.Source.Type, cfg.Source.Servers, cfg.Source.PreferReplica = conf.TypeRedisCluster, cl.Addrs[:1], true
	cfg.Target.Servers = []string{dst.Addr}
	r := StartRmtd(t, cfg)
	stop := liveWrites(t, owner, 2000)
	waitPhase(t, r, "oplog", 60*time.Second)
	stop()
	reps[0].Do(t, "CLUSTER", "FAILOVER")
	redistest.WaitFor(t, 20*time.Second, func() error {
		if role := reps[0].Info(t, "replication")["role"]; role != "master" {
			return fmt.Errorf("%s is still %s", reps[0].Addr, role)
		}
		return nil
	})
	more := liveWrites(t, owner, 2000)
	more()
	waitSourcesCaughtUp(t, r, reps, 60*time.Second)
	masters := []*redistest.Redis{reps[0], cl.Nodes[1], cl.Nodes[2]}
	var parts []*redistest.Dataset
	for _, n := range masters {
		parts = append(parts, n.Dump(t))
	}
	compareDumps(t, redistest.MergeDatasets(t, "cluster", parts...), dst.Dump(t), 1000)
	m := r.Info(t)
	for i := range 3 {
		if p := "source" + strconv.Itoa(i); m[p+".full_syncs"] != "1" {
			t.Errorf("INFO %s: %q: want 1 full sync", p, m[p])
		}
	}
}

// TestSentinelScanLiveFailover: a sentinel source in source.mode scan_live (a master that
// sends keyspace notifications, 1 replica, 3 Sentinels) under live writes: its master is killed
// once the pass is done; rmtd reads the promoted replica again from the start (a new pass on
// the new master, as scan_live does wherever its server moves) and, once the writer stops, the
// target equals the new master.
func TestSentinelScanLiveFailover(t *testing.T) {
	g := redistest.StartSentinelGroup(t, 1, 3, redistest.SentinelOptions{}, redistest.WithArgs(notifyKEA))
	fill(t, g.Master.Addr, 200)
	dst := redistest.StartRedis(t)
	w := redistest.StartWriter(t, g.Master.Addr, redistest.WriterOptions{DBs: []int{0, 1}, Rate: 2000, Seed: 5,
		Reconnect: true, Resolve: g.Resolve()})
	cfg := sentinelSourceConfig(t, g, dst.Addr)
	cfg.Source.Mode = conf.ModeScanLive
	r := StartRmtd(t, cfg)
	waitPhase(t, r, "oplog", 60*time.Second)
	replica := g.Replicas[0]
	redistest.KillMasterQuiet(t, g.Master, 10*time.Second)
	if now := g.WaitFailover(t, g.Master, 30*time.Second); now != replica {
		t.Fatalf("new master %s, want %s", now.Addr, replica.Addr)
	}
	opsAtFailover := w.Ops()
	redistest.WaitFor(t, 30*time.Second, func() error { return atLeast(w.Ops(), opsAtFailover+3000) })
	t.Logf("writer: %s", w.Stop())
	waitDumpsEqual(t, 30*time.Second, replica, dst, 1000)
	m := r.Info(t)
	t.Logf("source0: %s", m["source0"])
	if m["source0.mode"] != conf.ModeScanLive || m["source0.port"] != strconv.Itoa(replica.Port) {
		t.Errorf("INFO source0 %q: want mode scan_live on port %d", m["source0"], replica.Port)
	}
	if atoi(t, m["source0.scan_passes"]) < 2 {
		t.Errorf("INFO source0 %q: want a second pass, on the new master", m["source0"])
	}
}
