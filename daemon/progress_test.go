package daemon

import (
	"testing"
	"time"

	"github.com/rmt-project/rmt/source"
)

// TestLoadProgress: a load's percent comes from its bytes when the size is known (the link's,
// else the file's), from the keys the master held when it is not (never 100 before the end),
// from a SCAN pass's own figure for a scan node; unknown (-1) otherwise; 100 and ETA 0 once
// loaded; the ETA is the time left at the average rate so far.
func TestLoadProgress(t *testing.T) {
	start := time.Unix(1_000_000, 0)
	now := start.Add(10 * time.Second)
	newP := func(decoded, size, keys, expected int64) *pipeline {
		p := &pipeline{}
		p.loadStarted.Store(start.UnixMilli())
		p.rdbDecoded.Store(decoded)
		p.rdbSize.Store(size)
		p.loadCount.keys.Store(keys)
		p.loadCount.expected.Store(expected)
		return p
	}
	for _, tc := range []struct {
		name      string
		p         *pipeline
		ph        phase
		linkTotal int64
		scan      *source.ScanStats
		fl        inFlight
		pct       float64
		eta       int64
	}{
		{"link size", newP(250, -1, 10, 0), phaseRDBLoading, 1000, nil, inFlight{}, 25, 30},
		{"file size", newP(500, 1000, 10, 0), phaseRDBLoading, -1, nil, inFlight{}, 50, 10},
		{"keys of the master", newP(500, -1, 200, 800), phaseRDBLoading, -1, nil, inFlight{}, 25, 30},
		{"more keys than the master said", newP(500, -1, 900, 800), phaseRDBLoading, -1, nil, inFlight{}, 99.9, 1},
		{"half of what was sent not answered", newP(500, 1000, 10, 0), phaseRDBLoading, -1, nil, inFlight{sent: 4 << 20, pending: 2 << 20}, 25, 30},
		{"keys of the master not answered yet", newP(500, -1, 300, 800), phaseRDBLoading, -1, nil, inFlight{sent: 300, pending: 100}, 25, 30},
		{"all decoded, not all answered", newP(1000, 1000, 10, 0), phaseRDBLoading, -1, nil, inFlight{sent: 1000, pending: 100}, 90, 2},
		{"nothing answered", newP(1000, 1000, 10, 0), phaseRDBLoading, -1, nil, inFlight{sent: 1000, pending: 1000}, 0, -1},
		{"unknown", newP(500, -1, 200, 0), phaseRDBLoading, -1, nil, inFlight{}, -1, -1},
		{"nothing yet", newP(0, 1000, 0, 0), phaseRDBLoading, -1, nil, inFlight{}, 0, -1},
		{"scan pass", newP(0, -1, 0, 0), phaseRDBLoading, -1, &source.ScanStats{PassTotal: 100, PassKeys: 20}, inFlight{}, 20, 40},
		{"waiting for a snapshot", newP(0, -1, 0, 0), phaseSync, -1, nil, inFlight{}, -1, -1},
		{"loaded", newP(500, 1000, 10, 0), phaseOplog, -1, nil, inFlight{}, 100, 0},
		{"done", newP(500, 1000, 10, 0), phaseDone, -1, nil, inFlight{}, 100, 0},
	} {
		lp := tc.p.progress(now, tc.ph, tc.linkTotal, tc.scan, tc.fl)
		if lp.Percent != tc.pct || lp.EtaS != tc.eta {
			t.Errorf("%s: %.1f%% eta %d s, want %.1f%% eta %d s", tc.name, lp.Percent, lp.EtaS, tc.pct, tc.eta)
		}
	}
}
