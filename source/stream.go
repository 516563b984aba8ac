package source

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/rmt-project/rmt/aof"
	"go.uber.org/zap"
)

// syncEveryBytes forces an fsync of the spool while the socket keeps data buffered.
const syncEveryBytes = 4 << 20

// copierHold is the largest command the drain gathers whole before spooling it (so that its
// arguments can be looked at, and a full spool refuses it whole); a larger one goes to the
// spool in pieces as it arrives.
const copierHold = 64 << 10

// stream drains the replication stream into the spool until the connection fails. It is the
// only reader of the socket and waits on nothing but the socket and the disk: the spool is
// fsynced whenever the read buffer runs dry after a command (so batches grow with the load),
// every syncEveryBytes (inside a big command too), and after a REPLCONF GETACK. A separate
// goroutine does all the writing: `REPLCONF ACK <fsynced offset>` at once, every AckInterval,
// and as soon as a GETACK is synced (the offset then includes the GETACK), so a master slow to
// read never stalls the drain.
//
// The link's Copier checks every command's framing and never holds a big one: the spool may end
// inside a command when the connection drops, and the Copier, which kept its place, goes on
// there after the next PSYNC. It returns whether any byte was spooled.
func (l *Link) stream(ctx context.Context, rc *replConn, sp *aof.Spool, diskless bool) (bool, error) {
	base := sp.End()
	l.log.Info("streaming", zap.String("replid", l.replid), zap.Int64("offset", base), zap.Bool("after_diskless", diskless),
		zap.Int64("inside_command", l.copier.Pending()))
	ackCtx, cancel := context.WithCancel(ctx)
	ackNow := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Go(func() { l.ackLoop(ackCtx, rc, sp, ackNow) })
	defer wg.Wait()
	defer cancel()

	cp := l.copier
	cp.Continue(rc.br, base)
	var (
		cmd aof.Command
		b   = newBatch(l.opts.MaxSpoolBytes)
		w   = &spoolWriter{sp: sp, b: b}
	)
	// Whatever ends the stream, what was read is appended and made durable, so that the next
	// PSYNC (which asks for End()+1) and the daemon agree with the disk.
	defer func() {
		if w.unsynced == 0 {
			return
		}
		if err := b.flush(sp); err != nil {
			l.log.Error("spooling the last commands after the stream ended", zap.Error(err))
		}
		if err := sp.Sync(); err != nil {
			l.log.Error("syncing the spool after the stream ended", zap.Error(err))
		}
	}()
	for {
		if err := cp.Next(&cmd, w); err != nil {
			return sp.End() > base, fmt.Errorf("source: stream from %s (replid %s) starting at offset %d: %w", l.Addr(), l.replid, base, err)
		}
		getack := false
		if cmd.Raw != nil { // gathered whole: spool it with the others
			if err := b.add(sp, cmd.Raw); err != nil {
				return sp.End() > base, fmt.Errorf("source: spooling the stream of %s: %w", l.Addr(), err)
			}
			w.unsynced += cmd.N
			getack = isGetAck(cmd.Args)
		}
		if !getack && w.unsynced < syncEveryBytes && rc.br.Buffered() > 0 {
			continue
		}
		if err := b.flush(sp); err != nil {
			return sp.End() > base, fmt.Errorf("source: spooling the stream of %s: %w", l.Addr(), err)
		}
		if err := sp.Sync(); err != nil {
			return sp.End() > base, fmt.Errorf("source: syncing the spool of %s: %w", l.Addr(), err)
		}
		w.unsynced = 0
		if getack {
			select {
			case ackNow <- struct{}{}:
			default: // an ACK is already due; it will carry this offset or a later one
			}
		}
	}
}

// spoolWriter takes the pieces of a big command from the Copier: the whole commands gathered
// before it go first, then each piece, appended whole or not at all (a full spool), and the
// spool is fsynced every syncEveryBytes.
type spoolWriter struct {
	sp       *aof.Spool
	b        *batch
	unsynced int64 // bytes read since the last Sync, batched or appended
}

func (w *spoolWriter) Write(p []byte) (int, error) {
	if err := w.b.flush(w.sp); err != nil {
		return 0, err
	}
	before := w.sp.End()
	err := w.sp.Append(p)
	n := int(w.sp.End() - before) // all of p, or none of it but on a failing disk
	w.unsynced += int64(n)
	if err == nil && w.unsynced >= syncEveryBytes {
		if err = w.sp.Sync(); err == nil {
			w.unsynced = 0
		}
	}
	return n, err
}

// batchBytes is the most bytes of whole commands gathered before one Spool.Append: appending
// per command would cost a few lock round trips per command.
const batchBytes = 256 << 10

// batch gathers whole commands for the spool. It holds at most max bytes; a command larger
// than that goes to the spool directly.
type batch struct {
	buf []byte
	max int
}

func newBatch(maxSpool int64) *batch {
	m := int64(batchBytes)
	if maxSpool > 0 {
		m = min(m, maxSpool/16) // a full spool must still take single commands
	}
	return &batch{buf: make([]byte, 0, m), max: int(m)}
}

func (b *batch) add(sp *aof.Spool, raw []byte) error {
	if len(b.buf)+len(raw) <= b.max {
		b.buf = append(b.buf, raw...)
		return nil
	}
	if err := b.flush(sp); err != nil {
		return err
	}
	if len(raw) > b.max {
		return sp.Append(raw)
	}
	b.buf = append(b.buf, raw...)
	return nil
}

// flush appends the gathered commands. On error (a full spool appends nothing) they are
// dropped from the batch: the connection ends and PSYNC asks for them again from End()+1.
func (b *batch) flush(sp *aof.Spool) error {
	if len(b.buf) == 0 {
		return nil
	}
	err := sp.Append(b.buf)
	b.buf = b.buf[:0]
	return err
}

// ackLoop sends `REPLCONF ACK <fsynced offset>` (REPLCONF by LinkOptions.ReplconfCommand's name) at once (a diskless master sends nothing until
// the first ACK), then every AckInterval and whenever ackNow fires. A failed write closes the
// connection, which ends the stream.
func (l *Link) ackLoop(ctx context.Context, rc *replConn, sp *aof.Spool, ackNow <-chan struct{}) {
	t := time.NewTicker(l.opts.AckInterval)
	defer t.Stop()
	for {
		if err := rc.writeCommand(l.opts.ReplconfCommand, "ACK", strconv.FormatInt(sp.Synced(), 10)); err != nil {
			if ctx.Err() == nil {
				l.log.Warn("sending REPLCONF ACK", zap.Error(err))
				rc.c.Close()
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-ackNow:
		}
	}
}

var (
	cmdReplconf = []byte("REPLCONF")
	argGetack   = []byte("GETACK")
)

// isGetAck reports whether args are `REPLCONF GETACK <anything>`. A master sends it by its
// own name, REPLCONF, even when clients know REPLCONF by another (rename-command).
func isGetAck(args [][]byte) bool {
	return len(args) >= 2 && bytes.EqualFold(args[0], cmdReplconf) && bytes.EqualFold(args[1], argGetack)
}
