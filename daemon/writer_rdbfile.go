package daemon

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/source"
)

// runToFile is a live source's node job into a target that takes no stream (an rdb file): the
// link's first complete snapshot is written into it, and the job is done.
func (j *nodeJob) runToFile(ctx context.Context) error {
	// A link of its own making, always a full sync: nothing to resume into a file.
	link := source.NewLink(j.linkOpts)
	j.mu.Lock()
	j.link = link
	j.mu.Unlock()
	lctx, cancel := context.WithCancel(ctx)
	linkDone := make(chan error, 1)
	go func() { linkDone <- link.Run(lctx) }()
	defer func() {
		cancel()
		<-linkDone
		link.Close()
	}()
	events := link.Events()
	for {
		select {
		case <-ctx.Done():
			j.d.target.Abandon()
			return nil
		case err := <-linkDone:
			linkDone <- err // for the deferred wait
			j.d.target.Abandon()
			if ctx.Err() != nil || err == nil {
				return nil
			}
			j.phase.Store(int32(phaseFailed))
			return fmt.Errorf("%s: %w", j.server, err)
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			switch ev := ev.(type) {
			case source.FullSync:
				return j.snapshotToFile(ctx, ev.RDBPath)
			case source.Disconnected:
				j.log.Warn("source link lost; reconnecting", zap.Error(ev.Err))
			}
		}
	}
}

// snapshotToFile writes the snapshot at path into the rdb file target and ends this node's part.
func (j *nodeJob) snapshotToFile(ctx context.Context, path string) error {
	w, err := j.loadRDB(ctx, path, func() (rdbFile, error) { return os.Open(path) })
	if err != nil {
		j.phase.Store(int32(phaseFailed))
		j.fail("rdb_load", err)
		if j.currentWriter() == nil { // failed before this node joined the file: leave it all the same
			j.d.target.Abandon()
		}
		return fmt.Errorf("%s: %w", j.server, err)
	}
	if err := os.Remove(path); err != nil {
		j.log.Warn("cannot remove the loaded RDB", zap.String("file", path), zap.Error(err))
	}
	start := time.Now()
	if err := w.Close(); err != nil {
		j.phase.Store(int32(phaseFailed))
		j.fail("rdb_file", err)
		return fmt.Errorf("%s: %w", j.server, err)
	}
	j.log.Info("snapshot written into the rdb file; node done", zap.Duration("close_took", time.Since(start)))
	j.phase.Store(int32(phaseDone))
	return nil
}
