package source

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
)

// TestLinkRedisHealth: while the master only sends PINGs, the time of the last byte moves on;
// Stats changes nothing however often it is read; the master killed (SIGKILL), the link says
// down within 5 s, and for longer and longer.
func TestLinkRedisHealth(t *testing.T) {
	master := startRedis(t, 0, "", "--repl-ping-replica-period", "1")
	m := master.client(t)
	l := newRedisLink(t, LinkOptions{Addr: master.addr})
	if st := l.Stats(); st.MasterLinkUp || st.DownSinceUnixMs == 0 || st.DownFor(time.Now()) < 0 {
		t.Fatalf("before the first sync: %+v", st)
	}
	waitEvent[FullSync](t, l, 20*time.Second)
	m.must(t, "SET", "k", "1")
	waitCaughtUp(t, l, m)
	st := l.Stats()
	if !st.MasterLinkUp || st.DownSinceUnixMs != 0 || st.DownFor(time.Now()) != 0 || st.LastIOUnixMs == 0 {
		t.Fatalf("streaming: %+v", st)
	}

	// No writes: only the master's PINGs (every second here) arrive, and count.
	first := st
	redistest.WaitFor(t, 10*time.Second, func() error {
		s := l.Stats()
		if s.LastIOUnixMs < first.LastIOUnixMs+1500 || s.ReceivedOffset <= first.ReceivedOffset {
			return fmt.Errorf("last I/O %d ms after %d, offset %d after %d", s.LastIOUnixMs-first.LastIOUnixMs,
				first.LastIOUnixMs, s.ReceivedOffset, first.ReceivedOffset)
		}
		return nil
	})
	if age := l.Stats().LastIOAge(time.Now()); age < 0 || age > 5*time.Second {
		t.Fatalf("last I/O age %v while PINGs come every second", age)
	}

	// Reading Stats from many goroutines at once (the race detector watches) changes nothing.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 500 {
				_ = l.Stats()
			}
		})
	}
	wg.Wait()

	master.kill() // SIGKILL
	var down LinkStats
	redistest.WaitFor(t, 5*time.Second, func() error {
		if down = l.Stats(); down.MasterLinkUp || down.DownSinceUnixMs == 0 {
			return fmt.Errorf("stats %+v", down)
		}
		return nil
	})
	d1 := down.DownFor(time.Now())
	redistest.WaitFor(t, 5*time.Second, func() error {
		if d2 := l.Stats().DownFor(time.Now()); d2 <= d1+100*time.Millisecond {
			return fmt.Errorf("down for %v, then %v", d1, d2)
		}
		return nil
	})
	if st := l.Stats(); st.DownSinceUnixMs != down.DownSinceUnixMs || st.LastError == "" {
		t.Fatalf("the link's down time moved while it stayed down: %+v, then %+v", down, st)
	}
}

// TestStatsNoSideEffects: Stats of a link that does nothing is the same value every time, and a
// copy: changing it changes nothing in the link.
func TestStatsNoSideEffects(t *testing.T) {
	l := NewLink(LinkOptions{Addr: "127.0.0.1:1", Dir: t.TempDir()})
	a := l.Stats()
	a.LastError, a.Resyncs = "changed", 99
	if b, c := l.Stats(), l.Stats(); b != c || b.LastError != "" || b.Resyncs != 0 {
		t.Fatalf("stats %+v then %+v", b, c)
	}
	if _, err := os.Stat(l.opts.Dir + "/oplog"); !os.IsNotExist(err) {
		t.Fatalf("Stats opened the spool: %v", err)
	}
}
