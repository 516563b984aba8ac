package target

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"
)

// testServer is a redis-server child process on a random loopback port.
type testServer struct {
	Addr string
	cmd  *exec.Cmd
	log  *bytes.Buffer
}

// startRedis starts redis-server with --save "" --appendonly no and extra args, waits until it
// answers PING, and kills it in Cleanup (printing its log if the test failed).
func startRedis(t testing.TB, args ...string) *testServer {
	t.Helper()
	return startRedisTLS(t, nil, args...)
}

// startRedisTLS is startRedis serving TLS only when tc is set (its files are passed in args by
// the caller); the readiness check then dials with tc.
func startRedisTLS(t testing.TB, tc *tls.Config, args ...string) *testServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	var lastErr error
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		portArgs := []string{"--port", strconv.Itoa(port)}
		if tc != nil {
			portArgs = []string{"--port", "0", "--tls-port", strconv.Itoa(port)}
		}
		all := append(append(portArgs, "--bind", "127.0.0.1", "--save", "",
			"--appendonly", "no", "--dir", t.TempDir()), args...)
		s := &testServer{Addr: fmt.Sprintf("127.0.0.1:%d", port), log: new(bytes.Buffer)}
		s.cmd = exec.Command("redis-server", all...)
		s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
		dieWithParent(s.cmd)
		if err := s.cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		exited := make(chan struct{})
		go func() { s.cmd.Wait(); close(exited) }()
		lastErr = waitFor(5*time.Second, func() error {
			select {
			case <-exited:
				return fmt.Errorf("redis-server exited: %s", s.log.String())
			default:
			}
			var c net.Conn
			var err error
			if tc != nil {
				c, err = tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", s.Addr, tc)
			} else {
				c, err = net.DialTimeout("tcp", s.Addr, time.Second)
			}
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(time.Second))
			if _, err := c.Write([]byte("PING\r\n")); err != nil {
				return err
			}
			buf := make([]byte, 64)
			n, err := c.Read(buf)
			if err != nil {
				return err
			}
			if !bytes.HasPrefix(buf[:n], []byte("+PONG")) && !bytes.HasPrefix(buf[:n], []byte("-NOAUTH")) {
				return fmt.Errorf("PING answered %q", buf[:n])
			}
			return nil
		})
		if lastErr == nil {
			t.Cleanup(func() {
				s.cmd.Process.Kill()
				<-exited
				if t.Failed() {
					t.Logf("redis-server %s log:\n%s", s.Addr, s.log.String())
				}
			})
			return s
		}
		s.cmd.Process.Kill()
		<-exited
	}
	t.Fatalf("redis-server did not start: %v", lastErr)
	return nil
}

// kill stops the server at once.
func (s *testServer) kill() { s.cmd.Process.Kill() }

// waitFor polls fn until it returns nil or the timeout passes, and returns the last error.
func waitFor(timeout time.Duration, fn func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		tm := time.NewTimer(20 * time.Millisecond)
		<-tm.C
	}
}

// client opens a radix client for checking the server from the side.
func client(t testing.TB, addr string) radix.Client {
	t.Helper()
	c, err := (radix.PoolConfig{Size: 1}).New(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatalf("radix %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// do runs one command with radix into rcv and fails the test on error.
func do(t testing.TB, c radix.Client, rcv any, args ...string) {
	t.Helper()
	if err := c.Do(context.Background(), radix.Cmd(rcv, args[0], args[1:]...)); err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
}
