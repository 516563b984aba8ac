package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// rmtdProcess is the rmtd binary running as a child of the test, to be killed for real.
type rmtdProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startRmtdProcess(t *testing.T, dir string) *rmtdProcess {
	t.Helper()
	cmd := exec.Command(rmtdBinary(t), "-c", "rmt.yaml", "-o", "rmtd.log")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &rmtdProcess{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
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
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	admin := "127.0.0.1:" + strconv.Itoa(port)
	writeConfig(t, dir, fmt.Sprintf("source:\n  type: single\n  servers: [%s]\ntarget:\n  type: single\n  servers: [%s]\n"+
		"common:\n  listen: %s\n  dir: %s\n", src, dst, admin, filepath.Join(dir, "data")))
	return admin
}

// TestKilledAndRestarted: rmtd killed with SIGKILL three times in the oplog phase under a live
// writer (INCR, APPEND, LPUSH among its commands) resumes each time with a partial resync from
// the target's checkpoint, and the target ends equal to the source: nothing lost, nothing
// applied twice.
func TestKilledAndRestarted(t *testing.T) {
	src := StartRedis(t, WithRDB(fixture("redis-7.0.15.rdb")))
	dst := StartRedis(t)
	w := StartWriter(t, src.Addr, WriterOptions{DBs: []int{0, 1, 15}, Seed: 7, Rate: 20000})
	dir := t.TempDir()
	r := &Rmtd{Admin: faultConfig(t, dir, src.Addr, dst.Addr)}

	p := startRmtdProcess(t, dir)
	waitPhase(t, r, "oplog", 60*time.Second)
	for i := 1; i <= 3; i++ {
		ops := w.Ops()
		WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), ops+2000) })
		p.kill()
		ops = w.Ops()
		WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), ops+1000) }) // writes while it is down
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
