package source

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rmt-project/rmt/aof"
	"go.uber.org/zap"
)

// maxPendingEvents bounds the events kept for a daemon that does not read Events: past it the
// oldest Disconnected events are dropped (FullSync and Continue never are).
const maxPendingEvents = 256

// Link is a replica link to one master. Create it with NewLink, start it with Run.
type Link struct {
	opts LinkOptions
	log  *zap.Logger
	dial func(ctx context.Context) (net.Conn, error) // tests replace the dialer

	running atomic.Bool

	spMu  sync.Mutex
	sp    *aof.Spool
	spErr error

	events  chan Event
	evMu    sync.Mutex
	pending []Event
	evWake  chan struct{}

	// replid is the replication id of the spool's stream; "" until a snapshot or a resume
	// point gives one. Only the Run goroutine touches it (Stats reads st.Replid).
	replid string
	// copier knows where the stream stands at the spool's end (inside a command, perhaps), from
	// one connection to the next. Only the Run goroutine touches it, and lastFullSync,
	// fullSyncing: the session is receiving a snapshot; fullSyncFailures counts the full
	// syncs that failed in a row (their backoff). Only the Run goroutine touches them.
	fullSyncing      bool
	fullSyncFailures int
	// lastResync and resyncDelay (the resync backoff).
	copier       *aof.Copier
	lastFullSync time.Time
	lastResync   time.Time
	resyncDelay  time.Duration

	resyncMu      sync.Mutex
	resyncPending bool
	resyncReason  error

	state    atomic.Int32
	rdbBytes atomic.Int64
	lastIO   atomic.Int64
	mu       sync.Mutex
	st       LinkStats // the fields not kept in atomics

	addrMu     sync.Mutex
	addr       string   // the master's address: Options.Addr until Follow
	conn       net.Conn // the session's connection, closed by Follow
	cancelDial func()   // ends the session's dial in progress, for Follow
	kick       chan struct{}
}

// NewLink returns a link configured by opts. It does no I/O; Run connects.
func NewLink(opts LinkOptions) *Link {
	opts.setDefaults()
	l := &Link{
		opts:   opts,
		log:    opts.Logger.With(zap.String("node", opts.Addr)),
		events: make(chan Event, 16),
		evWake: make(chan struct{}, 1),
		addr:   opts.Addr,
		kick:   make(chan struct{}, 1),
		copier: aof.NewCopier(copierHold),
	}
	l.st.RDBTotal = -1
	l.st.DownSinceUnixMs = time.Now().UnixMilli() // down until the first stream
	return l
}

// Resync drops the link's snapshot and spool and makes it ask the master for a full sync
// (`PSYNC ? -1`): the daemon calls it when a snapshot fails to load (corrupt, cut short), since a
// partial resync would only replay a stream on top of it. The current connection is closed at
// once. The full sync waits for the resync backoff: at least ResyncBackoffMin after the previous
// full sync, doubling with each Resync up to ResyncBackoffMax, so that a snapshot that keeps
// failing does not make the master fork every few seconds. Resyncs before it starts make one.
// The RDBStarted and FullSync events of the new snapshot follow; Stats counts Resyncs and keeps
// the reason. Safe to call from any goroutine.
func (l *Link) Resync(reason error) {
	if reason == nil {
		reason = errors.New("resync asked")
	}
	l.resyncMu.Lock()
	l.resyncPending, l.resyncReason = true, reason
	l.resyncMu.Unlock()
	l.update(func(s *LinkStats) { s.LastResyncError = reason.Error() })
	l.log.Warn("resync asked: dropping the snapshot and the spool for a new full sync", zap.Error(reason))
	l.addrMu.Lock()
	conn, cancelDial := l.conn, l.cancelDial
	l.addrMu.Unlock()
	if cancelDial != nil {
		cancelDial()
	}
	if conn != nil {
		conn.Close()
	}
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// resyncAsked returns the reason of a pending Resync, nil if there is none.
func (l *Link) resyncAsked() error {
	l.resyncMu.Lock()
	defer l.resyncMu.Unlock()
	if !l.resyncPending {
		return nil
	}
	return l.resyncReason
}

// resync carries out a pending Resync before the next connection: it waits for the resync
// backoff, then drops the snapshots, the spool and the replid, so that the next PSYNC is
// `PSYNC ? -1`.
func (l *Link) resync(ctx context.Context, sp *aof.Spool) error {
	reason := l.resyncAsked()
	if reason == nil {
		return nil
	}
	now := time.Now()
	if l.lastResync.IsZero() || now.Sub(l.lastResync) > 2*l.opts.ResyncBackoffMax {
		l.resyncDelay = l.opts.ResyncBackoffMin
	} else {
		l.resyncDelay = min(2*l.resyncDelay, l.opts.ResyncBackoffMax)
	}
	at := l.lastFullSync.Add(l.resyncDelay)
	if wait := at.Sub(now); wait > 0 {
		l.setState(StateBackoff)
		l.update(func(s *LinkStats) { s.NextResyncUnixMs = at.UnixMilli() })
		l.log.Info("resync: waiting for the resync backoff", zap.Duration("wait", wait), zap.Duration("backoff", l.resyncDelay))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	l.resyncMu.Lock()
	reason, l.resyncPending, l.resyncReason = l.resyncReason, false, nil
	l.resyncMu.Unlock()
	l.lastResync = time.Now()
	l.replid = ""
	l.copier.Restart()
	l.update(func(s *LinkStats) { s.Resyncs++; s.Replid = ""; s.NextResyncUnixMs = 0 })
	if err := sp.Reset(sp.End()); err != nil {
		return fmt.Errorf("source: %s: resync: %w", l.Addr(), err)
	}
	if err := removeOldRDBs(l.opts.Dir, ""); err != nil {
		l.log.Warn("resync: removing the snapshots", zap.Error(err))
	}
	l.log.Warn("resync: snapshot and spool dropped; asking the master for a full sync", zap.Error(reason),
		zap.Duration("backoff", l.resyncDelay))
	return nil
}

// Follow makes the link replicate from addr from now on: the master's replica took over (a
// failover). The current connection is closed and the link reconnects at once, asking addr for a
// partial resync from the same replication ID and offset, which a promoted replica grants
// (PSYNC2); otherwise it gets a full sync as from any master.
func (l *Link) Follow(addr string) {
	l.addrMu.Lock()
	if addr == l.addr {
		l.addrMu.Unlock()
		return
	}
	old, conn, cancelDial := l.addr, l.conn, l.cancelDial
	l.addr = addr
	l.addrMu.Unlock()
	l.log.Warn("following the master at a new address", zap.String("was", old), zap.String("now", addr))
	if cancelDial != nil {
		cancelDial() // a dead host's dial could otherwise hold the link for its whole timeout
	}
	if conn != nil {
		conn.Close()
	}
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Addr is the address the link replicates from.
func (l *Link) Addr() string {
	l.addrMu.Lock()
	defer l.addrMu.Unlock()
	return l.addr
}

// setConn records the session's dial cancel and then connection for Follow to end; it reports
// false, and records nothing, when the address changed since addr was read.
func (l *Link) setConn(addr string, cancelDial func(), c net.Conn) bool {
	l.addrMu.Lock()
	defer l.addrMu.Unlock()
	if l.addr != addr {
		return false
	}
	l.cancelDial, l.conn = cancelDial, c
	return true
}

// Events returns the link's events. The channel is closed when Run returns.
func (l *Link) Events() <-chan Event { return l.events }

// Spool returns the spool of the replication stream (Dir/oplog), opening it if needed, or nil
// if it cannot be opened (Run then returns the error).
func (l *Link) Spool() *aof.Spool {
	sp, _ := l.openSpool()
	return sp
}

func (l *Link) openSpool() (*aof.Spool, error) {
	l.spMu.Lock()
	defer l.spMu.Unlock()
	if l.sp == nil && l.spErr == nil {
		l.sp, l.spErr = aof.OpenSpool(filepath.Join(l.opts.Dir, "oplog"), aof.SpoolOptions{
			SegmentBytes: l.opts.SpoolSegmentBytes,
			MaxBytes:     l.opts.MaxSpoolBytes,
		})
	}
	return l.sp, l.spErr
}

// Close closes the spool. Call it after Run has returned and the spool's readers are done.
func (l *Link) Close() error {
	l.spMu.Lock()
	defer l.spMu.Unlock()
	if l.sp == nil {
		return nil
	}
	return l.sp.Close()
}

// Stats returns a snapshot of the link.
func (l *Link) Stats() LinkStats {
	l.mu.Lock()
	s := l.st
	l.mu.Unlock()
	s.Addr = l.Addr()
	s.State = State(l.state.Load())
	s.RDBBytes = l.rdbBytes.Load()
	s.LastIOUnixMs = l.lastIO.Load()
	l.spMu.Lock()
	if l.sp != nil {
		s.ReceivedOffset = l.sp.Synced()
	}
	l.spMu.Unlock()
	return s
}

func (l *Link) setState(s State) { l.state.Store(int32(s)) }

func (l *Link) update(f func(s *LinkStats)) {
	l.mu.Lock()
	f(&l.st)
	l.mu.Unlock()
}

// linkDown records that the link is not streaming (any more), and why.
func (l *Link) linkDown(err error) {
	now := time.Now().UnixMilli()
	l.update(func(s *LinkStats) {
		if err != nil {
			s.LastError = err.Error()
			if errors.Is(err, errBadReply) || errors.Is(err, aof.ErrProtocol) {
				s.ProtocolErrors++
			}
		}
		if s.MasterLinkUp || s.DownSinceUnixMs == 0 {
			s.DownSinceUnixMs = now
		}
		s.MasterLinkUp = false
	})
}

// Run keeps the link up until ctx is done: connect, handshake, PSYNC, snapshot, stream; on any
// error it reports Disconnected, waits (exponential backoff) and starts again, asking for a
// partial resync first. It returns nil when ctx is done, or an error if the spool cannot be
// opened. Run may be called once.
func (l *Link) Run(ctx context.Context) error {
	if !l.running.CompareAndSwap(false, true) {
		return errors.New("source: Link.Run called twice")
	}
	defer close(l.events) // after the forwarder has stopped (defers run last-in first-out)
	sp, err := l.openSpool()
	if err != nil {
		return fmt.Errorf("source: %s: %w", l.opts.Addr, err)
	}
	var fwd sync.WaitGroup
	fwd.Go(func() { l.forwardEvents(ctx) })
	defer fwd.Wait()
	if err := l.applyResume(ctx, sp); err != nil {
		return fmt.Errorf("source: %s: resume: %w", l.opts.Addr, err)
	}

	backoff := l.opts.BackoffMin
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			l.update(func(s *LinkStats) { s.Reconnects++ })
		}
		progress, err := false, l.resync(ctx, sp)
		if err == nil {
			progress, err = l.session(ctx, sp)
		}
		if ctx.Err() != nil {
			break
		}
		// Back off again from the start only after a connection that got something done: a
		// master that sends the same bad bytes at every partial resync is not hammered.
		if progress && !errors.Is(err, aof.ErrSpoolFull) {
			backoff = l.opts.BackoffMin // a full spool stays full until the daemon trims it
		}
		if reason := l.resyncAsked(); reason != nil {
			err = fmt.Errorf("source: %s: resync asked (%v): %w", l.Addr(), reason, err)
		}
		if l.fullSyncing {
			// A full sync that failed (no room on disk, the connection cut): each retry makes
			// the master fork for a new snapshot, so retries wait longer and longer.
			l.fullSyncing = false
			l.fullSyncFailures++
			backoff = max(backoff, min(l.opts.FullSyncBackoffMin<<min(l.fullSyncFailures-1, 16), l.opts.FullSyncBackoffMax))
		}
		l.linkDown(err)
		l.log.Error("replica link down; retrying", zap.Error(err), zap.Duration("backoff", backoff),
			zap.String("replid", l.replid), zap.Int64("received", sp.Synced()))
		l.emit(Disconnected{Err: err})
		l.setState(StateBackoff)
		if spoolFull(err) {
			if rerr := sp.Rewind(); rerr != nil { // what did not reach the disk is asked for again
				l.log.Error("rewinding the spool after a failed write", zap.Error(rerr))
			}
			// A full spool (max_spool_bytes, or a full disk) stays full until the target applies
			// what it holds: reconnecting before would only fill it again, and once the master's
			// backlog is overrun, make it fork for a snapshot the paused target cannot take.
			l.waitForRoom(ctx, sp)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		case <-l.kick: // Follow: the new address, now; Resync: its own backoff
			t.Stop()
			backoff = l.opts.BackoffMin
		}
		if ctx.Err() != nil {
			break
		}
		backoff = min(backoff*2, l.opts.BackoffMax)
	}
	if err := sp.Sync(); err != nil {
		l.log.Error("syncing the spool at shutdown", zap.Error(err))
	}
	l.linkDown(nil)
	return nil
}

// applyResume decides, from the resume point and what the spool holds, where the first PSYNC
// asks to start. The resume offset is the last byte the daemon has dealt with (a command's
// end): the spool must hold every byte after it. The spool may end inside a command (a
// connection dropped in the middle of a big one, or rmtd was killed): the Copier finds where,
// scanning the spool from the resume offset.
func (l *Link) applyResume(ctx context.Context, sp *aof.Spool) error {
	r := l.opts.Resume
	if r == nil || r.Replid == "" {
		return nil
	}
	if !validReplid(r.Replid) || r.Offset < 0 || r.Offset > maxOffset {
		l.log.Warn("the resume point is not a replid and an offset: full sync",
			zap.String("resume_replid", truncate(r.Replid, 64)), zap.Int64("resume_offset", r.Offset))
		return nil
	}
	switch {
	case r.Offset < sp.Start():
		l.log.Warn("the spool starts after the resume offset: full sync",
			zap.Int64("resume_offset", r.Offset), zap.Int64("spool_start", sp.Start()))
		return nil
	case r.Offset > sp.End():
		l.log.Warn("the spool ends before the resume offset: restarting it there",
			zap.Int64("resume_offset", r.Offset), zap.Int64("spool_end", sp.End()))
		if err := sp.Reset(r.Offset); err != nil {
			return err
		}
	default:
		if err := l.rescan(ctx, sp, r.Offset); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			l.log.Warn("the spool after the resume offset is not a stream of commands: dropping it, to ask the master for it again",
				zap.Int64("resume_offset", r.Offset), zap.Int64("spool_end", sp.End()), zap.Error(err))
			if err := sp.Reset(r.Offset); err != nil {
				return err
			}
			l.copier.Restart()
		}
	}
	l.replid = r.Replid
	l.update(func(s *LinkStats) { s.Replid = r.Replid })
	return nil
}

// rescan puts the Copier where the spool's stream stands at its end, reading it from offset
// from, a command's start.
func (l *Link) rescan(ctx context.Context, sp *aof.Spool, from int64) error {
	end := sp.Synced()
	if end != sp.End() {
		return fmt.Errorf("the spool holds %d bytes not fsynced", sp.End()-end)
	}
	sr, err := sp.NewReader(ctx, from)
	if err != nil {
		return err
	}
	defer sr.Close()
	if err := l.copier.Scan(io.LimitReader(sr, end-from), from); err != nil {
		return err
	}
	if p := l.copier.Pending(); p > 0 {
		l.log.Info("the spool ends inside a command: the stream goes on there", zap.Int64("spool_end", end),
			zap.Int64("command_start", end-p))
	}
	return nil
}

// session runs one connection to its end. progress says whether it got a snapshot or spooled
// any byte of the stream.
func (l *Link) session(ctx context.Context, sp *aof.Spool) (progress bool, err error) {
	if l.copier.Lost() {
		// A disk that failed in the middle of an append: what did not reach it is asked for
		// again, and the spool's end found again.
		if err := sp.Rewind(); err != nil {
			return false, fmt.Errorf("source: %s: %w", l.Addr(), err)
		}
		from := sp.End() - l.copier.Pending()
		if err := l.rescan(ctx, sp, from); err != nil {
			return false, fmt.Errorf("source: %s: the spool's end after a failed write (from offset %d): %w", l.Addr(), from, err)
		}
	}
	addr := l.Addr()
	l.setState(StateConnecting)
	dialCtx, cancelDial := context.WithCancel(ctx)
	defer cancelDial()
	defer l.setConn(addr, nil, nil)
	if !l.setConn(addr, cancelDial, nil) {
		return false, fmt.Errorf("source: %s: the master moved (Follow)", addr)
	}
	conn, err := l.dialConn(dialCtx, addr)
	if err != nil {
		return false, fmt.Errorf("source: connecting to %s: %w", addr, err)
	}
	defer conn.Close()
	if !l.setConn(addr, nil, conn) {
		return false, fmt.Errorf("source: %s: the master moved (Follow)", addr)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	rc := newReplConn(conn, l.opts.Timeout, &l.lastIO)

	l.setState(StateHandshake)
	if err := l.handshake(rc); err != nil {
		return false, fmt.Errorf("source: handshake with %s: %w", addr, err)
	}
	replid, from := l.replid, sp.End()
	rep, err := l.psync(rc, replid, from)
	if err != nil {
		return false, fmt.Errorf("source: %s: %w", addr, err)
	}

	var diskless bool
	switch rep.Kind {
	case psyncFull:
		l.lastFullSync = time.Now() // the master forks now
		l.update(func(s *LinkStats) { s.LastFullSyncUnixMs = l.lastFullSync.UnixMilli() })
		if replid != "" {
			l.log.Warn("the master refused a partial resync (its backlog no longer holds the offset, or its replication ID changed): full sync",
				zap.String("asked_replid", replid), zap.Int64("asked_offset", from+1), zap.String("replid", rep.Replid))
		}
		l.setState(StateRDBTransfer)
		if diskless, err = l.fullSync(rc, sp, rep); err != nil {
			return false, fmt.Errorf("source: full sync from %s (replid %s, offset %d): %w", addr, rep.Replid, rep.Offset, err)
		}
		progress = true
	case psyncContinue:
		if rep.Replid != "" && rep.Replid != replid {
			l.log.Info("master changed its replication id", zap.String("old_replid", replid), zap.String("replid", rep.Replid),
				zap.Int64("offset", from))
			l.replid = rep.Replid
		}
		l.update(func(s *LinkStats) { s.PartialSyncs++; s.Replid = l.replid })
		l.log.Info("partial resync", zap.String("replid", l.replid), zap.Int64("offset", from))
		l.emit(Continue{Replid: l.replid, Offset: from})
	}

	l.setState(StateStreaming)
	l.update(func(s *LinkStats) { s.MasterLinkUp = true; s.DownSinceUnixMs = 0; s.LastError = "" })
	streamed, err := l.stream(ctx, rc, sp, diskless)
	return progress || streamed, err
}

// fullSync receives the snapshot announced by +FULLRESYNC, then restarts the spool at its
// offset. Until the snapshot is safely on disk the old replid and spool stay as they were, so a
// failed transfer never leads to a partial resync without a snapshot.
func (l *Link) fullSync(rc *replConn, sp *aof.Spool, rep psyncReply) (diskless bool, err error) {
	line := rep.Header
	if line == "" {
		var err error
		if line, err = rc.readLine(); err != nil {
			return false, fmt.Errorf("reading the RDB header: %w", err)
		}
	}
	h, err := parseBulkHeader(line)
	if err != nil {
		return false, err
	}
	l.rdbBytes.Store(0)
	l.update(func(s *LinkStats) { s.RDBTotal = h.Size })
	l.log.Info("receiving snapshot", zap.String("replid", rep.Replid), zap.Int64("offset", rep.Offset),
		zap.Int64("size", h.Size), zap.Bool("diskless", h.Mark != nil))
	// The master will not continue the old stream: its spool and snapshots are useless now, and
	// their room is what the new snapshot needs. Until it is whole there is no stream to resume.
	l.fullSyncing = true
	l.replid = ""
	if err := sp.Reset(rep.Offset); err != nil {
		return false, err
	}
	l.copier.Restart()
	if err := removeOldRDBs(l.opts.Dir, ""); err != nil {
		l.log.Warn("removing older snapshots", zap.Error(err))
	}
	if err := checkRoom(l.opts.Dir, h.Size); err != nil {
		return false, err
	}
	start := time.Now()
	path, n, err := saveRDB(l.opts.Dir, rep.Replid, rep.Offset, rc.br, h, &l.rdbBytes, func(t *Transfer) {
		l.emit(RDBStarted{Replid: rep.Replid, Offset: rep.Offset, Transfer: t})
	})
	if err != nil {
		return false, err
	}
	l.replid = rep.Replid
	l.fullSyncing, l.fullSyncFailures = false, 0
	l.update(func(s *LinkStats) { s.RDBTotal = n; s.FullSyncs++; s.Replid = rep.Replid })
	l.log.Info("snapshot on disk", zap.String("path", path), zap.Int64("bytes", n), zap.Duration("took", time.Since(start)))
	l.emit(FullSync{Replid: rep.Replid, Offset: rep.Offset, RDBPath: path, RDBSize: n})
	return h.Mark != nil, nil
}

func (l *Link) dialConn(ctx context.Context, addr string) (net.Conn, error) {
	if l.dial != nil {
		return l.dial(ctx)
	}
	return dialNode(ctx, addr, &l.opts)
}

// dialNode connects to a source server at addr with o's timeout and TLS.
func dialNode(ctx context.Context, addr string, o *LinkOptions) (net.Conn, error) {
	d := net.Dialer{Timeout: o.Timeout, KeepAlive: 15 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil || o.TLS == nil {
		return c, err
	}
	cfg := o.TLS.Clone()
	if cfg.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
	}
	tc := tls.Client(c, cfg)
	hctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}

// emit queues an event for the daemon without ever blocking the caller.
func (l *Link) emit(ev Event) {
	l.evMu.Lock()
	l.pending = append(l.pending, ev)
	if len(l.pending) > maxPendingEvents {
		kept := l.pending[:0]
		dropped := false
		for _, e := range l.pending {
			if _, ok := e.(Disconnected); ok && !dropped {
				dropped = true
				continue
			}
			kept = append(kept, e)
		}
		l.pending = kept
	}
	l.evMu.Unlock()
	select {
	case l.evWake <- struct{}{}:
	default:
	}
}

// forwardEvents moves queued events to the Events channel until ctx is done.
func (l *Link) forwardEvents(ctx context.Context) {
	for {
		l.evMu.Lock()
		var ev Event
		if len(l.pending) > 0 {
			ev = l.pending[0]
			l.pending = l.pending[1:]
		}
		l.evMu.Unlock()
		if ev == nil {
			select {
			case <-l.evWake:
				continue
			case <-ctx.Done():
				return
			}
		}
		select {
		case l.events <- ev:
		case <-ctx.Done():
			return
		}
	}
}

func zapErr(err error) zap.Field { return zap.Error(err) }

// spoolFull reports whether err says the spool can take no more: its max_spool_bytes, or the
// disk under it full.
func spoolFull(err error) bool {
	return errors.Is(err, aof.ErrSpoolFull) || errors.Is(err, syscall.ENOSPC)
}

// waitForRoom waits until the daemon has applied (and trimmed) half of what the spool holds, or
// ctx ends. A spool holding nothing has nothing to wait for (the disk is full of something
// else): the usual backoff applies.
func (l *Link) waitForRoom(ctx context.Context, sp *aof.Spool) {
	held := sp.Size()
	if held == 0 {
		return
	}
	l.log.Warn("spool full: waiting for the target to apply what it holds before reading more from the master",
		zap.Int64("spool_bytes", held))
	t := time.NewTicker(spoolRoomPoll)
	defer t.Stop()
	for sp.Size() > held/2 {
		select {
		case <-ctx.Done():
			return
		case <-l.kick:
			return
		case <-t.C:
		}
	}
	l.log.Info("spool has room again: reconnecting", zap.Int64("spool_bytes", sp.Size()))
}

// spoolRoomPoll is how often a full spool is looked at for room.
const spoolRoomPoll = 500 * time.Millisecond
