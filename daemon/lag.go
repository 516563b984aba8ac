package daemon

import (
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

const (
	// lagSampleEvery is how often a pipeline samples where its node stands for the lag clock.
	lagSampleEvery = 100 * time.Millisecond
	// stallAfter is how long commands may wait with none applied before the node is stalled.
	stallAfter = 10 * time.Second
)

// lagClock measures, where commands are applied, how far behind a node is: the pipeline
// samples the received and applied offsets every lagSampleEvery (sample), and any number of
// readers compute the lag from what it stored (lagMs, stalled), changing nothing.
type lagClock struct {
	behindSince atomic.Int64 // unix ms since applied < received; 0 when caught up
	lastApplied atomic.Int64
	progressAt  atomic.Int64 // unix ms of the last sample where applied moved or caught up
	stalledLog  atomic.Bool  // the stall was logged
}

// sample records one observation of the node at now; it reports whether the node became
// stalled (true) or stopped being so (false), and whether that changed.
func (c *lagClock) sample(now time.Time, received, applied int64) (stalled, changed bool) {
	ms := now.UnixMilli()
	if c.lastApplied.Swap(applied) != applied || applied >= received || c.progressAt.Load() == 0 {
		c.progressAt.Store(ms)
	}
	if applied < received {
		c.behindSince.CompareAndSwap(0, ms)
	} else {
		c.behindSince.Store(0)
	}
	stalled = c.stalled(now)
	return stalled, c.stalledLog.Swap(stalled) != stalled
}

// lagMs is how long the node has been behind at now: since commands began to wait unapplied
// (while behind: the reader's own look at the offsets, fresher than the last sample), or since
// its link went down (downFor), whichever is longer; 0 when it is neither.
func (c *lagClock) lagMs(now time.Time, behind bool, downFor time.Duration) int64 {
	lag := downFor.Milliseconds()
	if since := c.behindSince.Load(); since != 0 && behind {
		lag = max(lag, now.UnixMilli()-since)
	}
	return max(lag, 0)
}

// stalled reports whether commands wait and none has been applied for stallAfter.
func (c *lagClock) stalled(now time.Time) bool {
	return c.behindSince.Load() != 0 && now.UnixMilli()-c.progressAt.Load() >= stallAfter.Milliseconds()
}

// sampleLag feeds the node's lag clock, and logs a stream that stalls or moves again.
func (p *pipeline) sampleLag(now time.Time) {
	var received, applied int64
	if phase(p.phase.Load()) == phaseOplog {
		received, applied = p.received(), p.applied()
	}
	stalled, changed := p.lag.sample(now, received, applied)
	if !changed {
		return
	}
	st := p.node.Stats()
	fields := []zap.Field{zap.Int64("received", received), zap.Int64("applied", applied),
		zap.Int64("lag_bytes", received-applied), zap.Int64("lag_ms", p.lag.lagMs(now, received > applied, st.Link.DownFor(now))),
		zap.Int64("last_io_ms", st.Link.LastIOAge(now).Milliseconds())}
	if stalled {
		p.log.Error("stream stalled: commands wait and none was applied for 10 s", fields...)
	} else {
		p.log.Info("stream moving again", fields...)
	}
}
