package target

import (
	"errors"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"
)

// writeLoop is the writer goroutine: it copies committed requests into the bufio.Writer and
// flushes only when no more input is waiting (or the buffer fills by itself).
func (c *Conn) writeLoop() {
	n := uint64(len(c.ring))
	w := c.wpos.Load()
	for {
		t := c.tail.Load()
		if w == t {
			if c.bw.Buffered() > 0 {
				c.nc.SetWriteDeadline(time.Now().Add(c.opts.Timeout))
				if err := c.bw.Flush(); err != nil {
					c.die(fmt.Errorf("write: %w", err))
					return
				}
				c.armReadDeadline(w)
			}
			c.writerIdle.Store(true)
			if c.tail.Load() != w {
				c.writerIdle.Store(false)
				continue
			}
			select {
			case <-c.work:
			case <-c.dead:
				return
			}
			continue
		}
		c.nc.SetWriteDeadline(time.Now().Add(c.opts.Timeout))
		for ; w < t; w++ {
			s := &c.ring[w%n]
			if _, err := c.bw.Write(s.buf); err != nil {
				c.die(fmt.Errorf("write: %w", err))
				return
			}
			if s.body != nil {
				if err := c.writeBody(s.body); err != nil {
					c.die(err)
					return
				}
			}
			if s.written != nil {
				close(s.written) // once: the sender makes a new one with each request
			}
		}
		c.wpos.Store(w)
	}
}

// bodyPiece is the most a body is read in one piece, and how often the write deadline is
// pushed on while a body goes out.
const bodyPiece = 256 << 10

// writeBody copies a request's body into the bufio.Writer, pushing the write deadline on with
// every piece. An error reading the body's input breaks the connection too: part of a request
// is on the wire, and the target must not run what follows it as a command.
func (c *Conn) writeBody(b body) error {
	if c.bodyBuf == nil {
		c.bodyBuf = make([]byte, bodyPiece)
	}
	bw := &deadlineWriter{c: c}
	err := b.writeTo(bw, c.bodyBuf)
	switch {
	case bw.err != nil:
		return fmt.Errorf("write: %w", bw.err)
	case err != nil:
		return fmt.Errorf("reading the data of a request (%d bytes) to write: %w", b.size(), err)
	}
	return nil
}

// deadlineWriter writes to the connection's bufio.Writer with a fresh write deadline for each
// piece, and records the first write error.
type deadlineWriter struct {
	c   *Conn
	err error
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	d.c.nc.SetWriteDeadline(time.Now().Add(d.c.opts.Timeout))
	n, err := d.c.bw.Write(p)
	if err != nil {
		d.err = err
	}
	return n, err
}

// armReadDeadline gives the replies to requests written up to w Timeout to arrive.
func (c *Conn) armReadDeadline(w uint64) {
	c.dlMu.Lock()
	if c.head.Load() < w {
		c.nc.SetReadDeadline(time.Now().Add(c.opts.Timeout))
	}
	c.dlMu.Unlock()
}

// publishBatch is how many replies the reader handles before it publishes its progress even
// when more replies are already buffered.
const publishBatch = 64

// readLoop is the reply-reader goroutine: one reply per request, in order; on any read or
// protocol error it breaks the connection and fails every request left.
func (c *Conn) readLoop() {
	n := uint64(len(c.ring))
	h := c.head.Load()
	committed := c.tail.Load()
	var done int64
	var count int
	var rep Reply
	for {
		err := c.rr.read(&rep)
		if err != nil {
			if h < c.tail.Load() {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					err = fmt.Errorf("no reply within %s: %w", c.opts.Timeout, err)
				}
			}
			c.die(fmt.Errorf("read: %w", err))
			break
		}
		// Requests up to tail are complete; the writer may have written some of them before it
		// published wpos (a full bufio.Writer writes through), so tail is the bound here.
		if h >= committed {
			committed = c.tail.Load()
			if h >= committed {
				c.die(fmt.Errorf("%w: reply %q with no request", errProtocol, truncate(rep.Str)))
				break
			}
		}
		s := &c.ring[h%n]
		if rep.Kind == KindError {
			c.errReplies.Add(1)
		}
		c.deliver(s, &rep)
		done += s.size
		c.release(s, h)
		h++
		count++
		if count >= publishBatch || c.br.Buffered() == 0 {
			c.publish(h, done, count, count)
			done, count = 0, 0
		}
	}
	c.publish(h, done, count, count)
	// Fail what is left. die closed c.dead first, so a sender blocked in Begin has let go of
	// sendMu; holding it here means no request can be committed behind our back.
	c.sendMu.Lock()
	t := c.tail.Load()
	c.sendMu.Unlock()
	if t > h {
		c.log.Warn("failing requests in flight", zap.Uint64("count", t-h), zap.Error(c.err))
	}
	for ; h < t; h++ {
		s := &c.ring[h%n]
		rep = Reply{Kind: KindFailed, Err: c.err}
		c.deliver(s, &rep)
		c.publish(h+1, s.size, 1, 0)
	}
	close(c.failed)
}

// release lets go of what the answered request h held beyond a small buffer: a buffer over
// keepBuf, a body. Kept until the slot is reused, a burst of big requests (the chunks of a
// rewritten key) would hold the ring's size times theirs long after their replies. It is done
// only once the writer has published that it wrote the request (wpos, an atomic it stores
// after writing): its last use of the slot comes before that.
func (c *Conn) release(s *slot, h uint64) {
	if (cap(s.buf) <= c.keepBuf && s.body == nil) || c.wpos.Load() <= h {
		return
	}
	if cap(s.buf) > c.keepBuf {
		s.buf = nil
	}
	s.body = nil
	s.tag.Cmd, s.tag.body = nil, nil
}

func (c *Conn) deliver(s *slot, rep *Reply) {
	s.tag.Cmd = s.buf
	s.tag.body = s.body
	if s.done != nil {
		s.done <- rep.clone()
		s.done = nil
		return
	}
	if c.opts.OnReply != nil {
		c.opts.OnReply(&s.tag, rep)
	}
}

// publish makes the reader's progress visible: head, bytes in flight, and the wake-ups of a
// blocked sender, Drain callers, and the read deadline.
func (c *Conn) publish(h uint64, done int64, count, replies int) {
	if count == 0 {
		return
	}
	c.replies.Add(uint64(replies))
	c.inflight.Add(-done)
	c.head.Store(h)
	if c.senderWaits.Load() && c.senderWaits.CompareAndSwap(true, false) {
		select {
		case c.space <- struct{}{}:
		default:
		}
	}
	if c.drainers.Load() > 0 {
		c.progMu.Lock()
		close(c.progCh)
		c.progCh = make(chan struct{})
		c.progMu.Unlock()
	}
	if h >= c.wpos.Load() {
		c.dlMu.Lock()
		if h >= c.wpos.Load() {
			c.nc.SetReadDeadline(time.Time{})
		}
		c.dlMu.Unlock()
	}
}
