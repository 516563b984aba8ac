package test

import (
	"testing"
	"time"
)

// WaitFor calls f every 50 ms until it returns nil or timeout passes; then it fails the test
// with f's last error. f runs at least once, even when timeout is zero.
func WaitFor(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	if err := waitFor(timeout, f); err != nil {
		t.Fatalf("not after %v: %v", timeout, err)
	}
}

// waitFor is WaitFor returning the last error instead of failing.
func waitFor(timeout time.Duration, f func() error) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-deadline.C:
			return err
		case <-tick.C:
		}
	}
}
