package redistest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// logTailLines is how much of a server's log a failed test prints.
const logTailLines = 40

// startTimeout bounds how long a server may take to become ready.
const startTimeout = 15 * time.Second

// proc is one child process: started, reaped by exactly one goroutine, killed on demand.
type proc struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{} // closed once Wait returned
	err    error         // Wait's result, valid after exited is closed
}

// startProc starts bin with args, its stdout and stderr appended to logPath. The child gets
// SIGKILL if the test binary's thread dies (Pdeathsig), so a crashed test leaves nothing behind.
func startProc(name, bin, logPath string, args ...string) (*proc, error) {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: open log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, bin, err)
	}
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.exited)
	}()
	return p, nil
}

// pid returns the child's process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// done reports whether the process has exited and been reaped.
func (p *proc) done() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// signal sends sig and waits up to timeout for the process to be reaped; SIGKILL follows if it
// is still running then. It returns once the process is gone.
func (p *proc) signal(sig syscall.Signal, timeout time.Duration) {
	if p.done() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	if sig != syscall.SIGKILL {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-p.exited:
			return
		case <-t.C:
		}
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.exited
}

// freePort asks the kernel for a free loopback port. Another process can take it before the
// server binds it, so callers retry a failed bind with a new port.
func freePort() (int, error) {
	ports, err := freePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// freePorts is freePort for n distinct ports: their listeners are all open together, so the
// kernel cannot hand out one of them twice.
func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// FreePort returns a loopback TCP port that was free a moment ago, for a listener the test
// starts itself (rmtd's admin port, say); it fails the test if the kernel has none. Another
// process may take the port meanwhile: servers the harness starts retry on a new port instead.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("%v", err)
	}
	return port
}

// errBind marks a start that failed because the port was taken; the caller retries.
var errBind = errors.New("address already in use")

// waitReady polls ready every 20 ms until it returns nil, the process exits, or timeout passes.
// ready's context is cancelled as soon as the process exits, so a probe stuck on a port that
// someone else holds does not delay the verdict. If the process exited and its log says the
// address was in use, the error wraps errBind.
func waitReady(p *proc, logPath string, timeout time.Duration, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	go func() {
		select {
		case <-p.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		last = ready(pctx)
		pcancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.exited:
			return exitedErr(p, logPath)
		case <-ctx.Done():
			if p.done() { // ctx was cancelled because the process exited
				return exitedErr(p, logPath)
			}
			return fmt.Errorf("%s not ready after %v: %w", p.name, timeout, last)
		case <-tick.C:
		}
	}
}

// exitedErr says why a process exited during its start: errBind if its log says so.
func exitedErr(p *proc, logPath string) error {
	tail := logTail(logPath, 10)
	if strings.Contains(tail, "ddress already in use") {
		return fmt.Errorf("%s: %w", p.name, errBind)
	}
	return fmt.Errorf("%s exited during start (%v); log:\n%s", p.name, p.err, tail)
}

// logTail returns the last n lines of the file at path (or why it could not be read).
func logTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(log %s: %v)", path, err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 2*n {
			lines = lines[len(lines)-n:]
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// printLogOnFailure registers a cleanup that prints the tail of a log when the test failed.
func printLogOnFailure(t testing.TB, name string, logPath func() string) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- last %d lines of %s log (%s) ---\n%s", logTailLines, name, logPath(), logTail(logPath(), logTailLines))
		}
	})
}

// NeedBinary returns the path of the program name (redis-server, redis-cli, nutcracker,
// redis-check-rdb...) or fails the test saying how to install it. The tests need these programs:
// none of them is skipped for want of one.
func NeedBinary(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is needed by this test and was not found (%v): run `make deps`, which installs redis-server, redis-cli, redis-check-rdb and nutcracker", name, err)
	}
	return path
}
