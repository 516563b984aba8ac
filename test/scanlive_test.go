package test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/redistest"
)

// notifyKEA turns keyspace notifications on at the source's start, as an operator of a
// managed service does in its parameters (CONFIG is refused, so rmtd cannot).
const notifyKEA = "notify-keyspace-events KEA"

// scanLiveSource is a source that refuses PSYNC, SYNC, CONFIG and COMMAND, with keyspace
// notifications on, loaded with keys of every type in dbs 0, 1 and 15.
func scanLiveSource(t *testing.T, opts ...redistest.RedisOption) *redistest.Redis {
	t.Helper()
	src := redistest.StartRedis(t, append([]redistest.RedisOption{redistest.WithArgs(append(refusedOnSource(""), notifyKEA)...)}, opts...)...)
	fill(t, src.Addr, 300)
	return src
}

// fill writes n keys of each type (one with a TTL) into dbs 0, 1 and 15 of addr.
func fill(t *testing.T, addr string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := radix.Dial(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, db := range []int{0, 1, 15} {
		p := radix.NewPipeline()
		p.Append(radix.FlatCmd(nil, "SELECT", db))
		for i := range n {
			p.Append(radix.FlatCmd(nil, "SET", fmt.Sprintf("s:%d", i), i))
			p.Append(radix.FlatCmd(nil, "HSET", fmt.Sprintf("h:%d", i), "f", i, "g", "x"))
			p.Append(radix.FlatCmd(nil, "RPUSH", fmt.Sprintf("l:%d", i), "a", i))
			p.Append(radix.FlatCmd(nil, "ZADD", fmt.Sprintf("z:%d", i), i, "m"))
			p.Append(radix.FlatCmd(nil, "SADD", fmt.Sprintf("S:%d", i), "a", i))
			p.Append(radix.FlatCmd(nil, "SET", fmt.Sprintf("ttl:%d", i), i, "PX", 3_600_000))
		}
		if err := c.Do(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
}

// TestScanLiveWriter: source.mode scan_live under a live writer (every type, TTLs, DEL,
// EXPIRE, PERSIST, dbs 0, 1 and 15) for 30 s, from a source that refuses PSYNC, SYNC, CONFIG
// and COMMAND into a target that refuses CONFIG and COMMAND: after the writer stops the target
// equals the source within 10 s, and INFO shows what the node did.
func TestScanLiveWriter(t *testing.T) {
	src := scanLiveSource(t)
	dst := redistest.StartRedis(t, redistest.WithArgs(refusedOnTarget...))
	cfg := singleConfig(t, src, dst)
	cfg.Source.Mode = conf.ModeScanLive
	cfg.Common.MetricsListen = "127.0.0.1:0"
	w := redistest.StartWriter(t, src.Addr, redistest.WriterOptions{DBs: []int{0, 1, 15}, Rate: 4000})
	r := StartRmtd(t, cfg)
	waitPhase(t, r, "oplog", 30*time.Second)
	waitWriter(t, w, 30*time.Second)
	stats := w.Stop()
	t.Logf("writer: %s", stats)
	waitDumpsEqual(t, 10*time.Second, src, dst, 5000)
	m := r.Info(t)
	t.Logf("source0: %s", m["source0"])
	for _, f := range []string{"notifications", "rereads"} {
		if atoi(t, m["source0."+f]) == 0 {
			t.Errorf("source0.%s is 0: %s", f, m["source0"])
		}
	}
	if m["source0.mode"] != conf.ModeScanLive || m["source0.scan_progress"] != "100.0" || m["source0.rescans"] != "0" {
		t.Errorf("source0: %s", m["source0"])
	}
	// /metrics says what INFO says (the writer has stopped: the figures hold still).
	fams := scrapeMetrics(t, r)
	m = r.Info(t)
	for family, field := range map[string]string{"rmtd_source_scan_notifications_total": "notifications",
		"rmtd_source_scan_rereads_total": "rereads", "rmtd_source_scan_passes_total": "scan_passes",
		"rmtd_source_scan_keys_total": "keys_scanned"} {
		got, ok := metricValue(fams, family, "node", src.Addr)
		if !ok || fmt.Sprint(int64(got)) != m["source0."+field] {
			t.Errorf("%s = %v (%v), INFO's %s = %s", family, got, ok, field, m["source0."+field])
		}
	}
}

// waitWriter lets w run for d (it must not stop on its own).
func waitWriter(t *testing.T, w *redistest.Writer, d time.Duration) {
	t.Helper()
	select {
	case <-w.Done():
		t.Fatalf("the writer stopped: %s", w.Stop())
	case <-time.After(d):
	}
}

// TestScanLiveCutNotifications: the source's connections, the notification subscription among
// them, are cut twice while the writer runs (the fault proxy): each time the changes until
// rmtd subscribes again are unseen, so it reads everything again (a new pass, which the daemon
// loads as after any full resync): the target still equals the source once the writer stops,
// and INFO counts the drops and the rescans.
func TestScanLiveCutNotifications(t *testing.T) {
	src := scanLiveSource(t)
	dst := redistest.StartRedis(t, redistest.WithArgs(refusedOnTarget...))
	proxy := redistest.StartProxy(t, src.Addr)
	cfg := singleConfig(t, src, dst)
	cfg.Source.Servers = []string{proxy.Addr}
	cfg.Source.Mode = conf.ModeScanLive
	w := redistest.StartWriter(t, src.Addr, redistest.WriterOptions{DBs: []int{0, 1, 15}, Rate: 4000})
	r := StartRmtd(t, cfg)
	waitPhase(t, r, "oplog", 30*time.Second)
	for cut := 1; cut <= 2; cut++ {
		waitWriter(t, w, 4*time.Second)
		proxy.Cut()
		redistest.WaitFor(t, 30*time.Second, func() error {
			m, err := adminInfo(r.Admin)
			if err != nil {
				return err
			}
			if atoi(t, m["source0.subscription_drops"]) < int64(cut) || atoi(t, m["source0.rescans"]) < int64(cut) ||
				m["source0.subscription"] != "up" || m["phase"] != "oplog" {
				return fmt.Errorf("after cut %d: phase %s, source0: %s", cut, m["phase"], m["source0"])
			}
			return nil
		})
	}
	waitWriter(t, w, 4*time.Second)
	t.Logf("writer: %s", w.Stop())
	waitDumpsEqual(t, 10*time.Second, src, dst, 5000)
	m := r.Info(t)
	t.Logf("source0: %s", m["source0"])
	if m["source0.scan_passes"] != "3" {
		t.Errorf("source0.scan_passes %s, want 3: %s", m["source0.scan_passes"], m["source0"])
	}
}
