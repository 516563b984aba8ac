package test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/daemon"
	"github.com/rmt-project/rmt/internal/redistest"
)

// Rmtd is a daemon running in the test's process, with signals off.
type Rmtd struct {
	D      *daemon.Daemon
	Admin  string // admin port address
	Pass   string // common.requirepass: Info, waitPhase and waitCaughtUp send AUTH with it
	LogBuf *syncBuffer
	stop   context.CancelFunc
	done   chan error
}

// singleConfig is a single-to-single job with the admin port on a free port and dir in TempDir.
func singleConfig(t testing.TB, src, dst *redistest.Redis) *conf.Config {
	cfg := conf.Default()
	cfg.File = "test"
	cfg.Source.Servers = []string{src.Addr}
	cfg.Target.Servers = []string{dst.Addr}
	cfg.Common.Listen = "127.0.0.1:0"
	cfg.Common.Dir = filepath.Join(t.TempDir(), "data")
	return cfg
}

// StartRmtd runs a daemon for cfg until the end of the test, logging into a buffer that is
// printed when the test fails.
func StartRmtd(t testing.TB, cfg *conf.Config) *Rmtd {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	buf := &syncBuffer{}
	log := zap.New(zapCore(buf))
	d, err := daemon.New(cfg, daemon.Options{Logger: log, ConfigFile: cfg.File, Version: "test"})
	if err != nil {
		t.Fatalf("daemon.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Rmtd{D: d, LogBuf: buf, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Run(ctx) }()
	t.Cleanup(func() {
		r.Stop(t)
		if t.Failed() {
			t.Logf("rmtd log:\n%s", buf.String())
		}
	})
	redistest.WaitFor(t, 10*time.Second, func() error {
		select {
		case err := <-r.done:
			r.done <- err
			return nil
		default:
		}
		if r.Admin = d.AdminAddr(); r.Admin == "" {
			return fmt.Errorf("admin port not listening yet")
		}
		return nil
	})
	return r
}

// Stop cancels the daemon and waits for Run to return.
func (r *Rmtd) Stop(t testing.TB) {
	r.stop()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("rmtd Run: %v", err)
		}
		r.done <- nil
	case <-time.After(30 * time.Second):
		t.Errorf("rmtd did not stop within 30 s")
	}
}

// Info reads INFO from the admin port: key → value, and for sourceN/targetN lines the inner
// key=value pairs as "source0.applied_offset".
func (r *Rmtd) Info(t testing.TB) map[string]string {
	t.Helper()
	m, err := r.info()
	if err != nil {
		t.Fatalf("INFO: %v", err)
	}
	return m
}

// info is INFO, parsed as Info does, with AUTH first when r.Pass is set.
func (r *Rmtd) info() (map[string]string, error) { return adminInfoAuth(r.Admin, r.Pass) }

func adminInfo(addr string) (map[string]string, error) { return adminInfoAuth(addr, "") }

// adminInfoAuth is INFO on the admin port at addr, after AUTH pass unless pass is "".
func adminInfoAuth(addr, pass string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := (radix.Dialer{AuthPass: pass}).Dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var s string
	if err := c.Do(ctx, radix.Cmd(&s, "INFO")); err != nil {
		return nil, err
	}
	return parseAdminInfo(s), nil
}

// adminDo runs one command on the admin port at addr and returns its reply.
func adminDo(t testing.TB, addr string, cmd string, args ...string) any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := radix.Dial(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var v any
	if err := c.Do(ctx, radix.Cmd(&v, cmd, args...)); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return v
}

// parseAdminInfo is parseInfo plus the inner key=value pairs of the sourceN/targetN lines,
// as "source0.applied_offset".
func parseAdminInfo(s string) map[string]string {
	m := redistest.ParseInfo(s)
	for k, v := range m {
		if !strings.HasPrefix(k, "source") && !strings.HasPrefix(k, "target") {
			continue
		}
		for _, kv := range strings.Split(v, ",") {
			if ik, iv, ok := strings.Cut(kv, "="); ok {
				m[k+"."+ik] = iv
			}
		}
	}
	return m
}

// waitPhase waits until INFO's progress phase is want.
func waitPhase(t testing.TB, r *Rmtd, want string, timeout time.Duration) {
	t.Helper()
	redistest.WaitFor(t, timeout, func() error {
		m, err := r.info()
		if err != nil {
			return err
		}
		if m["phase"] != want {
			return fmt.Errorf("phase %q, want %q (source0: %s)", m["phase"], want, m["source0"])
		}
		return nil
	})
}

// waitCaughtUp waits until rmtd has applied exactly what the master has written.
func waitCaughtUp(t testing.TB, r *Rmtd, src *redistest.Redis, timeout time.Duration) {
	t.Helper()
	redistest.WaitFor(t, timeout, func() error {
		repl := src.Info(t, "replication")
		master := repl["master_repl_offset"]
		m, err := r.info()
		if err != nil {
			return err
		}
		if m["source0.replid"] != repl["master_replid"] || m["source0.applied_offset"] != master ||
			m["source0.lag_bytes"] != "0" || m["phase"] != "oplog" {
			return fmt.Errorf("master %s at %s, rmtd %s applied %s, lag %s bytes, phase %s", repl["master_replid"], master,
				m["source0.replid"], m["source0.applied_offset"], m["source0.lag_bytes"], m["phase"])
		}
		return nil
	})
}

type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Sync() error { return nil }

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// rmtdBinary builds cmd/rmtd once per test run.
func rmtdBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rmtd-test-bin")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "rmtd")
		out, err := exec.Command("go", "build", "-o", buildPath, "../cmd/rmtd").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// runRmtd runs the rmtd binary to completion and returns its exit code and output.
func runRmtd(t testing.TB, dir string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(rmtdBinary(t), args...)
	cmd.Dir = dir
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, stdout.String(), stderr.String()
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		t.Fatalf("rmtd %s did not finish", strings.Join(args, " "))
	}
	return -1, "", ""
}

func atoi(t testing.TB, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return n
}

// zapCore logs everything, unsampled, as console lines into w.
func zapCore(w zapcore.WriteSyncer) zapcore.Core {
	enc := zap.NewDevelopmentEncoderConfig()
	return zapcore.NewCore(zapcore.NewConsoleEncoder(enc), w, zapcore.DebugLevel)
}
