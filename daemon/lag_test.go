package daemon

import (
	"testing"
	"time"
)

func TestLagClock(t *testing.T) {
	var c lagClock
	t0 := time.UnixMilli(1_000_000)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	if _, changed := c.sample(at(0), 100, 100); changed || c.lagMs(at(0), false, 0) != 0 {
		t.Fatal("caught up: no lag")
	}
	c.sample(at(100), 200, 100) // commands wait from 100 ms
	if got := c.lagMs(at(600), true, 0); got != 500 {
		t.Fatalf("lag %d, want 500", got)
	}
	if got := c.lagMs(at(600), false, 0); got != 0 {
		t.Fatalf("a reader that sees no command waiting gets lag %d", got)
	}
	if got := c.lagMs(at(600), true, 2*time.Second); got != 2000 {
		t.Fatalf("the link down longer than the wait: lag %d, want 2000", got)
	}
	c.sample(at(5000), 300, 150) // applied moved: progress
	if c.stalled(at(14000)) {
		t.Fatal("stalled 9 s after progress")
	}
	if stalled, changed := c.sample(at(15100), 300, 150); !stalled || !changed {
		t.Fatalf("no progress for 10.1 s: stalled %v, changed %v", stalled, changed)
	}
	if _, changed := c.sample(at(15200), 300, 150); changed {
		t.Fatal("a stall is reported once")
	}
	if stalled, changed := c.sample(at(15300), 300, 300); stalled || !changed {
		t.Fatal("caught up: no longer stalled")
	}
	if c.lagMs(at(15300), false, 0) != 0 {
		t.Fatal("caught up: lag 0")
	}
}
