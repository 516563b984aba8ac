package test

import (
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
)

// shardProcess writes the config of one process of a sharded job (common.shard) from a cluster
// source into a single target, in a directory of its own, and returns that directory and its
// admin address.
func shardProcess(t *testing.T, src, dst string, shard string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	admin := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	writeConfig(t, dir, fmt.Sprintf("source:\n  type: redis cluster\n  servers: [%s]\ntarget:\n  type: single\n  servers: [%s]\n"+
		"common:\n  listen: %s\n  dir: %s\n  shard: %q\n", src, dst, admin, filepath.Join(dir, "data"), shard))
	return dir, admin
}

// linkedMasters are the source masters a process's INFO says it links to.
func linkedMasters(t *testing.T, r *Rmtd, cl *redistest.Cluster) []*redistest.Redis {
	t.Helper()
	m := r.Info(t)
	var out []*redistest.Redis
	for i := 0; ; i++ {
		p := fmt.Sprintf("source%d", i)
		if _, ok := m[p]; !ok {
			return out
		}
		addr := net.JoinHostPort(m[p+".ip"], m[p+".port"])
		found := false
		for _, n := range cl.Nodes {
			if n.Addr == addr {
				out, found = append(out, n), true
			}
		}
		if !found {
			t.Fatalf("%s links to %s, not a master of the source", p, addr)
		}
	}
}

// TestShardedJob: one migration of a 4-master cluster across two rmtd processes (common.shard
// 0/2 and 1/2, each with its own dir), under live writes, into one target: each links to two
// masters, none to the same; the second starts while the first is in its stream and does not
// take the first one's keys for foreign ones (common.target_not_empty counts only the keys of
// its own masters), but it does refuse a foreign key in its own share, naming it; together
// they leave the target equal to the source.
func TestShardedJob(t *testing.T) {
	cl := redistest.StartCluster(t, 4)
	dst := redistest.StartRedis(t)
	owner := func(key string) *redistest.Redis { return cl.NodeForKey(t, key) }
	for i := range 4000 {
		mustWrite(t, owner, i, "before")
	}
	stop := liveWrites(t, owner, 3000)

	dir0, admin0 := shardProcess(t, cl.Addrs[0], dst.Addr, "0/2")
	startRmtdProcess(t, dir0)
	r0 := &Rmtd{Admin: admin0}
	waitPhase(t, r0, "oplog", 60*time.Second)
	first := linkedMasters(t, r0, cl)
	if len(first) != 2 {
		t.Fatalf("shard 0/2 links to %d masters, want 2", len(first))
	}

	// A key rmtd did not write, in the second process's share: it refuses to start, naming it.
	var foreign string
	for i := 0; foreign == ""; i++ {
		k := "foreign:" + strconv.Itoa(i)
		if n := owner(k); n != first[0] && n != first[1] {
			foreign = k
		}
	}
	dst.Do(t, "SET", foreign, "not rmtd's")
	dir1, admin1 := shardProcess(t, cl.Addrs[0], dst.Addr, "1/2")
	code, _, stderr := runRmtd(t, dir1, "-c", "rmt.yaml")
	if code == 0 || !strings.Contains(stderr, "not empty") || !strings.Contains(stderr, foreign) {
		t.Fatalf("shard 1/2 with %s on the target: exit %d, %q; want a refusal naming it", foreign, code, stderr)
	}
	dst.Do(t, "DEL", foreign)

	startRmtdProcess(t, dir1)
	r1 := &Rmtd{Admin: admin1}
	waitPhase(t, r1, "oplog", 60*time.Second)
	second := linkedMasters(t, r1, cl)
	all := map[string]bool{}
	for _, n := range append(append([]*redistest.Redis(nil), first...), second...) {
		all[n.Addr] = true
	}
	if len(second) != 2 || len(all) != 4 {
		var addrs []string
		for a := range all {
			addrs = append(addrs, a)
		}
		sort.Strings(addrs)
		t.Fatalf("shard 1/2 links to %d masters; together %v: want 2 each, all 4", len(second), addrs)
	}

	t.Logf("%d live writes", stop())
	waitSourcesCaughtUp(t, r0, first, 60*time.Second)
	waitSourcesCaughtUp(t, r1, second, 60*time.Second)
	compareDumps(t, cl.Dump(t), withoutCheckpoints(dst.Dump(t)), 100)
}
