package admin

import (
	"sync"
	"time"

	"go.uber.org/zap"
)

// eventLog logs the admin port's events that a client can repeat at will (AUTH failures,
// refused, evicted or idle connections) in aggregate, so that no client can fill the disk that
// holds the spool with log lines: the first event of a kind from a client host in an interval
// is logged at once, the others are counted and logged as one line with their count when the
// interval ends. At most eventLogKeys kinds × hosts are told apart in an interval; the rest
// are counted under the host "other".
type eventLog struct {
	log      *zap.Logger
	interval time.Duration

	mu     sync.Mutex
	counts map[eventKey]int64 // events after the first, this interval
}

type eventKey struct{ msg, host string }

const eventLogKeys = 64

func newEventLog(log *zap.Logger, interval time.Duration) *eventLog {
	return &eventLog{log: log, interval: interval, counts: map[eventKey]int64{}}
}

// add records one event of kind msg from a client host.
func (l *eventLog) add(msg, host string) {
	k := eventKey{msg, host}
	l.mu.Lock()
	n, seen := l.counts[k]
	if !seen && len(l.counts) >= eventLogKeys {
		k.host = "other"
		n, seen = l.counts[k]
	}
	if seen {
		l.counts[k] = n + 1
		l.mu.Unlock()
		return
	}
	l.counts[k] = 0
	l.mu.Unlock()
	l.log.Warn(msg, zap.String("client", host),
		zap.String("more", "counted and logged every "+l.interval.String()))
}

// flush logs the count of every kind and host with events past the first, and starts a new
// interval.
func (l *eventLog) flush() {
	l.mu.Lock()
	counts := l.counts
	l.counts = map[eventKey]int64{}
	l.mu.Unlock()
	for k, n := range counts {
		if n > 0 {
			l.log.Warn(k.msg, zap.String("client", k.host), zap.Int64("count", n),
				zap.Duration("in_last", l.interval))
		}
	}
}

// run flushes every interval until quit is closed.
func (l *eventLog) run(quit <-chan struct{}) {
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.flush()
		case <-quit:
			return
		}
	}
}
