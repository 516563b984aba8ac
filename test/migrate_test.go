package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/redistest"
)

// TestMigrateLive is the end-to-end slice: a Redis 7.0 source loaded from the 7.0.15 fixture,
// a writer busy on dbs 0, 1 and 15 during the whole migration, and at the end every db of the
// target equal to the source's.
func TestMigrateLive(t *testing.T) {
	src := redistest.StartRedis(t, redistest.WithRDB(redistest.Fixture(t, "redis-7.0.15.rdb")))
	dst := redistest.StartRedis(t)
	w := redistest.StartWriter(t, src.Addr, redistest.WriterOptions{DBs: []int{0, 1, 15}, Seed: 1})
	// Let the writer get going before the snapshot, so the RDB holds its keys too.
	redistest.WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), 2000) })

	r := StartRmtd(t, singleConfig(t, src, dst))
	waitPhase(t, r, "oplog", 60*time.Second)
	opsAtOplog := w.Ops()
	// Keep writing through the oplog phase.
	redistest.WaitFor(t, 30*time.Second, func() error { return atLeast(w.Ops(), opsAtOplog+5000) })
	stats := w.Stop()
	t.Logf("writer: %s", stats)
	waitCaughtUp(t, r, src, 60*time.Second)

	compareWithSource(t, src, dst)

	// The master sees rmtd as an online replica, announced on the admin port, at its offset
	// (rmtd ACKs every second).
	_, adminPort, _ := strings.Cut(r.Admin, ":")
	var repl map[string]string
	redistest.WaitFor(t, 5*time.Second, func() error {
		repl = src.Info(t, "replication")
		if line := replicaLine(repl, adminPort); !strings.Contains(line, "state=online") ||
			!strings.Contains(line, "offset="+repl["master_repl_offset"]+",") {
			return fmt.Errorf("no online replica on port %s at offset %s: %v", adminPort, repl["master_repl_offset"], repl)
		}
		return nil
	})
	m := r.Info(t)
	if m["source0.applied_offset"] != repl["master_repl_offset"] {
		t.Errorf("applied offset %s, master_repl_offset %s", m["source0.applied_offset"], repl["master_repl_offset"])
	}
	if m["all_rdb_received"] != "1" || m["all_rdb_parsed"] != "1" || m["source0.full_syncs"] != "1" {
		t.Errorf("INFO stats: all_rdb_received=%s all_rdb_parsed=%s full_syncs=%s",
			m["all_rdb_received"], m["all_rdb_parsed"], m["source0.full_syncs"])
	}
	// Commands that change nothing (LPOP of an empty list, HDEL of a missing field) are not
	// propagated, so the stream holds fewer commands than the writer sent; most do change data.
	if recv := atoi(t, m["total_msgs_recv"]); recv < (stats.Total-opsAtOplog)/4 {
		t.Errorf("total_msgs_recv %d, but the writer sent %d commands after the RDB", recv, stats.Total-opsAtOplog)
	}
	if m["source0.rdb_keys_loaded"] == "0" {
		t.Errorf("no RDB keys loaded: %s", m["source0"])
	}
}

// compareWithSource compares every db of src and dst in full (see compareDumps).
func compareWithSource(t *testing.T, src, dst *redistest.Redis) {
	t.Helper()
	compareDumps(t, src.Dump(t), withoutCheckpoints(dst.Dump(t)), 1)
}

// compareDumps fails the test when a and b differ, or when a holds fewer than minKeys keys (the
// comparison would prove little). Stream groups' entries-read is left out: Redis 7.0 propagates
// XREADGROUP as XCLAIM ... LASTID without it, so its own replicas keep the entries-read of their
// snapshot (or none) while the master's grows.
func compareDumps(t *testing.T, a, b *redistest.Dataset, minKeys int) {
	t.Helper()
	diffs, _ := redistest.DiffCount(a, b, redistest.TTLTolerance)
	var real []string
	for _, d := range diffs {
		if !strings.Contains(d, "entries-read") {
			real = append(real, d)
		}
	}
	if len(real) > 0 {
		t.Fatalf("%s and %s differ:\n%s", a.Source, b.Source, strings.Join(real[:min(len(real), 30)], "\n"))
	}
	if a.Keys() < minKeys {
		t.Fatalf("%s holds %d keys: the comparison proves little", a.Source, a.Keys())
	}
}

// replicaLine is the master's "slaveN:" line of the replica announced on port.
func replicaLine(repl map[string]string, port string) string {
	for k, v := range repl {
		if strings.HasPrefix(k, "slave") && strings.Contains(v, ",port="+port+",") {
			return v
		}
	}
	return ""
}

func atLeast(have, want int64) error {
	if have < want {
		return fmt.Errorf("%d, want at least %d", have, want)
	}
	return nil
}

// withoutCheckpoints drops rmtd's own checkpoint keys (conf.DefaultCheckpointKey) from a target's
// dataset, after checking there is at most one per source node.
func withoutCheckpoints(d *redistest.Dataset) *redistest.Dataset {
	for db, keys := range d.DBs {
		for k := range keys {
			if strings.HasPrefix(k, conf.DefaultCheckpointKey+":") && db == 0 {
				delete(keys, k)
			}
		}
	}
	return d
}
