package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/internal/shard"
)

// TestScanLiveCluster: a 3-master cluster that refuses PSYNC, SYNC and COMMAND (CONFIG stays:
// the harness builds the cluster with it), with keyspace notifications on, read in mode
// scan_live from one seed: one scan node per master found from the slot map, each subscribed
// to its own master's notifications; keys written before and during the migration (every
// type, TTLs, DELs) reach the single target, which equals the merged cluster once the writes
// stop.
func TestScanLiveCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3, redistest.WithArgs(`rename-command PSYNC ""`, `rename-command SYNC ""`,
		`rename-command COMMAND ""`, notifyKEA))
	dst := redistest.StartRedis(t, redistest.WithArgs(refusedOnTarget...))
	owner := func(key string) *redistest.Redis { return c.NodeForSlot(shard.Slot([]byte(key))) }
	for i := range 3000 {
		mustWrite(t, owner, i, "before")
	}
	cfg := clusterSourceConfig(t, c.Addrs[1], dst)
	cfg.Source.Mode = conf.ModeScanLive
	r := StartRmtd(t, cfg)
	stop := liveWrites(t, owner, 3000)
	waitPhase(t, r, "oplog", 60*time.Second)
	t.Logf("live writes: %d", stop())
	want := c.Dump(t)
	redistest.WaitFor(t, 20*time.Second, func() error {
		return diffErr(want, withoutCheckpoints(dst.Dump(t)))
	})
	compareMerged(t, want, dst)
	m := r.Info(t)
	for _, p := range []string{"source0", "source1", "source2"} {
		if m[p+".mode"] != conf.ModeScanLive || m[p+".subscription"] != "up" || m[p+".scan_progress"] != "100.0" {
			t.Errorf("%s: %s", p, m[p])
		}
	}
	if _, ok := m["source3"]; ok {
		t.Errorf("a 4th source line: %s", m["source3"])
	}
}

// diffErr is nil when a and b hold the same data, else an error with the first differences.
func diffErr(a, b *redistest.Dataset) error {
	diffs, n := redistest.DiffCount(a, b, redistest.TTLTolerance)
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%d differences: %s", n, strings.Join(diffs[:min(len(diffs), 5)], "; "))
}
