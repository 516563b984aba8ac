package test

import (
	"context"
	"fmt"
	"path/filepath"
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

// counter INCRs keys "eo:ctr:<i>" on a source in turn and records how many of each it saw
// acknowledged: what the target must hold at the end, once each.
type counter struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	n    map[string]int64
	err  error
}

func startCounter(t *testing.T, addr string, keys int) *counter {
	t.Helper()
	c, err := radix.Dialer{}.Dial(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ct := &counter{stop: make(chan struct{}), done: make(chan struct{}), n: map[string]int64{}}
	go func() {
		defer close(ct.done)
		defer c.Close()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ct.stop:
				return
			case <-tick.C:
			}
			k := "eo:ctr:" + strconv.Itoa(i%keys)
			if err := c.Do(context.Background(), radix.Cmd(nil, "INCR", k)); err != nil {
				ct.mu.Lock()
				ct.err = err
				ct.mu.Unlock()
				return
			}
			ct.mu.Lock()
			ct.n[k]++
			ct.mu.Unlock()
		}
	}()
	t.Cleanup(ct.halt)
	return ct
}

func (ct *counter) halt() {
	select {
	case <-ct.stop:
	default:
		close(ct.stop)
	}
	<-ct.done
}

// check stops the counter and compares every counter read with get with its count.
func (ct *counter) check(t *testing.T, get func(key string) string) {
	t.Helper()
	ct.halt()
	if ct.err != nil {
		t.Fatalf("counter: %v", ct.err)
	}
	if len(ct.n) == 0 {
		t.Fatal("counter: no INCR ran")
	}
	var bad []string
	var total int64
	for k, n := range ct.n {
		total += n
		if got := get(k); got != strconv.FormatInt(n, 10) {
			bad = append(bad, fmt.Sprintf("%s = %s, INCRed %d times", k, got, n))
		}
	}
	if len(bad) > 0 {
		t.Fatalf("counters differ (applied twice or lost):\n%s", strings.Join(bad, "\n"))
	}
	t.Logf("%d counters, %d INCRs, each once", len(ct.n), total)
}

// TestTwemproxyKilledAndRestarted: a single source into a twemproxy pool of 3 backends; rmtd
// killed with SIGKILL three times in the oplog phase under a live writer (INCR, APPEND, LPUSH
// among its commands) resumes each time with a partial resync from the backends' checkpoints;
// the master serves one full sync only, and the pool ends equal to the source, every INCR
// applied once.
func TestTwemproxyKilledAndRestarted(t *testing.T) {
	src := redistest.StartRedis(t)
	backends := []*redistest.Redis{redistest.StartRedis(t), redistest.StartRedis(t), redistest.StartRedis(t)}
	p := startTwemPool(t, backends, "fnv1a_64", "ketama", nil)
	w := redistest.StartWriter(t, src.Addr, redistest.WriterOptions{DBs: []int{0}, Seed: 21, Rate: 20000})
	ct := startCounter(t, src.Addr, 40)
	redistest.WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), 2000) })

	dir := t.TempDir()
	admin := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	var servers []string
	for _, s := range p.nc.Servers {
		servers = append(servers, strconv.Quote(s))
	}
	writeConfig(t, dir, fmt.Sprintf("source:\n  type: single\n  servers: [%s]\ntarget:\n  type: twemproxy\n"+
		"  servers: [%s]\n  hash: fnv1a_64\n  distribution: ketama\n  hash_tag: \"{}\"\n"+
		"common:\n  listen: %s\n  dir: %s\n", src.Addr, strings.Join(servers, ", "), admin, filepath.Join(dir, "data")))
	r := &Rmtd{Admin: admin}

	rp := startRmtdProcess(t, dir)
	waitPhase(t, r, "oplog", 60*time.Second)
	for i := 1; i <= 3; i++ {
		ops := w.Ops()
		redistest.WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), ops+2000) })
		rp.kill()
		ops = w.Ops()
		redistest.WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), ops+1000) }) // writes while it is down
		rp = startRmtdProcess(t, dir)
		waitPhase(t, r, "oplog", 60*time.Second)
		m := r.Info(t)
		if m["source0.full_syncs"] != "0" || m["source0.partial_syncs"] != "1" {
			t.Fatalf("restart %d: full_syncs=%s partial_syncs=%s, want a partial resync only (%s)", i,
				m["source0.full_syncs"], m["source0.partial_syncs"], m["source0"])
		}
	}
	t.Logf("writer: %s", w.Stop())
	ct.halt()
	waitCaughtUp(t, r, src, 60*time.Second)
	want := onlyDB0(src.Dump(t))
	want.Source = "source"
	compareDumps(t, want, p.dump(t), 1000)
	ct.check(t, func(k string) string {
		v, _ := backends[twemRing(t, p).Pick([]byte(k))].Do(t, "GET", k).(string)
		return v
	})
	if st := src.Info(t, "stats"); st["sync_full"] != "1" || st["sync_partial_ok"] != "3" {
		t.Errorf("master: sync_full=%s sync_partial_ok=%s, want 1 and 3", st["sync_full"], st["sync_partial_ok"])
	}
	m := r.Info(t)
	t.Logf("INFO: already_applied %s, errors %s", m["skipped_already_applied"], m["total_errors"])
}

// TestTwemproxyBackendRestartedEmpty: one backend of the pool restarts empty in the oplog
// phase. Its checkpoint is gone: rmtd notices within 10 s (target_data_lost), syncs the node
// again, and the pool ends equal to the source.
func TestTwemproxyBackendRestartedEmpty(t *testing.T) {
	src := redistest.StartRedis(t)
	backends := []*redistest.Redis{redistest.StartRedis(t), redistest.StartRedis(t), redistest.StartRedis(t)}
	p := startTwemPool(t, backends, "fnv1a_64", "ketama", nil)
	w := redistest.StartWriter(t, src.Addr, redistest.WriterOptions{DBs: []int{0}, Seed: 12, Rate: 5000})
	redistest.WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), 2000) })
	r := StartRmtd(t, twemConfig(t, src, p))
	waitPhase(t, r, "oplog", 60*time.Second)
	ops := w.Ops()
	redistest.WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), ops+2000) })
	restartEmpty(t, r, backends[1]) // the harness keeps no data: an empty backend on the same port
	ops = w.Ops()
	redistest.WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), ops+1000) })
	w.Stop()
	waitCaughtUp(t, r, src, 60*time.Second)
	want := onlyDB0(src.Dump(t))
	want.Source = "source"
	compareDumps(t, want, p.dump(t), 1000)
	if m := r.Info(t); atoi(t, m["source0.full_syncs"]) < 2 {
		t.Errorf("no new full sync after a backend lost its data: %s", m["source0"])
	}
}

// clusterLoad writes to a cluster source's masters, each command to its key's master: INCR on
// "eo:ctr:<i>" (counted, as counter does), APPEND, LPUSH (kept short with LTRIM), SET.
type clusterLoad struct {
	counter
	ops atomic.Int64
}

func startClusterLoad(t *testing.T, c *redistest.Cluster, keys int) *clusterLoad {
	t.Helper()
	conns := map[*redistest.Redis]radix.Conn{}
	for _, n := range c.Nodes {
		rc, err := radix.Dialer{}.Dial(context.Background(), "tcp", n.Addr)
		if err != nil {
			t.Fatal(err)
		}
		conns[n] = rc
	}
	l := &clusterLoad{counter: counter{stop: make(chan struct{}), done: make(chan struct{}), n: map[string]int64{}}}
	do := func(key string, args ...string) error {
		return conns[c.NodeForSlot(shard.Slot([]byte(key)))].Do(context.Background(), radix.Cmd(nil, args[0], args[1:]...))
	}
	go func() {
		defer close(l.done)
		defer func() {
			for _, rc := range conns {
				rc.Close()
			}
		}()
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			default:
			}
			k := strconv.Itoa(i % keys)
			var err error
			switch i % 4 {
			case 0:
				if err = do("eo:ctr:"+k, "INCR", "eo:ctr:"+k); err == nil {
					l.mu.Lock()
					l.n["eo:ctr:"+k]++
					l.mu.Unlock()
				}
			case 1:
				err = do("eo:app:"+k, "APPEND", "eo:app:"+k, strconv.Itoa(i%10))
			case 2:
				if err = do("eo:list:"+k, "LPUSH", "eo:list:"+k, strconv.Itoa(i)); err == nil {
					err = do("eo:list:"+k, "LTRIM", "eo:list:"+k, "0", "30")
				}
			case 3:
				err = do("eo:str:"+k, "SET", "eo:str:"+k, strconv.Itoa(i))
			}
			if err != nil {
				l.mu.Lock()
				l.err = err
				l.mu.Unlock()
				return
			}
			l.ops.Add(1)
		}
	}()
	t.Cleanup(l.halt)
	return l
}

// clusterToClusterConfig writes rmt.yaml for a cluster source into a cluster target with a
// fixed admin port, the default checkpoint key on, and returns the admin address.
func clusterToClusterConfig(t *testing.T, dir string, src, dst *redistest.Cluster) string {
	t.Helper()
	admin := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	writeConfig(t, dir, fmt.Sprintf("source:\n  type: redis cluster\n  servers: [%s]\ntarget:\n  type: redis cluster\n"+
		"  servers: [%s]\ncommon:\n  listen: %s\n  dir: %s\n", src.Addrs[0], dst.Addrs[1], admin, filepath.Join(dir, "data")))
	return admin
}

// TestClusterKilledAndRestarted: a 3-master cluster source into a 3-master cluster target under
// live writes (INCR, APPEND, LPUSH among them); rmtd killed with SIGKILL three times in the
// oplog phase resumes each time with a partial resync of every master from the target's slot
// checkpoints: each source master serves one full sync only, the target ends equal to the
// source, and every counted INCR is applied once.
func TestClusterKilledAndRestarted(t *testing.T) {
	src := redistest.StartCluster(t, 3)
	dst := redistest.StartCluster(t, 3)
	owner := func(key string) *redistest.Redis { return src.NodeForSlot(shard.Slot([]byte(key))) }
	for i := range 3000 {
		mustWrite(t, owner, i, "before")
	}
	load := startClusterLoad(t, src, 300)
	dir := t.TempDir()
	r := &Rmtd{Admin: clusterToClusterConfig(t, dir, src, dst)}
	rp := startRmtdProcess(t, dir)
	waitPhase(t, r, "oplog", 60*time.Second)
	for i := 1; i <= 3; i++ {
		ops := load.ops.Load()
		redistest.WaitFor(t, 10*time.Second, func() error { return atLeast(load.ops.Load(), ops+3000) })
		rp.kill()
		ops = load.ops.Load()
		redistest.WaitFor(t, 10*time.Second, func() error { return atLeast(load.ops.Load(), ops+1000) }) // writes while it is down
		rp = startRmtdProcess(t, dir)
		waitPhase(t, r, "oplog", 60*time.Second)
		m := r.Info(t)
		for s := range 3 {
			p := "source" + strconv.Itoa(s)
			if m[p+".full_syncs"] != "0" || m[p+".partial_syncs"] != "1" {
				t.Fatalf("restart %d: %s full_syncs=%s partial_syncs=%s, want a partial resync only (%s)", i, p,
					m[p+".full_syncs"], m[p+".partial_syncs"], m[p])
			}
		}
	}
	load.halt()
	waitSourcesCaughtUp(t, r, src.Nodes, 60*time.Second)
	want := src.Dump(t)
	want.Source = "source cluster"
	got := withoutCheckpoints(dst.Dump(t))
	got.Source = "target cluster"
	compareDumps(t, want, got, 3000)
	load.check(t, func(k string) string {
		v, _ := dst.NodeForSlot(shard.Slot([]byte(k))).Do(t, "GET", k).(string)
		return v
	})
	for _, n := range src.Nodes {
		if st := n.Info(t, "stats"); st["sync_full"] != "1" || st["sync_partial_ok"] != "3" {
			t.Errorf("source master %s: sync_full=%s sync_partial_ok=%s, want 1 and 3", n.Addr, st["sync_full"], st["sync_partial_ok"])
		}
	}
	m := r.Info(t)
	t.Logf("INFO: already_applied %s, errors %s", m["skipped_already_applied"], m["total_errors"])
}

// TestClusterTargetNodeRestartedEmpty: a master of the target cluster killed (SIGKILL) and
// started again on the same port with no data (its cluster config kept: it serves its slots
// again, empty). Its checkpoints are gone: rmtd notices within 10 s (target_data_lost, the log
// naming the node), syncs the source again, and the target ends equal to the source.
func TestClusterTargetNodeRestartedEmpty(t *testing.T) {
	src := redistest.StartRedis(t)
	dst := redistest.StartCluster(t, 3)
	w := redistest.StartWriter(t, src.Addr, redistest.WriterOptions{DBs: []int{0}, Seed: 13, Rate: 5000})
	redistest.WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), 2000) })
	cfg := conf.Default()
	cfg.File = "test"
	cfg.Source.Servers = []string{src.Addr}
	cfg.Target.Type = conf.TypeRedisCluster
	cfg.Target.Servers = dst.Addrs[:1]
	cfg.Common.Listen = "127.0.0.1:0"
	cfg.Common.Dir = t.TempDir()
	r := StartRmtd(t, cfg)
	waitPhase(t, r, "oplog", 60*time.Second)
	ops := w.Ops()
	redistest.WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), ops+2000) })
	restartEmpty(t, r, dst.Nodes[2])
	redistest.WaitFor(t, 30*time.Second, func() error { // the restarted node serves its slots again
		if info := redistest.ParseInfo(dst.Nodes[0].DoString(t, "CLUSTER", "INFO")); info["cluster_state"] != "ok" {
			return fmt.Errorf("cluster_state %s", info["cluster_state"])
		}
		return nil
	})
	ops = w.Ops()
	redistest.WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), ops+1000) })
	w.Stop()
	waitCaughtUp(t, r, src, 90*time.Second)
	want := onlyDB0(src.Dump(t))
	want.Source = "source"
	got := withoutCheckpoints(dst.Dump(t))
	got.Source = "target cluster"
	compareDumps(t, want, got, 1000)
	if m := r.Info(t); atoi(t, m["source0.full_syncs"]) < 2 {
		t.Errorf("no new full sync after a target master lost its data: %s", m["source0"])
	}
}
