package test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
)

// TestFilter: with common.filter, only keys matching the glob reach the target, from the RDB
// and from the stream, and what was left out is counted in INFO.
func TestFilter(t *testing.T) {
	src := redistest.StartRedis(t)
	dst := redistest.StartRedis(t)
	for i := 0; i < 200; i++ {
		n := strconv.Itoa(i)
		src.Do(t, "SET", "keep:"+n, n)
		src.Do(t, "SET", "drop:"+n, n)
		src.Do(t, "HSET", "keep:h"+n, "f", n)
	}
	cfg := singleConfig(t, src, dst)
	cfg.Common.Filter = "keep:*"
	r := StartRmtd(t, cfg)
	waitPhase(t, r, "oplog", 30*time.Second)
	for i := 0; i < 100; i++ {
		n := strconv.Itoa(i)
		src.Do(t, "INCR", "keep:"+n)
		src.Do(t, "INCR", "drop:"+n)
		src.Do(t, "DEL", "keep:h"+n)
		src.Do(t, "MSET", "keep:m"+n, n, "drop:m"+n, n) // one key matches: applied whole
	}
	waitCaughtUp(t, r, src, 30*time.Second)

	want := src.Dump(t)
	for _, keys := range want.DBs {
		for k := range keys {
			if !strings.HasPrefix(k, "keep:") && !strings.HasPrefix(k, "drop:m") {
				delete(keys, k)
			}
		}
	}
	got := withoutCheckpoints(dst.Dump(t))
	if diffs, n := redistest.DiffCount(want, got, redistest.TTLTolerance); n > 0 {
		t.Fatalf("target differs from the filtered source in %d places:\n%s", n, strings.Join(diffs, "\n"))
	}
	if want.Keys() != 200+100+100+100 { // keep:N, keep:hN left, keep:mN, drop:mN
		t.Fatalf("filtered source has %d keys", want.Keys())
	}
	if v := dst.DoString(t, "GET", "drop:m5"); v != "5" {
		t.Errorf("MSET with one matching key: drop:m5 = %q on the target, want it applied whole", v)
	}
	m := r.Info(t)
	if m["skipped_filtered"] != "300" { // 200 RDB keys, 100 INCRs
		t.Errorf("skipped_filtered = %s, want 300", m["skipped_filtered"])
	}
}
