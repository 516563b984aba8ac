package daemon

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/source"
	"github.com/rmt-project/rmt/target"
)

// rdbFileShare is the rdb file target of a daemon: every node job writes into the one file
// (target.servers[0]), which is finished when the last of them is done.
type rdbFileShare struct {
	mu sync.Mutex
	f  *target.RDBFile
}

func (s *rdbFileShare) get(d *Daemon) *target.RDBFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		s.f = target.NewRDBFile(target.RDBFileOptions{
			Path:   d.cfg.Target.Servers[0],
			Nodes:  len(d.nodeJobs()),
			Logger: d.log.Named("rdbfile"),
		})
	}
	return s.f
}

// newRDBFileWriter is the writerFactory of rdb file targets: this node's share of the file.
func newRDBFileWriter(ctx context.Context, j *nodeJob, rdbVersion int) (target.Writer, error) {
	w, err := j.d.rdbFile.get(j.d).Node(j.server, rdbVersion)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// runToFile is a live source's node job into an rdb file target: the link's first complete
// snapshot is written into the file, and the job is done (a file takes no oplog).
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
			j.d.rdbFile.get(j.d).Abandon()
			return nil
		case err := <-linkDone:
			linkDone <- err // for the deferred wait
			j.d.rdbFile.get(j.d).Abandon()
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
			j.d.rdbFile.get(j.d).Abandon()
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
