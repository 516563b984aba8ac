package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
)

func writeConfig(t *testing.T, dir, text string) string {
	t.Helper()
	path := filepath.Join(dir, "rmt.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestInvalidConfigExits: a bad config is refused with exit 1, naming the file, line and key.
func TestInvalidConfigExits(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"bad target type", "source:\n  type: single\n  servers: [127.0.0.1:6379]\ntarget:\n  type: redis-cluster\n  servers: [127.0.0.1:7000]\n",
			`rmt.yaml:5: target.type: "redis-cluster" is not one of single, twemproxy, redis cluster, sentinel, rdb file`},
		{"unknown key", "source:\n  type: single\n  sevrers: [127.0.0.1:6379]\n",
			"rmt.yaml:3: source.sevrers: unknown key"},
		{"bad port", "source:\n  type: single\n  servers: [127.0.0.1:99999]\ntarget:\n  type: single\n  servers: [127.0.0.1:6380]\n",
			"rmt.yaml:3: source.servers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeConfig(t, dir, tc.yaml)
			code, _, stderr := runRmtd(t, dir, "-c", "rmt.yaml")
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not say %q", stderr, tc.want)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	dir := t.TempDir()
	if code, out, _ := runRmtd(t, dir, "-V"); code != 0 || !strings.HasPrefix(out, "This is rmtd-") {
		t.Errorf("-V: exit %d, %q", code, out)
	}
	if code, out, _ := runRmtd(t, dir, "--help"); code != 0 || !strings.Contains(out, "--conf-file=S") || !strings.Contains(out, "redis_testinsert") {
		t.Errorf("--help: exit %d, %q", code, out)
	}
	if code, _, errOut := runRmtd(t, dir, "-x"); code != 1 || !strings.Contains(errOut, "unknown option -x") {
		t.Errorf("-x: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runRmtd(t, dir, "-c", "nosuch.yaml"); code != 1 || !strings.Contains(errOut, "nosuch.yaml") {
		t.Errorf("missing config: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runRmtd(t, dir, "-f", "127.0.0.1:1", "-t", "127.0.0.1:2", "-C", "redis_nothing"); code != 1 ||
		!strings.Contains(errOut, `unknown command "redis_nothing"`) {
		t.Errorf("unknown -C: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runRmtd(t, dir, "-f", "127.0.0.1:1", "-t", "127.0.0.1:2", "-m", "100"); code != 1 ||
		!strings.Contains(errOut, "-m: common.mbuf_size") {
		t.Errorf("-m 100: exit %d, %q", code, errOut)
	}
}

// TestCLIJobs runs redis_testinsert, a migration as a daemon (-d, pid file, log file), redis_check
// and SHUTDOWN through the binary, as an operator would.
func TestCLIJobs(t *testing.T) {
	src := redistest.StartRedis(t)
	dst := redistest.StartRedis(t)
	dir := t.TempDir()
	port := redistest.FreePort(t)
	admin := fmt.Sprintf("127.0.0.1:%d", port)
	writeConfig(t, dir, fmt.Sprintf("source:\n  type: single\n  servers: [%s]\ntarget:\n  type: single\n  servers: [%s]\n"+
		"common:\n  listen: %s\n  dir: %s\n", src.Addr, dst.Addr, admin, filepath.Join(dir, "data")))

	code, out, errOut := runRmtd(t, dir, "-c", "rmt.yaml", "-C", "redis_testinsert string|hash|zset 600")
	if code != 0 || !strings.Contains(out, "Insert total keys : 600") || !strings.Contains(out, "Correct inserted keys: 600") {
		t.Fatalf("redis_testinsert: exit %d\n%s%s", code, out, errOut)
	}

	start := time.Now()
	code, out, errOut = runRmtd(t, dir, "-c", "rmt.yaml", "-d", "-p", "rmtd.pid", "-o", "rmtd.log")
	if code != 0 || out != "" {
		t.Fatalf("-d: exit %d, %q %q", code, out, errOut)
	}
	var pid int
	redistest.WaitFor(t, 10*time.Second, func() error {
		b, err := os.ReadFile(filepath.Join(dir, "rmtd.pid"))
		if err != nil {
			return err
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err
	})
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	r := &Rmtd{Admin: admin}
	waitPhase(t, r, "oplog", 60*time.Second)
	t.Logf("daemon migrating after %v", time.Since(start))
	if n := src.Do(t, "SET", "after-rdb", "x"); n != "OK" {
		t.Fatalf("SET: %v", n)
	}
	waitCaughtUp(t, r, src, 30*time.Second)

	code, out, _ = runRmtd(t, dir, "-c", "rmt.yaml", "-C", "redis_check 300")
	if code != 0 || !strings.Contains(out, "Checked keys: 300") || !strings.Contains(out, "All keys checked OK!") {
		t.Fatalf("redis_check on equal servers: exit %d\n%s", code, out)
	}

	// One key changed on the target only: the check says so and exits 1.
	keys := dst.Do(t, "KEYS", "*string*").([]interface{})
	for _, k := range keys {
		dst.Do(t, "SET", k, "changed")
	}
	code, out, _ = runRmtd(t, dir, "-c", "rmt.yaml", "-C", "redis_check 1000")
	if code != 1 || strings.Contains(out, "All keys checked OK!") || strings.Contains(out, "Inconsistent value keys: 0\n") {
		t.Fatalf("redis_check after changing the target: exit %d\n%s", code, out)
	}

	// SHUTDOWN stops the daemon, which removes its pid file.
	code, out, _ = runRedisCLI(t, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "shutdown")
	if code != 0 {
		t.Fatalf("redis-cli shutdown: exit %d %q", code, out)
	}
	redistest.WaitFor(t, 15*time.Second, func() error {
		if processAlive(pid) {
			return fmt.Errorf("rmtd (pid %d) still running", pid)
		}
		if _, err := os.Stat(filepath.Join(dir, "rmtd.pid")); err == nil {
			return fmt.Errorf("pid file still there")
		}
		return nil
	})
	logText, err := os.ReadFile(filepath.Join(dir, "rmtd.log"))
	if err != nil || !strings.Contains(string(logText), "RDB loaded") {
		t.Errorf("log file: %v\n%s", err, logText)
	}
}

// processAlive: the process exists and is not a zombie waiting for a parent that may never reap
// it (the daemon is reparented when -d's first process exits).
func processAlive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(rest, "Z")
}

func runRedisCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command("redis-cli", args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), stdout.String(), stderr.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}
