package test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
)

// startRmtdCmd runs the rmtd binary in dir with args and the extra environment env, in the
// background until the end of the test; its output is shown if the test fails.
func startRmtdCmd(t *testing.T, dir string, env []string, args ...string) *rmtdProcess {
	t.Helper()
	cmd := exec.Command(rmtdBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &rmtdProcess{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("rmtd output:\n%s", out.String())
		}
	})
	return p
}

// TestEnvOnlyStart runs rmtd with no config file and no flag, as a container started with -e
// flags does: the job comes from RMT_* variables, and one Redis is migrated into another.
func TestEnvOnlyStart(t *testing.T) {
	src, dst := redistest.StartRedis(t), redistest.StartRedis(t)
	for i := range 500 {
		src.Do(t, "SET", fmt.Sprintf("k%d", i), i)
	}
	src.Do(t, "RPUSH", "list", "a", "b", "c")
	port := redistest.FreePort(t)
	admin := fmt.Sprintf("127.0.0.1:%d", port)
	dir := t.TempDir()
	startRmtdCmd(t, dir, []string{
		"RMT_SOURCE_TYPE=single",
		"RMT_SOURCE_SERVERS=" + src.Addr,
		"RMT_TARGET_SERVERS=" + dst.Addr,
		"RMT_COMMON_LISTEN=" + admin,
		"RMT_COMMON_DIR=" + dir + "/data",
	})
	r := &Rmtd{Admin: admin}
	waitPhase(t, r, "oplog", 60*time.Second)
	src.Do(t, "INCR", "after-start")
	waitCaughtUp(t, r, src, 30*time.Second)
	compareDumps(t, src.Dump(t), withoutCheckpoints(dst.Dump(t)), 502)

	// A bad variable is refused with its name, and rmtd exits 1.
	code, _, errOut := runRmtdEnv(t, t.TempDir(), []string{"RMT_SOURCE_SERVERS=" + src.Addr,
		"RMT_TARGET_SERVERS=" + dst.Addr, "RMT_COMMON_THREADS=many"})
	if code != 1 || !strings.Contains(errOut, `RMT_COMMON_THREADS: common.threads: "many" is not an integer`) {
		t.Fatalf("bad variable: exit %d, %q", code, errOut)
	}
}

// runRmtdEnv runs the rmtd binary with the extra environment env to completion.
func runRmtdEnv(t *testing.T, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rmtdBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}
