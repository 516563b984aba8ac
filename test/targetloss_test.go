package test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/redistest"
)

// TestTargetRestartedEmpty: the target killed in the stream phase and started again with no
// data on the same port. rmtd notices within 10 s that its checkpoint is gone
// (errors_target_data_lost), does a new full sync instead of replaying onto a target that
// forgot, and the target ends equal to the source.
func TestTargetRestartedEmpty(t *testing.T) {
	src := redistest.StartRedis(t, redistest.WithRDB(redistest.Fixture(t, "redis-7.0.15.rdb")))
	dst := redistest.StartRedis(t)
	w := redistest.StartWriter(t, src.Addr, redistest.WriterOptions{DBs: []int{0, 1, 15}, Seed: 11, Rate: 5000})
	r := StartRmtd(t, singleConfig(t, src, dst))
	waitPhase(t, r, "oplog", 60*time.Second)
	ops := w.Ops()
	redistest.WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), ops+2000) })
	restartEmpty(t, r, dst) // the harness keeps no data: an empty target on the same port
	ops = w.Ops()
	redistest.WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), ops+1000) })
	w.Stop()
	waitCaughtUp(t, r, src, 60*time.Second)
	compareWithSource(t, src, dst)
	if m := r.Info(t); atoi(t, m["source0.full_syncs"]) < 2 {
		t.Errorf("no new full sync after the target lost its data: %s", m["source0"])
	}
}

// TestLoadCutShort: rmtd stopped (SIGKILL, then SIGTERM) while the snapshot loads, and keys the
// target already had deleted on the source before rmtd starts again: the new load removes what
// the one cut short left, and the target ends equal to the source, without the deleted keys.
func TestLoadCutShort(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			src := redistest.StartRedis(t)
			dst := redistest.StartRedis(t)
			fillDoomed(t, src, 1000)
			for i := range 200 {
				src.Do(t, "SET", "kept:"+strconv.Itoa(i), i)
			}
			proxy := redistest.StartProxy(t, src.Addr)
			proxy.SetRate(300_000) // the 4 MB snapshot takes over 10 s
			dir := t.TempDir()
			r := &Rmtd{Admin: faultConfig(t, dir, proxy.Addr, dst.Addr)}
			p := startRmtdProcess(t, dir)
			redistest.WaitFor(t, 30*time.Second, func() error {
				if n := dst.Do(t, "DBSIZE").(int64); n < 50 {
					return fmt.Errorf("%d keys on the target", n)
				}
				return nil
			})
			_ = p.cmd.Process.Signal(sig)
			<-p.done
			if n := dst.Do(t, "DBSIZE").(int64); n == 0 || n >= 1200 {
				t.Fatalf("%d keys on the target when rmtd stopped: not a load cut short", n)
			}
			for i := range 1000 {
				src.Do(t, "DEL", "doomed:"+strconv.Itoa(i))
			}
			src.Do(t, "INCR", "after")
			proxy.SetRate(0)
			startRmtdProcess(t, dir)
			waitPhase(t, r, "oplog", 60*time.Second)
			waitCaughtUp(t, r, src, 30*time.Second)
			compareWithSource(t, src, dst)
			if m := r.Info(t); m["errors_own_keys_removed"] != "1" {
				t.Errorf("INFO: own_keys_removed %q, want 1", m["errors_own_keys_removed"])
			}
		})
	}
}

// fillDoomed writes n incompressible 4 KB strings "doomed:<i>", so that a snapshot is as big as
// the data (about 4 MB for 1,000).
func fillDoomed(t *testing.T, r *redistest.Redis, n int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 4096)
	for i := range n {
		for j := range big {
			big[j] = byte(rng.Uint32())
		}
		r.Do(t, "SET", "doomed:"+strconv.Itoa(i), string(big))
	}
}

// TestTargetNotEmpty: keys on the target that rmtd did not write. By default rmtd refuses to
// load (exit 1, saying which keys and what to set); with target_not_empty merge they survive,
// also when the replica link is cut during the first transfer and the load starts over.
func TestTargetNotEmpty(t *testing.T) {
	src := redistest.StartRedis(t)
	dst := redistest.StartRedis(t)
	fillDoomed(t, src, 1000)
	for i := range 20 {
		dst.Do(t, "SET", "unrelated:"+strconv.Itoa(i), "theirs")
	}
	dir := t.TempDir()
	faultConfig(t, dir, src.Addr, dst.Addr)
	code, _, errOut := runRmtd(t, dir, "-c", "rmt.yaml")
	if code != 1 || !strings.Contains(errOut, "holds 20 keys rmtd did not write") ||
		!strings.Contains(errOut, "unrelated:") || !strings.Contains(errOut, "target_not_empty") {
		t.Fatalf("default rule: exit %d, %q", code, errOut)
	}

	proxy := redistest.StartProxy(t, src.Addr)
	proxy.SetRate(500_000)
	cfg := singleConfig(t, src, dst)
	cfg.Source.Servers = []string{proxy.Addr}
	cfg.Common.TargetNotEmpty = conf.TargetNotEmptyMerge
	r := StartRmtd(t, cfg)
	redistest.WaitFor(t, 30*time.Second, func() error {
		if n := dst.Do(t, "DBSIZE").(int64); n < 100 {
			return fmt.Errorf("%d keys on the target", n)
		}
		return nil
	})
	proxy.Cut() // the first transfer, cut: the load starts over
	proxy.SetRate(0)
	src.Do(t, "SET", "after-cut", "1")
	waitPhase(t, r, "oplog", 60*time.Second)
	waitCaughtUp(t, r, src, 30*time.Second)
	for i := range 20 {
		if v := dst.DoString(t, "GET", "unrelated:"+strconv.Itoa(i)); v != "theirs" {
			t.Fatalf("unrelated:%d = %q after a merge load started twice", i, v)
		}
		dst.Do(t, "DEL", "unrelated:"+strconv.Itoa(i))
	}
	compareWithSource(t, src, dst)
	if m := r.Info(t); atoi(t, m["source0.reconnects"]) < 1 {
		t.Errorf("the cut did not reconnect: %s", m["source0"])
	}
}

// TestSourceRestartedEmpty: the source master restarted without persistence (a new replid, no
// keys) would wipe the target if its snapshot were loaded. The node is held, the target keeps
// its keys, INFO says why and how to go on; after RESYNC the target equals the source.
func TestSourceRestartedEmpty(t *testing.T) {
	src := redistest.StartRedis(t, redistest.WithRDB(redistest.Fixture(t, "redis-7.0.15.rdb")))
	dst := redistest.StartRedis(t)
	w := redistest.StartWriter(t, src.Addr, redistest.WriterOptions{Seed: 5, Rate: 2000, Reconnect: true})
	r := StartRmtd(t, singleConfig(t, src, dst))
	waitPhase(t, r, "oplog", 60*time.Second)
	ops := w.Ops()
	redistest.WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), ops+1000) })
	w.Stop()
	waitCaughtUp(t, r, src, 30*time.Second)
	before := dst.Do(t, "DBSIZE").(int64)
	rdb := filepath.Join(src.Dir, "dump.rdb")
	_ = os.Remove(rdb) // restart with nothing
	src.Kill()
	src.Restart(t)
	redistest.WaitFor(t, 30*time.Second, func() error {
		l := parseNodeLine(r.Info(t)["source0"])
		if l["state"] != "held" || !strings.Contains(l["last_error"], "RESYNC") {
			return fmt.Errorf("not held: %v", l)
		}
		return nil
	})
	if n := dst.Do(t, "DBSIZE").(int64); n != before {
		t.Fatalf("the target went from %d to %d keys while held", before, n)
	}
	src.Do(t, "SET", "new-life", "1")
	if n := adminDo(t, r.Admin, "RESYNC"); n != int64(1) {
		t.Fatalf("RESYNC released %v nodes", n)
	}
	waitPhase(t, r, "oplog", 60*time.Second)
	waitCaughtUp(t, r, src, 30*time.Second)
	compareWithSource(t, src, dst)
	if m := r.Info(t); m["errors_source_held"] != "1" {
		t.Errorf("INFO: source_held %q", m["errors_source_held"])
	}
}

// restartEmpty kills a target server and starts it again empty on the same port (the harness
// keeps no data), then waits at most 10 s for rmtd to count the loss (errors_target_data_lost).
func restartEmpty(t *testing.T, r *Rmtd, s *redistest.Redis) {
	t.Helper()
	s.Kill()
	s.Restart(t)
	restarted := time.Now()
	redistest.WaitFor(t, 10*time.Second, func() error {
		if m := r.Info(t); m["errors_target_data_lost"] == "" {
			return fmt.Errorf("%.1fs after the restart: not noticed: %s", time.Since(restarted).Seconds(), m["source0"])
		}
		return nil
	})
	t.Logf("noticed %.1fs after the restart: %s", time.Since(restarted).Seconds(), r.Info(t)["source0"])
}
