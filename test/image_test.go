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

// dockerAvailable reports whether a Docker daemon answers; the image test needs one.
func dockerAvailable() error {
	if _, err := exec.LookPath("docker"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info").CombinedOutput(); err != nil {
		return fmt.Errorf("docker info: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func docker(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestImage builds the container image (make image) and migrates one Redis into another with
// it, configured by environment variables alone, as `docker run -e ...` does. It needs a Docker
// daemon and skips, saying so, where there is none (.ci/run starts one where it can).
func TestImage(t *testing.T) {
	if err := dockerAvailable(); err != nil {
		t.Skipf("no Docker daemon here, the image is not tested: %v", err)
	}
	image := fmt.Sprintf("rmtd-test:%d", os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "make", "-C", "..", "image", "IMAGE="+image)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", image).Run() })
	if user := docker(t, time.Minute, "inspect", "-f", "{{.Config.User}}", image); user != "65532:65532" {
		t.Errorf("the image runs as %q, want the non-root 65532:65532", user)
	}

	src, dst := redistest.StartRedis(t), redistest.StartRedis(t)
	for i := range 1000 {
		src.Do(t, "HSET", fmt.Sprintf("h%d", i), "f", i)
	}
	port := redistest.FreePort(t)
	admin := fmt.Sprintf("127.0.0.1:%d", port)
	id := docker(t, time.Minute, "run", "-d", "--network", "host",
		"-e", "RMT_SOURCE_SERVERS="+src.Addr, "-e", "RMT_TARGET_SERVERS="+dst.Addr,
		"-e", "RMT_COMMON_LISTEN="+admin, "-e", "RMT_COMMON_METRICS_LISTEN=", image)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", id).CombinedOutput()
			t.Logf("container log:\n%s", out)
		}
		_ = exec.Command("docker", "rm", "-f", "-v", id).Run()
	})
	r := &Rmtd{Admin: admin}
	waitPhase(t, r, "oplog", 2*time.Minute)
	src.Do(t, "LPUSH", "after", "x")
	waitCaughtUp(t, r, src, time.Minute)
	compareDumps(t, src.Dump(t), withoutCheckpoints(dst.Dump(t)), 1001)
}
