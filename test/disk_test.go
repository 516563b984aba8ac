package test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
)

// smallDisk mounts a tmpfs of size MB for the test and returns its path. It needs root (as
// CI runs); without the right to mount, the test cannot make a full disk and says so.
func smallDisk(t *testing.T, mb int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if out, err := exec.Command("mkdir", "-p", dir).CombinedOutput(); err != nil {
		t.Fatalf("mkdir: %v %s", err, out)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.Itoa(mb)+"m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a %d MB tmpfs to fill (needs root): %v %s", mb, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestSnapshotTooBigForDisk: dir on a 20 MB filesystem and a 34 MB snapshot announced by a
// master that writes it to disk first. rmtd says why in INFO and the log, the master forks at
// most once per backoff interval (which grows), and the target is left as it was.
func TestSnapshotTooBigForDisk(t *testing.T) {
	disk := smallDisk(t, 20)
	src := redistest.StartRedis(t, redistest.WithArgs("repl-diskless-sync no"))
	fillDoomed(t, src, 8500) // about 34 MB of incompressible values
	dst := redistest.StartRedis(t)
	dst.Do(t, "SET", "already", "there")
	cfg := singleConfig(t, src, dst)
	cfg.Common.Dir = disk
	cfg.Common.TargetNotEmpty = "merge"
	r := StartRmtd(t, cfg)
	start := time.Now()
	redistest.WaitFor(t, 30*time.Second, func() error {
		if l := sourceLine(t, r); !strings.Contains(l["last_error"], "not enough disk space") {
			return fmt.Errorf("no word of the disk: %v", l)
		}
		return nil
	})
	if !strings.Contains(r.LogBuf.String(), "not enough disk space") {
		t.Errorf("the log does not say why")
	}
	time.Sleep(12 * time.Second) // the measure: forks during a fixed time, not a synchronization
	forks := atoi(t, src.Info(t, "stats")["sync_full"])
	elapsed := time.Since(start)
	// Backoff 2 s, 4 s, 8 s, ...: in about 14 s at most 4 full syncs (one per interval).
	if forks > 4 {
		t.Errorf("%d full syncs in %v: the master forks too often", forks, elapsed.Round(time.Second))
	}
	t.Logf("%d full syncs in %v", forks, elapsed.Round(time.Second))
	if v := dst.DoString(t, "GET", "already"); v != "there" || dst.Do(t, "DBSIZE").(int64) != 1 {
		t.Errorf("the target changed: DBSIZE %v", dst.Do(t, "DBSIZE"))
	}
}

// TestSpoolFillsDisk: dir on a 20 MB filesystem, the target paused while a writer's stream fills
// it. rmtd says so, keeps the target as it was, and once the target answers again the full sync
// that follows fits (the old spool is freed first) and the target ends equal to the source.
func TestSpoolFillsDisk(t *testing.T) {
	disk := smallDisk(t, 20)
	src := redistest.StartRedis(t)
	dst := redistest.StartRedis(t)
	for i := range 200 {
		src.Do(t, "SET", "base:"+strconv.Itoa(i), i)
	}
	proxy := redistest.StartProxy(t, dst.Addr)
	cfg := singleConfig(t, src, dst)
	cfg.Common.Dir = disk
	cfg.Target.Servers = []string{proxy.Addr}
	r := StartRmtd(t, cfg)
	waitPhase(t, r, "oplog", 60*time.Second)
	proxy.Pause()
	// Few keys, many writes: the data set stays small while its stream overflows the disk.
	value := strings.Repeat("v", 8<<10)
	for i := 0; ; i++ {
		src.Do(t, "SET", "hot:"+strconv.Itoa(i%100), value+strconv.Itoa(i))
		if i%200 == 0 {
			if l := sourceLine(t, r); strings.Contains(l["last_error"], "no space") || i > 20000 {
				break
			}
		}
	}
	if l := sourceLine(t, r); !strings.Contains(l["last_error"], "no space") {
		t.Fatalf("a full disk is not reported: %v", l)
	}
	for i := range 200 {
		if v := dst.DoString(t, "GET", "base:"+strconv.Itoa(i)); v != strconv.Itoa(i) {
			t.Fatalf("base:%d = %q on the target while paused", i, v)
		}
	}
	proxy.Resume()
	src.Do(t, "SET", "after", "1")
	waitCaughtUp(t, r, src, 90*time.Second)
	compareWithSource(t, src, dst)
}
