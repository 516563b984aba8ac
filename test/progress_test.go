package test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
)

// TestSnapshotProgress: while a snapshot loads into a slow target (a proxy at 2 MB/s), INFO's
// rdb_percent grows from below 100 to 100 and eta_s is a number of seconds, then 0 once
// loaded; the log says the same every few seconds (percent, keys, MB/s, ETA). With a disk-based
// transfer the percent is of the RDB's bytes; with a diskless one (no size announced) of the
// keys the master held when the load began.
func TestSnapshotProgress(t *testing.T) {
	for _, diskless := range []string{"no", "yes"} {
		t.Run("diskless_"+diskless, func(t *testing.T) {
			src := redistest.StartRedis(t, redistest.WithArgs("enable-debug-command yes", "repl-diskless-sync "+diskless))
			src.Do(t, "DEBUG", "POPULATE", "60000", "key", "400")
			dst := redistest.StartRedis(t)
			proxy := redistest.StartProxy(t, dst.Addr)
			proxy.SetRate(2 << 20)
			cfg := singleConfig(t, src, dst)
			cfg.Target.Servers = []string{proxy.Addr}
			r := StartRmtd(t, cfg)

			var seen []float64
			etaSeen := false
			redistest.WaitFor(t, 90*time.Second, func() error {
				line := parseNodeLine(r.Info(t)["source0"])
				pct, err := strconv.ParseFloat(line["rdb_percent"], 64)
				if err != nil {
					t.Fatalf("rdb_percent %q: %v", line["rdb_percent"], err)
				}
				eta := atoi(t, line["eta_s"])
				if line["state"] == "rdb" && pct > 0 && pct < 100 {
					seen = append(seen, pct)
					if eta < 0 {
						t.Errorf("eta_s %d at %.1f%%", eta, pct)
					}
					etaSeen = true
				}
				if line["state"] != "oplog" {
					return fmt.Errorf("source0: %s", r.Info(t)["source0"])
				}
				if pct != 100 || eta != 0 {
					t.Errorf("loaded, yet rdb_percent=%v eta_s=%d", pct, eta)
				}
				return nil
			})
			t.Logf("rdb_percent seen while loading: %v", seen)
			if len(seen) < 3 || !etaSeen {
				t.Fatalf("the load was seen at %v: want three figures between 0 and 100", seen)
			}
			for i := 1; i < len(seen); i++ {
				if seen[i] < seen[i-1] {
					t.Errorf("rdb_percent went back: %v", seen)
				}
			}
			var lines int
			for _, l := range strings.Split(r.LogBuf.String(), "\n") {
				if strings.Contains(l, "loading the snapshot") {
					lines++
					for _, f := range []string{`"percent": `, `"keys": `, `"mb_per_s": `, `"eta": `} {
						if !strings.Contains(l, f) {
							t.Errorf("progress line without %s: %s", f, l)
						}
					}
				}
			}
			if lines == 0 {
				t.Errorf("no progress line in the log")
			}
			compareWithSource(t, src, dst)
		})
	}
}
