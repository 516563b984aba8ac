package source

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLinkRedisResync: each Resync drops the snapshot and the spool and gets exactly one new full
// sync from a real master (sync_full grows by one, and PSYNC asked `?`: no failed partial
// resync), no sooner than the resync backoff after the previous one, which doubles up to its
// cap; Stats counts them and keeps the reason.
func TestLinkRedisResync(t *testing.T) {
	master := startRedis(t, 0, "")
	m := master.client(t)
	m.must(t, "SET", "k", "1")
	const minDelay, maxDelay = 300 * time.Millisecond, 1200 * time.Millisecond
	l := newRedisLink(t, LinkOptions{Addr: master.addr, ResyncBackoffMin: minDelay, ResyncBackoffMax: maxDelay})
	fs := waitEvent[FullSync](t, l, 20*time.Second)
	last := l.Stats().LastFullSyncUnixMs
	syncFull := func() int {
		n, _ := strconv.Atoi(m.infoField(t, "stats", "sync_full"))
		return n
	}
	if n := syncFull(); n != 1 {
		t.Fatalf("sync_full:%d", n)
	}
	for i, delay := range []time.Duration{minDelay, 2 * minDelay, maxDelay, maxDelay} {
		m.must(t, "SET", "k", strconv.Itoa(i))
		waitCaughtUp(t, l, m)
		reason := fmt.Errorf("rdb: bad CRC at offset %d", 100+i)
		l.Resync(reason)
		if i == 1 {
			l.Resync(errors.New("a second reason before it starts")) // one full sync for both
		}
		next := waitEvent[FullSync](t, l, 20*time.Second)
		if n := syncFull(); n != i+2 {
			t.Fatalf("resync %d: sync_full:%d, want %d", i, n, i+2)
		}
		// The master was asked for it (and forked) at least the backoff after the previous one.
		now := l.Stats().LastFullSyncUnixMs
		if took := time.Duration(now-last) * time.Millisecond; took < delay {
			t.Fatalf("resync %d: full sync %v after the previous one, backoff %v", i, took, delay)
		}
		t.Logf("resync %d: full sync %v after the previous one (backoff %v)", i, time.Duration(now-last)*time.Millisecond, delay)
		last = now
		if _, err := os.Stat(fs.RDBPath); !os.IsNotExist(err) && fs.RDBPath != next.RDBPath {
			t.Fatalf("resync %d: old snapshot %s still there: %v", i, fs.RDBPath, err)
		}
		fs = next
		st := l.Stats()
		wantReason := reason.Error()
		if i == 1 {
			wantReason = "a second reason before it starts"
		}
		if st.Resyncs != int64(i+1) || st.LastResyncError != wantReason || st.FullSyncs != int64(i+2) || st.NextResyncUnixMs != 0 {
			t.Fatalf("resync %d: stats %+v", i, st)
		}
		if sp := l.Spool(); sp.Start() != next.Offset {
			t.Fatalf("resync %d: the spool starts at %d, the snapshot at %d", i, sp.Start(), next.Offset)
		}
	}
	if n := m.infoField(t, "stats", "sync_partial_err"); n != "0" {
		t.Fatalf("sync_partial_err:%s: a Resync asked for a partial resync", n)
	}
	// The stream goes on after the last one.
	m.must(t, "SET", "k", "end")
	end := waitCaughtUp(t, l, m)
	if got := spooledCommands(t, l.Spool(), fs.Offset, end); strings.Join(got, "|") != "SELECT 0|SET k end" {
		t.Fatalf("spool after the resyncs: %q", got)
	}
}
