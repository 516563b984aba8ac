package test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/conf"
)

// TestMigrateSingleToCluster migrates a Redis 7.0 source under a live writer (db 0) into a
// 3-master cluster, moves a hot slot on the target during the oplog phase, and at the end the
// merged cluster must equal the source.
func TestMigrateSingleToCluster(t *testing.T) {
	src := StartRedis(t)
	cl := StartCluster(t, 3)
	w := StartWriter(t, src.Addr, WriterOptions{DBs: []int{0}, Seed: 3})
	WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), 2000) })

	cfg := conf.Default()
	cfg.File = "test"
	cfg.Source.Servers = []string{src.Addr}
	cfg.Target.Type = conf.TypeRedisCluster
	cfg.Target.Servers = cl.Addrs[1:2] // any one node gives the slot map
	cfg.Common.Listen = "127.0.0.1:0"
	cfg.Common.Dir = t.TempDir()
	// The target-side checkpoint is a single-target feature: one key on one node cannot
	// record where every master stands.
	cfg.Common.CheckpointKey = ""
	r := StartRmtd(t, cfg)
	waitPhase(t, r, "oplog", 60*time.Second)

	// Move the slots of 20 hot counters ("w:c:<n>" get INCRs) while the writer keeps going.
	opsAtOplog := w.Ops()
	WaitFor(t, 20*time.Second, func() error { return atLeast(w.Ops(), opsAtOplog+3000) })
	var slots []int
	var owners []*Redis
	for n := 1; len(slots) < 20; n += 7 {
		slot := int(cl.Nodes[0].Do(t, "CLUSTER", "KEYSLOT", "w:c:"+strconv.Itoa(n)).(int64))
		from := cl.NodeForSlot(slot)
		to := cl.Nodes[(indexOf(cl.Nodes, from)+1+n%2)%3]
		moveSlotOf(t, cl, slot, from, to)
		slots, owners = append(slots, slot), append(owners, to)
	}
	opsAtMove := w.Ops()
	WaitFor(t, 20*time.Second, func() error { return atLeast(w.Ops(), opsAtMove+3000) })
	stats := w.Stop()
	t.Logf("writer: %s", stats)
	waitCaughtUp(t, r, src, 60*time.Second)

	a, b := src.Dump(t), cl.Dump(t)
	diffs, _ := DiffCount(a, b, TTLTolerance)
	var real []string
	for _, d := range diffs {
		if !strings.Contains(d, "entries-read") {
			real = append(real, d)
		}
	}
	if len(real) > 0 {
		t.Fatalf("source and cluster differ:\n%s", strings.Join(real[:min(len(real), 30)], "\n"))
	}
	if a.Keys() < 1000 {
		t.Fatalf("the source holds %d keys: the comparison proves little", a.Keys())
	}
	for i, slot := range slots {
		if n := owners[i].Do(t, "CLUSTER", "COUNTKEYSINSLOT", slot).(int64); n == 0 {
			t.Errorf("the moved slot %d is empty on its new owner", slot)
		}
	}
	m := r.Info(t)
	if m["total_errors"] != "0" {
		t.Errorf("INFO total_errors %s: %v", m["total_errors"], m)
	}
	if m["target0"] == "" {
		t.Errorf("INFO has no target line")
	}
}

// moveSlotOf moves slot from one master to another as redis-cli --cluster reshard does:
// IMPORTING/MIGRATING, MIGRATE a few keys at a time, then SETSLOT NODE everywhere.
func moveSlotOf(t *testing.T, cl *Cluster, slot int, from, to *Redis) {
	t.Helper()
	fromID, toID := from.DoString(t, "CLUSTER", "MYID"), to.DoString(t, "CLUSTER", "MYID")
	to.Do(t, "CLUSTER", "SETSLOT", slot, "IMPORTING", fromID)
	from.Do(t, "CLUSTER", "SETSLOT", slot, "MIGRATING", toID)
	moved := 0
	for {
		keys := from.Do(t, "CLUSTER", "GETKEYSINSLOT", slot, 5).([]interface{})
		if len(keys) == 0 {
			break
		}
		args := []interface{}{"MIGRATE", "127.0.0.1", to.Port, "", 0, 5000, "KEYS"}
		args = append(args, keys...)
		from.Do(t, args...)
		moved += len(keys)
	}
	to.Do(t, "CLUSTER", "SETSLOT", slot, "NODE", toID)
	from.Do(t, "CLUSTER", "SETSLOT", slot, "NODE", toID)
	for _, n := range cl.Nodes {
		if n != to && n != from {
			n.Do(t, "CLUSTER", "SETSLOT", slot, "NODE", toID)
		}
	}
	if moved == 0 {
		t.Errorf("slot %d had no key to move", slot)
	}
}

func indexOf(nodes []*Redis, r *Redis) int {
	for i, n := range nodes {
		if n == r {
			return i
		}
	}
	return -1
}
