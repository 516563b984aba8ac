package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/daemon/status"
	"github.com/rmt-project/rmt/internal/redisfmt"
	"github.com/rmt-project/rmt/target"
)

// maxFiniteRetries bounds how many times a finite node (an aof file) reconnects to a target that
// broke or refused a command for now, before its job fails; a live node retries for as long as
// it runs.
const maxFiniteRetries = 20

// streamError is a failure to read the node's stream (as opposed to the target's).
type streamError struct{ err error }

func (e *streamError) Error() string { return e.err.Error() }
func (e *streamError) Unwrap() error { return e.err }

// replayLoop applies the stream from (offset, db) for as long as ctx lives, reconnecting to
// the target when it goes away or refuses for a while. For a finite node it returns
// errNodeDone once the whole stream has its replies.
func (p *pipeline) replayLoop(ctx context.Context, w target.Writer, offset int64, db int) error {
	bo := newBackoff()
	p.phase.Store(int32(phaseOplog))
	failures := 0
	retry := func(err error) bool {
		if errors.Is(err, target.ErrRedirected) { // a slot moving on the target: no failure
			return bo.wait(ctx)
		}
		p.fail(status.ReasonTargetConn, err)
		failures++
		return (!p.node.Finite() || failures <= maxFiniteRetries) && bo.wait(ctx)
	}
	for {
		err := w.StartOplog(ctx, offset, db)
		if err == nil {
			break
		}
		if ctx.Err() != nil || !retry(err) {
			return p.finiteFailed(err)
		}
	}
	bo.reset()
	from := offset
	for {
		err := p.replay(ctx, w, from)
		if ctx.Err() != nil {
			return nil
		}
		var se *streamError
		switch {
		case errors.Is(err, io.EOF):
			if err = w.WaitOplog(ctx); err == nil {
				st := w.Stats()
				p.log.Info("stream applied", zap.Int64("commands", p.recvCmds.Load()),
					zap.Uint64("keys", st.Restored+st.Rewritten))
				p.phase.Store(int32(phaseDone))
				return errNodeDone
			}
		case errors.As(err, &se) && p.node.Finite():
			// The file cannot be read on: wait for what was sent, then fail with the file's place.
			if werr := w.WaitOplog(ctx); werr != nil {
				p.fail(status.ReasonTargetConn, werr)
			}
			reason := status.ReasonAOFCorrupt
			if errors.Is(err, io.ErrUnexpectedEOF) {
				reason = status.ReasonAOFTruncated
			}
			p.fail(reason, err)
			p.phase.Store(int32(phaseFailed))
			return err
		}
		for ctx.Err() == nil {
			if !retry(err) {
				return p.finiteFailed(err)
			}
			var rerr error
			from, db, rerr = w.Reconnect(ctx)
			if errors.Is(rerr, target.ErrTargetLost) {
				p.targetLost(rerr)
				<-ctx.Done() // the node's new snapshot replaces this work
				return nil
			}
			if rerr == nil {
				p.log.Info("target reconnected; resending the stream", zap.Int64("from", from), zap.Int("db", db))
				bo.reset()
				break
			}
			err = rerr
		}
	}
}

// finiteFailed ends a node's work that gave up (only a finite node does).
func (p *pipeline) finiteFailed(err error) error {
	if p.node.Finite() {
		p.phase.Store(int32(phaseFailed))
		return fmt.Errorf("%s: %w", p.name, err)
	}
	return nil // ctx ended
}

// replay applies the stream after offset from until ctx ends, the stream ends (io.EOF) or the
// target connection breaks.
func (p *pipeline) replay(ctx context.Context, w target.Writer, from int64) error {
	cmds, err := p.node.Stream(ctx, from)
	if err != nil {
		return &streamError{err}
	}
	defer cmds.Close()
	_, db := w.Applied()
	owned := p.node.Filter(db)
	var cmd aof.Command
	end := from
	for {
		if cmds.Buffered() == 0 {
			// The stream has nothing more for now: close the batch rather than wait for more.
			if err := w.Flush(); err != nil {
				return err
			}
		}
		if err := cmds.Next(&cmd); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				if err := w.Flush(); err != nil {
					return err
				}
				return io.EOF
			}
			return &streamError{fmt.Errorf("stream of %s at offset %d: %w", p.name, end, err)}
		}
		end += cmd.N
		p.recvCmds.Add(1)
		p.recvBytes.Add(cmd.N)
		if !p.filter.keepCommand(&cmd) {
			w.Skip(&cmd, end, status.ReasonFiltered.String())
			continue
		}
		if owned != nil {
			if r := owned.Drop(&cmd); r != "" {
				w.Skip(&cmd, end, r.String())
				continue
			}
		}
		if p.breaks.poisoned(end) {
			p.dropPoisoned(w, &cmd, end)
			continue
		}
		if err := w.Apply(&cmd, end); err != nil {
			if errors.Is(err, target.ErrBroken) {
				p.breaks.note(end)
			}
			return err
		}
	}
}

// maxBreaks is how many times in a row the target may break its connection while one stream
// command is written before that command is dropped (design rule 7: no single command stalls
// the stream). A target closes the connection on a command it cannot parse (an argument over
// its proto-max-bulk-len): when the refusal is read before the close it is an error reply,
// counted; when the close comes first (the rest of a big command still being written) only the
// broken connection tells.
const maxBreaks = 3

// breakCount counts the connection breaks in a row while writing the command that ends at end.
type breakCount struct {
	end int64
	n   int
}

func (b *breakCount) note(end int64) {
	if b.end != end {
		b.end, b.n = end, 0
	}
	b.n++
}

func (b *breakCount) poisoned(end int64) bool { return b.n >= maxBreaks && b.end == end }

// dropPoisoned leaves out the command the target broke its connection on maxBreaks times in a
// row, counted (errors_command_dropped) and logged with its key, and the stream goes on.
func (p *pipeline) dropPoisoned(w target.Writer, cmd *aof.Command, end int64) {
	name, key := "", ""
	if len(cmd.Args) > 0 {
		name = strings.ToUpper(string(cmd.Args[0]))
	}
	if len(cmd.Args) > 1 {
		key = redisfmt.Quote(string(cmd.Args[1][:min(len(cmd.Args[1]), 256)]))
	}
	p.fail(status.ReasonCommandDropped, fmt.Errorf("the target broke its connection %d times in a row on %s %s (%d bytes, ending at offset %d): left out; "+
		"check the target's limits (proto-max-bulk-len, client-query-buffer-limit)", p.breaks.n, name, key, cmd.N, end))
	w.Skip(cmd, end, status.ReasonCommandDropped.String())
	p.breaks = breakCount{}
}
