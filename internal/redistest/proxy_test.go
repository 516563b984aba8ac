package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"
)

// proxyDial opens one radix connection through addr, closed when the test ends.
func proxyDial(t testing.TB, addr string) radix.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := (radix.Dialer{}).Dial(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// proxyDo runs one command on c with a 5 s timeout.
func proxyDo(c radix.Client, rcv interface{}, cmd string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Do(ctx, radix.Cmd(rcv, cmd, args...))
}

// proxyPing dials addr and sends PING, closing the connection after: nil if PONG came back.
func proxyPing(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := (radix.Dialer{}).Dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	var s string
	if err := c.Do(ctx, radix.Cmd(&s, "PING")); err != nil {
		return err
	}
	if s != "PONG" {
		return fmt.Errorf("PING: %q", s)
	}
	return nil
}

// TestProxyForwards: 10,000 keys written and read back through the proxy land on the server,
// and the byte counters account for the traffic.
func TestProxyForwards(t *testing.T) {
	t.Parallel()
	r := StartRedis(t)
	p := StartProxy(t, r.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pool, err := (radix.PoolConfig{Size: 4, PingInterval: -1}).New(ctx, "tcp", p.Addr)
	if err != nil {
		t.Fatalf("pool via proxy: %v", err)
	}
	defer pool.Close()

	const keys, batch = 10000, 500
	for lo := 0; lo < keys; lo += batch {
		pl := radix.NewPipeline()
		for i := lo; i < lo+batch; i++ {
			pl.Append(radix.Cmd(nil, "SET", "k"+strconv.Itoa(i), "v"+strconv.Itoa(i)))
		}
		if err := pool.Do(ctx, pl); err != nil {
			t.Fatalf("SET batch at %d: %v", lo, err)
		}
	}
	for lo := 0; lo < keys; lo += batch {
		pl := radix.NewPipeline()
		got := make([]string, batch)
		for i := range got {
			pl.Append(radix.Cmd(&got[i], "GET", "k"+strconv.Itoa(lo+i)))
		}
		if err := pool.Do(ctx, pl); err != nil {
			t.Fatalf("GET batch at %d: %v", lo, err)
		}
		for i, v := range got {
			if want := "v" + strconv.Itoa(lo+i); v != want {
				t.Fatalf("GET k%d via proxy = %q, want %q", lo+i, v, want)
			}
		}
	}
	if n := r.Do(t, "DBSIZE").(int64); n != keys {
		t.Fatalf("server has %d keys, want %d", n, keys)
	}
	// The exact RESP bytes of every request and reply. A counter is bumped just after its
	// write returns, so the client may see a reply before the count: wait for it to settle.
	var up, down int64
	bulk := func(s string) int64 { return int64(len(fmt.Sprintf("$%d\r\n%s\r\n", len(s), s))) }
	for i := 0; i < keys; i++ {
		k, v := "k"+strconv.Itoa(i), "v"+strconv.Itoa(i)
		up += 4 + bulk("SET") + bulk(k) + bulk(v) + 4 + bulk("GET") + bulk(k) // "*3\r\n", "*2\r\n"
		down += 5 + bulk(v)                                                   // "+OK\r\n"
	}
	WaitFor(t, 5*time.Second, func() error {
		s := p.Stats()
		if s.Accepted < 1 || s.Accepted > 4 || s.Active != s.Accepted || s.Cuts != 0 || s.Refused != 0 ||
			s.BytesUp != up || s.BytesDown != down {
			return fmt.Errorf("stats %+v, want 1 to 4 connections, %d bytes up, %d down", s, up, down)
		}
		return nil
	})
	t.Logf("stats after %d SET + %d GET: %+v", keys, keys, p.Stats())
}

// TestProxyCut: after Cut, a client's next command fails, a new connection works, and the
// counters say one connection was cut.
func TestProxyCut(t *testing.T) {
	t.Parallel()
	r := StartRedis(t)
	p := StartProxy(t, r.Addr)
	c := proxyDial(t, p.Addr)
	if err := proxyDo(c, nil, "SET", "a", "1"); err != nil {
		t.Fatalf("SET before cut: %v", err)
	}
	WaitFor(t, 5*time.Second, func() error {
		if s := p.Stats(); s.Active != 1 {
			return fmt.Errorf("stats %+v, want 1 active", s)
		}
		return nil
	})
	p.Cut()
	if s := p.Stats(); s.Active != 0 || s.Cuts != 1 {
		t.Fatalf("stats after Cut: %+v, want 0 active, 1 cut", s)
	}
	var v string
	if err := proxyDo(c, &v, "GET", "a"); err == nil {
		t.Fatalf("GET on a cut connection succeeded: %q", v)
	}
	c2 := proxyDial(t, p.Addr)
	if err := proxyDo(c2, &v, "GET", "a"); err != nil || v != "1" {
		t.Fatalf("GET on a new connection: %q, %v", v, err)
	}
	if s := p.Stats(); s.Accepted != 2 || s.Active != 1 || s.Cuts != 1 {
		t.Fatalf("stats after redial: %+v, want 2 accepted, 1 active, 1 cut", s)
	}
}

// TestProxyRewriteDown: the Rewrite RewriteDown picks for a connection edits what its upstream
// sends, only on the connections it is given for; a cut closes the connection once the
// rewritten bytes are out; a nil function ends the rewriting for new connections.
func TestProxyRewriteDown(t *testing.T) {
	t.Parallel()
	r := StartRedis(t)
	p := StartProxy(t, r.Addr)
	p.RewriteDown(func(n int) Rewrite {
		switch n {
		case 1:
			return func(b []byte) ([]byte, bool) { return []byte(strings.ReplaceAll(string(b), "PONG", "PANG")), false }
		case 3:
			return func(b []byte) ([]byte, bool) { return b[:2], true }
		}
		return nil
	})
	ping := func() (string, error) {
		nc, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
		if err != nil {
			return "", err
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(nc, "PING\r\nPING\r\n"); err != nil {
			return "", err
		}
		b, err := io.ReadAll(io.LimitReader(nc, 14))
		return string(b), err
	}
	for i, want := range []string{"+PANG\r\n+PANG\r\n", "+PONG\r\n+PONG\r\n", "+P"} {
		if got, err := ping(); got != want || err != nil {
			t.Errorf("connection %d: %q, %v; want %q", i+1, got, err, want)
		}
	}
	p.RewriteDown(nil)
	if got, err := ping(); got != "+PONG\r\n+PONG\r\n" || err != nil {
		t.Errorf("after RewriteDown(nil): %q, %v", got, err)
	}
}

// TestProxyBlock: Block cuts the live connection and refuses new ones until Unblock.
func TestProxyBlock(t *testing.T) {
	t.Parallel()
	r := StartRedis(t)
	p := StartProxy(t, r.Addr)
	c := proxyDial(t, p.Addr)
	if err := proxyDo(c, nil, "PING"); err != nil {
		t.Fatalf("PING before block: %v", err)
	}
	p.Block()
	if err := proxyDo(c, nil, "PING"); err == nil {
		t.Fatalf("PING on a connection live at Block succeeded")
	}
	for i := 0; i < 3; i++ {
		if err := proxyPing(p.Addr); err == nil {
			t.Fatalf("PING through a blocked proxy succeeded (attempt %d)", i)
		}
	}
	// A raw connection sees the refusal as an immediate EOF, not a hang.
	nc, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
	if err != nil {
		t.Fatalf("raw dial: %v", err)
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := nc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("read from a refused connection: %d bytes, %v; want EOF", n, err)
	}
	if s := p.Stats(); s.Refused != 4 || s.Accepted != 1 || s.Active != 0 || s.Cuts != 1 {
		t.Fatalf("stats while blocked: %+v, want 4 refused, 1 accepted, 0 active, 1 cut", s)
	}
	p.Unblock()
	if err := proxyPing(p.Addr); err != nil {
		t.Fatalf("PING after Unblock: %v", err)
	}
	if s := p.Stats(); s.Accepted != 2 || s.Refused != 4 {
		t.Fatalf("stats after Unblock: %+v", s)
	}
}

// TestProxyUpstreamDown: when the upstream cannot be dialed, the client's connection is
// closed at once and counted in DialFailed; it never shows as active for long.
func TestProxyUpstreamDown(t *testing.T) {
	t.Parallel()
	port, err := freePort() // nothing listens there (another process could take it: unlikely)
	if err != nil {
		t.Fatalf("%v", err)
	}
	p := StartProxy(t, fmt.Sprintf("127.0.0.1:%d", port))
	if err := proxyPing(p.Addr); err == nil {
		t.Fatalf("PING through a proxy to a closed port succeeded")
	}
	WaitFor(t, 5*time.Second, func() error {
		if s := p.Stats(); s.DialFailed != 1 || s.Accepted != 1 || s.Active != 0 || s.Cuts != 0 {
			return fmt.Errorf("stats %+v, want 1 accepted, 1 dial failed, none active or cut", s)
		}
		return nil
	})
}

// TestProxyPause: a GET sent while paused gets no reply until Resume, and the connection
// stays open meanwhile.
func TestProxyPause(t *testing.T) {
	t.Parallel()
	r := StartRedis(t)
	r.Do(t, "SET", "k", "held")
	p := StartProxy(t, r.Addr)
	c := proxyDial(t, p.Addr)
	if err := proxyDo(c, nil, "PING"); err != nil {
		t.Fatalf("PING: %v", err)
	}
	var before ProxyStats
	WaitFor(t, 5*time.Second, func() error { // counters settle just after the writes
		if before = p.Stats(); before.BytesUp != 14 || before.BytesDown != 7 {
			return fmt.Errorf("stats %+v, want PING's 14 bytes up and PONG's 7 down", before)
		}
		return nil
	})
	p.Pause()
	type result struct {
		v   string
		err error
	}
	got := make(chan result, 1)
	go func() {
		var v string
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err := c.Do(ctx, radix.Cmd(&v, "GET", "k"))
		got <- result{v, err}
	}()
	// The one bounded wait: nothing may arrive while paused.
	hold := time.NewTimer(300 * time.Millisecond)
	select {
	case res := <-got:
		t.Fatalf("GET answered while paused: %q, %v", res.v, res.err)
	case <-hold.C:
	}
	if s := p.Stats(); s.Active != 1 || s.Cuts != 0 || s.BytesUp != before.BytesUp || s.BytesDown != before.BytesDown {
		t.Fatalf("stats while paused: %+v, before %+v: want the connection open and no bytes moved", s, before)
	}
	p.Resume()
	res := <-got // the GET's own 20 s context bounds this
	if res.err != nil || res.v != "held" {
		t.Fatalf("GET after Resume: %q, %v", res.v, res.err)
	}
	if s := p.Stats(); s.Accepted != 1 || s.Cuts != 0 {
		t.Fatalf("stats after Resume: %+v, want the same single connection", s)
	}
}

// TestProxyRate: with SetRate, the bytes forwarded never exceed burst + rate*elapsed, counted
// from just before SetRate, both part-way and at the end of a 200 KB reply; unthrottled, that
// reply would cross loopback in about a millisecond.
func TestProxyRate(t *testing.T) {
	t.Parallel()
	const rate, size = 100_000, 200_000
	r := StartRedis(t)
	r.Do(t, "SET", "big", strings.Repeat("x", size))
	p := StartProxy(t, r.Addr)
	nc, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	burst := RateBurst(rate)
	check := func(when string, s0, s ProxyStats, start time.Time) int64 {
		t.Helper()
		el := time.Since(start) // read after the stats: an upper bound of their time
		down := s.BytesDown - s0.BytesDown
		limit := burst + int64(el.Seconds()*rate)
		t.Logf("%s: %d bytes down in %v (limit %d)", when, down, el, limit)
		if down > limit {
			t.Fatalf("%s: %d bytes forwarded in %v at %d B/s, burst %d: more than %d", when, down, el, rate, burst, limit)
		}
		return down
	}

	s0 := p.Stats()
	start := time.Now()
	p.SetRate(rate)
	if _, err := io.WriteString(nc, "GET big\r\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	// Sample part-way: after a bounded 1 s window (a measurement, not a synchronisation).
	window := time.NewTimer(time.Second)
	<-window.C
	mid := check("after ~1 s", s0, p.Stats(), start)
	if mid == 0 || mid >= size {
		t.Fatalf("after ~1 s: %d bytes forwarded, want some but not all of %d", mid, size)
	}
	br := bufio.NewReader(nc)
	line, err := br.ReadString('\n')
	if err != nil || line != "$"+strconv.Itoa(size)+"\r\n" {
		t.Fatalf("reply header %q, %v", line, err)
	}
	body := make([]byte, size+2)
	if _, err := io.ReadFull(br, body); err != nil {
		t.Fatalf("reply body: %v", err)
	}
	if strings.Trim(string(body[:size]), "x") != "" || string(body[size:]) != "\r\n" {
		t.Fatalf("reply body corrupted")
	}
	var s ProxyStats
	WaitFor(t, 5*time.Second, func() error { // the counter is bumped just after the write
		if s = p.Stats(); s.BytesDown-s0.BytesDown != int64(size+len(line)+2) {
			return fmt.Errorf("BytesDown grew by %d, want %d", s.BytesDown-s0.BytesDown, size+len(line)+2)
		}
		return nil
	})
	check("whole reply", s0, s, start)
	// Lifting the limit lets the next reply through at full speed (bounded only by the
	// 20 s deadline: this asserts that it arrives, not how fast).
	p.SetRate(0)
	if _, err := io.WriteString(nc, "GET big\r\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	if _, err := io.ReadFull(br, make([]byte, len(line)+size+2)); err != nil {
		t.Fatalf("unthrottled reply: %v", err)
	}
}

// TestTokenBucket: for every take, the bytes released by the time its wait ends stay within
// burst + rate*elapsed, and a take never exceeds the burst.
func TestTokenBucket(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rate  int64
		chunk int
	}{{1, 100}, {10, 3}, {1000, 32 << 10}, {100_000, 32 << 10}, {100_000, 7}, {1 << 30, 32 << 10}} {
		var b tokenBucket
		start := time.Now()
		b.set(tc.rate)
		burst := RateBurst(tc.rate)
		var released int64
		for i := 0; i < 200; i++ {
			k, hold := b.take(tc.chunk)
			releaseAt := time.Now().Add(hold)
			if k <= 0 || int64(k) > burst || k > tc.chunk {
				t.Fatalf("rate %d: take(%d) = %d, burst %d", tc.rate, tc.chunk, k, burst)
			}
			released += int64(k)
			if limit := float64(burst) + releaseAt.Sub(start).Seconds()*float64(tc.rate); float64(released) > limit {
				t.Fatalf("rate %d chunk %d: %d bytes released by %v, limit %.0f", tc.rate, tc.chunk,
					released, releaseAt.Sub(start), limit)
			}
		}
	}
	var b tokenBucket // unlimited: everything at once
	if k, hold := b.take(1 << 20); k != 1<<20 || hold != 0 {
		t.Fatalf("unlimited take = %d, %v", k, hold)
	}
}

// TestProxyDelay: with SetDelay(d), a round trip takes at least 2*d (lower bound only).
func TestProxyDelay(t *testing.T) {
	t.Parallel()
	const d = 50 * time.Millisecond
	r := StartRedis(t)
	p := StartProxy(t, r.Addr)
	c := proxyDial(t, p.Addr)
	p.SetDelay(d)
	for i := 0; i < 3; i++ {
		start := time.Now()
		if err := proxyDo(c, nil, "PING"); err != nil {
			t.Fatalf("PING: %v", err)
		}
		if rtt := time.Since(start); rtt < 2*d {
			t.Fatalf("round trip %v with delay %v each way, want at least %v", rtt, d, 2*d)
		}
	}
	p.SetDelay(0)
	if err := proxyDo(c, nil, "PING"); err != nil {
		t.Fatalf("PING without delay: %v", err)
	}
}

// proxyReplicaSynced waits until replica's link (through port) is up and it has caught up with
// master's offset.
func proxyReplicaSynced(t testing.TB, master, replica *Redis, port int) {
	t.Helper()
	WaitFor(t, 20*time.Second, func() error {
		rep := replica.Info(t, "replication")
		if rep["master_link_status"] != "up" || rep["master_port"] != strconv.Itoa(port) {
			return fmt.Errorf("replica: link %q to port %s, want up to %d", rep["master_link_status"], rep["master_port"], port)
		}
		mo, err1 := strconv.ParseInt(master.Info(t, "replication")["master_repl_offset"], 10, 64)
		ro, err2 := strconv.ParseInt(rep["slave_repl_offset"], 10, 64)
		if err1 != nil || err2 != nil || mo != ro {
			return fmt.Errorf("master offset %d (%v), replica offset %d (%v)", mo, err1, ro, err2)
		}
		return nil
	})
}

// proxySyncs returns how many full and partial resyncs master has served.
func proxySyncs(t testing.TB, master *Redis) int {
	t.Helper()
	st := master.Info(t, "stats")
	full, err1 := strconv.Atoi(st["sync_full"])
	part, err2 := strconv.Atoi(st["sync_partial_ok"])
	if err1 != nil || err2 != nil {
		t.Fatalf("INFO stats: sync_full %q, sync_partial_ok %q", st["sync_full"], st["sync_partial_ok"])
	}
	return full + part
}

// proxyFill writes n keys prefix0..prefix(n-1) on r in one pipeline.
func proxyFill(t testing.TB, r *Redis, prefix string, n int) {
	t.Helper()
	pl := radix.NewPipeline()
	for i := 0; i < n; i++ {
		pl.Append(radix.Cmd(nil, "SET", prefix+strconv.Itoa(i), strings.Repeat("v", 100)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Client(t).Do(ctx, pl); err != nil {
		t.Fatalf("fill %s: %v", r.Addr, err)
	}
}

// proxySameSize waits until replica has as many keys as master.
func proxySameSize(t testing.TB, master, replica *Redis) {
	t.Helper()
	WaitFor(t, 20*time.Second, func() error {
		m, r := master.Do(t, "DBSIZE").(int64), replica.Do(t, "DBSIZE").(int64)
		if m != r {
			return fmt.Errorf("master %d keys, replica %d", m, r)
		}
		return nil
	})
}

// TestProxyReplica: a replica whose master is the proxy syncs through it; Cut breaks the link
// and the replica resyncs through the proxy; while blocked the link stays down, and after
// Unblock the replica catches up with what was written meanwhile.
func TestProxyReplica(t *testing.T) {
	t.Parallel()
	master := StartRedis(t)
	proxyFill(t, master, "a", 1000)
	p := StartProxy(t, master.Addr)
	replica := StartRedis(t)
	replica.Do(t, "REPLICAOF", "127.0.0.1", p.Port())
	proxyReplicaSynced(t, master, replica, p.Port())
	proxySameSize(t, master, replica)
	if s := p.Stats(); s.Active != 1 || s.BytesDown < 1000*8 { // the RDB: 1000 keys, values LZF-compressed
		t.Fatalf("stats after sync: %+v, want the replica's one link and the RDB carried down", s)
	}

	syncs, before := proxySyncs(t, master), p.Stats()
	p.Cut()
	proxyFill(t, master, "b", 1000)
	WaitFor(t, 20*time.Second, func() error {
		if s, n := p.Stats(), proxySyncs(t, master); s.Accepted <= before.Accepted || n <= syncs {
			return fmt.Errorf("after Cut: %d connections accepted (%d before), %d syncs (%d before)", s.Accepted, before.Accepted, n, syncs)
		}
		return nil
	})
	proxyReplicaSynced(t, master, replica, p.Port())
	proxySameSize(t, master, replica)
	if s := p.Stats(); s.Cuts != 1 {
		t.Fatalf("stats after resync: %+v, want 1 cut", s)
	}

	p.Block()
	WaitFor(t, 20*time.Second, func() error {
		if st := replica.Info(t, "replication")["master_link_status"]; st != "down" {
			return fmt.Errorf("link %q while blocked, want down", st)
		}
		if s := p.Stats(); s.Refused == 0 {
			return fmt.Errorf("no reconnection refused yet: %+v", s)
		}
		return nil
	})
	proxyFill(t, master, "c", 1000)
	if n := replica.Do(t, "DBSIZE").(int64); n != 2000 {
		t.Fatalf("replica has %d keys while blocked, want the 2000 from before", n)
	}
	p.Unblock()
	proxyReplicaSynced(t, master, replica, p.Port())
	proxySameSize(t, master, replica)

	// Paused: the link stays up (frozen, not broken) and nothing new reaches the replica.
	before = p.Stats()
	p.Pause()
	proxyFill(t, master, "d", 1000)
	hold := time.NewTimer(300 * time.Millisecond) // the bounded "nothing arrived" wait
	<-hold.C
	if n := replica.Do(t, "DBSIZE").(int64); n != 3000 {
		t.Fatalf("replica has %d keys while paused, want the 3000 from before", n)
	}
	if st := replica.Info(t, "replication")["master_link_status"]; st != "up" {
		t.Fatalf("link %q while paused, want up", st)
	}
	p.Resume()
	proxyReplicaSynced(t, master, replica, p.Port())
	proxySameSize(t, master, replica)
	if s := p.Stats(); s.Accepted != before.Accepted || s.Cuts != before.Cuts {
		t.Fatalf("stats after Pause/Resume: %+v, before %+v: want the same link throughout", s, before)
	}
	t.Logf("stats: %+v", p.Stats())
}

// TestProxyReplicaCutMidRDB: with the transfer slowed by SetRate, Cut lands in the middle of
// the RDB; the replica then needs a second full sync, which completes once the limit is lifted.
func TestProxyReplicaCutMidRDB(t *testing.T) {
	t.Parallel()
	master := StartRedis(t)
	// About 1 MB of incompressible values, so the RDB is large on the wire.
	rng := rand.New(rand.NewPCG(1, 2))
	val := make([]byte, 500)
	pl := radix.NewPipeline()
	for i := 0; i < 2000; i++ {
		for j := range val {
			val[j] = byte('a' + rng.IntN(26))
		}
		pl.Append(radix.Cmd(nil, "SET", "k"+strconv.Itoa(i), string(val)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := master.Client(t).Do(ctx, pl); err != nil {
		t.Fatalf("fill: %v", err)
	}
	p := StartProxy(t, master.Addr)
	p.SetRate(500_000)
	replica := StartRedis(t)
	replica.Do(t, "REPLICAOF", "127.0.0.1", p.Port())
	WaitFor(t, 10*time.Second, func() error {
		if s := p.Stats(); s.BytesDown < 100_000 {
			return fmt.Errorf("%d bytes of the RDB forwarded", s.BytesDown)
		}
		return nil
	})
	if st := replica.Info(t, "replication"); st["master_sync_in_progress"] != "1" {
		t.Fatalf("replica not receiving the RDB before the cut: %v", st)
	}
	p.Cut()
	p.SetRate(0)
	proxyReplicaSynced(t, master, replica, p.Port())
	proxySameSize(t, master, replica)
	if full := master.Info(t, "stats")["sync_full"]; full != "2" {
		t.Fatalf("master served %s full syncs, want 2 (the cut one and the next)", full)
	}
	t.Logf("stats: %+v", p.Stats())
}

// TestProxyFaultsUnderLoad: clients keep working through the proxy while faults are switched
// on and off from another goroutine (run with -race); once the faults stop, a new client
// works and the counters are consistent.
func TestProxyFaultsUnderLoad(t *testing.T) {
	t.Parallel()
	r := StartRedis(t)
	p := StartProxy(t, r.Addr)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, failed int
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c radix.Conn
			for i := 0; ; i++ {
				select {
				case <-stop:
					if c != nil {
						c.Close()
					}
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				var err error
				if c == nil {
					c, err = (radix.Dialer{}).Dial(ctx, "tcp", p.Addr)
				}
				if err == nil {
					k := fmt.Sprintf("w%d:%d", w, i%100)
					var v string
					err = c.Do(ctx, radix.Cmd(nil, "SET", k, k))
					if err == nil {
						err = c.Do(ctx, radix.Cmd(&v, "GET", k))
					}
					if err == nil && v != k {
						err = fmt.Errorf("GET %s = %q", k, v)
					}
				}
				cancel()
				mu.Lock()
				if err != nil {
					failed++
				} else {
					ok++
				}
				mu.Unlock()
				if err != nil && c != nil {
					c.Close()
					c = nil
				}
			}
		}()
	}
	faults := []func(){
		p.Cut,
		func() { p.Pause(); p.Pause() },
		func() { p.Resume(); p.Resume() },
		func() { p.SetDelay(time.Millisecond) },
		func() { p.SetRate(50_000) },
		p.Block,
		p.Unblock,
		func() { p.SetDelay(0); p.SetRate(0) },
		func() { _ = p.Stats() },
	}
	tick := time.NewTicker(20 * time.Millisecond)
	for i := 0; i < 60; i++ {
		<-tick.C
		faults[i%len(faults)]()
	}
	tick.Stop()
	p.Unblock()
	p.Resume()
	p.SetDelay(0)
	p.SetRate(0)
	close(stop)
	wg.Wait()
	s := p.Stats()
	t.Logf("%d round trips ok, %d failed; stats %+v", ok, failed, s)
	if ok == 0 || s.Cuts == 0 || s.Active < 0 || s.Accepted < 4 {
		t.Fatalf("%d ok, %d failed, stats %+v", ok, failed, s)
	}
	if err := proxyPing(p.Addr); err != nil {
		t.Fatalf("PING after the faults stopped: %v", err)
	}
	WaitFor(t, 5*time.Second, func() error {
		if s := p.Stats(); s.Active != 0 {
			return fmt.Errorf("%d connections still active after every client closed", s.Active)
		}
		return nil
	})
}

// proxyGoroutines counts the goroutines running the proxy's code; with working only, those
// still at work: forwarding (or waiting to), or accepting. A goroutine the proxy's Close has
// waited for can be on its way out, past wg.Done, but never in one of those.
func proxyGoroutines(working bool) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		switch {
		case !working && strings.Contains(g, "rmt/internal/redistest.(*Proxy)."),
			strings.Contains(g, "rmt/internal/redistest.(*Proxy).forward"),
			strings.Contains(g, "rmt/internal/redistest.(*Proxy).acceptLoop") && strings.Contains(g, ").Accept("):
			count++
		}
	}
	return count
}

// TestProxyCleanupLeavesNoGoroutine: proxies with goroutines parked in every kind of wait
// (paused, rate-limited, delayed, writing to a peer that does not read, accepting) are closed
// by the test's Cleanup, and afterwards none of their goroutines is left. Not parallel, so no
// other test's proxy is running meanwhile.
func TestProxyCleanupLeavesNoGoroutine(t *testing.T) {
	if n := proxyGoroutines(false); n != 0 {
		t.Fatalf("%d proxy goroutines before the test", n)
	}
	var proxies []*Proxy
	t.Run("faults", func(t *testing.T) {
		// An upstream that accepts and never reads: a frozen peer.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		var held []net.Conn
		var mu sync.Mutex
		acceptDone := make(chan struct{})
		go func() {
			defer close(acceptDone)
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				held = append(held, c)
				mu.Unlock()
			}
		}()
		t.Cleanup(func() { // registered first, so it runs after the proxies' cleanups
			ln.Close()
			<-acceptDone
			mu.Lock()
			for _, c := range held {
				c.Close()
			}
			mu.Unlock()
		})
		setups := []func(p *Proxy){
			func(p *Proxy) { p.Pause() },
			func(p *Proxy) { p.SetRate(1) },
			func(p *Proxy) { p.SetDelay(time.Hour) },
			func(p *Proxy) {}, // writes block on the upstream's full receive buffer
		}
		for i, setup := range setups {
			t.Cleanup(func() { // runs right after proxy i's Close, with no time in between
				// Cleanups run last-in first-out: proxies 0..i-1 are still open, so at most
				// their 3*i goroutines may be at work (fewer for an instant, between two
				// accepts or two reads).
				if n := proxyGoroutines(true); n > 3*i {
					t.Errorf("after proxy %d closed: %d proxy goroutines forwarding or accepting, want at most %d", i, n, 3*i)
				}
			})
			p := StartProxy(t, ln.Addr().String())
			proxies = append(proxies, p)
			setup(p)
			nc, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
			if err != nil {
				t.Fatalf("proxy %d: dial: %v", i, err)
			}
			t.Cleanup(func() { nc.Close() })
			go func() { // fills buffers until the connection is closed
				_, _ = nc.Write(make([]byte, 8<<20))
			}()
		}
		WaitFor(t, 5*time.Second, func() error {
			for i, p := range proxies {
				if s := p.Stats(); s.Active != 1 {
					return fmt.Errorf("proxy %d: %+v, want 1 active", i, s)
				}
			}
			if s := proxies[1].Stats(); s.BytesUp < 1 {
				return fmt.Errorf("rate-limited proxy has not forwarded its burst yet: %+v", s)
			}
			if s := proxies[3].Stats(); s.BytesUp < 64<<10 {
				return fmt.Errorf("unlimited proxy at %d bytes, want the frozen peer's buffers full", s.BytesUp)
			}
			return nil
		})
		// Each proxy: an accept loop and a pair of forwarding goroutines (polled: under load a
		// goroutine can be between two calls for an instant).
		WaitFor(t, 5*time.Second, func() error {
			if n := proxyGoroutines(false); n != 3*len(proxies) {
				return fmt.Errorf("%d proxy goroutines running, want %d", n, 3*len(proxies))
			}
			if n := proxyGoroutines(true); n != 3*len(proxies) {
				return fmt.Errorf("%d proxy goroutines at work, want %d", n, 3*len(proxies))
			}
			return nil
		})
	})
	for i, p := range proxies {
		select {
		case <-p.done:
		default:
			t.Fatalf("proxy %d: Cleanup returned before its goroutines ended", i)
		}
	}
	// A goroutine that called wg.Done may still be returning: let it finish.
	WaitFor(t, 5*time.Second, func() error {
		if n := proxyGoroutines(false); n != 0 {
			return fmt.Errorf("%d proxy goroutines left after Cleanup", n)
		}
		return nil
	})
}
