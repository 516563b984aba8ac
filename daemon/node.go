package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/redisfmt"
	"github.com/rmt-project/rmt/rdb"
	"github.com/rmt-project/rmt/source"
	"github.com/rmt-project/rmt/target"
)

// phase is where one source node's migration stands.
type phase int32

const (
	phaseSync       phase = iota // waiting for the source's RDB
	phaseRDBLoading              // loading the RDB into the target
	phaseOplog                   // replaying the stream
	phaseDone                    // a file source, fully applied
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

// nodeJob migrates one source node (a master, or one RDB file) into the target.
type nodeJob struct {
	d      *Daemon
	server string
	dir    string
	log    *zap.Logger
	file   bool // an rdb file source: no link

	linkOpts source.LinkOptions

	phase       atomic.Int32
	rdbLoads    atomic.Int64 // snapshots completely loaded
	rdbSize     atomic.Int64 // size of the snapshot being loaded
	rdbDecoded  atomic.Int64 // bytes of it decoded so far
	rdbVersion  atomic.Int64
	loadStarted atomic.Int64 // unix ms
	loadEnded   atomic.Int64 // unix ms
	recvCmds    atomic.Int64 // commands read from the spool
	recvBytes   atomic.Int64 // bytes of them
	behindSince atomic.Int64 // unix ms since applied < received; 0 when caught up

	mu      sync.Mutex
	link    *source.Link // set by run once it knows where to resume; nil for file sources
	writer  target.Writer
	lastErr string
	errs    map[string]int64 // this job's own failures by reason
	skips   map[string]int64 // what this job left out on purpose, by reason

	filter *keyFilter // common.filter; nil keeps every key (used by the loading or replaying goroutine)

	src *sourceNode // sources.go: keys it owns (ownership.go), source_safe and threads gates; nil: none
}

func newNodeJob(d *Daemon, server string, listeningPort int) *nodeJob {
	j := &nodeJob{d: d, server: server, dir: nodeDir(d.cfg.Common.Dir, server), errs: map[string]int64{},
		skips: map[string]int64{}, filter: newKeyFilter(d.cfg.Common.Filter),
		log: d.log.With(zap.String("node", server)), file: conf.IsFile(d.cfg.Source.Type)}
	if j.file {
		return j
	}
	user, pass := d.cfg.Source.Auth()
	j.linkOpts = source.LinkOptions{
		Addr:          server,
		Username:      user,
		Password:      pass,
		Timeout:       d.cfg.Source.Timeout,
		Dir:           j.dir,
		ListeningPort: listeningPort,
		MaxSpoolBytes: d.cfg.Common.MaxSpoolBytes,
		TLS:           d.sourceTLS,
		Logger:        d.log.Named("link"),
	}
	if m := d.cfg.Common.MaxSpoolBytes; m > 0 {
		// Only whole segments are trimmed once applied: keep them small beside the limit, or a
		// spool at its limit could never make room.
		j.linkOpts.SpoolSegmentBytes = min(max(m/8, 64<<10), source.DefaultSpoolSegmentBytes)
	}
	return j
}

// getLink returns the node's replica link, nil before run has made it (and for file sources).
func (j *nodeJob) getLink() *source.Link {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.link
}

func (j *nodeJob) run(ctx context.Context) error {
	if err := os.MkdirAll(j.dir, 0o755); err != nil {
		return fmt.Errorf("%s: %w", j.server, err)
	}
	if j.file {
		return j.runFile(ctx)
	}
	if !j.d.target.Traits().Stream {
		return j.runToFile(ctx) // writer_rdbfile.go: the snapshot only (an rdb file)
	}
	// Where the target stands decides how the link starts: resuming a stream it was applying,
	// or a full sync.
	resume, err := j.resumePoint(ctx)
	if err != nil {
		return nil // ctx ended while the target was unreachable
	}
	opts := j.linkOpts
	if resume != nil {
		opts.Resume = &source.ResumePoint{Replid: resume.Replid, Offset: resume.Offset}
	}
	// common.source_safe: one RDB produced at a time per source host (sources.go).
	if !j.src.waitHostTurn(ctx) {
		return nil
	}
	defer j.src.endHostTurn()
	link := source.NewLink(opts)
	j.mu.Lock()
	j.link = link
	j.mu.Unlock()
	if j.src != nil {
		j.src.setLink(link) // before Run: a master that moved already is followed from the start
	}
	linkDone := make(chan error, 1)
	go func() { linkDone <- link.Run(ctx) }()
	defer link.Close()

	var stopMigrate context.CancelFunc
	migrateDone := make(chan struct{})
	close(migrateDone)
	stop := func() {
		if stopMigrate != nil {
			stopMigrate()
		}
		<-migrateDone
	}
	var current *snapshot
	start := func(snap *snapshot) {
		stop()
		mctx, cancel := context.WithCancel(ctx)
		stopMigrate = cancel
		migrateDone = make(chan struct{})
		go func(done chan struct{}) {
			defer close(done)
			if snap.resume != nil {
				j.resume(mctx, *snap.resume)
			} else {
				j.migrate(mctx, snap)
			}
		}(migrateDone)
	}
	trim := time.NewTicker(time.Second)
	defer trim.Stop()
	events := link.Events()
	for {
		select {
		case <-ctx.Done():
			stop()
			<-linkDone
			return nil
		case err := <-linkDone:
			stop()
			if ctx.Err() != nil || err == nil {
				return nil
			}
			return fmt.Errorf("%s: %w", j.server, err)
		case <-trim.C:
			j.trimSpool()
			j.saveCheckpoint()
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			switch ev := ev.(type) {
			case source.RDBStarted:
				if current != nil || resume != nil {
					j.count("partial_resync_refused") // the link logged why
				}
				// A new snapshot replaces whatever was being loaded or replayed, and is loaded
				// while it arrives.
				current = &snapshot{replid: ev.Replid, offset: ev.Offset, transfer: ev.Transfer, complete: make(chan struct{}),
					replaces: current != nil}
				start(current)
			case source.FullSync:
				j.src.endHostTurn() // the snapshot is whole: the next node of this host may sync
				if current != nil && current.replid == ev.Replid && current.offset == ev.Offset && !current.whole {
					current.whole = true
					close(current.complete) // the one being loaded is now whole; its oplog may start
					continue
				}
				current = &snapshot{replid: ev.Replid, offset: ev.Offset, path: ev.RDBPath, complete: make(chan struct{}), whole: true,
					replaces: current != nil}
				close(current.complete)
				start(current)
			case source.Continue:
				j.src.endHostTurn() // no snapshot to produce
				if resume != nil && current == nil {
					// The master took the PSYNC of the checkpoint: replay from there, no RDB.
					current = &snapshot{replid: ev.Replid, offset: resume.Offset, resume: resume, whole: true}
					start(current)
				}
			case source.Disconnected:
				j.log.Warn("source link lost; reconnecting", zap.Error(ev.Err))
				j.src.endHostTurn() // a master that is down must not hold up its host's others
			}
		}
	}
}

// snapshot is one RDB of a source node: a file on disk, or a transfer still arriving.
type snapshot struct {
	replid   string
	offset   int64
	path     string             // a complete file, when transfer is nil
	transfer *source.Transfer   // the snapshot as it arrives
	complete chan struct{}      // closed once the whole snapshot is on disk and the spool restarted at offset
	whole    bool               // complete is closed; read and written only by the node job's event loop
	resume   *target.Checkpoint // no snapshot: the stream resumes at the target's checkpoint
	replaces bool               // an earlier snapshot of this run was loaded, or partly loaded
}

// rdbFile is what the loader reads a snapshot from: in order, and again by sections for values
// too big to hold.
type rdbFile interface {
	io.Reader
	io.ReaderAt
	io.Closer
}

func (s *snapshot) open(ctx context.Context) (rdbFile, error) {
	if s.transfer != nil {
		return s.transfer.Open(ctx)
	}
	return os.Open(s.path)
}

// migrate loads the snapshot, then replays the spooled stream from its offset for as long as
// ctx lives, reconnecting to the target when it goes away.
func (j *nodeJob) migrate(ctx context.Context, snap *snapshot) {
	bo := newBackoff()
	var w target.Writer
	defer func() {
		if w != nil {
			w.Close()
		}
	}()
	name := snap.path
	if snap.transfer != nil {
		name = snap.transfer.Path()
	}
	if snap.replaces {
		j.log.Warn("the master started a new full sync: its snapshot replaces what was loaded",
			zap.String("replid", snap.replid), zap.Int64("offset", snap.offset))
		for {
			err := j.flushForResync(ctx)
			if err == nil {
				break
			}
			j.fail("target_conn", err)
			if !bo.wait(ctx) {
				return
			}
		}
	}
	for {
		var err error
		w, err = j.loadRDB(ctx, name, func() (rdbFile, error) { return snap.open(ctx) })
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		j.fail("rdb_load", err)
		if !bo.wait(ctx) {
			return
		}
	}
	// The oplog starts where the snapshot ends, in a spool the link restarts only once the
	// snapshot is whole on disk.
	select {
	case <-snap.complete:
	case <-ctx.Done():
		return
	}
	path := snap.path
	if snap.transfer != nil {
		path = snap.transfer.Path()
	}
	if err := os.Remove(path); err != nil {
		j.log.Warn("cannot remove the loaded RDB", zap.String("file", path), zap.Error(err))
	}
	j.replayLoop(ctx, w, snap.offset, 0)
}

// resume replays the stream from the target's checkpoint, after a restart, without any RDB.
func (j *nodeJob) resume(ctx context.Context, cp target.Checkpoint) {
	w, err := j.newWriter(ctx, 0)
	for err != nil {
		j.fail("target_conn", err)
		if !newBackoff().wait(ctx) {
			return
		}
		w, err = j.newWriter(ctx, 0)
	}
	defer w.Close()
	j.rdbLoads.Add(1) // the snapshot was loaded by an earlier run
	j.log.Info("resuming the stream from the target's checkpoint", zap.String("replid", cp.Replid),
		zap.Int64("offset", cp.Offset), zap.Int("db", cp.DB))
	j.replayLoop(ctx, w, cp.Offset, cp.DB)
}

// replayLoop applies the stream from (offset, db) for as long as ctx lives, reconnecting to the
// target when it goes away or refuses for a while.
func (j *nodeJob) replayLoop(ctx context.Context, w target.Writer, offset int64, db int) {
	bo := newBackoff()
	j.phase.Store(int32(phaseOplog))
	from := offset
	for {
		err := w.StartOplog(ctx, from, db)
		if err == nil {
			break
		}
		j.fail("target_conn", err)
		if !bo.wait(ctx) {
			return
		}
	}
	bo.reset()
	for ctx.Err() == nil {
		err := j.replay(ctx, w, from)
		if ctx.Err() != nil {
			return
		}
		j.fail("target_conn", err)
		for ctx.Err() == nil {
			if !bo.wait(ctx) {
				return
			}
			var rerr error
			if from, db, rerr = w.Reconnect(ctx); rerr == nil {
				j.log.Info("target reconnected; resending the stream", zap.Int64("from", from), zap.Int("db", db))
				bo.reset()
				break
			}
			j.fail("target_conn", rerr)
		}
	}
}

// loadRDB sends every key of the snapshot open gives to the target and waits for every reply.
// It returns the writer, ready for the oplog. name is for messages.
func (j *nodeJob) loadRDB(ctx context.Context, name string, open func() (rdbFile, error)) (target.Writer, error) {
	endLoadTurn, err := j.src.waitLoadTurn(ctx) // common.threads RDB loads at a time (sources.go)
	if err != nil {
		return nil, err
	}
	defer endLoadTurn()
	j.phase.Store(int32(phaseRDBLoading))
	j.loadStarted.Store(time.Now().UnixMilli())
	j.loadEnded.Store(0)
	// A crash while the snapshot loads must lead to a new full sync, not to a resume from an
	// older checkpoint over half of it.
	if err := j.clearCheckpoint(ctx); err != nil {
		return nil, err
	}
	f, err := open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, ok := f.(interface{ Stat() (os.FileInfo, error) }); ok {
		if fi, err := st.Stat(); err == nil {
			j.rdbSize.Store(fi.Size())
		}
	}
	dec := rdb.NewDecoder(f)
	dec.SetMaxRaw(j.d.cfg.Common.BigKeyBytes)
	var w target.Writer
	ok := false
	defer func() {
		if !ok && w != nil {
			w.Abort() // an rdb file target must not keep half a snapshot
			w.Close()
		}
	}()
	var e rdb.Entry
	for {
		err := dec.Next(&e)
		j.rdbDecoded.Store(dec.Offset())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if w == nil {
			j.rdbVersion.Store(int64(dec.Version()))
			if w, err = j.newWriter(ctx, dec.Version()); err != nil {
				return nil, err
			}
		}
		if e.Kind != rdb.KindKey && e.Kind != rdb.KindFunction {
			continue
		}
		if e.Kind == rdb.KindKey && !j.filter.keepKey(e.Key) {
			j.countSkip(reasonFiltered)
			continue
		}
		if e.Kind == rdb.KindKey && !j.src.keepKey(e.DB, e.Key) { // ownership.go
			j.countSkip(reasonNotOwned)
			continue
		}
		err = w.Restore(&e)
		if errors.Is(err, target.ErrNeedsRewrite) {
			err = w.Rewrite(&e, io.NewSectionReader(f, e.ValueOffset, e.ValueLen))
		}
		if err != nil {
			return nil, fmt.Errorf("%s: key %s: %w", name, redisfmt.Quote(string(e.Key)), err)
		}
	}
	if w == nil { // an RDB with no entry at all
		if w, err = j.newWriter(ctx, dec.Version()); err != nil {
			return nil, err
		}
	}
	if err := w.WaitRDB(ctx); err != nil {
		return nil, err
	}
	ok = true
	j.rdbLoads.Add(1)
	j.loadEnded.Store(time.Now().UnixMilli())
	st := w.Stats()
	j.log.Info("RDB loaded", zap.String("file", name), zap.Uint64("keys", st.Restored+st.Rewritten),
		zap.Uint64("expired_skipped", st.Expired),
		zap.Duration("took", time.Duration(j.loadEnded.Load()-j.loadStarted.Load())*time.Millisecond))
	return w, nil
}

// replay applies the spooled stream after offset `from` until ctx ends or the target connection
// breaks.
func (j *nodeJob) replay(ctx context.Context, w target.Writer, from int64) error {
	sr, err := j.getLink().Spool().NewReader(ctx, from)
	if err != nil {
		return err
	}
	defer sr.Close()
	r := aof.NewReader(sr)
	_, db := w.Applied()
	own := j.src.streamFilter(db) // ownership.go
	var cmd aof.Command
	end := from
	for {
		if r.Buffered() == 0 {
			// The stream has nothing more for now: close the batch rather than wait for more.
			if err := w.Flush(); err != nil {
				return err
			}
		}
		if err := r.Next(&cmd); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("spool of %s at offset %d: %w", j.server, end, err)
		}
		end += cmd.N
		j.recvCmds.Add(1)
		j.recvBytes.Add(cmd.N)
		if !j.filter.keepCommand(&cmd) {
			w.Skip(&cmd, end, reasonFiltered)
			continue
		}
		if reason := own.drop(&cmd); reason != "" {
			w.Skip(&cmd, end, reason)
			continue
		}
		if err := w.Apply(&cmd, end); err != nil {
			return err
		}
	}
}

// newWriter connects a writer for this node on the target and makes it the one Stats reports.
func (j *nodeJob) newWriter(ctx context.Context, rdbVersion int) (target.Writer, error) {
	w, err := j.d.target.Writer(ctx, target.WriterOptions{
		Name:             j.server,
		SourceRDBVersion: rdbVersion,
		CheckpointKey:    j.checkpointKey(),
		Replid:           j.replid,
		Logger:           j.log.Named("target"),
	})
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	j.writer = w
	j.mu.Unlock()
	return w, nil
}

func (j *nodeJob) currentWriter() target.Writer {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.writer
}

// countSkip records something left out on purpose, for INFO's skipped counters.
func (j *nodeJob) countSkip(reason string) {
	j.mu.Lock()
	j.skips[reason]++
	j.mu.Unlock()
}

// count records an event of this job by reason, for INFO's errors section.
func (j *nodeJob) count(reason string) {
	j.mu.Lock()
	j.errs[reason]++
	j.mu.Unlock()
}

func (j *nodeJob) fail(reason string, err error) {
	j.log.Error("node job error", zap.String("reason", reason), zap.Error(err))
	j.mu.Lock()
	j.lastErr = err.Error()
	j.errs[reason]++
	j.mu.Unlock()
}

// trimSpool drops the spool segments the target has fully applied.
func (j *nodeJob) trimSpool() {
	if phase(j.phase.Load()) != phaseOplog {
		return
	}
	if sp := j.getLink().Spool(); sp != nil {
		if err := sp.Trim(j.applied()); err != nil {
			j.log.Warn("spool trim", zap.Error(err))
		}
	}
}

// runFile loads one RDB file source into the target.
func (j *nodeJob) runFile(ctx context.Context) error {
	if j.d.cfg.Source.Type == conf.TypeAOFFile {
		return j.runAOF(ctx) // filesource.go
	}
	w, err := j.loadRDB(ctx, j.server, func() (rdbFile, error) { return os.Open(j.server) })
	if err != nil {
		j.phase.Store(int32(phaseFailed))
		j.fail("rdb_load", err)
		return err
	}
	w.Close()
	j.phase.Store(int32(phaseDone))
	return nil
}

func (j *nodeJob) received() int64 {
	link := j.getLink()
	if link == nil {
		return 0
	}
	return link.Stats().ReceivedOffset
}

func (j *nodeJob) applied() int64 {
	if w := j.currentWriter(); w != nil && phase(j.phase.Load()) == phaseOplog {
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
