package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/daemon/status"
	"github.com/rmt-project/rmt/rdb"
	"github.com/rmt-project/rmt/source"
	"github.com/rmt-project/rmt/target"
)

// The resync guard (common.resync_guard). A source that comes back empty (a master restarted
// without persistence) or much smaller sends a snapshot that, loaded, would wipe the only copy
// of the data: rmtd's target. Such a snapshot is not loaded on its own: the node is held,
// INFO says why, and the operator's RESYNC on the admin port lets it go on.

// guard holds the node before a snapshot that would empty the target, or remove more than half
// of what was loaded from the node (in this run, or an earlier one by its marker), until RESYNC.
// It returns false when ctx ended while held.
func (p *pipeline) guard(ctx context.Context, snap source.SnapshotReady) bool {
	if !p.d.cfg.Common.ResyncGuard {
		return true
	}
	before := p.lastLoaded.Load()
	if m, ok := p.marker(); ok && before == 0 {
		before = m.Keys
	}
	if before == 0 {
		return true
	}
	keys, err := countKeys(ctx, snap)
	if err != nil {
		return ctx.Err() == nil // the load itself will fail and say why
	}
	if keys > 0 && keys*2 >= before {
		return true
	}
	why := fmt.Sprintf("held: the source's new snapshot has %d keys where %d were loaded from it (restarted empty, "+
		"or most of its data gone); loading it would remove them from the target. Send RESYNC to the admin port "+
		"(redis-cli -p <port> resync) to load it, or set common.resync_guard: false", keys, before)
	p.held.Store(&why)
	p.count(status.ReasonSourceHeld)
	p.log.Error("source node held: its new snapshot would empty the target", zap.Int64("snapshot_keys", keys),
		zap.Int64("loaded_keys", before), zap.String("replid", snap.Replid))
	defer p.held.Store(nil)
	select {
	case <-p.d.resyncs.wait():
		p.log.Warn("RESYNC: loading the held snapshot", zap.Int64("snapshot_keys", keys))
		return true
	case <-ctx.Done():
		return false
	}
}

// countKeys counts a snapshot's keys: as its kind knows them, or by reading it through,
// holding no value.
func countKeys(ctx context.Context, snap source.SnapshotReady) (int64, error) {
	if snap.Keys != nil {
		return snap.Keys(ctx)
	}
	entries, err := snap.Open(ctx, 1)
	if err != nil {
		return 0, err
	}
	defer entries.Close()
	var e rdb.Entry
	var n int64
	for {
		err := entries.Next(&e)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if e.Kind == rdb.KindKey {
			n++
		}
	}
}

// releaser wakes everyone waiting for the next RESYNC.
type releaser struct {
	mu sync.Mutex
	ch chan struct{}
}

func newReleaser() *releaser { return &releaser{ch: make(chan struct{})} }

func (r *releaser) wait() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ch
}

func (r *releaser) release() {
	r.mu.Lock()
	close(r.ch)
	r.ch = make(chan struct{})
	r.mu.Unlock()
}

// Resync releases every held source node (the admin port's RESYNC) and returns how many were.
func (d *Daemon) Resync() int {
	n := 0
	for _, p := range d.pipelines() {
		if p.held.Load() != nil {
			n++
		}
	}
	d.resyncs.release()
	d.log.Info("RESYNC", zap.Int("held_nodes_released", n))
	return n
}

// onlySourceNode reports whether this node is the only one writing into the target: the
// source has one node and no other process shares it (common.shard).
func (d *Daemon) onlySourceNode() bool {
	_, n := d.cfg.Common.ShardRule()
	d.mu.Lock()
	defer d.mu.Unlock()
	return n == 1 && d.source != nil && len(d.source.Nodes) == 1
}

// targetCheckEvery is how often a node in its stream checks that the target kept what it
// acknowledged.
const targetCheckEvery = 5 * time.Second

// checkTarget checks, in the background, that the target still holds the node's checkpoint.
func (p *pipeline) checkTarget(ctx context.Context) {
	w := p.currentWriter()
	if w == nil || phase(p.phase.Load()) != phaseOplog || !p.checking.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer p.checking.Store(false)
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if err := w.CheckTarget(cctx); errors.Is(err, target.ErrTargetLost) {
			p.targetLost(err)
		}
	}()
}

// targetLost handles a target that lost data: counted, logged, and a full sync of the node
// (its stream cannot go on over a target that forgot part of it).
func (p *pipeline) targetLost(err error) {
	if !p.lostOnce.CompareAndSwap(false, true) {
		return
	}
	p.fail(status.ReasonTargetDataLost, err)
	p.log.Error("the target lost data this node had written: a full sync follows", zap.Error(err),
		zap.Int64("applied", p.applied()))
	if !p.node.Resync(err) {
		p.log.Error("this node cannot sync again by itself", zap.Error(err))
	}
}
