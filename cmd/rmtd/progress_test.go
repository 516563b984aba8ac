package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vbauerster/mpb/v8"

	"github.com/rmt-project/rmt/daemon/status"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitOutput waits until out holds want.
func waitOutput(t *testing.T, out *lockedBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the output never showed %q:\n%s", want, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestProgressBars: a bar per loading node shows its percent, keys, MB/s and ETA; log lines
// print while bars are drawn; a load that ends shows its keys, one that is replaced is dropped,
// and once no node loads the bars end and the log goes straight out.
func TestProgressBars(t *testing.T) {
	out := &lockedBuffer{}
	b := newProgressBars(out, mpb.WithAutoRefresh(), mpb.WithWidth(120), mpb.WithRefreshRate(5*time.Millisecond))
	now := time.Unix(1000, 0)
	snap := func(states ...status.SourceNode) *status.Snapshot { return &status.Snapshot{Sources: states} }
	loading := status.SourceNode{Addr: "127.0.0.1:7000", State: "rdb", RDBPercent: 42, RDBEtaS: 12, RDBKeysLoaded: 100, RDBLoadedBytes: 1 << 20}
	other := status.SourceNode{Addr: "127.0.0.1:7001", Name: "m2", State: "rdb", RDBPercent: -1, RDBEtaS: -1, RDBKeysLoaded: 5}
	b.update(snap(loading, other), now)
	loading.RDBPercent, loading.RDBLoadedBytes, loading.RDBKeysLoaded = 50, 3<<20, 200
	b.update(snap(loading, other), now.Add(time.Second))
	waitOutput(t, out, "source0 127.0.0.1:7000")
	waitOutput(t, out, "50.0%  200 keys  2.0 MB/s  ETA 12s")
	waitOutput(t, out, "source1 127.0.0.1:7001 (m2)")
	waitOutput(t, out, "?%  5 keys")

	if _, err := b.Log().Write([]byte("a log line above the bars\n")); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, out, "a log line above the bars")

	loading.State, loading.RDBPercent, loading.RDBEtaS, loading.RDBKeysLoaded = "oplog", 100, 0, 300
	other.State = "sync" // its snapshot replaced: no "loaded"
	b.update(snap(loading, other), now.Add(2*time.Second))
	waitOutput(t, out, "loaded, 300 keys")
	if strings.Contains(out.String(), "loaded, 5 keys") {
		t.Errorf("a replaced load shows as loaded:\n%s", out.String())
	}
	b.mu.Lock()
	ended := b.bars == nil
	b.mu.Unlock()
	if !ended {
		t.Fatal("the bars are still drawn with no node loading")
	}
	before := out.String()
	if _, err := b.Log().Write([]byte("straight out\n")); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimPrefix(out.String(), before); got != "straight out\n" {
		t.Errorf("with no bars, a log line gives %q", got)
	}

	// A new load draws bars again.
	other.State, other.RDBPercent = "rdb", 10
	b.update(snap(loading, other), now.Add(3*time.Second))
	waitOutput(t, out, "10.0%  5 keys")
	b.finish()
}
