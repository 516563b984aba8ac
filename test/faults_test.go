package test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
)

// rmtdProcess is the rmtd binary running as a child of the test, to be killed for real.
type rmtdProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startRmtdProcess(t *testing.T, dir string) *rmtdProcess {
	t.Helper()
	p := startRmtdCmd(t, dir, nil, "-c", "rmt.yaml", "-o", "rmtd.log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "rmtd.log"))
			t.Logf("rmtd.log:\n%s", b)
		}
	})
	return p
}

func (p *rmtdProcess) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// faultConfig writes rmt.yaml for src → dst with a fixed admin port, and returns the admin address.
func faultConfig(t *testing.T, dir string, src, dst string) string {
	t.Helper()
	admin := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	writeConfig(t, dir, fmt.Sprintf("source:\n  type: single\n  servers: [%s]\ntarget:\n  type: single\n  servers: [%s]\n"+
		"common:\n  listen: %s\n  dir: %s\n", src, dst, admin, filepath.Join(dir, "data")))
	return admin
}

// TestKilledAndRestarted: rmtd killed with SIGKILL three times in the oplog phase under a live
// writer (INCR, APPEND, LPUSH among its commands) resumes each time with a partial resync from
// the target's checkpoint, and the target ends equal to the source: nothing lost, nothing
// applied twice.
func TestKilledAndRestarted(t *testing.T) {
	src := redistest.StartRedis(t, redistest.WithRDB(redistest.Fixture(t, "redis-7.0.15.rdb")))
	dst := redistest.StartRedis(t)
	w := redistest.StartWriter(t, src.Addr, redistest.WriterOptions{DBs: []int{0, 1, 15}, Seed: 7, Rate: 20000})
	dir := t.TempDir()
	r := &Rmtd{Admin: faultConfig(t, dir, src.Addr, dst.Addr)}

	p := startRmtdProcess(t, dir)
	waitPhase(t, r, "oplog", 60*time.Second)
	for i := 1; i <= 3; i++ {
		ops := w.Ops()
		redistest.WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), ops+2000) })
		p.kill()
		ops = w.Ops()
		redistest.WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), ops+1000) }) // writes while it is down
		p = startRmtdProcess(t, dir)
		waitPhase(t, r, "oplog", 60*time.Second)
		m := r.Info(t)
		if m["source0.full_syncs"] != "0" || m["source0.partial_syncs"] != "1" {
			t.Fatalf("restart %d: full_syncs=%s partial_syncs=%s, want a partial resync only (%s)", i,
				m["source0.full_syncs"], m["source0.partial_syncs"], m["source0"])
		}
	}
	stats := w.Stop()
	t.Logf("writer: %s", stats)
	waitCaughtUp(t, r, src, 60*time.Second)
	compareWithSource(t, src, dst)
	if st := src.Info(t, "stats"); st["sync_full"] != "1" || st["sync_partial_ok"] != "3" {
		t.Errorf("master: sync_full=%s sync_partial_ok=%s, want 1 and 3", st["sync_full"], st["sync_partial_ok"])
	}
}

// TestSourceLinkCut: the link to the master cut five times in the oplog phase resumes each time
// with a partial resync; no second full sync, nothing lost.
func TestSourceLinkCut(t *testing.T) {
	src := redistest.StartRedis(t, redistest.WithRDB(redistest.Fixture(t, "redis-7.0.15.rdb")))
	dst := redistest.StartRedis(t)
	proxy := redistest.StartProxy(t, src.Addr)
	w := redistest.StartWriter(t, src.Addr, redistest.WriterOptions{DBs: []int{0, 1, 15}, Seed: 3, Rate: 20000})
	cfg := singleConfig(t, src, dst)
	cfg.Source.Servers = []string{proxy.Addr}
	r := StartRmtd(t, cfg)
	waitPhase(t, r, "oplog", 60*time.Second)
	for i := 1; i <= 5; i++ {
		ops := w.Ops()
		redistest.WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), ops+1000) })
		proxy.Cut()
		redistest.WaitFor(t, 20*time.Second, func() error {
			m := r.Info(t)
			if m["source0.partial_syncs"] != strconv.Itoa(i) || m["source0.state"] != "oplog" {
				return fmt.Errorf("after cut %d: %s", i, m["source0"])
			}
			return nil
		})
	}
	w.Stop()
	waitCaughtUp(t, r, src, 60*time.Second)
	compareWithSource(t, src, dst)
	m := r.Info(t)
	if m["source0.full_syncs"] != "1" || m["source0.partial_syncs"] != "5" || atoi(t, m["source0.reconnects"]) < 5 {
		t.Errorf("INFO after 5 cuts: %s", m["source0"])
	}
	if st := src.Info(t, "stats"); st["sync_full"] != "1" || st["sync_partial_ok"] != "5" {
		t.Errorf("master: sync_full=%s sync_partial_ok=%s, want 1 and 5", st["sync_full"], st["sync_partial_ok"])
	}
}

// TestTargetDown: the target unreachable for 20 s while the writer goes on. rmtd keeps the
// source link up and spools, retries, and then applies everything in order.
func TestTargetDown(t *testing.T) {
	src := redistest.StartRedis(t, redistest.WithRDB(redistest.Fixture(t, "redis-7.0.15.rdb")))
	dst := redistest.StartRedis(t)
	proxy := redistest.StartProxy(t, dst.Addr)
	w := redistest.StartWriter(t, src.Addr, redistest.WriterOptions{DBs: []int{0, 1, 15}, Seed: 4, Rate: 5000})
	cfg := singleConfig(t, src, dst)
	cfg.Target.Servers = []string{proxy.Addr}
	r := StartRmtd(t, cfg)
	waitPhase(t, r, "oplog", 60*time.Second)

	proxy.Block()
	down := time.Now()
	redistest.WaitFor(t, 25*time.Second, func() error {
		if m := r.Info(t); m["target0.state"] != "down" && atoi(t, m["source0.lag_bytes"]) == 0 {
			return fmt.Errorf("rmtd has not noticed the target is down: %s", m["target0"])
		}
		return nil
	})
	// Stay down 20 s; the writer keeps writing all along.
	redistest.WaitFor(t, 30*time.Second, func() error {
		if d := time.Since(down); d < 20*time.Second {
			return fmt.Errorf("down for %v", d)
		}
		return nil
	})
	m := r.Info(t)
	if atoi(t, m["source0.lag_bytes"]) == 0 || m["source0.reconnects"] != "0" {
		t.Errorf("while the target is down: %s", m["source0"])
	}
	proxy.Unblock()
	w.Stop()
	waitCaughtUp(t, r, src, 60*time.Second)
	compareWithSource(t, src, dst)
	m = r.Info(t)
	if m["source0.reconnects"] != "0" || m["source0.full_syncs"] != "1" {
		t.Errorf("the source link did not stay up: %s", m["source0"])
	}
	if atoi(t, m["errors_target_conn"]) == 0 {
		t.Errorf("INFO does not show the target's failures: %v", m)
	}
}

// TestMasterRestartDuringRDB: the master restarts (with a new replication ID and fewer keys)
// while rmtd receives its snapshot; rmtd does a new full sync and the target ends equal to the
// new master, without the keys the old snapshot had.
func TestMasterRestartDuringRDB(t *testing.T) {
	src := redistest.StartRedis(t, redistest.WithRDB(redistest.Fixture(t, "redis-7.0.15.rdb")))
	dst := redistest.StartRedis(t)
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 4096) // incompressible, so the snapshot is as big as the data
	const doomed = 1000
	for i := 0; i < doomed; i++ {
		for j := range big {
			big[j] = byte(rng.Uint32())
		}
		src.Do(t, "SET", "doomed:"+strconv.Itoa(i), string(big))
	}
	proxy := redistest.StartProxy(t, src.Addr)
	proxy.SetRate(300_000) // over 10 s for the snapshot
	cfg := singleConfig(t, src, dst)
	cfg.Source.Servers = []string{proxy.Addr}
	r := StartRmtd(t, cfg)
	// Half the snapshot is in, and some of its keys are on the target, when the master dies.
	redistest.WaitFor(t, 20*time.Second, func() error {
		m := r.Info(t)
		if atoi(t, m["source0.rdb_bytes"]) < 1500<<10 || dst.Do(t, "DBSIZE").(int64) < 50 {
			return fmt.Errorf("transfer: %s", m["source0"])
		}
		return nil
	})
	// The new master restarts from its RDB file (the fixture): new replication ID, no doomed key.
	src.Kill()
	src.Restart(t)
	proxy.SetRate(0)
	// If the first snapshot got in whole, the new one, with 3% of its keys, would wipe the
	// target: the node is held (common.resync_guard) and the target keeps what it has, until
	// RESYNC. If it did not, the new one simply replaces it.
	newReplid := src.Info(t, "replication")["master_replid"]
	held := false
	redistest.WaitFor(t, 60*time.Second, func() error {
		m := r.Info(t)
		l := parseNodeLine(m["source0"])
		if held = l["state"] == "held"; held {
			if !strings.Contains(l["last_error"], "RESYNC") {
				return fmt.Errorf("held without saying how to go on: %v", l)
			}
			return nil
		}
		if m["phase"] == "oplog" && l["replid"] == newReplid {
			return nil
		}
		return fmt.Errorf("neither held nor replaying the new master: phase %s, %v", m["phase"], l)
	})
	if held {
		if n := dst.Do(t, "DBSIZE").(int64); n < 1000 {
			t.Fatalf("the target lost keys while the node is held: %d left", n)
		}
		if n := adminDo(t, r.Admin, "RESYNC"); n != int64(1) {
			t.Fatalf("RESYNC released %v nodes, want 1", n)
		}
	}
	t.Logf("held for RESYNC: %v", held)
	waitPhase(t, r, "oplog", 60*time.Second)
	src.Do(t, "SET", "after-restart", "1")
	waitCaughtUp(t, r, src, 30*time.Second)
	compareWithSource(t, src, dst)
	m := r.Info(t)
	if atoi(t, m["source0.full_syncs"]) < 1 || atoi(t, m["source0.reconnects"]) < 1 || m["errors_resync_flushall"] != "1" ||
		m["errors_partial_resync_refused"] != "1" {
		t.Errorf("INFO after the master restart: %s (resync_flushall %s, partial_resync_refused %s)", m["source0"], m["errors_resync_flushall"], m["errors_partial_resync_refused"])
	}
}

// TestSlowTarget: a target throttled to 100 KB/s for 30 s under a steady write load. The spool
// on disk grows, rmtd's memory does not (RSS under 150 MB), and everything drains afterwards.
func TestSlowTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("30 s of throttling")
	}
	src := redistest.StartRedis(t, redistest.WithRDB(redistest.Fixture(t, "redis-7.0.15.rdb")))
	dst := redistest.StartRedis(t)
	proxy := redistest.StartProxy(t, dst.Addr)
	dir := t.TempDir()
	r := &Rmtd{Admin: faultConfig(t, dir, src.Addr, proxy.Addr)}
	p := startRmtdProcess(t, dir)
	waitPhase(t, r, "oplog", 60*time.Second)

	w := redistest.StartWriter(t, src.Addr, redistest.WriterOptions{DBs: []int{0, 1, 15}, Seed: 5, Rate: 4000})
	proxy.SetRate(100_000)
	start := time.Now()
	var maxRSS, maxLag int64
	redistest.WaitFor(t, 40*time.Second, func() error {
		if rss := processRSS(t, p.cmd.Process.Pid); rss > maxRSS {
			maxRSS = rss
		}
		if lag := atoi(t, r.Info(t)["source0.lag_bytes"]); lag > maxLag {
			maxLag = lag
		}
		if d := time.Since(start); d < 30*time.Second {
			return fmt.Errorf("throttled for %v", d)
		}
		return nil
	})
	proxy.SetRate(0)
	w.Stop()
	t.Logf("peak RSS %d MB, peak lag %d KB", maxRSS>>20, maxLag>>10)
	if maxRSS > 150<<20 {
		t.Errorf("rmtd's RSS reached %d MB", maxRSS>>20)
	}
	if maxLag < 1<<20 {
		t.Errorf("the spool never held more than %d bytes: the target was not the bottleneck", maxLag)
	}
	waitCaughtUp(t, r, src, 120*time.Second)
	compareWithSource(t, src, dst)
}

// processRSS is a process's resident set size in bytes, from /proc.
func processRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			return atoi(t, f[1]) << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// TestSpoolLimit: with common.max_spool_bytes reached (the target down), INFO and the log say so;
// once the target is back the spool drains and the link resumes, losing nothing.
func TestSpoolLimit(t *testing.T) {
	src := redistest.StartRedis(t, redistest.WithRDB(redistest.Fixture(t, "redis-7.0.15.rdb")), redistest.WithArgs("repl-backlog-size 64mb"))
	dst := redistest.StartRedis(t)
	proxy := redistest.StartProxy(t, dst.Addr)
	cfg := singleConfig(t, src, dst)
	cfg.Target.Servers = []string{proxy.Addr}
	cfg.Common.MaxSpoolBytes = 1 << 20
	r := StartRmtd(t, cfg)
	waitPhase(t, r, "oplog", 60*time.Second)
	proxy.Block()
	w := redistest.StartWriter(t, src.Addr, redistest.WriterOptions{DBs: []int{0, 1}, Seed: 6, Rate: 20000})
	redistest.WaitFor(t, 30*time.Second, func() error {
		if m := r.Info(t); !strings.Contains(m["source0.last_error"], "spool full") {
			return fmt.Errorf("source0: %s", m["source0"])
		}
		return nil
	})
	if !strings.Contains(r.LogBuf.String(), "spool full") {
		t.Errorf("the log does not say the spool is full")
	}
	w.Stop()
	proxy.Unblock()
	waitCaughtUp(t, r, src, 60*time.Second)
	compareWithSource(t, src, dst)
}

// TestShutdownAndRestart: SHUTDOWN waits for what is spooled to reach the target, writes the
// checkpoints and exits; started again, rmtd resumes with a partial resync.
func TestShutdownAndRestart(t *testing.T) {
	src := redistest.StartRedis(t, redistest.WithRDB(redistest.Fixture(t, "redis-7.0.15.rdb")))
	dst := redistest.StartRedis(t)
	w := redistest.StartWriter(t, src.Addr, redistest.WriterOptions{DBs: []int{0, 1}, Seed: 8, Rate: 20000})
	dir := t.TempDir()
	r := &Rmtd{Admin: faultConfig(t, dir, src.Addr, dst.Addr)}
	p := startRmtdProcess(t, dir)
	waitPhase(t, r, "oplog", 60*time.Second)
	ops := w.Ops()
	redistest.WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), ops+2000) })
	_, port, _ := strings.Cut(r.Admin, ":")
	if code, out, errOut := runRedisCLI(t, "-p", port, "shutdown", "5"); code != 0 {
		t.Fatalf("SHUTDOWN: %d %s %s", code, out, errOut)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("rmtd did not exit after SHUTDOWN")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code after SHUTDOWN: %d", code)
	}
	startRmtdProcess(t, dir)
	waitPhase(t, r, "oplog", 60*time.Second)
	if m := r.Info(t); m["source0.full_syncs"] != "0" || m["source0.partial_syncs"] != "1" {
		t.Errorf("after SHUTDOWN and restart: %s", m["source0"])
	}
	w.Stop()
	waitCaughtUp(t, r, src, 60*time.Second)
	compareWithSource(t, src, dst)
}
