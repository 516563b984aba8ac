package test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/redistest"
)

// TestMigrateSingleToCluster migrates a Redis 7.0 source under a live writer (db 0) into a
// 3-master cluster, moves a hot slot on the target during the oplog phase, and at the end the
// merged cluster must equal the source.
func TestMigrateSingleToCluster(t *testing.T) {
	src := redistest.StartRedis(t)
	cl := redistest.StartCluster(t, 3)
	w := redistest.StartWriter(t, src.Addr, redistest.WriterOptions{DBs: []int{0}, Seed: 3})
	redistest.WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), 2000) })

	cfg := conf.Default()
	cfg.File = "test"
	cfg.Source.Servers = []string{src.Addr}
	cfg.Target.Type = conf.TypeRedisCluster
	cfg.Target.Servers = cl.Addrs[1:2] // any one node gives the slot map
	cfg.Common.Listen = "127.0.0.1:0"
	cfg.Common.Dir = t.TempDir() // the default checkpoint key: slot checkpoints move with their slots
	r := StartRmtd(t, cfg)
	waitPhase(t, r, "oplog", 60*time.Second)

	// Move the slots of 20 hot counters ("w:c:<n>" get INCRs) while the writer keeps going.
	opsAtOplog := w.Ops()
	redistest.WaitFor(t, 20*time.Second, func() error { return atLeast(w.Ops(), opsAtOplog+3000) })
	settleEpochs(t, cl)
	var slots []int
	var owners []*redistest.Redis
	for n := 1; len(slots) < 20; n += 7 {
		slot := int(cl.Nodes[0].Do(t, "CLUSTER", "KEYSLOT", "w:c:"+strconv.Itoa(n)).(int64))
		from := cl.NodeForSlot(slot)
		to := cl.Nodes[(indexOf(cl.Nodes, from)+1+n%2)%3]
		moveSlotOf(t, cl, slot, from, to)
		slots, owners = append(slots, slot), append(owners, to)
	}
	t.Logf("%d slots moved", len(slots))
	// Commands over several slots: RENAME there and back (skipped, counted crossslot, the
	// end state is the same), MSET split per slot, a transaction over several slots
	// (applied command by command, counted multi_split).
	keyslot := func(k string) int64 { return cl.Nodes[0].Do(t, "CLUSTER", "KEYSLOT", k).(int64) }
	if keyslot("cx:a") == keyslot("cx:b") || keyslot("cx:1") == keyslot("cx:2") {
		t.Fatal("test keys share a slot")
	}
	src.Do(t, "SET", "cx:a", "v")
	src.Do(t, "RENAME", "cx:a", "cx:b")
	src.Do(t, "RENAME", "cx:b", "cx:a")
	src.Do(t, "MSET", "cx:1", "1", "cx:2", "2", "cx:3", "3")
	src.Do(t, "EVAL", "redis.call('SET', KEYS[1], 'x'); redis.call('SET', KEYS[2], 'y')", 2, "cx:1", "cx:2")
	// Every node agrees on the new owners.
	redistest.WaitFor(t, 10*time.Second, func() error {
		for i, slot := range slots {
			for _, n := range cl.Nodes {
				if owner := slotOwner(t, n, slot); owner != owners[i].Port {
					return fmt.Errorf("node %s: slot %d served by port %d, want %d", n.Addr, slot, owner, owners[i].Port)
				}
			}
		}
		return nil
	})
	opsAtMove := w.Ops()
	redistest.WaitFor(t, 20*time.Second, func() error { return atLeast(w.Ops(), opsAtMove+3000) })
	stats := w.Stop()
	t.Logf("writer: %s", stats)
	waitCaughtUp(t, r, src, 60*time.Second)

	a, b := src.Dump(t), withoutCheckpoints(cl.Dump(t))
	diffs, _ := redistest.DiffCount(a, b, redistest.TTLTolerance)
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
	m := r.Info(t)
	if m["total_errors"] != "0" {
		t.Errorf("INFO total_errors %s: %v", m["total_errors"], m)
	}
	if m["skipped_crossslot"] != "2" || m["skipped_multi_split"] != "1" {
		t.Errorf("INFO skipped_crossslot %q, skipped_multi_split %q; want 2 and 1",
			m["skipped_crossslot"], m["skipped_multi_split"])
	}
	if m["target0"] == "" {
		t.Errorf("INFO has no target line")
	}
}

// moveSlotOf moves slot from one master to another as redis-cli --cluster reshard does:
// IMPORTING/MIGRATING, MIGRATE a few keys at a time, then SETSLOT NODE everywhere.
func moveSlotOf(t *testing.T, cl *redistest.Cluster, slot int, from, to *redistest.Redis) {
	t.Helper()
	fromID, toID := from.DoString(t, "CLUSTER", "MYID"), to.DoString(t, "CLUSTER", "MYID")
	to.Do(t, "CLUSTER", "SETSLOT", slot, "IMPORTING", fromID)
	from.Do(t, "CLUSTER", "SETSLOT", slot, "MIGRATING", toID)
	for {
		keys := from.Do(t, "CLUSTER", "GETKEYSINSLOT", slot, 5).([]interface{})
		if len(keys) == 0 {
			break
		}
		args := []interface{}{"MIGRATE", "127.0.0.1", to.Port, "", 0, 5000, "KEYS"}
		args = append(args, keys...)
		from.Do(t, args...)
	}
	to.Do(t, "CLUSTER", "SETSLOT", slot, "NODE", toID)
	from.Do(t, "CLUSTER", "SETSLOT", slot, "NODE", toID)
	for _, n := range cl.Nodes {
		if n != to && n != from {
			n.Do(t, "CLUSTER", "SETSLOT", slot, "NODE", toID)
		}
	}
	// Every node agrees before the next move (as redis-cli --cluster checks), and knows every
	// epoch: two imports bumping the epoch on stale views collide, and a slot can then go back.
	redistest.WaitFor(t, 10*time.Second, func() error {
		for _, n := range cl.Nodes {
			if owner := slotOwner(t, n, slot); owner != to.Port {
				return fmt.Errorf("node %s: slot %d served by port %d, want %d", n.Addr, slot, owner, to.Port)
			}
		}
		return epochsSettled(t, cl)
	})
}

// settleEpochs waits until every node has its own config epoch: nodes joined with CLUSTER MEET
// all start at epoch 0, and a slot moved while they still collide can go back to its old owner.
func settleEpochs(t *testing.T, cl *redistest.Cluster) {
	t.Helper()
	redistest.WaitFor(t, 20*time.Second, func() error { return epochsSettled(t, cl) })
}

// epochsSettled says whether every node has its own config epoch and all share one current
// epoch.
func epochsSettled(t *testing.T, cl *redistest.Cluster) error {
	seen := map[string]bool{}
	current := ""
	for i, n := range cl.Nodes {
		info := redistest.ParseInfo(n.DoString(t, "CLUSTER", "INFO"))
		e := info["cluster_my_epoch"]
		if seen[e] {
			return fmt.Errorf("two nodes at config epoch %s", e)
		}
		seen[e] = true
		c := info["cluster_current_epoch"]
		if i > 0 && c != current {
			return fmt.Errorf("current epochs %s and %s", current, c)
		}
		current = c
	}
	return nil
}

func indexOf(nodes []*redistest.Redis, r *redistest.Redis) int {
	for i, n := range nodes {
		if n == r {
			return i
		}
	}
	return -1
}

// slotOwner is the port of the master that n says serves slot (CLUSTER SLOTS), or 0.
func slotOwner(t *testing.T, n *redistest.Redis, slot int) int {
	for _, r := range n.Do(t, "CLUSTER", "SLOTS").([]interface{}) {
		rng := r.([]interface{})
		if int(rng[0].(int64)) <= slot && slot <= int(rng[1].(int64)) {
			return int(rng[2].([]interface{})[1].(int64))
		}
	}
	return 0
}
