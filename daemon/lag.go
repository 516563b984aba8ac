package daemon

import (
	"sync/atomic"
	"time"
)

// lagSampleEvery is how often a pipeline samples where its node stands for the lag clock.
const lagSampleEvery = 100 * time.Millisecond

// lagClock measures, where commands are applied, how long a node has been behind: the pipeline
// samples the received and applied offsets every lagSampleEvery (sampleLag), and any number of
// readers compute the lag from what it stored, changing nothing.
type lagClock struct {
	behindSince atomic.Int64 // unix ms since applied < received; 0 when caught up
}

// sample records one observation of the node at now.
func (c *lagClock) sample(now time.Time, received, applied int64) {
	if applied < received {
		c.behindSince.CompareAndSwap(0, now.UnixMilli())
		return
	}
	c.behindSince.Store(0)
}

// lagMs is how long the node has been behind at now, 0 when it is not.
func (c *lagClock) lagMs(now time.Time) int64 {
	since := c.behindSince.Load()
	if since == 0 {
		return 0
	}
	return max(now.UnixMilli()-since, 0)
}

// sampleLag feeds the node's lag clock.
func (p *pipeline) sampleLag(now time.Time) {
	if phase(p.phase.Load()) != phaseOplog {
		p.lag.sample(now, 0, 0)
		return
	}
	p.lag.sample(now, p.received(), p.applied())
}
