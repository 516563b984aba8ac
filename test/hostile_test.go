package test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
)

// The hostile-input tests of issue 9: rmtd runs as a real process (the binary), a live writer
// keeps the source busy, something hostile is thrown at rmtd (its admin port, or a master's
// replies rewritten by a proxy), and each test ends with rmtd up, its peak RSS under
// hostileMaxRSS, the migration going on, and the target equal to the source.

const (
	hostilePass   = "op-s3cret-9"
	hostileMaxRSS = 100 << 20
	// adminLogInterval is the admin port's aggregation interval for the events a client can
	// repeat at will (daemon/admin: defaultLogInterval).
	adminLogInterval = 10 * time.Second
)

// hostileJob is one migration for a hostile test: the servers, rmtd as a process, its admin
// port (with AUTH when the config sets requirepass), and its memory watched all along.
type hostileJob struct {
	src, dst *redistest.Redis
	dir      string
	r        *Rmtd
	p        *rmtdProcess
	rss      *rssWatch
	started  time.Time
}

// startHostile writes rmt.yaml for src → dst (common takes the extra common lines, indented)
// and starts the rmtd binary on it, logging to rmtd.log.
func startHostile(t *testing.T, src *redistest.Redis, srcAddr string, dst *redistest.Redis, pass string, common ...string) *hostileJob {
	t.Helper()
	dir := t.TempDir()
	admin := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	var b strings.Builder
	fmt.Fprintf(&b, "source:\n  type: single\n  servers: [%s]\ntarget:\n  type: single\n  servers: [%s]\n", srcAddr, dst.Addr)
	fmt.Fprintf(&b, "common:\n  listen: %s\n  dir: %s\n", admin, filepath.Join(dir, "data"))
	if pass != "" {
		fmt.Fprintf(&b, "  requirepass: %s\n", pass)
	}
	for _, l := range common {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	writeConfig(t, dir, b.String())
	j := &hostileJob{src: src, dst: dst, dir: dir, r: &Rmtd{Admin: admin, Pass: pass}, started: time.Now()}
	j.p = startRmtdProcess(t, dir)
	j.rss = watchRSS(t, j.p.cmd.Process.Pid)
	return j
}

// alive fails the test if rmtd has exited.
func (j *hostileJob) alive(t *testing.T) {
	t.Helper()
	select {
	case <-j.p.done:
		t.Fatalf("rmtd exited: %v", j.p.cmd.ProcessState)
	default:
	}
	if !processAlive(j.p.cmd.Process.Pid) {
		t.Fatalf("rmtd (pid %d) is not running", j.p.cmd.Process.Pid)
	}
}

// finish checks the end of every hostile test: rmtd up, its peak RSS under hostileMaxRSS, the
// writer stopped, everything it wrote applied, and the target equal to the source.
func (j *hostileJob) finish(t *testing.T, w *redistest.Writer) {
	t.Helper()
	j.alive(t)
	stats := w.Stop()
	if stats.Errors > 0 {
		t.Errorf("writer: %s", stats)
	}
	waitCaughtUp(t, j.r, j.src, 60*time.Second)
	compareWithSource(t, j.src, j.dst)
	j.alive(t)
	sampled, hwm := j.rss.peak(t)
	t.Logf("writer: %d commands; rmtd peak RSS: %d MB sampled, %d MB VmHWM", stats.Total, sampled>>20, hwm>>20)
	if max(sampled, hwm) > hostileMaxRSS {
		t.Errorf("rmtd's peak RSS is %d MB (sampled %d MB), over %d MB", hwm>>20, sampled>>20, hostileMaxRSS>>20)
	}
}

// log is rmtd.log as it is now.
func (j *hostileJob) log(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(j.dir, "rmtd.log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// logLines counts the lines of rmtd.log holding s.
func (j *hostileJob) logLines(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, l := range strings.Split(j.log(t), "\n") {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// aggregatedBound is the most lines the admin port's event log may write for one kind of
// event from one client host since j started: the first at once, then one per interval.
func (j *hostileJob) aggregatedBound() int {
	return 2 + int(time.Since(j.started)/adminLogInterval)
}

// rssWatch samples a process's VmRSS every 20 ms until peak is called.
type rssWatch struct {
	pid  int
	max  atomic.Int64
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func watchRSS(t *testing.T, pid int) *rssWatch {
	w := &rssWatch{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			if rss, err := procStatusBytes(pid, "VmRSS:"); err == nil && rss > w.max.Load() {
				w.max.Store(rss)
			}
			select {
			case <-w.stop:
				return
			case <-tk.C:
			}
		}
	}()
	t.Cleanup(func() { w.once.Do(func() { close(w.stop) }); <-w.done })
	return w
}

// peak stops the sampling and returns the highest VmRSS sampled and the kernel's VmHWM (the
// peak over the process's whole life, between samples too).
func (w *rssWatch) peak(t *testing.T) (sampled, hwm int64) {
	t.Helper()
	hwm, err := procStatusBytes(w.pid, "VmHWM:")
	if err != nil {
		t.Fatal(err)
	}
	w.once.Do(func() { close(w.stop) })
	<-w.done
	return w.max.Load(), hwm
}

// procStatusBytes reads a "<field> N kB" line of /proc/<pid>/status, in bytes.
func procStatusBytes(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == field {
			n, err := strconv.ParseInt(f[1], 10, 64)
			return n << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// rawExchange sends payload on a new TCP connection to addr (from another goroutine: a big
// one may be refused before it is all written) and reads what comes back until the connection
// is closed or wait has passed; closed says which. Bytes past 64 KiB are read but not kept.
// It may run on any goroutine.
func rawExchange(addr string, payload []byte, wait time.Duration) (reply string, closed bool, err error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", false, err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(wait))
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		if len(payload) > 0 {
			_, _ = nc.Write(payload) // fails once rmtd has closed the connection: expected
		}
	}()
	var got []byte
	buf := make([]byte, 16<<10)
	for {
		n, rerr := nc.Read(buf)
		if len(got) < 64<<10 {
			got = append(got, buf[:min(n, 64<<10-len(got))]...)
		}
		if rerr != nil {
			var ne net.Error
			closed = !(errors.As(rerr, &ne) && ne.Timeout())
			break
		}
	}
	nc.Close()
	<-wrote
	return string(got), closed, nil
}

// tokens is an inline line of n tokens "a" separated by spaces, ended by end.
func tokens(n int, end string) []byte {
	return append(bytes.Repeat([]byte("a "), n), end...)
}

// TestHostileAdminPreAuth reproduces the admin-port findings before AUTH (common.requirepass
// set): the 26 bytes `*1\r\n$9223372036854775800\r\n`, which made redcon overflow an index and
// panic on a goroutine nothing recovered (rmtd exited), and its kin (multibulk counts and bulk
// lengths negative, huge, overflowing, over the unauthenticated limits; header lines over
// 64 KiB, terminated or not), then inline lines of N spaced tokens of 80 KB and 1 MB
// (terminated or not), which cost redcon N² bytes, sent on 8 connections at once. Each gets a
// Redis-worded protocol error and is closed (or, for the big ones, cut while still writing),
// a line of 32,000 tokens just under the 64 KiB cap is answered as the unknown command it is,
// rmtd stays up with its RSS under 100 MB, an operator's AUTH + INFO answers (redis-cli and
// radix), and the migration under a live writer goes on to a target equal to the source.
func TestHostileAdminPreAuth(t *testing.T) {
	src := redistest.StartRedis(t, redistest.WithRDB(redistest.Fixture(t, "redis-7.0.15.rdb")))
	dst := redistest.StartRedis(t)
	j := startHostile(t, src, src.Addr, dst, hostilePass)
	w := redistest.StartWriter(t, src.Addr, redistest.WriterOptions{DBs: []int{0, 1, 15}, Seed: 91, Rate: 5000})
	waitPhase(t, j.r, "oplog", 60*time.Second)

	digits := strings.Repeat("9", 70_000)
	// want is the whole reply, the connection then closed. rmtd stops reading a line past
	// 64 KiB: closing a connection with bytes still unread makes the kernel send a reset, which
	// may come before the error (lost): for those longer than that the reply may be nothing.
	small := []struct {
		name, payload, want string
	}{
		{"bulk length 2^63-8", "*1\r\n$9223372036854775800\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"bulk length 2^63-1", "*1\r\n$9223372036854775807\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"bulk length 2^63", "*1\r\n$9223372036854775808\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"bulk length -2^63", "*1\r\n$-9223372036854775808\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"bulk length -1", "*1\r\n$-1\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"bulk over 16 KiB unauthenticated", "*1\r\n$16385\r\n", "-ERR Protocol error: unauthenticated bulk length\r\n"},
		{"multibulk count 2^63-1", "*9223372036854775807\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"multibulk count overflows", "*99999999999999999999\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"multibulk count -2^63-1", "*-9223372036854775809\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"multibulk count 11 unauthenticated", "*11\r\n", "-ERR Protocol error: unauthenticated multibulk length\r\n"},
		{"multibulk count 1M", "*1000000\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		// An empty or negative count is an empty command, skipped as Redis does: the
		// connection goes on (PING is refused before AUTH, QUIT is not).
		{"multibulk count negative", "*-5\r\n*0\r\nPING\r\nQUIT\r\n", "-NOAUTH Authentication required.\r\n+OK\r\n"},
		{"not a bulk", "*2\r\n$4\r\nAUTH\r\n:5\r\n", "-ERR Protocol error: expected '$', got ':'\r\n"},
		{"$ line over 64 KiB", "*1\r\n$" + digits + "\r\n", "-ERR Protocol error: too big bulk count string\r\n"},
		{"$ line over 64 KiB unterminated", "*1\r\n$" + digits, "-ERR Protocol error: too big bulk count string\r\n"},
		{"* line over 64 KiB", "*" + digits + "\r\n", "-ERR Protocol error: too big mbulk count string\r\n"},
		{"after AUTH, bulk length 2^63-8", "AUTH " + hostilePass + "\r\n*1\r\n$9223372036854775800\r\n",
			"+OK\r\n-ERR Protocol error: invalid bulk length\r\n"},
		{"after AUTH, bulk over 1 MiB", "AUTH " + hostilePass + "\r\n*2\r\n$4\r\nECHO\r\n$1048577\r\n",
			"+OK\r\n-ERR Protocol error: invalid bulk length\r\n"},
	}
	for _, tc := range small {
		reply, closed, err := rawExchange(j.r.Admin, []byte(tc.payload), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		reset := len(tc.payload) > 64<<10
		if reply != tc.want && !(reset && reply == "") || !closed {
			t.Errorf("%s: reply %q, closed %v; want %q and the connection closed", tc.name, reply, closed, tc.want)
		}
		j.alive(t)
	}

	// Inline lines: a whole one of 80 KB and of 1 MB, and the same without an end of line,
	// each on 8 connections at once, three rounds.
	const tooBig = "-ERR Protocol error: too big inline request\r\n"
	big := []struct {
		name    string
		payload []byte
	}{
		{"80 KB inline line", tokens(40_000, "\r\n")},
		{"1 MB inline line", tokens(500_000, "\r\n")},
		{"80 KB inline line unterminated", tokens(40_000, "")},
		{"1 MB inline line unterminated", tokens(500_000, "")},
	}
	protoErrors := len(small) - 1 // the negative count's connection ends with QUIT
	for round := range 3 {
		for _, tc := range big {
			var wg sync.WaitGroup
			var mu sync.Mutex
			var bad []string
			for range 8 {
				wg.Go(func() {
					reply, closed, err := rawExchange(j.r.Admin, tc.payload, 10*time.Second)
					// The error may be lost when rmtd closes a connection whose client is still
					// writing (the kernel answers with a reset): then it is only closed.
					if err != nil || !closed || reply != tooBig && reply != "" {
						mu.Lock()
						bad = append(bad, fmt.Sprintf("reply %q, closed %v, %v", reply, closed, err))
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			protoErrors += 8
			if len(bad) > 0 {
				t.Errorf("round %d, %s: %s; want %q (or nothing) and the connection closed", round, tc.name, bad[0], tooBig)
			}
			j.alive(t)
		}
	}
	// Just under the cap, a line of 32,000 tokens is a command: "a" with 31,999 arguments,
	// unknown, answered as Redis words it; the connection goes on.
	reply, closed, err := rawExchange(j.r.Admin, append(tokens(32_000, "\r\n"), "QUIT\r\n"...), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := "-ERR unknown command 'a', with args beginning with: 'a' 'a' "; !strings.HasPrefix(reply, want) ||
		!strings.HasSuffix(reply, "\r\n+OK\r\n") || !closed {
		t.Errorf("a line of 32,000 tokens: reply %q, closed %v; want %q..., then +OK to QUIT", reply, closed, want)
	}
	j.alive(t)

	// The operator gets in: redis-cli and radix, with AUTH.
	_, port, _ := net.SplitHostPort(j.r.Admin)
	code, out, errOut := runRedisCLI(t, "-h", "127.0.0.1", "-p", port, "-a", hostilePass, "--no-auth-warning", "INFO", "clients")
	if code != 0 || !strings.Contains(out, "connected_clients:") {
		t.Fatalf("redis-cli INFO: exit %d, %q, %q", code, out, errOut)
	}
	m := j.r.Info(t)
	if m["phase"] != "oplog" || m["connected_clients"] != "1" {
		t.Errorf("INFO after the attacks: phase %q, connected_clients %q (the operator alone)", m["phase"], m["connected_clients"])
	}
	j.finish(t, w)
	n := j.logLines(t, "admin connections closed on a protocol error")
	t.Logf("%d connections closed on a protocol error; %d log lines say so; rmtd.log %d bytes", protoErrors, n, len(j.log(t)))
	if n == 0 || n > j.aggregatedBound() {
		t.Errorf("%d log lines for %d protocol errors from one host, want 1 to %d (aggregated)", n, protoErrors, j.aggregatedBound())
	}
	if log := j.log(t); strings.Contains(log, "panic") {
		t.Errorf("rmtd.log mentions a panic:\n%s", log)
	}
}

// adminConn is a raw connection to the admin port, closed at the end of the test.
func adminConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// closedWithin reports whether the peer closes nc within d (a read returns EOF or a reset).
func closedWithin(nc net.Conn, d time.Duration) bool {
	_ = nc.SetReadDeadline(time.Now().Add(d))
	_, err := nc.Read(make([]byte, 512))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// TestHostileAdminIdleAndFloods reproduces the admin-port findings on connections (requirepass
// set, max_clients 50): 100 TCP connections that never AUTH, held open, locked the operator
// out and stayed forever; an AUTH flood and a storm of refused connections each wrote a log
// line per event. Now the operator's AUTH + INFO answers within 3 s while the 100 are held
// (the oldest unauthenticated connections make room: evicted_clients 51), and rmtd closes
// the idle ones after its 10 s pre-AUTH timeout; wrong AUTHs pipelined on 8 connections for
// 3 s are answered no faster than the doubling delay allows, and fire-and-forget ones on
// short connections are counted too (auth_failures); 10,000 connections refused at
// max_clients (every slot authenticated) are each told so and counted
// (rejected_connections); each kind of event is logged in aggregate, one line per 10 s
// interval from the client's host; rmtd stays under 100 MB and the migration under a live
// writer ends equal.
func TestHostileAdminIdleAndFloods(t *testing.T) {
	const maxClients = 50
	src := redistest.StartRedis(t, redistest.WithRDB(redistest.Fixture(t, "redis-7.0.15.rdb")))
	dst := redistest.StartRedis(t)
	j := startHostile(t, src, src.Addr, dst, hostilePass, "max_clients: "+strconv.Itoa(maxClients))
	w := redistest.StartWriter(t, src.Addr, redistest.WriterOptions{DBs: []int{0, 1, 15}, Seed: 92, Rate: 5000})
	waitPhase(t, j.r, "oplog", 60*time.Second)
	before := j.r.Info(t)

	// 100 idle connections, held open; each is accepted (the 51st on make room).
	idle := make([]net.Conn, 100)
	for i := range idle {
		idle[i] = adminConn(t, j.r.Admin)
	}
	opened := time.Now()
	redistest.WaitFor(t, 10*time.Second, func() error {
		m, err := j.r.info() // itself one more connection, once the 100 are in
		if err != nil {
			return err
		}
		if got := atoi(t, m["total_connections_received"]) - atoi(t, before["total_connections_received"]); got < 101 {
			return fmt.Errorf("%d connections accepted since the start, want the 100 idle ones and this one", got)
		}
		return nil
	})
	// The operator, with the 100 still held: AUTH and INFO answer within 3 s.
	start := time.Now()
	m, err := adminInfoWithin(j.r.Admin, hostilePass, 3*time.Second)
	if err != nil {
		t.Fatalf("the operator's AUTH + INFO with 100 idle connections held: %v", err)
	}
	t.Logf("operator's AUTH + INFO with 100 idle connections held: %v", time.Since(start).Round(time.Millisecond))
	// The INFO connection of the wait above made room by evicting one and may still be closing
	// when the operator's arrives, which then evicts one more: maxClients-1 open is as right.
	if c := atoi(t, m["connected_clients"]); c < maxClients-1 || c > maxClients || atoi(t, m["evicted_clients"]) < 51 {
		t.Errorf("with 100 idle connections held: connected_clients %s, evicted_clients %s; want %d (or one less) and at least 51",
			m["connected_clients"], m["evicted_clients"], maxClients)
	}
	// The ones still open are closed by the pre-AUTH idle timeout (10 s).
	for i, nc := range idle {
		if !closedWithin(nc, time.Until(opened.Add(15*time.Second))) {
			t.Fatalf("idle connection %d still open %v after it was opened", i, time.Since(opened).Round(time.Second))
		}
	}
	for _, what := range []string{"admin connections closed: idle before authenticating", "admin connections evicted"} {
		if n := j.logLines(t, what); n == 0 || n > j.aggregatedBound() {
			t.Errorf("%d log lines %q, want 1 to %d (aggregated)", n, what, j.aggregatedBound())
		}
	}

	// An AUTH flood: for 3 s, 8 connections pipelining wrong AUTHs as fast as rmtd reads them;
	// then, for 2 s, 8 goroutines sending one wrong AUTH per connection and closing it without
	// waiting for the answer.
	var answered, sent, shortAUTHs atomic.Int64
	var wg sync.WaitGroup
	flood := time.Now().Add(3 * time.Second)
	perConn := make([]int64, 8)
	dialErrs := make([]error, 8)
	for i := range 8 {
		wg.Go(func() {
			nc, err := net.DialTimeout("tcp", j.r.Admin, 5*time.Second)
			if err != nil {
				dialErrs[i] = err
				return
			}
			defer nc.Close()
			_ = nc.SetDeadline(flood)
			go func() {
				lines := bytes.Repeat([]byte("AUTH not-the-password\r\n"), 100)
				for {
					if _, err := nc.Write(lines); err != nil {
						return // the deadline, or closed
					}
					sent.Add(100)
				}
			}()
			buf := make([]byte, 4096)
			var got []byte
			for {
				n, err := nc.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					break
				}
			}
			perConn[i] = int64(strings.Count(string(got), "-WRONGPASS"))
			answered.Add(perConn[i])
		})
	}
	wg.Wait()
	if err := errors.Join(dialErrs...); err != nil {
		t.Fatal(err)
	}
	// A connection waits 100 ms after its first failure, doubling: in 3 s, 5 answers at most.
	for i, n := range perConn {
		if n == 0 || n > 6 {
			t.Errorf("pipelining connection %d got %d WRONGPASS answers in 3 s, want 1 to 6 (the delay doubles from 100 ms)", i, n)
		}
	}
	rssPipelined := j.rss.max.Load()
	flood = time.Now().Add(2 * time.Second)
	for range 8 {
		wg.Go(func() {
			for time.Now().Before(flood) {
				nc, err := net.DialTimeout("tcp", j.r.Admin, time.Second)
				if err != nil {
					continue
				}
				if _, err := io.WriteString(nc, "AUTH default not-the-password\r\n"); err == nil {
					shortAUTHs.Add(1)
				}
				nc.Close()
			}
		})
	}
	wg.Wait()
	rssShort := j.rss.max.Load()
	j.alive(t)
	var fails int64
	redistest.WaitFor(t, 10*time.Second, func() error {
		m, err := adminInfoWithin(j.r.Admin, hostilePass, 5*time.Second)
		if err != nil {
			return err
		}
		// A short connection's AUTH is read unless an eviction comes first: most are.
		if fails = atoi(t, m["auth_failures"]); fails < answered.Load()+shortAUTHs.Load()/2 {
			return fmt.Errorf("auth_failures %d, with %d WRONGPASS answered and %d AUTHs on short connections", fails,
				answered.Load(), shortAUTHs.Load())
		}
		return nil
	})
	authLines := j.logLines(t, "admin AUTH failed")
	t.Logf("AUTH flood: %d pipelined (%d answered), %d on short connections; auth_failures %d; %d log lines; peak RSS so far %d MB after the idle connections and the pipelined AUTHs, %d MB after the short connections",
		sent.Load(), answered.Load(), shortAUTHs.Load(), fails, authLines, rssPipelined>>20, rssShort>>20)
	if fails < 1000 {
		t.Errorf("auth_failures %d: the flood was not one", fails)
	}
	if authLines == 0 || authLines > j.aggregatedBound() {
		t.Errorf("%d log lines for %d AUTH failures from one host, want 1 to %d (aggregated)", authLines, fails, j.aggregatedBound())
	}

	// 10,000 connections refused: every slot is taken by an authenticated connection.
	held := make([]net.Conn, maxClients)
	for i := range held {
		held[i] = adminConn(t, j.r.Admin)
		_ = held[i].SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(held[i], "AUTH "+hostilePass+"\r\n"); err != nil {
			t.Fatal(err)
		}
		if b := make([]byte, 5); !readFull(held[i], b) || string(b) != "+OK\r\n" {
			t.Fatalf("AUTH on held connection %d: %q", i, b)
		}
		_ = held[i].SetDeadline(time.Time{})
	}
	const storm = 10_000
	rejectedBefore := atoi(t, infoOn(t, held[0])["rejected_connections"])
	var refused, other atomic.Int64
	var firstOther atomic.Value
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < storm; i += 8 {
				reply, closed, err := rawExchange(j.r.Admin, nil, 5*time.Second)
				if err == nil && reply == "-ERR max number of clients reached\r\n" && closed {
					refused.Add(1)
				} else if other.Add(1) == 1 {
					firstOther.Store(fmt.Sprintf("reply %q, closed %v, %v", reply, closed, err))
				}
			}
		})
	}
	wg.Wait()
	j.alive(t)
	if other.Load() > 0 {
		t.Errorf("%d of %d connections at max_clients not refused as Redis does: first %v", other.Load(), storm, firstOther.Load())
	}
	m = infoOn(t, held[0]) // the operator's connection, already in
	rejected := atoi(t, m["rejected_connections"]) - rejectedBefore
	refusedLines := j.logLines(t, "admin connections refused")
	t.Logf("%d connections refused; rejected_connections +%d; %d log lines", refused.Load(), rejected, refusedLines)
	if rejected != storm {
		t.Errorf("rejected_connections grew by %d for %d refused connections", rejected, storm)
	}
	if refusedLines == 0 || refusedLines > j.aggregatedBound() {
		t.Errorf("%d log lines for %d refused connections from one host, want 1 to %d (aggregated)", refusedLines, storm, j.aggregatedBound())
	}
	for _, nc := range held {
		nc.Close()
	}

	// Once rmtd has seen them close, the operator connects again as a newcomer; the migration
	// went on all along.
	redistest.WaitFor(t, 5*time.Second, func() error {
		_, err := adminInfoWithin(j.r.Admin, hostilePass, 3*time.Second)
		return err
	})
	j.finish(t, w)
	log := j.log(t)
	t.Logf("rmtd.log: %d lines, %d bytes", strings.Count(log, "\n"), len(log))
	if len(log) > 64<<10 {
		t.Errorf("rmtd.log holds %d bytes after the floods", len(log))
	}
}

// adminInfoWithin is AUTH + INFO on a new connection, within d.
func adminInfoWithin(addr, pass string, d time.Duration) (map[string]string, error) {
	nc, err := net.DialTimeout("tcp", addr, d)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(d))
	return infoOnConn(nc, pass)
}

// infoOn is INFO on an authenticated raw connection.
func infoOn(t *testing.T, nc net.Conn) map[string]string {
	t.Helper()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	defer nc.SetDeadline(time.Time{})
	m, err := infoOnConn(nc, "")
	if err != nil {
		t.Fatalf("INFO: %v", err)
	}
	return m
}

// infoOnConn sends AUTH pass (unless "") and INFO on nc and parses the reply.
func infoOnConn(nc net.Conn, pass string) (map[string]string, error) {
	req := "INFO\r\n"
	if pass != "" {
		req = "AUTH " + pass + "\r\n" + req
	}
	if _, err := io.WriteString(nc, req); err != nil {
		return nil, err
	}
	var got []byte
	buf := make([]byte, 16<<10)
	for {
		n, err := nc.Read(buf)
		got = append(got, buf[:n]...)
		body := got
		if pass != "" {
			var ok bool
			if body, ok = bytes.CutPrefix(got, []byte("+OK\r\n")); !ok && bytes.Contains(got, []byte("\r\n")) {
				return nil, fmt.Errorf("AUTH: %q", truncateStr(string(got), 200))
			}
		}
		if bytes.HasPrefix(body, []byte("-")) && bytes.Contains(body, []byte("\r\n")) {
			return nil, fmt.Errorf("INFO: %q", truncateStr(string(body), 200))
		}
		if info, ok := bulkString(body); ok {
			return parseAdminInfo(info), nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading INFO after %d bytes: %w", len(got), err)
		}
	}
}

// bulkString parses one whole RESP bulk string at the start of b.
func bulkString(b []byte) (string, bool) {
	line, rest, ok := bytes.Cut(b, []byte("\r\n"))
	if !ok || len(line) < 2 || line[0] != '$' {
		return "", false
	}
	n, err := strconv.Atoi(string(line[1:]))
	if err != nil || len(rest) < n+2 {
		return "", false
	}
	return string(rest[:n]), true
}

func readFull(nc net.Conn, b []byte) bool {
	_, err := io.ReadFull(nc, b)
	return err == nil
}

func truncateStr(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// replTamper edits what a master sends on one replica connection, as a redistest.Rewrite:
// fullresync, if set, gives the line to send instead of the +FULLRESYNC line (CRLF included);
// payload, if set, sees the RDB payload after the `$` line piece by piece (off: where the
// piece starts in the payload; size: the announced length, -1 for the diskless `$EOF:` form,
// whose pieces run on into the stream) and gives the bytes to send instead, cut to close the
// connection after them. Lines before the payload (replies, the master's keep-alive newlines)
// are held until whole, so a line split over two reads is seen whole.
type replTamper struct {
	fullresync func(line string) string
	payload    func(off int64, piece []byte, size int64) (out []byte, cut bool)
	seen       chan<- string // the +FULLRESYNC line as the master sent it, if not nil

	state   int // 0: lines until +FULLRESYNC; 1: lines until the `$` line; 2: payload; 3: as it is
	pending []byte
	off     int64
	size    int64
}

func (r *replTamper) rewrite(chunk []byte) ([]byte, bool) {
	var out []byte
	for data := chunk; len(data) > 0; {
		switch r.state {
		case 0, 1:
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				r.pending = append(r.pending, data...)
				return out, false
			}
			line := string(append(r.pending, data[:i+1]...))
			r.pending, data = nil, data[i+1:]
			switch {
			case r.state == 0 && strings.HasPrefix(line, "+FULLRESYNC "):
				if r.seen != nil {
					r.seen <- strings.TrimRight(line, "\r\n")
				}
				if r.fullresync != nil {
					line = r.fullresync(line)
				}
				r.state = 3
				if r.payload != nil {
					r.state = 1
				}
			case r.state == 1 && strings.HasPrefix(line, "$EOF:"):
				r.state, r.size = 2, -1
			case r.state == 1 && strings.HasPrefix(line, "$"):
				n, err := strconv.ParseInt(strings.TrimRight(line[1:], "\r\n"), 10, 64)
				if err != nil {
					panic(fmt.Sprintf("replTamper: RDB header %q", line)) // the master's own: cannot happen
				}
				r.state, r.size = 2, n
			}
			out = append(out, line...)
		case 2:
			piece := data
			if r.size >= 0 {
				piece = data[:min(int64(len(data)), r.size-r.off)]
			}
			data = data[len(piece):]
			p, cut := r.payload(r.off, piece, r.size)
			r.off += int64(len(piece))
			out = append(out, p...)
			if cut {
				return out, true
			}
			if r.size >= 0 && r.off == r.size {
				r.state = 3
			}
		default:
			return append(out, data...), false
		}
	}
	return out, false
}

// sourceLineSampler polls INFO's source0 line every 20 ms until stopped, keeping the lowest
// received_offset seen and the first line that does not parse.
type sourceLineSampler struct {
	stop, done chan struct{}
	mu         sync.Mutex
	minRecv    int64
	samples    int
	bad        string
}

func sampleSourceLine(t *testing.T, r *Rmtd) *sourceLineSampler {
	s := &sourceLineSampler{stop: make(chan struct{}), done: make(chan struct{}), minRecv: 1<<63 - 1}
	go func() {
		defer close(s.done)
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			if m, err := r.info(); err == nil && m["source0"] != "" {
				v, err := strconv.ParseInt(m["source0.received_offset"], 10, 64)
				s.mu.Lock()
				s.samples++
				if err != nil && s.bad == "" {
					s.bad = m["source0"]
				}
				s.minRecv = min(s.minRecv, v)
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-tk.C:
			}
		}
	}()
	t.Cleanup(s.end)
	return s
}

func (s *sourceLineSampler) end() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// TestHostileFullResyncOffset reproduces finding 5: `+FULLRESYNC <replid> 9223372036854775807`
// was accepted, the spool's offset overflowed and the replay failed forever. A proxy between
// rmtd and a real master rewrites the master's first +FULLRESYNC to that offset, on the first
// connection only. rmtd refuses it naming the offset, in its log and in INFO's source0
// last_error (read while the next connection is held back), reconnects once after its
// backoff (two connections at the proxy in all, not a loop), takes the next, untouched full
// sync, and migrates to a target equal to the source under a live writer; received_offset is
// never negative in INFO (polled every 20 ms), and the master counts exactly two full syncs.
func TestHostileFullResyncOffset(t *testing.T) {
	src := redistest.StartRedis(t, redistest.WithRDB(redistest.Fixture(t, "redis-7.0.15.rdb")))
	dst := redistest.StartRedis(t)
	w := redistest.StartWriter(t, src.Addr, redistest.WriterOptions{DBs: []int{0, 1, 15}, Seed: 93, Rate: 5000})
	proxy := redistest.StartProxy(t, src.Addr)
	const bad = "9223372036854775807"
	var links atomic.Int32 // the proxy's connections that got a replication reply
	seen := make(chan string, 2)
	release := make(chan struct{}) // the second connection's first reply waits for it
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseAll) // before the proxy's Close, which waits for its goroutines
	proxy.RewriteDown(countLinks(&links, func(n int) redistest.Rewrite {
		switch n {
		case 1:
			tamper := &replTamper{seen: seen, fullresync: func(line string) string {
				f := strings.Fields(line)
				return f[0] + " " + f[1] + " " + bad + "\r\n"
			}}
			return tamper.rewrite
		case 2:
			first := true
			return func(b []byte) ([]byte, bool) {
				if first {
					first = false
					<-release
				}
				return b, false
			}
		}
		return nil
	}))
	j := startHostile(t, src, proxy.Addr, dst, "")
	s := sampleSourceLine(t, j.r)

	var orig string
	select {
	case orig = <-seen:
	case <-time.After(30 * time.Second):
		t.Fatal("no +FULLRESYNC from the master on the first connection")
	}
	// While the second connection waits, INFO still shows why the first one was dropped.
	var l map[string]string
	redistest.WaitFor(t, 10*time.Second, func() error {
		l = sourceLine(t, j.r)
		if !strings.Contains(l["last_error"], bad) || proxy.Stats().Accepted < 2 {
			return fmt.Errorf("%d connections at the proxy; source0: %v", proxy.Stats().Accepted, l)
		}
		return nil
	})
	t.Logf("the master's first reply %q was sent with offset %s; source0 last_error: %s", orig, bad, l["last_error"])
	if !strings.Contains(l["last_error"], `+FULLRESYNC offset "`+bad+`" is not an integer in [0`) || l["full_syncs"] != "0" || l["link"] != "down" {
		t.Errorf("source0 after the bad +FULLRESYNC: %v", l)
	}
	if log := j.log(t); !strings.Contains(log, bad) {
		t.Errorf("rmtd.log does not name the offset %s:\n%s", bad, log)
	}
	releaseAll()
	waitPhase(t, j.r, "oplog", 60*time.Second)
	j.finish(t, w)
	s.end()
	l = sourceLine(t, j.r)
	st := proxy.Stats()
	t.Logf("proxy: %d connections, %d of them replication links; source0 full_syncs %s, reconnects %s; master sync_full %s; %d INFO samples, lowest received_offset %d",
		st.Accepted, links.Load(), l["full_syncs"], l["reconnects"], src.Info(t, "stats")["sync_full"], s.samples, s.minRecv)
	if links.Load() != 2 || l["full_syncs"] != "1" || l["reconnects"] != "1" {
		t.Errorf("after the bad +FULLRESYNC: %d link connections at the proxy, source0 %v; want 2, one full sync, one reconnect", links.Load(), l)
	}
	if got := src.Info(t, "stats")["sync_full"]; got != "2" {
		t.Errorf("the master counts %s full syncs, want 2 (the refused one and the next)", got)
	}
	if s.bad != "" || s.minRecv < 0 || s.samples < 3 {
		t.Errorf("received_offset over %d INFO samples: lowest %d, unparsable line %q", s.samples, s.minRecv, s.bad)
	}
}

// TestHostileCorruptSnapshot reproduces finding 6: a corrupt snapshot (bad bytes, a bad CRC,
// cut short) was reported clearly, but the same bad file was loaded again forever. A proxy
// between rmtd and a real master tampers with the RDB payload of the first full sync only:
// 8 bytes in its middle flipped, or the payload cut there and the connection closed; with
// the master sending it as a `$<len>` bulk (repl-diskless-sync no) and in the diskless
// `$EOF:<mark>` form. rmtd names the snapshot and the offset where it failed, drops it and
// gets one new full sync (the master counts exactly 2 over 2 connections): for flipped bytes
// it asks for it (INFO errors_snapshot_resync 1); for a cut transfer the link's own retry
// brings it, and the failed snapshot is not loaded again meanwhile (errors_rdb_load 1). The
// target, whose keys from the bad snapshot are removed before the new one loads, ends equal to
// the source under a live writer. The target validates RESTORE payloads
// (sanitize-dump-payload yes): the snapshot's checksum can only be checked at its end, so
// flipped bytes inside a value reach the target first.
func TestHostileCorruptSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name     string
		diskless bool
		cut      bool
	}{
		{"disk/flipped", false, false},
		{"disk/short", false, true},
		{"diskless/flipped", true, false},
		{"diskless/short", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			diskless := "no"
			if tc.diskless {
				diskless = "yes"
			}
			src := redistest.StartRedis(t, redistest.WithRDB(redistest.Fixture(t, "redis-7.0.15.rdb")),
				redistest.WithArgs("repl-diskless-sync "+diskless))
			dst := redistest.StartRedis(t, redistest.WithArgs("sanitize-dump-payload yes"))
			w := redistest.StartWriter(t, src.Addr, redistest.WriterOptions{DBs: []int{0, 1, 15}, Seed: 94, Rate: 5000})
			proxy := redistest.StartProxy(t, src.Addr)
			seen := make(chan string, 1)
			var size, at atomic.Int64 // the payload's announced size (-1: diskless), where it was tampered with
			var links atomic.Int32    // the proxy's connections that got a replication reply
			proxy.RewriteDown(countLinks(&links, func(n int) redistest.Rewrite {
				if n != 1 {
					return nil
				}
				tamper := &replTamper{seen: seen, payload: func(off int64, piece []byte, total int64) ([]byte, bool) {
					mid := total / 2 // the fixture's RDB is 43 KB, more with the writer's keys
					if total < 0 {
						mid = 20_000 // inside the payload, away from the mark that ends it
					}
					if mid < off || mid >= off+int64(len(piece)) {
						return piece, false
					}
					size.Store(total)
					at.Store(mid)
					i := mid - off
					if tc.cut {
						return piece[:i], true
					}
					out := append([]byte(nil), piece...)
					for k := i; k < min(i+8, int64(len(out))); k++ {
						out[k] ^= 0xff
					}
					return out, false
				}}
				return tamper.rewrite
			}))
			j := startHostile(t, src, proxy.Addr, dst, "")
			var replid string
			select {
			case line := <-seen:
				replid = strings.Fields(line)[1]
			case <-time.After(30 * time.Second):
				t.Fatal("no +FULLRESYNC from the master on the first connection")
			}
			redistest.WaitFor(t, 30*time.Second, func() error {
				if at.Load() == 0 {
					return fmt.Errorf("the first snapshot is not tampered with yet")
				}
				return nil
			})
			waitPhase(t, j.r, "oplog", 60*time.Second)
			j.finish(t, w)

			m := j.r.Info(t)
			l := parseNodeLine(m["source0"])
			full := src.Info(t, "stats")["sync_full"]
			log := j.log(t)
			removed := j.logLines(t, "removed what this node loaded before")
			t.Logf("payload of %d bytes tampered with at %d; master sync_full %s over %d link connections (%d in all); source0 full_syncs %s, reconnects %s; "+
				"errors_snapshot_resync %q, errors_rdb_load %q; %d removals of the node's keys",
				size.Load(), at.Load(), full, links.Load(), proxy.Stats().Accepted, l["full_syncs"], l["reconnects"],
				m["errors_snapshot_resync"], m["errors_rdb_load"], removed)
			if full != "2" || links.Load() != 2 || l["reconnects"] != "1" {
				t.Errorf("the master counts %s full syncs over %d link connections (source0 %v), want 2 and 2: the bad one and one more",
					full, links.Load(), l)
			}
			if m["errors_rdb_load"] != "1" {
				t.Errorf("errors_rdb_load %q, want 1: the bad snapshot is loaded once", m["errors_rdb_load"])
			}
			var why string
			if tc.cut {
				why = fmt.Sprintf("reading the RDB at offset %d of %d: unexpected EOF", at.Load(), size.Load())
				if tc.diskless {
					why = fmt.Sprintf("reading the diskless RDB at offset %d (end mark not seen): unexpected EOF", at.Load())
				}
				if n := j.logLines(t, "the snapshot did not arrive whole"); n != 1 || m["errors_snapshot_resync"] != "" {
					t.Errorf("%d log lines saying the snapshot did not arrive whole, errors_snapshot_resync %q; want 1 and none",
						n, m["errors_snapshot_resync"])
				}
			} else {
				why = "checksum mismatch" // or another decoding error, wherever the flipped bytes fall
				if m["errors_snapshot_resync"] != "1" || l["full_syncs"] != "2" {
					t.Errorf("errors_snapshot_resync %q, source0 full_syncs %s; want 1 and 2", m["errors_snapshot_resync"], l["full_syncs"])
				}
			}
			var said bool
			for _, line := range strings.Split(log, "\n") {
				if !strings.Contains(line, replid) || !strings.Contains(line, " offset ") ||
					!strings.Contains(line, "the snapshot does not decode") && !strings.Contains(line, "the snapshot did not arrive whole") {
					continue
				}
				t.Logf("rmtd.log: %s", truncateStr(line, 600))
				said = said || strings.Contains(line, why) || !tc.cut && strings.Contains(line, "rdb: ")
			}
			if !said {
				t.Errorf("rmtd.log does not say that the snapshot of %s failed, and where (%q):\n%s", replid, why, log)
			}
			if removed > 2 {
				t.Errorf("the node's keys were removed from the target %d times, want at most 2 (before each snapshot)", removed)
			}
		})
	}
}

// countLinks wraps a proxy's rewrites (rw's; nil: bytes as they are) to count into n the
// connections that get a replication reply (+FULLRESYNC, +CONTINUE): rmtd's link connections,
// not its control ones (the INFO a diskless load's progress asks for).
func countLinks(n *atomic.Int32, rw func(int) redistest.Rewrite) func(int) redistest.Rewrite {
	return func(conn int) redistest.Rewrite {
		inner := rw(conn)
		counted := false
		return func(b []byte) ([]byte, bool) {
			if !counted && (bytes.Contains(b, []byte("+FULLRESYNC")) || bytes.Contains(b, []byte("+CONTINUE"))) {
				counted = true
				n.Add(1)
			}
			if inner == nil {
				return b, false
			}
			return inner(b)
		}
	}
}
