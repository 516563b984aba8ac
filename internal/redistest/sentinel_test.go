package redistest

import (
	"testing"
	"time"
)

// TestSentinelGroupFailover: a group of a master, one replica and 3 Sentinels fails over when
// its master is killed, and the Sentinels' logs say when.
func TestSentinelGroupFailover(t *testing.T) {
	g := StartSentinelGroup(t, 1, 3, SentinelOptions{})
	if got := g.CurrentAddr(t); got != g.Master.Addr {
		t.Fatalf("master %s, want %s", got, g.Master.Addr)
	}
	g.Master.Do(t, "SET", "k", "v")
	killed := KillMasterQuiet(t, g.Master, 10*time.Second)
	now := g.WaitFailover(t, g.Master, 30*time.Second)
	if now != g.Replicas[0] {
		t.Fatalf("new master %s, want the replica %s", now.Addr, g.Replicas[0].Addr)
	}
	// The promotion killed the harness's connections (CLIENT KILL TYPE normal): a new one.
	WaitFor(t, 5*time.Second, func() error {
		v, err := now.DoErr(t, "GET", "k")
		if err == nil && v != "v" {
			t.Fatalf("GET k on the new master: %v", v)
		}
		return err
	})
	var first time.Time
	for _, s := range g.Sentinels {
		for _, at := range s.SwitchMasterTimes(t) {
			if first.IsZero() || at.Before(first) {
				first = at
			}
		}
	}
	if first.IsZero() || first.Before(killed.Add(-time.Second)) {
		t.Fatalf("+switch-master at %v, killed at %v", first, killed)
	}
	t.Logf("+switch-master %v after the kill", first.Sub(killed))
}
