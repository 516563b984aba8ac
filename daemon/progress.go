package daemon

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	"github.com/mediocregopher/radix/v4"
	"go.uber.org/zap"

	"github.com/rmt-project/rmt/internal/redisctl"
	"github.com/rmt-project/rmt/source"
	"github.com/rmt-project/rmt/target"
)

// progressLogEvery is how often a node that loads a snapshot logs how far it is.
const progressLogEvery = 5 * time.Second

// loadCounters are what a snapshot load counts for its progress, besides the decoded bytes.
type loadCounters struct {
	keys     atomic.Int64 // keys of the snapshot decoded, kept or not
	expected atomic.Int64 // keys the source held when the load began (INFO keyspace); 0: unknown
}

// loadProgress is where a node's snapshot load stands.
type loadProgress struct {
	Percent float64 // -1 while unknown (a diskless transfer from a source whose keys are unknown)
	EtaS    int64   // seconds left at the load's average rate; -1 while unknown
	Keys    int64   // keys decoded
	Bytes   int64   // snapshot bytes decoded
}

// inFlight is how much of what a writer sent has no reply yet, in bytes on the wire.
type inFlight struct{ sent, pending int64 }

func writerInFlight(ts *target.Stats) inFlight {
	var f inFlight
	if ts != nil {
		for _, c := range ts.Conns {
			f.sent += int64(c.SentBytes)
			f.pending += c.InFlightBytes
		}
	}
	return f
}

// answered is the share of what was sent that the target has answered (1 before anything).
func (f inFlight) answered() float64 {
	if f.sent <= 0 || f.pending <= 0 {
		return 1
	}
	return float64(max(f.sent-f.pending, 0)) / float64(f.sent)
}

// progress says how far the node's snapshot load is at now: what was decoded, less the share
// of it the target has not answered yet (fl; the decoder may run far ahead of a slow target).
// linkTotal is the RDB size the master announced (-1 for a diskless transfer or no link);
// scan, a SCAN pass's own figures.
func (p *pipeline) progress(now time.Time, ph phase, linkTotal int64, scan *source.ScanStats, fl inFlight) loadProgress {
	share := fl.answered()
	keys := p.loadCount.keys.Load()
	lp := loadProgress{Percent: -1, EtaS: -1, Keys: keys, Bytes: int64(float64(p.rdbDecoded.Load()) * share)}
	switch ph {
	case phaseOplog, phaseDone:
		lp.Percent, lp.EtaS = 100, 0
		return lp
	case phaseRDBLoading:
	default:
		return lp
	}
	frac := -1.0
	total := linkTotal
	if total <= 0 {
		total = p.rdbSize.Load()
	}
	switch {
	case scan != nil:
		frac = scan.Progress() / 100
	case total > 0:
		frac = float64(lp.Bytes) / float64(total)
	case p.loadCount.expected.Load() > 0:
		// The master's key count when the load began: a guide, which writes since may pass.
		frac = float64(keys) * share / float64(p.loadCount.expected.Load())
	}
	if frac < 0 || math.IsNaN(frac) {
		return lp
	}
	frac = min(frac, 0.999) // 100 once loaded: every reply back
	lp.Percent = math.Round(frac*1000) / 10
	if elapsed := now.UnixMilli() - p.loadStarted.Load(); frac > 0 && elapsed > 0 {
		lp.EtaS = int64(math.Ceil(float64(elapsed) * (1 - frac) / frac / 1000))
	}
	return lp
}

// expectKeys asks the node's master, in the background, how many keys it holds, for the
// progress of a snapshot whose size the transfer does not say (diskless). Nothing depends on
// the answer; a source that refuses INFO leaves the progress unknown.
func (p *pipeline) expectKeys(ctx context.Context) {
	p.loadCount.expected.Store(0)
	ns := p.node.Stats()
	if !ns.Live || ns.Scan != nil || ns.Link.RDBTotal > 0 || p.d.sourceDialer == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		c, err := p.d.sourceDialer.Dial(ctx, "tcp", ns.Addr)
		if err != nil {
			return
		}
		defer c.Close()
		var info string
		if err := c.Do(ctx, radix.Cmd(&info, "INFO", "keyspace")); err != nil {
			return
		}
		dbs, err := redisctl.ParseKeyspace(info)
		if err != nil {
			return
		}
		var n int64
		for _, k := range dbs {
			n += k
		}
		p.loadCount.expected.Store(n)
	}()
}

// logProgress logs, every progressLogEvery until stop is closed, how far the load is: percent,
// keys, MB/s over the last interval, and the time left.
func (p *pipeline) logProgress(stop <-chan struct{}) {
	if p.d.opts.QuietProgress {
		return
	}
	tick := time.NewTicker(progressLogEvery)
	defer tick.Stop()
	last, lastAt := p.rdbDecoded.Load(), time.Now()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			ns := p.node.Stats()
			var fl inFlight
			if w := p.currentWriter(); w != nil {
				st := w.Stats()
				fl = writerInFlight(&st)
			}
			lp := p.progress(now, phase(p.phase.Load()), ns.Link.RDBTotal, ns.Scan, fl)
			rate := float64(lp.Bytes-last) / now.Sub(lastAt).Seconds() / (1 << 20)
			last, lastAt = lp.Bytes, now
			fields := []zap.Field{zap.Int64("keys", lp.Keys), zap.Float64("mb_per_s", math.Round(rate*10)/10)}
			if lp.Percent >= 0 {
				fields = append(fields, zap.Float64("percent", lp.Percent))
			} else {
				fields = append(fields, zap.String("percent", "unknown"))
			}
			if lp.EtaS >= 0 {
				fields = append(fields, zap.Duration("eta", time.Duration(lp.EtaS)*time.Second))
			}
			p.log.Info("loading the snapshot", fields...)
		}
	}
}
