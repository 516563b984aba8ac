package redistest

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// proxyChunk is the most one forwarding goroutine reads at a time: each connection holds at
// most two of these buffers, whatever the peers send.
const proxyChunk = 32 << 10

// proxyDialTimeout bounds the dial to the upstream for each accepted connection.
const proxyDialTimeout = 5 * time.Second

// Proxy is a fault-injecting TCP proxy started by StartProxy: every connection accepted on
// Addr is forwarded to the upstream, and the methods below break, freeze, slow down or
// throttle that traffic on demand. All methods are safe for concurrent use.
//
// Each accepted connection gets its own upstream connection and two forwarding goroutines,
// one per direction. A direction reads a chunk (up to 32 KiB), holds it for the delay, paces
// it through the rate limiter, waits while the proxy is paused, then writes it on. When either
// side closes or fails, both sides are closed (no half-close).
type Proxy struct {
	Addr string // "127.0.0.1:<port>", where clients connect

	upstream string
	ln       net.Listener
	ctx      context.Context // cancelled by Close: ends dials, sleeps and waits
	cancel   context.CancelFunc
	wg       sync.WaitGroup // the accept loop and every connection's goroutines
	done     chan struct{}  // closed once Close has waited for every goroutine

	up, down *tokenBucket // client→upstream and upstream→client pacing

	closeMu sync.Mutex // serialises Close, so a second call returns only once all is closed

	mu      sync.Mutex // guards the fields below
	closed  bool
	blocked bool
	paused  bool
	resume  chan struct{} // closed by Resume; a new one is made by Pause
	delay   time.Duration
	rewrite func(n int) Rewrite // RewriteDown's; nil: none
	conns   map[*proxyConn]struct{}
	stats   ProxyStats
}

// A Rewrite edits what one connection's upstream sends: it sees every chunk read from the
// upstream, in order, and returns the bytes the client gets instead (the chunk itself, an
// edited copy, or nothing); cut closes the connection once they are written. It runs on that
// connection's forwarding goroutine only, so it may keep state without a lock.
type Rewrite func(chunk []byte) (out []byte, cut bool)

// ProxyStats is a snapshot of a Proxy's counters. A byte count grows just after its write
// returns, so a client can hold bytes a moment before they are counted: tests that expect an
// exact figure wait for it (WaitFor) rather than read it once.
type ProxyStats struct {
	Accepted   int   // connections accepted and forwarded (refused ones not counted)
	Active     int   // connections open now
	Refused    int   // connections accepted and closed at once because the proxy was blocked
	DialFailed int   // connections closed because the upstream could not be dialed
	Cuts       int   // connections closed by Cut or Block (not those that ended on their own)
	BytesUp    int64 // bytes written to the upstream (client → upstream)
	BytesDown  int64 // bytes written to clients (upstream → client)
}

// proxyConn is one forwarded connection: the client side and, once dialed, the upstream side.
type proxyConn struct {
	client  net.Conn
	ctx     context.Context // cancelled by close (or by the proxy's Close): ends every wait
	cancel  context.CancelFunc
	rewrite Rewrite // what the upstream sends goes through it; nil: as it is

	mu       sync.Mutex
	upstream net.Conn
	closed   bool
}

// StartProxy listens on a random 127.0.0.1 port and forwards every connection to upstream
// ("host:port"). The proxy, its listener and every live connection are closed when the test
// ends, and Cleanup returns only once all of its goroutines have exited.
//
//	p := StartProxy(t, master.Addr)
//	replica.Do(t, "REPLICAOF", "127.0.0.1", p.Port())
//	p.Cut()               // the replica's link breaks; it reconnects through p
//	p.Block()             // master unreachable until p.Unblock()
func StartProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("StartProxy %s: listen: %v", upstream, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		Addr:     ln.Addr().String(),
		upstream: upstream,
		ln:       ln,
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
		up:       &tokenBucket{},
		down:     &tokenBucket{},
		resume:   make(chan struct{}),
		conns:    map[*proxyConn]struct{}{},
	}
	close(p.resume) // not paused
	p.wg.Add(1)
	go p.acceptLoop()
	t.Cleanup(p.Close)
	return p
}

// Port returns the port of Addr, for REPLICAOF and the like.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Close stops the proxy: the listener and every live connection are closed, and Close returns
// once every goroutine of the proxy has exited. StartProxy registers it with t.Cleanup; calling
// it earlier is allowed, and later calls do nothing.
func (p *Proxy) Close() {
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	conns := p.takeConnsLocked()
	p.mu.Unlock()
	p.cancel()
	_ = p.ln.Close()
	for _, c := range conns {
		c.close()
	}
	p.wg.Wait()
	close(p.done)
}

// Cut closes every live connection now, both sides. New connections are still accepted.
func (p *Proxy) Cut() { p.cut(false) }

// Block cuts every live connection and, until Unblock, accepts new ones only to close them at
// once: the upstream looks down, or behind a partition, for as long as wanted.
func (p *Proxy) Block() { p.cut(true) }

// cut closes every live connection, counting them as cuts, and with block also starts
// refusing new ones (in the same critical section, so no connection slips in between).
func (p *Proxy) cut(block bool) {
	p.mu.Lock()
	if block {
		p.blocked = true
	}
	conns := p.takeConnsLocked()
	p.stats.Cuts += len(conns)
	p.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}

// Unblock ends Block: new connections are forwarded again.
func (p *Proxy) Unblock() {
	p.mu.Lock()
	p.blocked = false
	p.mu.Unlock()
}

// Pause freezes traffic in both directions without closing anything: connections stay open
// and stay accepted, and the bytes read from either side are held back until Resume (TCP
// back-pressure then stalls the senders). A chunk whose write had already begun when Pause
// was called still goes through.
func (p *Proxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.paused {
		p.paused = true
		p.resume = make(chan struct{})
	}
}

// Resume ends Pause: held bytes are written on, in order.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused {
		p.paused = false
		close(p.resume)
	}
}

// SetDelay adds latency: each chunk is written no earlier than d after it was read, in each
// direction, so a request and its reply take at least 2*d more. A direction handles one chunk
// at a time, so a delay also caps its throughput at 32 KiB per d. d <= 0 removes the delay.
func (p *Proxy) SetDelay(d time.Duration) {
	if d < 0 {
		d = 0
	}
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// SetRate throttles each direction to bytesPerSecond, summed over all connections, with a
// token bucket holding RateBurst(bytesPerSecond) bytes and starting full: from the call on,
// the bytes written in a direction by time T after it never exceed
// burst + bytesPerSecond*T. 0 (or less) removes the limit.
func (p *Proxy) SetRate(bytesPerSecond int64) {
	p.up.set(bytesPerSecond)
	p.down.set(bytesPerSecond)
}

// RewriteDown makes every connection accepted from now on pass what its upstream sends through
// the Rewrite that f returns for it, n being the connection's number (1 for the proxy's first
// accepted connection, as Stats counts them); f returning nil leaves that connection alone,
// and a nil f ends rewriting for the connections to come. Connections already open keep what
// they had. Delay, rate and pause apply to the rewritten bytes.
//
//	p.RewriteDown(func(n int) redistest.Rewrite {
//		if n != 1 {
//			return nil // only the first connection is tampered with
//		}
//		return func(b []byte) ([]byte, bool) { return bytes.ToUpper(b), false }
//	})
func (p *Proxy) RewriteDown(f func(n int) Rewrite) {
	p.mu.Lock()
	p.rewrite = f
	p.mu.Unlock()
}

// Stats returns a snapshot of the proxy's counters.
func (p *Proxy) Stats() ProxyStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Active = len(p.conns)
	return s
}

// takeConnsLocked empties the set of live connections and returns them, to be closed after
// p.mu is released. p.mu must be held.
func (p *Proxy) takeConnsLocked() []*proxyConn {
	conns := make([]*proxyConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	clear(p.conns)
	return conns
}

// acceptLoop accepts until the listener is closed, refusing while blocked.
func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	backoff := time.Millisecond
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient failure (out of descriptors): wait a little, or until Close.
			if !proxySleep(p.ctx, backoff) {
				return
			}
			backoff = min(2*backoff, 100*time.Millisecond)
			continue
		}
		backoff = time.Millisecond
		ctx, cancel := context.WithCancel(p.ctx)
		c := &proxyConn{client: nc, ctx: ctx, cancel: cancel}
		p.mu.Lock()
		switch {
		case p.closed:
			p.mu.Unlock()
			cancel()
			_ = nc.Close()
			return
		case p.blocked:
			p.stats.Refused++
			p.mu.Unlock()
			cancel()
			_ = nc.Close()
			continue
		}
		p.stats.Accepted++
		if p.rewrite != nil {
			c.rewrite = p.rewrite(p.stats.Accepted)
		}
		p.conns[c] = struct{}{}
		p.wg.Add(1) // under p.mu, so Close's Wait cannot have started
		p.mu.Unlock()
		go p.serve(c)
	}
}

// serve dials the upstream for c and forwards both directions until either ends.
func (p *Proxy) serve(c *proxyConn) {
	defer p.wg.Done()
	defer p.drop(c)
	ctx, cancel := context.WithTimeout(c.ctx, proxyDialTimeout) // a Cut ends the dial too
	var d net.Dialer
	up, err := d.DialContext(ctx, "tcp", p.upstream)
	cancel()
	if err != nil {
		p.mu.Lock()
		p.stats.DialFailed++
		p.mu.Unlock()
		return
	}
	if !c.setUpstream(up) {
		return // cut while dialing
	}
	half := make(chan struct{})
	go func() {
		defer close(half)
		p.forward(c, c.client, up, p.up, &p.stats.BytesUp, nil)
	}()
	p.forward(c, up, c.client, p.down, &p.stats.BytesDown, c.rewrite)
	<-half
}

// drop closes c and forgets it (a no-op if Cut already took it).
func (p *Proxy) drop(c *proxyConn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.close()
}

// forward copies src to dst chunk by chunk, applying rewrite (if not nil), then delay, rate
// and pause to each chunk, and adds what it wrote to *count (guarded by p.mu). It closes c
// when it ends.
func (p *Proxy) forward(c *proxyConn, src, dst net.Conn, tb *tokenBucket, count *int64, rewrite Rewrite) {
	defer c.close()
	buf := make([]byte, proxyChunk)
	for {
		n, rerr := src.Read(buf)
		chunk, cut := buf[:n], false
		if n > 0 && rewrite != nil {
			chunk, cut = rewrite(chunk)
		}
		if len(chunk) > 0 {
			readAt := time.Now()
			p.mu.Lock()
			delay := p.delay
			p.mu.Unlock()
			if delay > 0 && !proxySleep(c.ctx, time.Until(readAt.Add(delay))) {
				return
			}
			for b := chunk; len(b) > 0; {
				k, hold := tb.take(len(b))
				if !proxySleep(c.ctx, hold) || !p.waitResumed(c.ctx) {
					return
				}
				w, werr := dst.Write(b[:k])
				p.mu.Lock()
				*count += int64(w)
				p.mu.Unlock()
				if werr != nil {
					return
				}
				b = b[k:]
			}
		}
		if rerr != nil || cut {
			return
		}
	}
}

// proxySleep sleeps for d inside one of the proxy's own goroutines (that is how delay and
// rate are applied) and reports false if ctx (the connection's or the proxy's) ended meanwhile.
func proxySleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// waitResumed blocks while the proxy is paused; false if the connection or proxy closed.
func (p *Proxy) waitResumed(ctx context.Context) bool {
	for {
		p.mu.Lock()
		paused, resume := p.paused, p.resume
		p.mu.Unlock()
		if !paused {
			return true
		}
		select {
		case <-resume:
		case <-ctx.Done():
			return false
		}
	}
}

// setUpstream attaches the dialed upstream; false (and up closed) if c was closed meanwhile.
func (c *proxyConn) setUpstream(up net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		_ = up.Close()
		return false
	}
	c.upstream = up
	return true
}

// close closes both sides once; later calls do nothing.
func (c *proxyConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	c.cancel()
	_ = c.client.Close()
	if c.upstream != nil {
		_ = c.upstream.Close()
	}
}

// RateBurst is the size of SetRate's token bucket for a rate: 100 ms worth of bytes, at least
// one byte. It is also the largest piece a throttled direction writes at once.
func RateBurst(bytesPerSecond int64) int64 { return max(bytesPerSecond/10, 1) }

// tokenBucket paces one direction of a Proxy. Takers may drive it into debt; each then waits
// until the debt would be repaid, so the bytes released by time T since set never exceed
// burst + rate*T.
type tokenBucket struct {
	mu     sync.Mutex
	rate   int64 // bytes per second; 0 = unlimited
	burst  int64
	tokens float64
	last   time.Time
}

// set changes the rate and refills the bucket.
func (b *tokenBucket) set(rate int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rate = max(rate, 0)
	b.burst = RateBurst(b.rate)
	b.tokens = float64(b.burst)
	b.last = time.Now()
}

// take reserves up to want bytes (at most one burst) and says how long to wait before writing
// them.
func (b *tokenBucket) take(want int) (int, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rate == 0 {
		return want, 0
	}
	now := time.Now()
	b.tokens = min(b.tokens+now.Sub(b.last).Seconds()*float64(b.rate), float64(b.burst))
	b.last = now
	k := int(min(int64(want), b.burst))
	b.tokens -= float64(k)
	if b.tokens >= 0 {
		return k, 0
	}
	// Round up so the wait never ends before the debt is repaid.
	return k, time.Duration(-b.tokens/float64(b.rate)*float64(time.Second)) + time.Microsecond
}
