package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/daemon/status"
	"github.com/rmt-project/rmt/internal/redisfmt"
	"github.com/rmt-project/rmt/rdb"
	"github.com/rmt-project/rmt/source"
	"github.com/rmt-project/rmt/target"
)

// migrate loads a snapshot, then replays the stream from its offset for as long as ctx lives.
// replaces says an earlier snapshot of this run was loaded, or partly loaded.
func (p *pipeline) migrate(ctx context.Context, snap source.SnapshotReady, replaces bool) error {
	bo := newBackoff()
	if replaces {
		p.log.Warn("the master started a new full sync: its snapshot replaces what was loaded",
			zap.String("replid", snap.Replid), zap.Int64("offset", snap.Offset))
	}
	p.phase.Store(int32(phaseSync)) // a new snapshot: no stream is replayed until it is in
	if p.loadedBefore() {
		// It replaces keys of this node already on the target: nothing of them is removed
		// before the snapshot is whole, so that a transfer that fails (a full disk, a cut)
		// never leaves the target emptied.
		select {
		case <-snap.Whole:
		case <-ctx.Done():
			return nil
		}
	}
	if !p.guard(ctx, snap) {
		return nil // ctx ended while the node was held
	}
	var w target.Writer
	for {
		var err error
		w, err = p.loadSnapshot(ctx, snap)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		p.fail(status.ReasonRDBLoad, err)
		if p.node.Finite() { // a file does not get better by reading it again
			p.phase.Store(int32(phaseFailed))
			p.d.target.Abandon()
			return err
		}
		if errors.Is(err, source.ErrTransferFailed) {
			// Never whole, and its file is gone: the link asks for a new snapshot itself, after
			// its full-sync backoff, and the new one replaces this task. Loading this one again
			// would only fail again, emptying the target's keys of this node each time.
			p.log.Warn("the snapshot did not arrive whole: waiting for the next one", zap.Error(err))
			<-ctx.Done()
			return nil
		}
		if undecodable(err) && p.node.Resync(err) {
			// The same bytes would fail again: a new snapshot comes, and replaces this task.
			p.count(status.ReasonSnapshotResync)
			p.log.Warn("the snapshot does not decode: asking the source for a new one", zap.Error(err))
			<-ctx.Done()
			return nil
		}
		if !bo.wait(ctx) {
			return nil
		}
	}
	// The stream starts where the snapshot ends, in a spool the link restarts only once the
	// snapshot is whole on disk.
	select {
	case <-snap.Whole:
	case <-ctx.Done():
		w.Close()
		return nil
	}
	if err := snap.Done(); err != nil {
		p.log.Warn("cannot remove the loaded snapshot", zap.String("file", snap.Name), zap.Error(err))
	}
	if !p.d.target.Traits().Stream {
		return p.finishSnapshotOnly(ctx, w)
	}
	defer w.Close()
	return p.replayLoop(ctx, w, snap.Offset, 0)
}

// finishSnapshotOnly ends the node's work into a target that takes no stream (an rdb file): a
// live source's job is its snapshot; a file source's stream must then be empty.
func (p *pipeline) finishSnapshotOnly(ctx context.Context, w target.Writer) error {
	if p.node.Finite() {
		if err := p.streamIsEmpty(ctx); err != nil {
			w.Abort()
			w.Close()
			p.phase.Store(int32(phaseFailed))
			p.fail(status.ReasonTargetConn, err)
			return err
		}
	}
	start := time.Now()
	if err := w.Close(); err != nil {
		p.phase.Store(int32(phaseFailed))
		p.fail(status.ReasonRDBFile, err)
		return fmt.Errorf("%s: %w", p.name, err)
	}
	p.log.Info("snapshot written into the target; node done", zap.Duration("close_took", time.Since(start)))
	p.phase.Store(int32(phaseDone))
	return errNodeDone
}

// streamIsEmpty fails when a file source has commands after its snapshot, which a target that
// takes no stream cannot hold.
func (p *pipeline) streamIsEmpty(ctx context.Context) error {
	cmds, err := p.node.Stream(ctx, 0)
	if err != nil {
		return err
	}
	defer cmds.Close()
	var c aof.Command
	if err := cmds.Next(&c); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: the %s target cannot take the commands after its snapshot (the target takes the snapshot only): %w",
			p.name, p.d.cfg.Target.Type, target.ErrNoOplog)
	}
	return nil
}

// resumeStream replays the stream from the target's checkpoint, after a restart, without any
// snapshot.
func (p *pipeline) resumeStream(ctx context.Context, cp target.Checkpoint) error {
	bo := newBackoff()
	w, err := p.newWriter(ctx, 0)
	for err != nil {
		p.fail(status.ReasonTargetConn, err)
		if !bo.wait(ctx) {
			return nil
		}
		w, err = p.newWriter(ctx, 0)
	}
	defer w.Close()
	p.rdbLoads.Add(1) // the snapshot was loaded by an earlier run
	p.log.Info("resuming the stream from the target's checkpoint", zap.String("replid", cp.Replid),
		zap.Int64("offset", cp.Offset), zap.Int("db", cp.DB))
	return p.replayLoop(ctx, w, cp.Offset, cp.DB)
}

// loadSnapshot sends every key of the snapshot to the target and waits for every reply. It
// returns the writer, ready for the stream.
func (p *pipeline) loadSnapshot(ctx context.Context, snap source.SnapshotReady) (target.Writer, error) {
	endLoadTurn, err := p.d.loads.wait(ctx) // common.threads snapshot loads at a time
	if err != nil {
		return nil, err
	}
	defer endLoadTurn()
	p.phase.Store(int32(phaseRDBLoading))
	p.loadStarted.Store(time.Now().UnixMilli())
	p.loadEnded.Store(0)
	// What this node loaded before (in this run, or an earlier one cut short or replaced) goes
	// first, so that keys deleted on the source since do not stay behind.
	if err := p.removePrevious(ctx); err != nil {
		return nil, err
	}
	p.loadsStarted.Add(1)
	p.writeMarker(markerLoading, 0)
	// A crash while the snapshot loads must lead to a new full sync, not to a resume from an
	// older checkpoint over half of it.
	if err := p.clearCheckpoint(ctx); err != nil {
		return nil, err
	}
	entries, err := snap.Open(ctx, target.MaxHeldValue)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", snap.Name, err)
	}
	defer entries.Close()
	owned := p.node.Filter(0)
	p.loadCount.keys.Store(0)
	p.expectKeys(ctx)
	stopLog := make(chan struct{})
	defer close(stopLog)
	go p.logProgress(stopLog)
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
		err := entries.Next(&e)
		read, total := entries.Progress()
		p.rdbDecoded.Store(read)
		p.rdbSize.Store(total)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", snap.Name, err)
		}
		if w == nil {
			p.rdbVersion.Store(int64(entries.Version()))
			if w, err = p.newWriter(ctx, entries.Version()); err != nil {
				return nil, err
			}
		}
		if e.Kind != rdb.KindKey && e.Kind != rdb.KindFunction {
			continue
		}
		if e.Kind == rdb.KindKey {
			p.loadCount.keys.Add(1)
		}
		if e.Kind == rdb.KindKey && !p.filter.keepKey(e.Key) {
			p.countSkip(status.ReasonFiltered.String())
			continue
		}
		if e.Kind == rdb.KindKey && owned != nil && !owned.KeepKey(e.DB, e.Key) {
			p.countSkip(source.ReasonNotOwned.String())
			continue
		}
		err = w.Restore(&e)
		if errors.Is(err, target.ErrNeedsRewrite) {
			err = w.Rewrite(&e, entries.Value(&e))
		}
		if err != nil {
			return nil, fmt.Errorf("%s: key %s: %w", snap.Name, redisfmt.Quote(string(e.Key)), err)
		}
	}
	if w == nil { // a snapshot with no entry at all
		if w, err = p.newWriter(ctx, entries.Version()); err != nil {
			return nil, err
		}
	}
	if err := w.WaitRDB(ctx); err != nil {
		return nil, err
	}
	ok = true
	p.rdbLoads.Add(1)
	p.loadEnded.Store(time.Now().UnixMilli())
	st := w.Stats()
	p.lastLoaded.Store(int64(st.Restored + st.Rewritten))
	p.writeMarker(markerLoaded, int64(st.Restored+st.Rewritten))
	p.log.Info("RDB loaded", zap.String("file", snap.Name), zap.Uint64("keys", st.Restored+st.Rewritten),
		zap.Uint64("expired_skipped", st.Expired),
		zap.Duration("took", time.Duration(p.loadEnded.Load()-p.loadStarted.Load())*time.Millisecond))
	return w, nil
}

// undecodable reports whether a snapshot failed to load for its own bytes (corrupt, a bad
// checksum, cut short): reading it again would fail the same way.
func undecodable(err error) bool {
	return errors.Is(err, rdb.ErrCorrupt) || errors.Is(err, rdb.ErrChecksum) || errors.Is(err, io.ErrUnexpectedEOF)
}
