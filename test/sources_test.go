package test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/internal/shard"
)

// Sharded sources (daemon/sources.go, daemon/ownership.go): a redis cluster source and a
// twemproxy pool, each merged into a single target, with RMT's dirty-data filter dropping the
// keys a node holds but does not own; and source_safe taking turns per host.

// TestSourceCluster: a 3-master cluster given by one seed, keys written to their masters before
// and during the migration, and dirty data planted on a master that does not own its slot (an
// importing slot, closed again): the stray keys in its RDB and the DELs of their expiry in its
// stream are dropped and counted, the owner's values win, and the target equals the merged
// cluster. Then a FLUSHALL on one master is not applied to the target (design rule 6).
func TestSourceCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	dst := redistest.StartRedis(t)
	owner := func(key string) *redistest.Redis { return c.NodeForSlot(shard.Slot([]byte(key))) }
	for i := range 3000 {
		mustWrite(t, owner, i, "before")
	}
	// Dirty data: two keys of slot S (node 0's) also on node 1, which imports S for a moment.
	const dirty1, dirty2 = "dirty:{x}", "dirty2:{x}"
	slot := shard.Slot([]byte(dirty1))
	a, b := owner(dirty1), c.Nodes[1]
	if a == b {
		b = c.Nodes[2]
	}
	a.Do(t, "SET", dirty1, "legit")
	a.Do(t, "SET", dirty2, "legit2")
	aID := a.DoString(t, "CLUSTER", "MYID")
	b.Do(t, "CLUSTER", "SETSLOT", slot, "IMPORTING", aID)
	asking(t, b, "SET", dirty1, "stray", "PX", "6000")
	asking(t, b, "SET", dirty2, "stray", "PX", "6000")
	b.Do(t, "CLUSTER", "SETSLOT", slot, "STABLE")

	cfg := clusterSourceConfig(t, c.Addrs[2], dst) // one seed finds every master
	r := StartRmtd(t, cfg)

	stop := liveWrites(t, owner, 3000)
	waitPhase(t, r, "oplog", 60*time.Second)
	written := stop()
	t.Logf("live writes: %d", written)
	// The strays expire on node 1: their DELs are in its stream, and dropped.
	redistest.WaitFor(t, 20*time.Second, func() error {
		if n := b.Do(t, "CLUSTER", "COUNTKEYSINSLOT", slot).(int64); n != 0 {
			return fmt.Errorf("%d stray keys still on %s", n, b.Addr)
		}
		return nil
	})
	waitSourcesCaughtUp(t, r, c.Nodes, 60*time.Second)

	compareMerged(t, c.Dump(t), dst)
	if got := dst.DoString(t, "GET", dirty1) + "," + dst.DoString(t, "GET", dirty2); got != "legit,legit2" {
		t.Errorf("dirty keys on the target: %s, want legit,legit2", got)
	}
	m := r.Info(t)
	for i := range 3 {
		if m[fmt.Sprintf("source%d.state", i)] != "oplog" {
			t.Errorf("source%d: %s", i, m[fmt.Sprintf("source%d", i)])
		}
	}
	if _, ok := m["source3"]; ok {
		t.Errorf("a 4th source line: %s", m["source3"])
	}
	// 2 stray RDB keys, 2 DELs of their expiry.
	if m["skipped_not_owned"] != "4" {
		t.Errorf("skipped_not_owned %q, want 4", m["skipped_not_owned"])
	}

	// An empty slot moved from one master to another during the oplog phase, written at once on
	// its new owner: the first write not owned by the map makes rmtd read the map again, and
	// the keys arrive.
	from, to := c.Nodes[0], c.Nodes[1]
	var moved int
	for moved = 0; from.Do(t, "CLUSTER", "COUNTKEYSINSLOT", moved).(int64) != 0; moved++ {
	}
	fromID, toID := from.DoString(t, "CLUSTER", "MYID"), to.DoString(t, "CLUSTER", "MYID")
	to.Do(t, "CLUSTER", "SETSLOT", moved, "IMPORTING", fromID)
	from.Do(t, "CLUSTER", "SETSLOT", moved, "MIGRATING", toID)
	to.Do(t, "CLUSTER", "SETSLOT", moved, "NODE", toID)
	from.Do(t, "CLUSTER", "SETSLOT", moved, "NODE", toID)
	var movedKeys []string
	for i := 0; len(movedKeys) < 20; i++ {
		if k := fmt.Sprintf("moved:%d", i); shard.Slot([]byte(k)) == moved {
			to.Do(t, "SET", k, "after-move")
			movedKeys = append(movedKeys, k)
		}
	}
	waitSourcesCaughtUp(t, r, c.Nodes, 30*time.Second)
	for _, k := range movedKeys {
		if got, _ := dst.DoErr(t, "GET", k); got != "after-move" {
			t.Fatalf("key %s of the moved slot %d: %v on the target", k, moved, got)
		}
	}
	if !strings.Contains(r.LogBuf.String(), "slot map changed") {
		t.Error("the slot map change is not logged")
	}
	if v := r.Info(t)["skipped_not_owned"]; v != "4" {
		t.Errorf("skipped_not_owned %q after the move, want 4", v)
	}

	// FLUSHALL on one master: its own keys go from the source, but on the target it would wipe
	// the other masters' keys too: skipped and counted.
	victim := c.Nodes[0]
	victim.Do(t, "FLUSHALL")
	redistest.WaitFor(t, 10*time.Second, func() error {
		if v := r.Info(t)["skipped_flush_from_one_master"]; v != "1" {
			return fmt.Errorf("skipped_flush_from_one_master %q", v)
		}
		return nil
	})
	waitSourcesCaughtUp(t, r, c.Nodes, 30*time.Second)
	for _, n := range c.Nodes[1:] {
		for _, k := range n.Do(t, "KEYS", "*").([]interface{}) {
			if !keyExists(t, dst, k.(string)) {
				t.Fatalf("key %s of %s lost on the target after a FLUSHALL of %s", k, n.Addr, victim.Addr)
			}
		}
	}
	if !strings.Contains(r.LogBuf.String(), "FLUSHALL/FLUSHDB on one source node of several") {
		t.Error("the skipped FLUSHALL is not logged")
	}
}

// TestSourceTwemproxy: a pool of 3 backends (ketama, fnv1a_64, hash tags), keys placed as the
// ring places them, one stray key per backend in the RDB (two of them shadowing a live key of
// its owner), one more per backend written during the oplog phase, then every stray deleted on
// its backend: the target holds exactly the pool's keys, and skipped_not_owned counts 3+3+6.
// Keys of db 3 (written around the proxy) are kept.
func TestSourceTwemproxy(t *testing.T) {
	backends := []*redistest.Redis{redistest.StartRedis(t), redistest.StartRedis(t), redistest.StartRedis(t)}
	dst := redistest.StartRedis(t)
	lines, ring := twemproxyPool(t, backends, "fnv1a_64", "ketama", "{}")
	owner := func(key string) *redistest.Redis { return backends[ring.Pick([]byte(key))] }
	for i := range 3000 {
		mustWrite(t, owner, i, "before")
	}
	// Keys of db 3, written around the proxy (SELECT inside a script stays in the script).
	for i, b := range backends {
		b.Do(t, "EVAL", "redis.call('SELECT', 3); return redis.call('SET', KEYS[1], ARGV[1])", 1, fmt.Sprintf("db3:%d", i), "kept")
	}
	// One stray per backend: a key the ring places elsewhere; the first two shadow a live key.
	strays := map[*redistest.Redis][]string{}
	plant := func(tag string) {
		for i, b := range backends {
			key := strayKey(t, ring, i, tag)
			if tag == "rdb" && i < 2 {
				owner(key).Do(t, "SET", key, "legit")
			}
			b.Do(t, "SET", key, "stray")
			strays[b] = append(strays[b], key)
		}
	}
	plant("rdb")

	cfg := conf.Default()
	cfg.File = "test"
	cfg.Source.Type = conf.TypeTwemproxy
	cfg.Source.Servers = lines
	cfg.Source.Hash, cfg.Source.Distribution, cfg.Source.HashTag = "fnv1a_64", "ketama", "{}"
	cfg.Target.Servers = []string{dst.Addr}
	cfg.Common.Listen = "127.0.0.1:0"
	cfg.Common.Dir = t.TempDir()
	r := StartRmtd(t, cfg)
	stop := liveWrites(t, owner, 3000)
	waitPhase(t, r, "oplog", 60*time.Second)
	plant("oplog")
	t.Logf("live writes: %d", stop())
	waitSourcesCaughtUp(t, r, backends, 30*time.Second)
	for b, keys := range strays {
		for _, k := range keys {
			b.Do(t, "DEL", k)
		}
	}
	waitSourcesCaughtUp(t, r, backends, 30*time.Second)

	parts := make([]*redistest.Dataset, len(backends))
	for i, b := range backends {
		parts[i] = b.Dump(t)
	}
	want := redistest.MergeDatasets(t, "pool", parts...)
	compareMerged(t, want, dst)
	if got := dst.DoString(t, "GET", strays[backends[0]][0]); got != "legit" {
		t.Errorf("shadowed key %s on the target: %q, want legit", strays[backends[0]][0], got)
	}
	m := r.Info(t)
	if m["skipped_not_owned"] != "12" {
		t.Errorf("skipped_not_owned %q, want 12 (3 RDB keys, 3 SETs, 6 DELs)", m["skipped_not_owned"])
	}
	for i, b := range backends {
		if addr := m[fmt.Sprintf("source%d.ip", i)] + ":" + m[fmt.Sprintf("source%d.port", i)]; addr != b.Addr {
			t.Errorf("source%d is %s, want %s", i, addr, b.Addr)
		}
	}
}

// TestSourceSafe: two masters on one host, each slow to produce its RDB (rdb-key-save-delay):
// with source_safe the second full sync starts only once the first snapshot is complete; without
// it both run at once (which shows the check can fail).
func TestSourceSafe(t *testing.T) {
	for _, safe := range []bool{true, false} {
		t.Run(fmt.Sprintf("source_safe=%v", safe), func(t *testing.T) {
			srcs := []*redistest.Redis{redistest.StartRedis(t, redistest.WithArgs("enable-debug-command yes")), redistest.StartRedis(t, redistest.WithArgs("enable-debug-command yes"))}
			for _, s := range srcs {
				s.Do(t, "DEBUG", "POPULATE", 2000, "k")
				s.Do(t, "CONFIG", "SET", "rdb-key-save-delay", 500) // µs per key: ~1 s per RDB
			}
			dst := redistest.StartRedis(t)
			cfg := singleConfig(t, srcs[0], dst)
			cfg.Source.Servers = []string{srcs[0].Addr, srcs[1].Addr}
			cfg.Common.SourceSafe = safe
			r := StartRmtd(t, cfg)
			overlap := false
			redistest.WaitFor(t, 30*time.Second, func() error {
				var syncing, synced int
				for _, s := range srcs {
					st := s.Info(t, "persistence")
					if st["rdb_bgsave_in_progress"] == "1" {
						syncing++
					}
					if s.Info(t, "stats")["sync_full"] == "1" && st["rdb_bgsave_in_progress"] == "0" {
						synced++
					}
				}
				if syncing == 2 {
					overlap = true
				}
				if synced < 2 {
					return fmt.Errorf("%d masters done syncing", synced)
				}
				return nil
			})
			if safe && overlap {
				t.Fatal("two RDBs produced at once on one host with source_safe")
			}
			if !safe && !overlap {
				t.Fatal("without source_safe both RDBs should have been produced at once")
			}
			waitPhase(t, r, "oplog", 30*time.Second)
			if safe && !strings.Contains(r.LogBuf.String(), "source_safe: waiting") {
				t.Error("the wait is not logged")
			}
		})
	}
}

func mustWrite(t *testing.T, owner func(string) *redistest.Redis, i int, what string) {
	t.Helper()
	if err := writeKey(t, owner, i, what); err != nil {
		t.Fatal(err)
	}
}

// writeKey writes key number i, of one of four types, to the node owner picks for it.
func writeKey(t *testing.T, owner func(string) *redistest.Redis, i int, what string) error {
	key := fmt.Sprintf("%s:%d", what, i)
	n := owner(key)
	var cmds [][]interface{}
	switch i % 4 {
	case 0:
		cmds = [][]interface{}{{"SET", key, strconv.Itoa(i)}}
	case 1:
		cmds = [][]interface{}{{"HSET", key, "f", i, "g", what}}
	case 2:
		cmds = [][]interface{}{{"RPUSH", key, "a", "b", i}}
	case 3:
		cmds = [][]interface{}{{"ZADD", key, i, "m", 1, "n"}, {"PEXPIRE", key, 600000}}
	}
	for _, c := range cmds {
		if _, err := n.DoErr(t, c...); err != nil {
			return fmt.Errorf("%s %v: %w", n.Addr, c, err)
		}
	}
	if i%100 == 0 {
		tagged := fmt.Sprintf("{%s%d}", what, i)
		if _, err := owner(tagged).DoErr(t, "MSET", tagged+"a", "1", tagged+"b", "2"); err != nil {
			return err
		}
	}
	return nil
}

// liveWrites writes keys (and deletes some) in a goroutine until the returned stop is called,
// which returns how many were written; at least min before stop returns.
func liveWrites(t *testing.T, owner func(string) *redistest.Redis, min int) func() int {
	var n atomic.Int64
	var wg sync.WaitGroup
	var werr error
	ctx, cancel := context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			if werr = writeKey(t, owner, i%5000, "live"); werr != nil {
				return
			}
			if i%7 == 0 {
				key := fmt.Sprintf("before:%d", i%3000)
				if _, werr = owner(key).DoErr(t, "DEL", key); werr != nil {
					return
				}
			}
			n.Add(1)
		}
	}()
	return func() int {
		redistest.WaitFor(t, 30*time.Second, func() error {
			if werr != nil {
				return nil
			}
			return atLeast(n.Load(), int64(min))
		})
		cancel()
		wg.Wait()
		if werr != nil {
			t.Fatalf("live writes: %v", werr)
		}
		return int(n.Load())
	}
}

// asking runs one command after ASKING, on one connection.
func asking(t *testing.T, r *redistest.Redis, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := radix.Dial(ctx, "tcp", r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Do(ctx, radix.Cmd(nil, "ASKING")); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, radix.Cmd(nil, args[0], args[1:]...)); err != nil {
		t.Fatalf("%s %v: %v", r.Addr, args, err)
	}
}

func keyExists(t *testing.T, r *redistest.Redis, key string) bool {
	t.Helper()
	return r.Do(t, "EXISTS", key).(int64) == 1
}

// strayKey is a key the ring does not place on backend i.
func strayKey(t *testing.T, ring *shard.Ring, i int, tag string) string {
	for k := range 100000 {
		key := fmt.Sprintf("stray:%s:%d:%d", tag, i, k)
		if ring.Pick([]byte(key)) != i {
			return key
		}
	}
	t.Fatal("no stray key")
	return ""
}

// waitSourcesCaughtUp waits until every sourceN line of INFO has applied its master's offset.
func waitSourcesCaughtUp(t *testing.T, r *Rmtd, masters []*redistest.Redis, timeout time.Duration) {
	t.Helper()
	redistest.WaitFor(t, timeout, func() error {
		m, err := adminInfo(r.Admin)
		if err != nil {
			return err
		}
		for i := 0; ; i++ {
			p := fmt.Sprintf("source%d", i)
			if _, ok := m[p]; !ok {
				if i != len(masters) {
					return fmt.Errorf("%d source lines, want %d", i, len(masters))
				}
				return nil
			}
			addr := net.JoinHostPort(m[p+".ip"], m[p+".port"])
			var master *redistest.Redis
			for _, s := range masters {
				if s.Addr == addr {
					master = s
				}
			}
			if master == nil {
				return fmt.Errorf("%s: %s is not a master", p, addr)
			}
			repl := master.Info(t, "replication")
			if m[p+".replid"] != repl["master_replid"] || m[p+".applied_offset"] != repl["master_repl_offset"] || m[p+".lag_bytes"] != "0" {
				return fmt.Errorf("%s (%s): master at %s %s, rmtd %s", p, addr, repl["master_replid"], repl["master_repl_offset"], m[p])
			}
		}
	})
}

// compareMerged compares every db of want with dst, rmtd's checkpoints left out.
func compareMerged(t *testing.T, want *redistest.Dataset, dst *redistest.Redis) {
	t.Helper()
	got := withoutCheckpoints(dst.Dump(t))
	if diffs := redistest.Diff(want, got, redistest.TTLTolerance); len(diffs) > 0 {
		if len(diffs) > 30 {
			diffs = diffs[:30]
		}
		t.Fatalf("source and %s differ:\n%s", dst.Addr, strings.Join(diffs, "\n"))
	}
	if want.Keys() == 0 {
		t.Fatal("the source is empty: the comparison proves nothing")
	}
}

// TestSourceClusterNewMaster: a master added to the source cluster after rmtd started is not
// followed; once a slot moves to it, INFO counts it under errors_source_master_not_followed
// (and the log says so) instead of its keys being lost without a word.
func TestSourceClusterNewMaster(t *testing.T) {
	c := redistest.StartCluster(t, 2)
	dst := redistest.StartRedis(t)
	cfg := clusterSourceConfig(t, c.Addrs[0], dst)
	r := StartRmtd(t, cfg)
	waitPhase(t, r, "oplog", 60*time.Second)

	added := redistest.StartRedis(t, redistest.WithCluster())
	joinCluster(t, c, added)
	grown := &redistest.Cluster{Nodes: append(c.Nodes[:2:2], added), Addrs: append(c.Addrs[:2:2], added.Addr)}
	if n := r.Info(t)["errors_source_master_not_followed"]; n != "" {
		t.Fatalf("a master serving no slots counted as not followed: %s", n)
	}
	moveSlotOf(t, grown, 0, c.Nodes[0], added)
	redistest.WaitFor(t, 20*time.Second, func() error {
		if n := r.Info(t)["errors_source_master_not_followed"]; n != "1" {
			return fmt.Errorf("errors_source_master_not_followed %q", n)
		}
		return nil
	})
	if log := r.LogBuf.String(); !strings.Contains(log, "NOT migrated") || !strings.Contains(log, added.Addr) {
		t.Errorf("the log does not name the master not followed:\n%s", log)
	}
}

// TestSourceClusterFailover: a source master dies and its replica takes over (CLUSTER FAILOVER
// TAKEOVER). rmtd's node job for it follows the new master with a partial resync (no second
// snapshot), and writes after the failover reach the target: at the end the target equals the
// source cluster.
func TestSourceClusterFailover(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	dst := redistest.StartRedis(t)
	replica := redistest.StartRedis(t, redistest.WithCluster())
	joinCluster(t, c, replica)
	replica.Do(t, "CLUSTER", "REPLICATE", c.Nodes[0].DoString(t, "CLUSTER", "MYID"))
	redistest.WaitFor(t, 20*time.Second, func() error {
		if st := replica.Info(t, "replication")["master_link_status"]; st != "up" {
			return fmt.Errorf("replica link %q", st)
		}
		return nil
	})

	var first atomic.Pointer[redistest.Redis] // the master of node 0's slots
	first.Store(c.Nodes[0])
	owner := func(key string) *redistest.Redis {
		if n := c.NodeForSlot(shard.Slot([]byte(key))); n != c.Nodes[0] {
			return n
		}
		return first.Load()
	}
	for i := range 2000 {
		mustWrite(t, owner, i, "before")
	}
	cfg := clusterSourceConfig(t, c.Addrs[1], dst)
	r := StartRmtd(t, cfg)
	stop := liveWrites(t, owner, 1000)
	waitPhase(t, r, "oplog", 60*time.Second)
	stop()
	waitSourcesCaughtUp(t, r, c.Nodes, 60*time.Second)

	// The replica has all its master wrote; the master dies; the replica takes over.
	redistest.WaitFor(t, 20*time.Second, func() error {
		m, rp := c.Nodes[0].Info(t, "replication")["master_repl_offset"], replica.Info(t, "replication")["master_repl_offset"]
		if m != rp {
			return fmt.Errorf("replica at %s, master at %s", rp, m)
		}
		return nil
	})
	c.Nodes[0].Kill()
	replica.Do(t, "CLUSTER", "FAILOVER", "TAKEOVER")
	masters := []*redistest.Redis{replica, c.Nodes[1], c.Nodes[2]}
	redistest.WaitFor(t, 30*time.Second, func() error {
		if role := replica.Info(t, "replication")["role"]; role != "master" {
			return fmt.Errorf("replica's role %s", role)
		}
		for _, n := range masters {
			if slot := slotOwner(t, n, 0); slot != replica.Port {
				return fmt.Errorf("node %s: slot 0 served by port %d", n.Addr, slot)
			}
			if st := redistest.ParseInfo(n.DoString(t, "CLUSTER", "INFO"))["cluster_state"]; st != "ok" {
				return fmt.Errorf("node %s: cluster_state %s", n.Addr, st)
			}
		}
		return nil
	})
	first.Store(replica)
	stop = liveWrites(t, owner, 1000)
	stop()
	waitSourcesCaughtUp(t, r, masters, 60*time.Second)
	parts := make([]*redistest.Dataset, len(masters))
	for i, n := range masters {
		parts[i] = n.Dump(t)
	}
	compareMerged(t, redistest.MergeDatasets(t, "source cluster", parts...), dst)

	m := r.Info(t)
	followed := false
	for i := range 3 {
		p := fmt.Sprintf("source%d", i)
		if net.JoinHostPort(m[p+".ip"], m[p+".port"]) != replica.Addr {
			continue
		}
		followed = true
		if m[p+".full_syncs"] != "1" || m[p+".partial_syncs"] != "1" {
			t.Errorf("%s followed the failover with full_syncs=%s partial_syncs=%s, want 1 and 1", p, m[p+".full_syncs"], m[p+".partial_syncs"])
		}
	}
	if !followed {
		t.Errorf("no source line for the new master %s: %v", replica.Addr, m)
	}
	if n := m["errors_source_master_not_followed"]; n != "" {
		t.Errorf("errors_source_master_not_followed:%s after a failover it followed", n)
	}

	// rmtd restarts: it finds the new master itself, and that master's checkpoint under the old
	// master's name (the same replication history): renamed, and resumed from, like the others.
	r.Stop(t)
	stop = liveWrites(t, owner, 500)
	stop()
	r = StartRmtd(t, cfg)
	waitSourcesCaughtUp(t, r, masters, 60*time.Second)
	for i, n := range masters {
		parts[i] = n.Dump(t)
	}
	compareMerged(t, redistest.MergeDatasets(t, "source cluster", parts...), dst)
	m = r.Info(t)
	for i := range 3 {
		p := fmt.Sprintf("source%d", i)
		if m[p+".full_syncs"] != "0" || m[p+".partial_syncs"] != "1" {
			t.Errorf("after the restart %s: full_syncs=%s partial_syncs=%s, want 0 and 1", p, m[p+".full_syncs"], m[p+".partial_syncs"])
		}
	}
	if dst.Do(t, "EXISTS", "rmt:checkpoint:"+c.Addrs[0]).(int64) != 0 || dst.Do(t, "EXISTS", "rmt:checkpoint:"+replica.Addr).(int64) != 1 {
		t.Errorf("checkpoints on the target: %v", dst.Do(t, "KEYS", "rmt:checkpoint:*"))
	}
}

// clusterSourceConfig is a job from the cluster known by seed into the single server dst.
func clusterSourceConfig(t *testing.T, seed string, dst *redistest.Redis) *conf.Config {
	cfg := conf.Default()
	cfg.File = "test"
	cfg.Source.Type = conf.TypeRedisCluster
	cfg.Source.Servers = []string{seed}
	cfg.Target.Servers = []string{dst.Addr}
	cfg.Common.Listen = "127.0.0.1:0"
	cfg.Common.Dir = t.TempDir()
	return cfg
}

// joinCluster makes the cluster node n (no slots) meet c, and waits until every node knows all.
func joinCluster(t *testing.T, c *redistest.Cluster, n *redistest.Redis) {
	t.Helper()
	bus := n.Do(t, "CONFIG", "GET", "cluster-port").([]interface{})[1]
	c.Nodes[0].Do(t, "CLUSTER", "MEET", "127.0.0.1", n.Port, bus)
	want := strconv.Itoa(len(c.Nodes) + 1)
	redistest.WaitFor(t, 20*time.Second, func() error {
		for _, m := range append(c.Nodes[:len(c.Nodes):len(c.Nodes)], n) {
			if known := redistest.ParseInfo(m.DoString(t, "CLUSTER", "INFO"))["cluster_known_nodes"]; known != want {
				return fmt.Errorf("node %s knows %s nodes, want %s", m.Addr, known, want)
			}
		}
		return nil
	})
}
