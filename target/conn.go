package target

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Options configure one target connection.
type Options struct {
	Addr     string // host:port
	Username string // ACL user; empty for the default user
	Password string // AUTH password; empty for none
	DB       int    // SELECTed after AUTH when not 0
	// Timeout bounds dialing, the handshake, each write, and the wait for a reply while requests
	// are outstanding. 0 means 30 s.
	Timeout     time.Duration
	TLS         *tls.Config // nil for plain TCP
	Window      int         // max requests in flight; 0 means 1024
	WindowBytes int64       // max request bytes in flight; 0 means 16 MiB
	// OnReply is called once per request, in the order they were sent, from the reply reader,
	// with the request's tag and its reply (Kind KindFailed when the connection broke first).
	// Both are valid only during the call. It must not call back into the Conn's send side.
	OnReply func(t *Tag, r *Reply)
	Logger  *zap.Logger // nil means zap.NewNop()
	Name    string      // for logs and Stats, e.g. "rdb-0"; empty means Addr
}

func (o *Options) defaults() {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Window <= 0 {
		o.Window = 1024
	}
	if o.WindowBytes <= 0 {
		o.WindowBytes = 16 << 20
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Name == "" {
		o.Name = o.Addr
	}
}

// Tag is the small record that travels with a request through the in-flight FIFO and comes
// back with its reply. Offset, DB, Kind and Key are the sender's; Seq and Cmd are set by Conn.
type Tag struct {
	Seq    uint64 // position of the request on this connection, from 0
	Offset int64  // e.g. the source replication offset just after the command
	DB     int    // the db the command runs in
	Kind   uint8  // the sender's own classification
	Key    []byte // for logs; copied at Commit into a buffer the Conn reuses
	Count  int    // keys the request carries when more than one (an MSET of RDB strings)
	Cmd    []byte // the encoded request, set in OnReply (for retries); without its body
	// Part numbers the requests of one command sent in several (a big command re-chunked):
	// 1, 2, ... for every one but the last, which is 0 like a command sent whole. On the EXEC
	// of a checkpointed batch, 1 says the batch is one such command's chunks.
	Part int
	body body // the request's body, not held (see sendBody); set in OnReply too
}

// ErrBroken is wrapped by every error of a connection that can no longer be used: I/O errors,
// protocol errors, timeouts, Close. Requests in flight when it broke are failed with it.
var ErrBroken = errors.New("target: connection broken")

// slot is one entry of the in-flight ring: the encoded request and its tag.
type slot struct {
	buf     []byte
	body    body  // written after buf, from its input; nil for most requests
	size    int64 // len(buf) + the body's size
	keybuf  []byte
	tag     Tag
	done    chan *Reply   // for Do
	written chan struct{} // closed once the request is written (sendBody with wait)
}

// Conn is a pipelined connection: the caller appends commands (Begin/Commit, Send, SendRaw), one
// writer goroutine writes them through a bufio.Writer and flushes only when it runs out of input,
// one reader goroutine takes exactly one reply per request, in order, and hands it to
// Options.OnReply. The ring of in-flight requests is bounded by count and bytes; a full ring
// blocks the sender on a channel until replies free room.
type Conn struct {
	opts Options
	log  *zap.Logger
	nc   net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	rr   replyReader

	ring     []slot
	bodyBuf  []byte     // the writer goroutine's buffer for bodies, made at the first
	keepBuf  int        // slot buffers larger than this are dropped after use
	sendMu   sync.Mutex // held from Begin to Commit: one request is built at a time
	tail     atomic.Uint64
	wpos     atomic.Uint64
	head     atomic.Uint64
	inflight atomic.Int64 // bytes

	work        chan struct{} // sender → writer: input arrived
	writerIdle  atomic.Bool
	space       chan struct{} // reader → sender: room freed
	senderWaits atomic.Bool
	progMu      sync.Mutex
	progCh      chan struct{} // closed and replaced when head moves and someone drains
	drainers    atomic.Int32
	dlMu        sync.Mutex // orders read-deadline changes between writer and reader

	dead     chan struct{}
	deadOnce sync.Once
	err      error         // set before dead is closed
	failed   chan struct{} // closed once every request has had its reply or failure
	p        proc

	sent, sentBytes, replies, errReplies atomic.Uint64
}

// Dial connects, authenticates, PINGs, SELECTs Options.DB and starts the writer and reader.
func Dial(ctx context.Context, o Options) (*Conn, error) {
	o.defaults()
	d := net.Dialer{Timeout: o.Timeout}
	nc, err := d.DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("target %s: dial: %w", o.Addr, err)
	}
	if o.TLS != nil {
		cfg := o.TLS.Clone()
		if cfg.ServerName == "" {
			if h, _, err := net.SplitHostPort(o.Addr); err == nil {
				cfg.ServerName = h
			}
		}
		tc := tls.Client(nc, cfg)
		hctx, cancel := context.WithTimeout(ctx, o.Timeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("target %s: tls handshake: %w", o.Addr, err)
		}
		nc = tc
	}
	keep := int(o.WindowBytes / int64(o.Window))
	keep = max(keep, 4096)
	c := &Conn{
		opts:    o,
		log:     o.Logger.With(zap.String("target", o.Name)),
		nc:      nc,
		br:      bufio.NewReaderSize(nc, 64<<10),
		bw:      bufio.NewWriterSize(nc, 64<<10),
		ring:    make([]slot, o.Window),
		keepBuf: keep,
		work:    make(chan struct{}, 1),
		space:   make(chan struct{}, 1),
		progCh:  make(chan struct{}),
		dead:    make(chan struct{}),
		failed:  make(chan struct{}),
	}
	c.rr.br = c.br
	if err := c.handshake(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	c.p.Go(c.writeLoop)
	c.p.Go(c.readLoop)
	return c, nil
}

// handshake runs AUTH, PING and SELECT synchronously, before the goroutines start.
func (c *Conn) handshake(ctx context.Context) error {
	dl := time.Now().Add(c.opts.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	c.nc.SetDeadline(dl)
	defer c.nc.SetDeadline(time.Time{})
	var cmds [][]string
	switch {
	case c.opts.Password != "" && c.opts.Username != "":
		cmds = append(cmds, []string{"AUTH", c.opts.Username, c.opts.Password})
	case c.opts.Password != "":
		cmds = append(cmds, []string{"AUTH", c.opts.Password})
	}
	cmds = append(cmds, []string{"PING"})
	if c.opts.DB != 0 {
		cmds = append(cmds, []string{"SELECT", strconv.Itoa(c.opts.DB)})
	}
	for _, args := range cmds {
		if _, err := c.bw.Write(appendCommandStrings(nil, args...)); err != nil {
			return fmt.Errorf("target %s: %s: %w", c.opts.Addr, args[0], err)
		}
		if err := c.bw.Flush(); err != nil {
			return fmt.Errorf("target %s: %s: %w", c.opts.Addr, args[0], err)
		}
		var rep Reply
		if err := c.rr.read(&rep); err != nil {
			return fmt.Errorf("target %s: %s: %w", c.opts.Addr, args[0], err)
		}
		if rep.Err != nil {
			return fmt.Errorf("target %s: %s: %w", c.opts.Addr, args[0], rep.Err)
		}
	}
	return nil
}

// Addr returns the address dialed.
func (c *Conn) Addr() string { return c.opts.Addr }

// Err returns the error that broke the connection, or nil while it is usable.
func (c *Conn) Err() error {
	select {
	case <-c.dead:
		return c.err
	default:
		return nil
	}
}

// die breaks the connection once: records why, wakes everyone, closes the socket.
func (c *Conn) die(err error) {
	c.deadOnce.Do(func() {
		c.err = fmt.Errorf("%w: %s: %w", ErrBroken, c.opts.Addr, err)
		close(c.dead)
		c.nc.Close()
	})
}

// Begin waits for room in the window and returns an empty buffer to append one command to.
// Every successful Begin must be followed by Commit (with an empty buffer to abandon it).
func (c *Conn) Begin(ctx context.Context) ([]byte, error) {
	return c.beginWithin(ctx, c.opts.WindowBytes)
}

// beginWithin is Begin with a tighter bound on the bytes in flight: it waits until fewer than
// limit are (or none at all). A sender whose requests are many and cheap for the target (the
// chunks of a rewritten key) keeps the target just as busy with fewer bytes held.
func (c *Conn) beginWithin(ctx context.Context, limit int64) ([]byte, error) {
	c.sendMu.Lock()
	n := uint64(len(c.ring))
	limit = min(limit, c.opts.WindowBytes)
	for {
		select {
		case <-c.dead:
			c.sendMu.Unlock()
			return nil, c.err
		default:
		}
		if c.hasRoom(n, limit) {
			break
		}
		c.senderWaits.Store(true)
		if c.hasRoom(n, limit) {
			c.senderWaits.Store(false)
			break
		}
		select {
		case <-c.space:
		case <-c.dead:
		case <-ctx.Done():
			c.senderWaits.Store(false)
			c.sendMu.Unlock()
			return nil, ctx.Err()
		}
	}
	s := &c.ring[c.tail.Load()%n]
	if cap(s.buf) > c.keepBuf {
		s.buf = nil
	}
	return s.buf[:0], nil
}

func (c *Conn) hasRoom(n uint64, limit int64) bool {
	t, h := c.tail.Load(), c.head.Load()
	return t-h < n && (t == h || c.inflight.Load() < limit)
}

// Commit queues the command appended to buf (from Begin) with its tag, and releases the send side.
func (c *Conn) Commit(buf []byte, tag Tag) {
	c.commit(buf, tag, nil)
}

func (c *Conn) commit(buf []byte, tag Tag, done chan *Reply) {
	c.commitBody(buf, nil, tag, done, nil)
}

func (c *Conn) commitBody(buf []byte, b body, tag Tag, done chan *Reply, written chan struct{}) {
	if len(buf) == 0 && b == nil {
		c.sendMu.Unlock()
		return
	}
	t := c.tail.Load()
	s := &c.ring[t%uint64(len(c.ring))]
	s.buf = buf
	s.body = b
	s.size = int64(len(buf))
	if b != nil {
		s.size += b.size()
	}
	s.written = written
	s.keybuf = append(s.keybuf[:0], tag.Key...)
	s.tag = tag
	s.tag.Key = s.keybuf
	s.tag.Seq = t
	s.tag.Cmd = nil
	s.tag.body = nil
	s.done = done
	c.inflight.Add(s.size)
	c.sent.Add(1)
	c.sentBytes.Add(uint64(s.size))
	c.tail.Store(t + 1)
	c.sendMu.Unlock()
	if c.writerIdle.Load() && c.writerIdle.CompareAndSwap(true, false) {
		select {
		case c.work <- struct{}{}:
		default:
		}
	}
}

// Send queues one command built from args.
func (c *Conn) Send(ctx context.Context, tag Tag, args ...[]byte) error {
	buf, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	c.Commit(appendCommand(buf, args...), tag)
	return nil
}

// SendRaw queues one command already encoded in RESP (e.g. aof.Command.Raw); raw is copied.
func (c *Conn) SendRaw(ctx context.Context, tag Tag, raw []byte) error {
	buf, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	c.Commit(append(buf, raw...), tag)
	return nil
}

// sendBody queues one request of head (copied) followed by b, which the writer goroutine copies
// from its input when it writes the request: a command of any size goes out in bounded memory.
// With wait, it returns only once the request is written (or the connection broke): the
// caller's input may then change. The tag's body comes back in OnReply, for a resend.
func (c *Conn) sendBody(ctx context.Context, tag Tag, head []byte, b body, wait bool) error {
	buf, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	var written chan struct{}
	if wait {
		written = make(chan struct{})
	}
	c.commitBody(append(buf, head...), b, tag, nil, written)
	if !wait {
		return nil
	}
	select {
	case <-written:
		return nil
	case <-c.dead:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Do sends one command and waits for its reply, which it returns as a copy. Error replies are
// returned as the Reply and as a *ReplyError. It goes through the same pipeline, in order.
func (c *Conn) Do(ctx context.Context, args ...string) (*Reply, error) {
	buf, err := c.Begin(ctx)
	if err != nil {
		return nil, err
	}
	done := make(chan *Reply, 1)
	c.commit(appendCommandStrings(buf, args...), Tag{}, done)
	select {
	case r := <-done:
		return r, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Drain returns when every request committed before the call has its reply (or failure). It
// returns the connection's error if the connection broke, ctx's error if ctx ends first.
func (c *Conn) Drain(ctx context.Context) error {
	target := c.tail.Load()
	c.drainers.Add(1)
	defer c.drainers.Add(-1)
	for c.head.Load() < target {
		c.progMu.Lock()
		ch := c.progCh
		c.progMu.Unlock()
		if c.head.Load() >= target {
			break
		}
		select {
		case <-ch:
		case <-c.failed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return c.Err()
}

// Close breaks the connection (requests still in flight are failed with ErrBroken) and waits for
// its goroutines. Drain first to wait for replies.
func (c *Conn) Close() error {
	c.die(errors.New("closed"))
	c.p.Wait()
	return nil
}

// ConnStats is a snapshot of one connection's counters.
type ConnStats struct {
	Name          string
	Addr          string
	InFlight      int
	InFlightBytes int64
	Sent          uint64
	SentBytes     uint64
	Replies       uint64
	ErrorReplies  uint64
	Broken        bool
}

// Stats returns a snapshot of the counters.
func (c *Conn) Stats() ConnStats {
	t, h := c.tail.Load(), c.head.Load()
	inflight := 0
	if t > h {
		inflight = int(t - h)
	}
	return ConnStats{
		Name:          c.opts.Name,
		Addr:          c.opts.Addr,
		InFlight:      inflight,
		InFlightBytes: c.inflight.Load(),
		Sent:          c.sent.Load(),
		SentBytes:     c.sentBytes.Load(),
		Replies:       c.replies.Load(),
		ErrorReplies:  c.errReplies.Load(),
		Broken:        c.Err() != nil,
	}
}
