package test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
)

// sourceLine is INFO's source0 line, split into its fields.
func sourceLine(t *testing.T, r *Rmtd) map[string]string {
	t.Helper()
	return parseNodeLine(r.Info(t)["source0"])
}

// TestHealthMasterKilled: with the source master dead, INFO says so within 5 s (link=down,
// link_down_ms growing) and lag_ms grows while nothing arrives, instead of "lag 0".
func TestHealthMasterKilled(t *testing.T) {
	src, dst := redistest.StartRedis(t), redistest.StartRedis(t)
	for i := range 100 {
		src.Do(t, "SET", fmt.Sprintf("k%d", i), i)
	}
	w := redistest.StartWriter(t, src.Addr, redistest.WriterOptions{Rate: 2000})
	r := StartRmtd(t, singleConfig(t, src, dst))
	waitPhase(t, r, "oplog", 60*time.Second)
	redistest.WaitFor(t, 10*time.Second, func() error { return atLeast(w.Ops(), 500) })
	if l := sourceLine(t, r); l["link"] != "up" || l["link_down_ms"] != "0" {
		t.Fatalf("a live link: %v", l)
	}
	w.Stop()
	waitCaughtUp(t, r, src, 30*time.Second)
	want := src.Dump(t)
	src.Kill()
	killed := time.Now()
	var first map[string]string
	redistest.WaitFor(t, 5*time.Second, func() error {
		first = sourceLine(t, r)
		if first["link"] != "down" || first["link_down_ms"] == "0" {
			return fmt.Errorf("%.1fs after the kill: %v", time.Since(killed).Seconds(), first)
		}
		return nil
	})
	redistest.WaitFor(t, 10*time.Second, func() error {
		l := sourceLine(t, r)
		lag, down := atoi(t, l["lag_ms"]), atoi(t, l["link_down_ms"])
		if lag <= atoi(t, first["lag_ms"])+500 || down <= atoi(t, first["link_down_ms"])+500 || lag < down {
			return fmt.Errorf("lag_ms %d and link_down_ms %d do not grow past %v", lag, down, first)
		}
		return nil
	})
	compareDumps(t, want, withoutCheckpoints(dst.Dump(t)), 10)
}

// TestHealthStalled: a target that stops answering while commands wait makes the node
// "stalled" after 10 s, with a log line; once it answers again the stream moves on and the
// target ends equal to the source.
func TestHealthStalled(t *testing.T) {
	src, dst := redistest.StartRedis(t), redistest.StartRedis(t)
	proxy := redistest.StartProxy(t, dst.Addr)
	cfg := singleConfig(t, src, dst)
	cfg.Target.Servers = []string{proxy.Addr}
	r := StartRmtd(t, cfg)
	waitPhase(t, r, "oplog", 60*time.Second)
	proxy.Pause()
	for i := range 50 {
		src.Do(t, "INCR", "counter")
		src.Do(t, "APPEND", "log", strconv.Itoa(i))
	}
	paused := time.Now()
	redistest.WaitFor(t, 20*time.Second, func() error {
		if l := sourceLine(t, r); l["state"] != "stalled" || atoi(t, l["lag_ms"]) < 10000 {
			return fmt.Errorf("%.1fs after the pause: %v", time.Since(paused).Seconds(), l)
		}
		return nil
	})
	if !strings.Contains(r.LogBuf.String(), "stream stalled") {
		t.Errorf("the stall is not logged")
	}
	proxy.Resume()
	waitCaughtUp(t, r, src, 30*time.Second)
	if l := sourceLine(t, r); l["state"] != "oplog" {
		t.Errorf("after the target came back: %v", l)
	}
	compareDumps(t, src.Dump(t), withoutCheckpoints(dst.Dump(t)), 2)
}
