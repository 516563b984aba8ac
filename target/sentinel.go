package target

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/topology"
	"github.com/rmt-project/rmt/rdb"
)

// A `sentinel` target: the master that the Sentinels (Config.Servers) know as
// Config.MasterName, written as a single target is (Single: RESTOREs, then the stream in
// checkpointed transactions). Every connection asks the Sentinels where the master is now (and
// checks its ROLE). When a failover moves the master, the oplog connection breaks and the
// daemon calls Reconnect, which finds the new master and resends the stream from the checkpoint
// that master holds: the checkpoint goes in the same MULTI/EXEC as each batch, so the promoted
// replica holds the commands of every batch whose checkpoint it holds, and none of the others;
// resending after it is exactly once, even when the replica was behind the old master (writes
// the old master acknowledged but did not pass on are sent again). The position right after a
// snapshot load is stored too (StartOplog), so that a failover before the first batch finds
// where the stream starts. A snapshot load cut by a failover fails and is loaded again into the
// new master, from the start.

// KindSentinel is a Sentinel-managed master.
const KindSentinel = "sentinel"

type sentinelTarget struct {
	cfg Config
	sn  *topology.Sentinels
	log *zap.Logger
}

func newSentinelTarget(c Config) (Target, error) {
	if c.MasterName == "" {
		return nil, errors.New("target sentinel: no master name")
	}
	var addrs []string
	for _, s := range c.Servers {
		addrs = append(addrs, s.Addr)
	}
	timeout := c.Conn.Timeout
	if timeout <= 0 || timeout > 10*time.Second {
		timeout = 10 * time.Second
	}
	sn, err := topology.NewSentinels(topology.SentinelConfig{
		MasterName: c.MasterName, Sentinels: addrs,
		Username: c.SentinelUser, Password: c.SentinelPass,
		Dial:         topology.TLSDial(timeout, c.Conn.TLS),
		DataUsername: c.Conn.Username, DataPassword: c.Conn.Password,
		Timeout: timeout,
	})
	if err != nil {
		return nil, fmt.Errorf("target sentinel: %w", err)
	}
	return &sentinelTarget{cfg: c, sn: sn, log: c.Logger.Named("sentinel-target").With(zap.String("master_name", c.MasterName))}, nil
}

// master returns the connection settings of the master now.
func (t *sentinelTarget) master(ctx context.Context) (Options, error) {
	addr, err := t.sn.Master(ctx)
	if err != nil {
		return Options{}, fmt.Errorf("target sentinel: %w", err)
	}
	o := t.cfg.Conn
	o.Addr = addr
	return o, nil
}

func (t *sentinelTarget) Traits() Traits { return Traits{Stream: true, Checkpoint: true} }

func (t *sentinelTarget) Writer(ctx context.Context, o WriterOptions) (Writer, error) {
	conn, err := t.master(ctx)
	if err != nil {
		return nil, err
	}
	so := SingleOptions{
		Conn:             conn,
		Conns:            t.cfg.Conns,
		SourceRDBVersion: o.SourceRDBVersion,
		BigKeyBytes:      t.cfg.BigKeyBytes,
		Logger:           t.cfg.nodeLogger(o),
		Now:              t.cfg.Now,
		CheckpointKey:    o.CheckpointKey,
		Replid:           o.Replid,
	}
	s, err := NewSingle(ctx, so)
	if err != nil {
		return nil, fmt.Errorf("target sentinel %s: %w", conn.Addr, err)
	}
	w := &Sentinel{t: t, ctx: ctx, log: so.Logger, retired: Stats{Errors: map[string]uint64{}, Skipped: map[string]uint64{}}}
	w.cur.Store(s)
	return w, nil
}

func (t *sentinelTarget) ReadCheckpoint(ctx context.Context, key string) (Checkpoint, bool, error) {
	conn, err := t.master(ctx)
	if err != nil {
		return Checkpoint{}, false, err
	}
	return ReadCheckpoint(ctx, conn, key)
}

func (t *sentinelTarget) ClearCheckpoint(ctx context.Context, key string) error {
	conn, err := t.master(ctx)
	if err != nil {
		return err
	}
	return ClearCheckpoint(ctx, conn, key)
}

// FlushAll sends FLUSHALL to the master.
func (t *sentinelTarget) FlushAll(ctx context.Context) (bool, error) {
	conn, err := t.master(ctx)
	if err != nil {
		return false, err
	}
	return (&singleTarget{cfg: t.cfg, conn: conn}).FlushAll(ctx)
}

// Inventory counts what the master of now holds.
func (t *sentinelTarget) Inventory(ctx context.Context, owns func(int, []byte) bool, own string) (Inventory, error) {
	conn, err := t.master(ctx)
	if err != nil {
		return Inventory{}, err
	}
	return inventory(ctx, dataNodesOf(conn, []string{conn.Addr}), owns, own)
}

// DeleteKeys removes keys from the master of now.
func (t *sentinelTarget) DeleteKeys(ctx context.Context, owns func(int, []byte) bool, own string) (int64, error) {
	conn, err := t.master(ctx)
	if err != nil {
		return 0, err
	}
	return deleteKeys(ctx, dataNodesOf(conn, []string{conn.Addr}), owns, own)
}

// Abandon does nothing: a sentinel target waits for no source node.
func (t *sentinelTarget) Abandon() {}

func (t *sentinelTarget) Close() error { return nil }

// Sentinel is the Writer of a sentinel target: a Single on the master of now, replaced by one
// on the new master when Reconnect finds that the master moved.
type Sentinel struct {
	t   *sentinelTarget
	ctx context.Context // the writer's life, for the Singles it makes
	log *zap.Logger
	cur atomic.Pointer[Single]

	mu      sync.Mutex
	retired Stats // the counters of the Singles replaced
}

var (
	_ Writer = (*Sentinel)(nil)
	_ Target = (*sentinelTarget)(nil)
)

func (w *Sentinel) Restore(e *rdb.Entry) error { return w.cur.Load().Restore(e) }
func (w *Sentinel) Rewrite(e *rdb.Entry, value io.Reader) error {
	return w.cur.Load().Rewrite(e, value)
}
func (w *Sentinel) WaitRDB(ctx context.Context) error       { return w.cur.Load().WaitRDB(ctx) }
func (w *Sentinel) Apply(cmd *aof.Command, end int64) error { return w.cur.Load().Apply(cmd, end) }
func (w *Sentinel) Skip(cmd *aof.Command, end int64, reason string) {
	w.cur.Load().Skip(cmd, end, reason)
}
func (w *Sentinel) Flush() error                        { return w.cur.Load().Flush() }
func (w *Sentinel) WaitOplog(ctx context.Context) error { return w.cur.Load().WaitOplog(ctx) }
func (w *Sentinel) Applied() (int64, int)               { return w.cur.Load().Applied() }
func (w *Sentinel) Abort()                              {}
func (w *Sentinel) Close() error                        { return w.cur.Load().Close() }

// StartOplog starts the stream at (offset, db) on the master of now, which stores that position
// as the checkpoint (Single.StartOplog): the snapshot before it is acknowledged whole, and a
// master promoted later holds it only with everything acknowledged before (replication keeps
// the master's order). A failure leaves nothing started: it is called again, on the master the
// Sentinels name by then. (It stored the checkpoint a second time on a connection of its own,
// and a master killed between the two left the stream started with the call failed: every
// retry then failed with "oplog already started".)
func (w *Sentinel) StartOplog(ctx context.Context, offset int64, db int) error {
	return w.cur.Load().StartOplog(ctx, offset, db)
}

// Reconnect resends from where the master stands: the same master's (Single.Reconnect), or,
// when the Sentinels name another one, the checkpoint the new master holds.
func (w *Sentinel) Reconnect(ctx context.Context) (int64, int, error) {
	cur := w.cur.Load()
	addr, err := w.t.sn.Master(ctx)
	if err != nil || addr == cur.opts.Conn.Addr {
		return cur.Reconnect(ctx) // no failover (yet): the same master, or an error to retry
	}
	off, db := cur.Applied()
	o := cur.opts
	o.Conn.Addr = addr
	o.Conns = 1 // the stream's Single: its snapshot connections stay idle
	next, err := newHookedSingle(w.ctx, o, nil)
	if err != nil {
		return off, db, fmt.Errorf("target sentinel: new master %s: %w", addr, err)
	}
	from, fromDB := off, db
	if key := o.CheckpointKey; key != "" {
		cp, ok, err := ReadCheckpoint(ctx, o.Conn, key)
		switch {
		case err != nil:
			next.Close()
			return off, db, fmt.Errorf("target sentinel: new master %s: %w", addr, err)
		case !ok:
			next.Close()
			return off, db, fmt.Errorf("target sentinel: the new master %s holds no checkpoint %s: it lacks what was written "+
				"into the old master before the failover: %w", addr, key, ErrTargetLost)
		case cp.Offset > max(cur.sentEnd, off):
			next.Close()
			return off, db, fmt.Errorf("target sentinel: the new master %s holds checkpoint %s at %d, past anything sent (%d)",
				addr, key, cp.Offset, max(cur.sentEnd, off))
		}
		from, fromDB = cp.Offset, cp.DB
	}
	next.sentEnd, next.poisoned = cur.sentEnd, cur.poisoned
	if err := next.StartOplog(ctx, from, fromDB); err != nil {
		next.Close()
		return off, db, err
	}
	w.log.Warn("the target master failed over: the stream is resent from the checkpoint the new master holds",
		zap.String("was", cur.opts.Conn.Addr), zap.String("now", addr), zap.Int64("answered_by_old_master", off),
		zap.Int64("checkpoint", from), zap.Int("db", fromDB))
	w.retire(cur)
	w.cur.Store(next)
	cur.Close()
	return from, fromDB, nil
}

// retire keeps the counters of a Single that is replaced.
func (w *Sentinel) retire(s *Single) {
	st := s.Stats()
	w.mu.Lock()
	defer w.mu.Unlock()
	r := &w.retired
	r.addCounts(st)
	for k, v := range st.Errors {
		r.Errors[k] += v
	}
	for k, v := range st.Skipped {
		if k != SkipExpired { // Expired is added again by the Single's Stats
			r.Skipped[k] += v
		}
	}
}

// Stats are the current Single's, with the counters of those it replaced.
func (w *Sentinel) Stats() Stats {
	st := w.cur.Load().Stats()
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.retired
	st.addCounts(r)
	st.Errors = maps.Clone(st.Errors)
	for k, v := range r.Errors {
		st.Errors[k] += v
	}
	st.Skipped = maps.Clone(st.Skipped)
	for k, v := range r.Skipped {
		st.Skipped[k] += v
	}
	if st.Expired > 0 {
		st.Skipped[SkipExpired] = st.Expired
	}
	return st
}

// CheckTarget checks the master of now against what it acknowledged.
func (w *Sentinel) CheckTarget(ctx context.Context) error { return w.cur.Load().CheckTarget(ctx) }
