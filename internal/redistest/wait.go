package redistest

import (
	"testing"
	"time"
)

// Polling intervals of WaitFor and Poll: the first retry comes soon, for conditions that take
// a moment, the later ones every 50 ms, for conditions that take seconds (a dataset dump).
const (
	pollFirst = 10 * time.Millisecond
	pollMax   = 50 * time.Millisecond
)

// WaitFor calls f until it returns nil or timeout passes; then it fails the test with f's last
// error. f runs at least once, even when timeout is zero; retries come after 10 ms, 20 ms, 40 ms,
// then every 50 ms.
func WaitFor(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	if err := Poll(timeout, f); err != nil {
		t.Fatalf("not after %v: %v", timeout, err)
	}
}

// Poll is WaitFor returning f's last error instead of failing the test: for a goroutine other
// than the test's, or a caller that words the failure itself.
func Poll(timeout time.Duration, f func() error) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	interval := pollFirst
	tick := time.NewTimer(interval)
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
		interval = min(2*interval, pollMax)
		tick.Reset(interval)
	}
}
