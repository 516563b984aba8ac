package target

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/aof"
)

// StartOplog opens the ordered oplog connection, SELECTs db, and sets the applied position to
// (offset, db): where the stream resumes. Apply calls it with (0, 0) if it was not called.
//
// With checkpoints, the position is stored at once: a crash before the first batch then
// resumes from the snapshot's end instead of needing a new full sync.
func (s *Single) StartOplog(ctx context.Context, offset int64, db int) error {
	if s.oplog != nil {
		return fmt.Errorf("target %s: oplog already started", s.opts.Conn.Addr)
	}
	if err := s.dialOplog(ctx, offset, db); err != nil {
		return err
	}
	if !s.batching() {
		return nil
	}
	cp := Checkpoint{Offset: offset, DB: db}
	if s.opts.Replid != nil {
		cp.Replid = s.opts.Replid()
	}
	if cp.Replid == "" {
		return nil // a file's stream, or a source without replication ID: nothing to resume
	}
	cmds := [][]string{{"SET", s.opts.CheckpointKey, cp.String()}}
	if db != 0 {
		cmds = [][]string{{"SELECT", "0"}, cmds[0], {"SELECT", strconv.Itoa(db)}}
	}
	for _, c := range cmds {
		if _, err := s.oplog.Do(ctx, c...); err != nil {
			s.oplog.Close() // StartOplog is called again once the target answers
			s.mu.Lock()
			s.oplog = nil
			s.mu.Unlock()
			return fmt.Errorf("target %s: storing the checkpoint: %w", s.opts.Conn.Addr, err)
		}
	}
	s.mu.Lock()
	s.ackedCP, s.acked = cp, true
	s.sentEnd = max(s.sentEnd, offset)
	s.mu.Unlock()
	return nil
}

func (s *Single) dialOplog(ctx context.Context, offset int64, db int) error {
	co := s.opts.Conn
	co.Logger = s.opts.Logger
	co.Name = "oplog"
	co.DB = db
	co.OnReply = s.onOplogReply
	c, err := Dial(ctx, co)
	if err != nil {
		return err
	}
	s.oplogID = 0
	if s.batching() {
		// Its id lets Reconnect kill it on the server before reading the checkpoint (Redis 5+).
		if r, err := c.Do(ctx, "CLIENT", "ID"); err == nil && r.Kind == KindInteger {
			s.oplogID = r.Int
		} else if refused(err) {
			// Some managed services refuse CLIENT. Without the kill, a batch still on its way
			// when the connection breaks can run after the checkpoint is read: resent, it runs
			// twice.
			s.log.Warn("the target refuses CLIENT ID: after a broken connection, a batch still in flight may be applied twice",
				zap.Error(err))
		}
	}
	s.oplogDB = db
	s.inTx = false
	s.batchOpen = false
	s.mu.Lock()
	s.oplog = c
	s.applied, s.appliedDB = offset, db
	s.pending = 0
	s.hasSkip = false
	s.stalled = false
	s.failed = false
	s.mu.Unlock()
	return nil
}

// Reconnect replaces a broken oplog connection with a new one that SELECTs the db of the applied
// position, and returns that position: the caller resends the stream from offset.
//
// After ErrRetry it first waits a backoff (50 ms doubling up to 2 s over successive calls).
func (s *Single) Reconnect(ctx context.Context) (offset int64, db int, err error) {
	s.mu.Lock()
	stalled := s.stalled
	s.mu.Unlock()
	if stalled {
		s.stalls++
		tm := time.NewTimer(min(retryFirst<<min(s.stalls-1, 6), retryMax))
		select {
		case <-tm.C:
		case <-ctx.Done():
			tm.Stop()
			offset, db = s.Applied()
			return offset, db, ctx.Err()
		}
	} else {
		s.stalls = 0
	}
	if s.oplog != nil {
		s.oplog.Close()
	}
	s.mu.Lock()
	offset, db = s.applied, s.appliedDB
	s.oplog = nil
	s.mu.Unlock()
	if s.opts.CheckpointKey != "" {
		// A batch's EXEC can run on the target and its reply be lost with the connection: the
		// checkpoint it stored, not what came back, says where the stream stands. The old
		// connection is killed on the server first, so that no batch of it runs after the read.
		// A checkpoint past every batch sent is not this stream's (its replid is not compared:
		// a followed failover changes it between two batches).
		cp, ok, err := readCheckpoint(ctx, s.opts.Conn, s.opts.CheckpointKey, s.oplogID)
		bad := errors.Is(err, ErrBadCheckpoint)
		if bad {
			s.log.Warn("checkpoint not usable: resending from the last answered command", zap.Error(err))
			ok, err = false, nil
		}
		if err != nil {
			return offset, db, err
		}
		if lost := s.lostCheckpoint(s.lastAcked(), cp, ok); lost != nil && !bad {
			return offset, db, lost
		}
		if ok && cp.Offset > offset && cp.Offset <= s.sentEnd {
			s.log.Info("the target applied more than it answered before the connection broke: resending after its checkpoint",
				zap.Int64("answered", offset), zap.Int64("checkpoint", cp.Offset), zap.Int("db", cp.DB))
			offset, db = cp.Offset, cp.DB
		}
	}
	if err := s.dialOplog(ctx, offset, db); err != nil {
		return offset, db, err
	}
	s.log.Info("oplog reconnected", zap.Int64("offset", offset), zap.Int("db", db))
	return offset, db, nil
}

// isCmd reports whether name is cmd, ignoring ASCII case; cmd is upper case.
func isCmd(name []byte, cmd string) bool {
	if len(name) != len(cmd) {
		return false
	}
	for i := range len(name) {
		c := name[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != cmd[i] {
			return false
		}
	}
	return true
}

// Apply forwards one command of the replication stream, exactly as its Raw bytes, on the ordered
// oplog connection; end is the replication offset just after it. SELECT is tracked, MULTI/EXEC
// pass unchanged, PING/REPLCONF (control) and PUBLISH/SPUBLISH (pubsub) are skipped and counted.
// It returns an error wrapping ErrBroken when the oplog connection broke, or ErrRetry when the
// target refused a command for now (LOADING, BUSY, TRYAGAIN): Reconnect, then resend from the
// offset it returns.
func (s *Single) Apply(cmd *aof.Command, end int64) error {
	if s.oplog == nil {
		if err := s.dialOplog(s.ctx, 0, 0); err != nil {
			return err
		}
	}
	s.mu.Lock()
	stalled := s.stalled
	s.mu.Unlock()
	if stalled {
		return fmt.Errorf("target %s: apply at offset %d: %w", s.opts.Conn.Addr, end, ErrRetry)
	}
	if err := s.oplog.Err(); err != nil {
		// Broken while the stream was quiet: a command skipped here (the master's PING) must
		// say so too, or the commands that were in flight wait for the next write.
		return fmt.Errorf("target %s: apply at offset %d: %w", s.opts.Conn.Addr, end, err)
	}
	if len(cmd.Args) == 0 && !cmd.Big() {
		s.skip(SkipEmpty, cmd, end)
		return nil
	}
	if s.batching() && s.takePoisoned(end) {
		s.skip(ReasonQueueRefused, cmd, end)
		return nil
	}
	name := argOrNil(cmd.Args, 0) // nil: a big command whose name was too long to hold
	kind := kindOplog
	switch len(name) {
	case 4:
		switch {
		case isCmd(name, "PING"):
			s.skip(SkipControl, cmd, end)
			return nil
		case isCmd(name, "EXEC"):
			s.inTx = false
			if s.inBatch(end) {
				return s.maybeCloseBatch()
			}
		}
	case 5:
		if isCmd(name, "MULTI") {
			s.inTx = true
			if s.batching() {
				if err := s.openBatch(); err != nil {
					return fmt.Errorf("target %s: apply at offset %d: %w", s.opts.Conn.Addr, end, err)
				}
				s.inBatch(end)
				return nil
			}
		}
	case 6:
		if isCmd(name, "SELECT") && len(cmd.Args) == 2 {
			if db, ok := parseInt(cmd.Args[1]); ok && db >= 0 && db < 1<<31 {
				s.oplogDB = int(db)
			}
		}
	case 7:
		switch {
		case isCmd(name, "PUBLISH"):
			s.skip(SkipPubSub, cmd, end)
			return nil
		case isCmd(name, "DISCARD"):
			s.inTx = false
		}
	case 8:
		switch {
		case isCmd(name, "REPLCONF"):
			s.skip(SkipControl, cmd, end)
			return nil
		case isCmd(name, "SPUBLISH"):
			s.skip(SkipPubSub, cmd, end)
			return nil
		}
	}
	if s.inTx {
		kind = kindOplogTx
	}
	// A re-chunked command outside the source's transactions is a batch of its own: the EXEC's
	// errors are then its chunks' only, and count once.
	ownBatch := s.batching() && cmd.Big() && !s.inTx && isChunked(cmd)
	if ownBatch && s.batchOpen && s.batchCmds > 0 {
		if err := s.closeBatch(); err != nil {
			return fmt.Errorf("target %s: closing a batch at offset %d: %w", s.opts.Conn.Addr, s.batchEnd, err)
		}
	}
	if s.batching() {
		if err := s.openBatch(); err != nil {
			return fmt.Errorf("target %s: apply at offset %d: %w", s.opts.Conn.Addr, end, err)
		}
		kind = kindOplogTx
	}
	var key []byte
	if len(cmd.Args) > 1 {
		key = cmd.Args[1]
	}
	var err error
	if cmd.Big() {
		err = s.sendBig(cmd, end, kind, key)
	} else {
		s.mu.Lock()
		s.pending++
		s.mu.Unlock()
		if err = s.oplog.SendRaw(s.ctx, Tag{Offset: end, DB: s.oplogDB, Kind: kind, Key: key}, cmd.Raw); err != nil {
			s.mu.Lock()
			s.pending--
			s.mu.Unlock()
		}
	}
	if err != nil {
		return fmt.Errorf("target %s: apply at offset %d: %w", s.opts.Conn.Addr, end, err)
	}
	if s.batching() {
		s.batchEnd = end
		s.batchCmds++
		s.batchBytes += cmd.N
		if ownBatch {
			s.batchOneBig = true
			if err := s.closeBatch(); err != nil {
				return fmt.Errorf("target %s: closing a batch at offset %d: %w", s.opts.Conn.Addr, s.batchEnd, err)
			}
			return nil
		}
		return s.maybeCloseBatch()
	}
	return nil
}

// maybeCloseBatch closes the batch once it is big enough, outside the source's transactions.
func (s *Single) maybeCloseBatch() error {
	if s.inTx || (s.batchCmds < batchMaxCmds && s.batchBytes < batchMaxBytes) {
		return nil
	}
	if err := s.closeBatch(); err != nil {
		return fmt.Errorf("target %s: closing a batch at offset %d: %w", s.opts.Conn.Addr, s.batchEnd, err)
	}
	return nil
}

// skip counts a command that is not forwarded; the applied offset passes it once everything
// sent before it is acknowledged.
func (s *Single) skip(reason string, cmd *aof.Command, end int64) {
	inBatch := s.inBatch(end)
	s.mu.Lock()
	s.skipped[reason]++
	// After a failed or refused command the applied offset must stay before it, whatever is
	// skipped after it: the resend starts there.
	if !s.inTx && !inBatch && !s.failed && !s.stalled {
		if s.pending == 0 {
			s.applied, s.appliedDB = end, s.oplogDB
		} else {
			s.skipEnd, s.skipDB, s.hasSkip = end, s.oplogDB, true
		}
	}
	s.mu.Unlock()
	if ce := s.log.Check(zap.DebugLevel, "command skipped"); ce != nil {
		var name, key []byte
		if len(cmd.Args) > 0 {
			name = cmd.Args[0]
		}
		if len(cmd.Args) > 1 {
			key = cmd.Args[1]
		}
		ce.Write(zap.String("reason", reason), zap.ByteString("command", bytes.ToUpper(name)),
			zap.String("key", keyString(key)), zap.Int64("offset", end))
	}
}

// onOplogReply runs on the oplog connection's reply reader, in stream order.
func (s *Single) onOplogReply(t *Tag, r *Reply) {
	switch r.Kind {
	case KindFailed:
		s.mu.Lock()
		s.pending--
		s.failed = true
		s.errs[ReasonBroken]++
		s.lastErr = r.Err.Error()
		s.mu.Unlock()
		return
	case KindError:
		re := r.Err.(*ReplyError)
		if re.Retryable() {
			s.refused(t, re)
			return
		}
		if s.batching() && t.Kind == kindOplogTx && t.Offset > 0 {
			// (Every chunk of a big command is refused alike: counted once, by its offset.)
			// Refused while queueing: the batch will abort; left out when it is resent.
			s.queueRefused(t, re)
			s.mu.Lock()
			s.pending--
			s.mu.Unlock()
			return
		}
		if t.Kind == kindBatchExec {
			s.refused(t, re) // EXECABORT: nothing of the batch ran; resend it from Applied()
			return
		}
		if t.Offset == 0 || t.Offset != s.errEnd { // the chunks of one command: counted once
			s.countErr(re.Prefix, t, re)
		}
		s.errEnd = t.Offset
	}
	if r.NestedErrs > 0 {
		n := uint64(r.NestedErrs)
		if t.Kind == kindBatchExec && t.Part > 0 {
			n = 1 // a batch of one big command's chunks: refused alike, counted once
		}
		s.mu.Lock()
		s.errs[r.NestedErr.Prefix] += n
		s.lastErr = r.NestedErr.Msg
		s.mu.Unlock()
		s.log.Warn("target error inside transaction", zap.String("reason", r.NestedErr.Prefix),
			zap.Int("count", r.NestedErrs), zap.Int64("offset", t.Offset), zap.Error(r.NestedErr))
	}
	s.mu.Lock()
	s.pending--
	if s.stalled {
		// Applied after a refused command: a resend from Applied() runs it again.
		if t.Part == 0 { // a command's last chunk, or a command sent whole
			s.errs[ReasonAfterRefusal]++
		}
		s.mu.Unlock()
		s.log.Warn("command applied after a refused one; a resend repeats it",
			zap.String("key", keyString(t.Key)), zap.Int64("offset", t.Offset))
		return
	}
	if t.Kind != kindOplogTx {
		s.applied, s.appliedDB = t.Offset, t.DB
	}
	if t.Kind == kindBatchExec {
		s.ackedCP, s.acked = Checkpoint{Offset: t.Offset, DB: t.DB}, true
	}
	if s.pending == 0 && s.hasSkip {
		if s.skipEnd > s.applied {
			s.applied, s.appliedDB = s.skipEnd, s.skipDB
		}
		s.hasSkip = false
	}
	s.mu.Unlock()
}

// refused freezes the applied position before a command the target refused for now (LOADING,
// BUSY, TRYAGAIN): commands behind it cannot be reordered around it, so the stream is resent from
// Applied() after Reconnect.
func (s *Single) refused(t *Tag, re *ReplyError) {
	s.mu.Lock()
	s.pending--
	first := !s.stalled
	if first {
		s.stalled = true
		s.errs["retry_"+re.Prefix]++
		s.lastErr = re.Msg
	}
	s.mu.Unlock()
	if first {
		s.log.Warn("target refused a command for now; the stream will be resent from the applied offset",
			zap.String("reason", re.Prefix), zap.String("key", keyString(t.Key)), zap.Int64("offset", t.Offset))
	}
}

// Applied returns the replication offset just after the last command whose reply came back (or
// that was skipped with everything before it acknowledged), and the db in force there.
func (s *Single) Applied() (offset int64, db int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied, s.appliedDB
}

// WaitOplog returns when every command applied so far has its reply.
func (s *Single) WaitOplog(ctx context.Context) error {
	if s.oplog == nil {
		return nil
	}
	return s.oplog.Drain(ctx)
}

// Skip passes a command of the stream without sending it (the daemon's key filter), counted
// under reason; the applied offset moves past it like past a PING.
func (s *Single) Skip(cmd *aof.Command, end int64, reason string) {
	s.skip(reason, cmd, end)
}

// CheckTarget reads the checkpoint and compares it with the last one the target acknowledged
// before the read: batches go on meanwhile, and one acknowledged after it is no loss.
func (s *Single) CheckTarget(ctx context.Context) error {
	acked := s.lastAcked()
	if !s.batching() || acked == nil {
		return nil
	}
	cp, ok, err := ReadCheckpoint(ctx, s.opts.Conn, s.opts.CheckpointKey)
	if errors.Is(err, ErrBadCheckpoint) {
		return nil // there, but not one to compare: not a loss
	}
	if err != nil {
		return err
	}
	return s.lostCheckpoint(acked, cp, ok)
}

// lastAcked is the checkpoint the target last acknowledged, nil when none.
func (s *Single) lastAcked() *Checkpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.acked {
		return nil
	}
	cp := s.ackedCP
	return &cp
}

// lostCheckpoint says whether the target's checkpoint (found: ok) shows it lost what it had
// acknowledged (acked; nil: nothing yet): gone, or behind it.
func (s *Single) lostCheckpoint(acked *Checkpoint, cp Checkpoint, ok bool) error {
	switch {
	case acked == nil:
		return nil
	case !ok:
		return fmt.Errorf("target %s: the checkpoint %s is gone (acknowledged at offset %d): %w",
			s.opts.Conn.Addr, s.opts.CheckpointKey, acked.Offset, ErrTargetLost)
	case cp.Offset < acked.Offset:
		return fmt.Errorf("target %s: the checkpoint %s is at offset %d, behind the %d it acknowledged: %w",
			s.opts.Conn.Addr, s.opts.CheckpointKey, cp.Offset, acked.Offset, ErrTargetLost)
	}
	return nil
}
