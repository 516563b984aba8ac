package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/daemon/status"
	"github.com/rmt-project/rmt/source"
	"github.com/rmt-project/rmt/target"
)

// phase is where one source node's migration stands.
type phase int32

const (
	phaseSync       phase = iota // waiting for the source's snapshot
	phaseRDBLoading              // loading the snapshot into the target
	phaseOplog                   // replaying the stream
	phaseDone                    // a file source fully applied, or a snapshot written into a file
	phaseFailed                  // a file source that could not be applied
)

func (p phase) String() string {
	switch p {
	case phaseSync:
		return "sync"
	case phaseRDBLoading:
		return "rdb"
	case phaseOplog:
		return "oplog"
	case phaseDone:
		return "done"
	case phaseFailed:
		return "failed"
	}
	return "unknown"
}

// pipeline migrates one source node into the target, the same way for every kind of source and
// target: it loads each snapshot the node offers (one at a time; a new one replaces the last),
// then replays the node's stream in order from the snapshot's offset, reconnecting to the
// target when it goes away, and keeps the checkpoints. A finite node (a file) is done when its
// stream is applied; any node is done after its snapshot when the target takes no stream.
type pipeline struct {
	d      *Daemon
	node   source.Node
	name   string
	dir    string
	log    *zap.Logger
	filter *keyFilter // common.filter; nil keeps every key
	breaks breakCount // the stream command the target broke its connection on, in a row

	phase       atomic.Int32
	rdbLoads    atomic.Int64 // snapshots completely loaded
	rdbSize     atomic.Int64 // size of the snapshot being loaded, -1 while unknown
	rdbDecoded  atomic.Int64 // bytes of it decoded so far
	rdbVersion  atomic.Int64
	loadStarted atomic.Int64 // unix ms
	loadEnded   atomic.Int64 // unix ms
	loadCount   loadCounters
	recvCmds    atomic.Int64 // stream commands read
	recvBytes   atomic.Int64 // bytes of them
	lag         lagClock

	loadsStarted atomic.Int64           // snapshot loads begun in this run
	lastLoaded   atomic.Int64           // keys the last complete load sent
	held         atomic.Pointer[string] // why the node waits for RESYNC; nil when it does not
	lostOnce     atomic.Bool            // a target data loss is being recovered from
	checking     atomic.Bool            // a target check is running

	mu      sync.Mutex
	writer  target.Writer
	lastErr string
	errs    map[string]int64 // this node's own failures, by reason
	skips   map[string]int64 // what this node left out on purpose, by reason
}

func newPipeline(d *Daemon, n source.Node) *pipeline {
	return &pipeline{d: d, node: n, name: n.Name(), dir: source.NodeDir(d.cfg.Common.Dir, n.Name()),
		log: d.log.With(zap.String("node", n.Name())), filter: newKeyFilter(d.cfg.Common.Filter),
		errs: map[string]int64{}, skips: map[string]int64{}}
}

// errNodeDone ends a node's work that finished: its stream applied, or its snapshot written.
var errNodeDone = errors.New("daemon: node done")

// run drives the node and its work until ctx ends or the node is done.
func (p *pipeline) run(ctx context.Context) error {
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	var resume *target.Checkpoint
	if !p.node.Finite() && p.d.target.Traits().Stream {
		// Where the target stands decides how the link starts: resuming a stream it was
		// applying, or a full sync.
		cp, err := p.resumePoint(ctx)
		if err != nil {
			return nil // ctx ended while the target was unreachable
		}
		resume = cp
	}
	nctx, stopNode := context.WithCancel(ctx)
	nodeDone := make(chan error, 1)
	go func() { nodeDone <- p.node.Run(nctx, linkResume(resume)) }()
	var work *task
	defer func() {
		work.stop()
		stopNode()
		for range p.node.Events() { // until Run has closed them
		}
		if err := p.node.Close(); err != nil {
			p.log.Warn("closing the source node", zap.Error(err))
		}
	}()

	started := false
	tick := time.NewTicker(lagSampleEvery)
	defer tick.Stop()
	lastTrim, lastCheck := time.Now(), time.Now()
	events := p.node.Events()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-nodeDone:
			nodeDone = nil
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
		case <-work.finished():
			if err := work.err; !errors.Is(err, errNodeDone) {
				return err
			}
			return nil
		case now := <-tick.C:
			p.sampleLag(now)
			if now.Sub(lastTrim) >= time.Second {
				lastTrim = now
				p.trim()
				p.saveCheckpoint()
			}
			if now.Sub(lastCheck) >= targetCheckEvery {
				lastCheck = now
				p.checkTarget(ctx)
			}
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			switch ev := ev.(type) {
			case source.SnapshotReady:
				if started || resume != nil {
					p.count(status.ReasonPartialResyncRefused) // the link logged why
				}
				replaces := started
				p.lostOnce.Store(false)
				work.stop()
				work = startTask(ctx, func(ctx context.Context) error { return p.migrate(ctx, ev, replaces) })
				started = true
			case source.Continue:
				if resume != nil && !started {
					cp := *resume
					work = startTask(ctx, func(ctx context.Context) error { return p.resumeStream(ctx, cp) })
					started = true
				}
			case source.Disconnected:
				now := time.Now()
				st := p.node.Stats()
				p.log.Warn("source link lost; reconnecting", zap.Error(ev.Err),
					zap.Int64("received", st.Link.ReceivedOffset), zap.Int64("applied", p.applied()),
					zap.Int64("last_io_ms", st.Link.LastIOAge(now).Milliseconds()))
			case source.FailedOver:
				p.count(status.ReasonFailover)
				p.log.Warn("the source master failed over; following it", zap.String("from", ev.From), zap.String("to", ev.To))
			}
		}
	}
}

// linkResume is where the link asks the master to continue from, for a target checkpoint.
func linkResume(cp *target.Checkpoint) *source.ResumePoint {
	if cp == nil {
		return nil
	}
	return &source.ResumePoint{Replid: cp.Replid, Offset: cp.Offset}
}

// task is one goroutine of a node's work: a snapshot load and the replay after it.
type task struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done is closed
}

func startTask(ctx context.Context, fn func(context.Context) error) *task {
	ctx, cancel := context.WithCancel(ctx)
	t := &task{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		t.err = fn(ctx)
	}()
	return t
}

// finished is closed when the task returned; a nil task never finishes.
func (t *task) finished() <-chan struct{} {
	if t == nil {
		return nil
	}
	return t.done
}

// stop ends the task and waits for it. A nil task is stopped.
func (t *task) stop() {
	if t == nil {
		return
	}
	t.cancel()
	<-t.done
}

// newWriter connects a writer for this node on the target and makes it the one Stats reports.
func (p *pipeline) newWriter(ctx context.Context, rdbVersion int) (target.Writer, error) {
	w, err := p.d.target.Writer(ctx, target.WriterOptions{
		Name:             p.name,
		SourceRDBVersion: rdbVersion,
		CheckpointKey:    p.checkpointKey(),
		Replid:           p.replid,
		Logger:           p.log.Named("target"),
	})
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.writer = w
	p.mu.Unlock()
	return w, nil
}

func (p *pipeline) currentWriter() target.Writer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writer
}

// replid is the source's current replication ID, stored with each checkpoint.
func (p *pipeline) replid() string {
	if st := p.node.Stats(); st.Live {
		return st.Link.Replid
	}
	return ""
}

// countSkip records something left out on purpose, for INFO's skipped counters.
func (p *pipeline) countSkip(reason string) {
	p.mu.Lock()
	p.skips[reason]++
	p.mu.Unlock()
}

// count records an event of this node by reason, for INFO's errors section.
func (p *pipeline) count(r status.Reason) {
	p.mu.Lock()
	p.errs[r.String()]++
	p.mu.Unlock()
}

func (p *pipeline) fail(r status.Reason, err error) {
	p.log.Error("node error", zap.Stringer("reason", r), zap.Error(err))
	p.mu.Lock()
	p.lastErr = err.Error()
	p.errs[r.String()]++
	p.mu.Unlock()
}

// counters returns copies of the node's counters and its last error.
func (p *pipeline) counters() (errs, skips map[string]int64, lastErr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.errs), maps.Clone(p.skips), p.lastErr
}

// trim drops the stream the target has fully applied.
func (p *pipeline) trim() {
	if phase(p.phase.Load()) != phaseOplog {
		return
	}
	if err := p.node.Trim(p.applied()); err != nil {
		p.log.Warn("spool trim", zap.Error(err))
	}
}

func (p *pipeline) received() int64 {
	if st := p.node.Stats(); st.Live {
		return st.Link.ReceivedOffset
	}
	return 0
}

func (p *pipeline) applied() int64 {
	if w := p.currentWriter(); w != nil && phase(p.phase.Load()) == phaseOplog {
		off, _ := w.Applied()
		return off
	}
	return 0
}

// backoff waits longer after each failure, from 100 ms to 5 s.
type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: 100 * time.Millisecond} }

func (b *backoff) reset() { b.d = 100 * time.Millisecond }

func (b *backoff) wait(ctx context.Context) bool {
	t := time.NewTimer(b.d)
	defer t.Stop()
	if b.d *= 2; b.d > 5*time.Second {
		b.d = 5 * time.Second
	}
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func threads(n int) int {
	if n <= 0 {
		return 4
	}
	return n
}
