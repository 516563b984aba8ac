package target

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// Exactly once: with SingleOptions.CheckpointKey set, the oplog goes to the target in
// transactions, each ending with
//
//	SELECT 0, SET <CheckpointKey> "<replid> <offset> <db>", SELECT <db>, EXEC
//
// so the target holds the commands of a batch and the position after them, or neither. After a
// crash rmtd reads that key and resends the stream from exactly there: no command is lost and none
// runs twice (an INCR applied twice is data loss too). The source's own MULTI/EXEC blocks fall
// inside one batch, never across two, so they stay atomic. A command the target refuses while
// queueing (an unknown command, a wrong arity) aborts its batch (EXECABORT); it is remembered
// by offset, counted, and left out when the batch is sent again.

// Batch bounds: a batch closes when the stream runs dry (Flush) or at these sizes.
const (
	batchMaxCmds  = 1000
	batchMaxBytes = 4 << 20
)

// ReasonQueueRefused counts commands the target refused while queueing them in a batch; they are
// left out when the batch is resent (in Stats.Errors).
const ReasonQueueRefused = "queue_refused"

// Checkpoint is a source node's position as the target last acknowledged it.
type Checkpoint struct {
	Replid string
	Offset int64 // the replication offset just after the last command applied
	DB     int   // the db in force there
}

func (c Checkpoint) String() string {
	return c.Replid + " " + strconv.FormatInt(c.Offset, 10) + " " + strconv.Itoa(c.DB)
}

// ErrBadCheckpoint is wrapped by the errors of a checkpoint value that does not parse.
var ErrBadCheckpoint = errors.New("bad checkpoint")

// ParseCheckpoint reads the value of a checkpoint key.
func ParseCheckpoint(s string) (Checkpoint, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return Checkpoint{}, fmt.Errorf("%w %q: want \"<replid> <offset> <db>\"", ErrBadCheckpoint, s)
	}
	off, err1 := strconv.ParseInt(f[1], 10, 64)
	db, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil || off < 0 || db < 0 {
		return Checkpoint{}, fmt.Errorf("%w %q: bad offset or db", ErrBadCheckpoint, s)
	}
	return Checkpoint{Replid: f[0], Offset: off, DB: db}, nil
}

// ReadCheckpoint returns the checkpoint stored under key on the target (db 0), and false when
// there is none.
func ReadCheckpoint(ctx context.Context, o Options, key string) (Checkpoint, bool, error) {
	return readCheckpoint(ctx, o, key, 0)
}

// readCheckpoint is ReadCheckpoint after, when killID is not 0, killing that client on the
// server: whatever it sent and the server has not run yet never runs, so the checkpoint read is
// the last one it will ever store.
func readCheckpoint(ctx context.Context, o Options, key string, killID int64) (Checkpoint, bool, error) {
	o.DB, o.OnReply, o.Name = 0, nil, "checkpoint"
	c, err := Dial(ctx, o)
	if err != nil {
		return Checkpoint{}, false, err
	}
	defer c.Close()
	if killID != 0 {
		// An error ("No such client": it is gone, its input all run) changes nothing.
		if _, err := c.Do(ctx, "CLIENT", "KILL", "ID", strconv.FormatInt(killID, 10)); err != nil && !isReplyError(err) {
			return Checkpoint{}, false, err
		}
	}
	r, err := c.Do(ctx, "GET", key)
	if err != nil {
		return Checkpoint{}, false, err
	}
	if r.Kind == KindError {
		return Checkpoint{}, false, r.Err
	}
	if r.Kind != KindBulk || r.Str == nil {
		return Checkpoint{}, false, nil
	}
	cp, err := ParseCheckpoint(string(r.Str))
	return cp, err == nil, err
}

// ClearCheckpoint deletes the checkpoint under key: done before a snapshot is loaded, so that a
// crash in the middle of it leads to a new full sync rather than a resume over half a snapshot.
func ClearCheckpoint(ctx context.Context, o Options, key string) error {
	o.DB, o.OnReply, o.Name = 0, nil, "checkpoint"
	c, err := Dial(ctx, o)
	if err != nil {
		return err
	}
	defer c.Close()
	r, err := c.Do(ctx, "DEL", key)
	if err != nil {
		return err
	}
	if r.Kind == KindError {
		return r.Err
	}
	return nil
}

// openBatch sends MULTI, once per batch.
func (s *Single) openBatch() error {
	if s.batchOpen {
		return nil
	}
	s.mu.Lock()
	s.pending++
	s.mu.Unlock()
	if err := s.oplog.Send(s.ctx, Tag{Kind: kindOplogTx}, []byte("MULTI")); err != nil {
		s.mu.Lock()
		s.pending--
		s.mu.Unlock()
		return err
	}
	s.batchOpen, s.batchCmds, s.batchBytes = true, 0, 0
	return nil
}

// Flush closes the open batch, if the source's own transaction is not in the middle of it: the
// daemon calls it when the stream has no more bytes for now, so nothing waits for a full batch.
func (s *Single) Flush() error {
	if !s.batchOpen || s.inTx || s.oplog == nil {
		return nil
	}
	return s.closeBatch()
}

// closeBatch stores the position after the batch and sends EXEC, whose reply moves Applied.
func (s *Single) closeBatch() error {
	cp := Checkpoint{Offset: s.batchEnd, DB: s.oplogDB}
	if s.opts.Replid != nil {
		cp.Replid = s.opts.Replid()
	}
	s.sentEnd = max(s.sentEnd, cp.Offset)
	var cmds [][][]byte
	if s.oplogDB != 0 {
		cmds = append(cmds, [][]byte{[]byte("SELECT"), []byte("0")})
	}
	cmds = append(cmds, [][]byte{[]byte("SET"), []byte(s.opts.CheckpointKey), []byte(cp.String())})
	if s.oplogDB != 0 {
		cmds = append(cmds, [][]byte{[]byte("SELECT"), []byte(strconv.Itoa(s.oplogDB))})
	}
	for _, args := range cmds {
		if err := s.sendOplog(Tag{Kind: kindOplogTx}, args...); err != nil {
			return err
		}
	}
	s.batchOpen = false
	exec := Tag{Kind: kindBatchExec, Offset: cp.Offset, DB: cp.DB}
	if s.batchOneBig { // see Apply: its nested errors count once
		exec.Part, s.batchOneBig = 1, false
	}
	return s.sendOplog(exec, []byte("EXEC"))
}

// kindBatchExec tags the EXEC of a batch: its reply moves the applied offset, or (EXECABORT)
// stalls the oplog until the batch is resent.
const kindBatchExec = kindRewrite + 1

// batching reports whether the oplog goes in checkpointed transactions.
func (s *Single) batching() bool { return s.opts.CheckpointKey != "" }

// inBatch extends the open batch over a command that is not sent (a skipped one, or the
// source's own MULTI/EXEC): the batch's checkpoint covers it.
func (s *Single) inBatch(end int64) bool {
	if !s.batching() || !s.batchOpen {
		return false
	}
	s.batchEnd = end
	return true
}

func (s *Single) sendOplog(t Tag, args ...[]byte) error {
	s.mu.Lock()
	s.pending++
	s.mu.Unlock()
	if err := s.oplog.Send(s.ctx, t, args...); err != nil {
		s.mu.Lock()
		s.pending--
		s.mu.Unlock()
		return err
	}
	return nil
}

// queueRefused records a command refused while queueing in a batch: its batch aborts, and the
// resend leaves it out.
func (s *Single) queueRefused(t *Tag, re *ReplyError) {
	s.mu.Lock()
	if s.poisoned == nil {
		s.poisoned = map[int64]bool{}
	}
	again := s.poisoned[t.Offset] // another chunk of the same big command
	s.poisoned[t.Offset] = true
	if !again {
		s.errs[ReasonQueueRefused]++
	}
	s.lastErr = re.Msg
	s.mu.Unlock()
	if again {
		return
	}
	s.log.Error("target refused a command in a batch; it is left out and the batch resent",
		zap.String("reason", re.Prefix), zap.String("key", keyString(t.Key)), zap.Int64("offset", t.Offset), zap.Error(re))
}

// takePoisoned reports whether the command ending at end was refused in an earlier try of its
// batch, forgetting it.
func (s *Single) takePoisoned(end int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.poisoned[end] {
		return false
	}
	delete(s.poisoned, end)
	return true
}

func isReplyError(err error) bool {
	var re *ReplyError
	return errors.As(err, &re)
}
