package test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
)

// Managed services refuse commands a migration tool would like to use: ElastiCache SYNC,
// CONFIG, BGSAVE, REPLICAOF (and PSYNC unless renamed for a customer); MemoryDB and OCI Cache
// PSYNC; Memorystore CONFIG, COMMAND, OBJECT, CLUSTER, MONITOR; Aiven ROLE, COMMAND, CONFIG.
// These tests start servers that refuse them the same way (rename-command).

// refusedOnSource are the rename-command lines of a source that refuses replication and
// introspection; psync is PSYNC's new name ("" removes it).
func refusedOnSource(psync string) []string {
	if psync == "" {
		psync = `""`
	}
	return []string{
		"rename-command PSYNC " + psync,
		`rename-command SYNC ""`,
		`rename-command CONFIG ""`,
		`rename-command COMMAND ""`,
	}
}

// refusedOnTarget are those of a target that refuses CONFIG and COMMAND.
var refusedOnTarget = []string{`rename-command CONFIG ""`, `rename-command COMMAND ""`}

// waitDumpsEqual waits until src and dst (without rmtd's checkpoint keys) hold the same data,
// and fails with the differences of the last try.
func waitDumpsEqual(t *testing.T, timeout time.Duration, src, dst *redistest.Redis, minKeys int) {
	t.Helper()
	var last []string
	err := redistest.Poll(timeout, func() error {
		// A dump taken while rmtd still writes may see a key go between SCAN and its read
		// (XINFO: no such key): that try fails and the next one is taken.
		a, err := redistest.DumpContext(context.Background(), src.Addr, src.DumpOptions())
		if err != nil {
			return err
		}
		bd, err := redistest.DumpContext(context.Background(), dst.Addr, dst.DumpOptions())
		if err != nil {
			return err
		}
		b := withoutCheckpoints(bd)
		diffs, _ := redistest.DiffCount(a, b, redistest.TTLTolerance)
		last = diffs
		if len(diffs) > 0 {
			return fmt.Errorf("%d differences", len(diffs))
		}
		if a.Keys() < minKeys {
			return fmt.Errorf("%s holds %d keys, want at least %d", src.Addr, a.Keys(), minKeys)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s and %s differ after %s: %v\n%s", src.Addr, dst.Addr, timeout, err, strings.Join(last[:min(len(last), 30)], "\n"))
	}
}

// TestManagedPSyncCommand: a source that knows PSYNC only as PSYNC-AWS (and refuses SYNC,
// CONFIG and COMMAND), a target that refuses CONFIG and COMMAND: with source.psync_command
// set, a normal replica migration, snapshot then live writes over every type and three dbs.
func TestManagedPSyncCommand(t *testing.T) {
	src := redistest.StartRedis(t, redistest.WithArgs(refusedOnSource("PSYNC-AWS")...),
		redistest.WithFlags("--repl-diskless-sync-delay", "0"))
	dst := redistest.StartRedis(t, redistest.WithArgs(refusedOnTarget...))
	for i := range 500 {
		src.Do(t, "SET", fmt.Sprintf("k:%d", i), i)
		src.Do(t, "HSET", fmt.Sprintf("h:%d", i), "f", i)
	}
	cfg := singleConfig(t, src, dst)
	cfg.Source.PSyncCommand = "PSYNC-AWS"
	r := StartRmtd(t, cfg)
	waitPhase(t, r, "oplog", 30*time.Second)
	w := redistest.StartWriter(t, src.Addr, redistest.WriterOptions{DBs: []int{0, 1, 15}, Rate: 2000})
	redistest.WaitFor(t, 30*time.Second, func() error {
		if n := w.Ops(); n < 5000 {
			return fmt.Errorf("%d writes so far", n)
		}
		return nil
	})
	w.Stop()
	waitDumpsEqual(t, 20*time.Second, src, dst, 1000)
	if m := r.Info(t); m["source0.full_syncs"] != "1" {
		t.Errorf("source0: %s", m["source0"])
	}
}
