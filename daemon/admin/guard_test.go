package admin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"
	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/tidwall/redcon"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// chunkConn is a net.Conn whose reads return at most n bytes of data: every way a command
// can be split across reads.
type chunkConn struct {
	net.Conn // nil: only Read and the deadline setters are used
	data     []byte
	n        int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), c.n, len(c.data))
	copy(p, c.data[:k])
	c.data = c.data[k:]
	return k, nil
}

func (c *chunkConn) SetReadDeadline(time.Time) error  { return nil }
func (c *chunkConn) SetWriteDeadline(time.Time) error { return nil }
func (c *chunkConn) Write(p []byte) (int, error)      { return len(p), nil }

// guardOutput is what redcon reads through a guard from in, delivered chunk bytes at a time.
func guardOutput(in string, chunk int, authed bool) (string, error) {
	g := newGuardConn(&chunkConn{data: []byte(in), n: chunk}, 0)
	g.sess = &session{authed: authed}
	out, err := io.ReadAll(g)
	return string(out), err
}

func TestGuardCanonicalEverySplit(t *testing.T) {
	in := "*2\r\n$4\r\nECHO\r\n$5\r\nhe\r\nl\r\n" + // a CRLF inside a bulk string
		"PING\r\n" +
		"  ECHO   \"a b\\x41\\n\"  'c\\'d' e\"f g\" \n" +
		"\r\n" + // blank inline line: no command
		"*0\r\n*-1\r\n" + // empty multibulks: no command
		"*1\r\n$0\r\n\r\n" +
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"
	want := "*2\r\n$4\r\nECHO\r\n$5\r\nhe\r\nl\r\n" +
		"*1\r\n$4\r\nPING\r\n" +
		"*4\r\n$4\r\nECHO\r\n$5\r\na bA\n\r\n$3\r\nc'd\r\n$4\r\nef g\r\n" +
		"*1\r\n$0\r\n\r\n" +
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"
	for chunk := 1; chunk <= len(in); chunk++ {
		got, err := guardOutput(in, chunk, true)
		if err != nil {
			t.Fatalf("chunks of %d: %v", chunk, err)
		}
		if got != want {
			t.Fatalf("chunks of %d:\n got %q\nwant %q", chunk, got, want)
		}
	}
}

func TestGuardRefuses(t *testing.T) {
	tests := []struct {
		in     string
		authed bool
		want   string // the protocol error, as Redis words it
	}{
		{"*1\r\n$9223372036854775800\r\n", true, "invalid bulk length"}, // redcon's overflow panic
		{"*1\r\n$9223372036854775800\r\n", false, "invalid bulk length"},
		{"*1\r\n$99999999999999999999\r\n", true, "invalid bulk length"},
		{"*1\r\n$-1\r\n", true, "invalid bulk length"},
		{"*1\r\n$2000000\r\n", true, "invalid bulk length"}, // over the command cap
		{"*2\r\n$4\r\nAUTH\r\n$20000\r\n", false, "unauthenticated bulk length"},
		{"*11\r\n", false, "unauthenticated multibulk length"},
		{"*99999999999\r\n", true, "invalid multibulk length"},
		{"*9223372036854775808\r\n", true, "invalid multibulk length"},
		{"*abc\r\n", true, "invalid multibulk length"},
		{"*01\r\n", true, "invalid multibulk length"},
		{"*1\r\n$abc\r\n", true, "invalid bulk length"},
		{"*1\r\n#4\r\n", true, "expected '$', got '#'"},
		{"*1\r\n\r\n", true, "expected '$', got '\\x00'"},
		{"a \"b\r\n", true, "unbalanced quotes in request"},
		{"a \"b\"c\r\n", true, "unbalanced quotes in request"},
		{"a 'b'c\r\n", true, "unbalanced quotes in request"},
		{strings.Repeat("a ", 40<<10) + "\r\n", true, "too big inline request"},
		{"*" + strings.Repeat("1", 70<<10) + "\r\n", true, "too big mbulk count string"},
		{"*1\r\n$" + strings.Repeat("1", 70<<10) + "\r\n", true, "too big bulk count string"},
	}
	for _, tt := range tests {
		_, err := guardOutput(tt.in, 4096, tt.authed)
		var pe *guardError
		if !errors.As(err, &pe) || pe.msg != tt.want {
			t.Errorf("%.40q (authed %v): %v, want protocol error %q", tt.in, tt.authed, err, tt.want)
		}
	}
	// Commands cut short end with the connection's error, not a command.
	for _, in := range []string{"*2\r\n$4\r\nECHO\r\n$5\r\nab", "PING", "*1\r\n$4\r\nPI"} {
		out, err := guardOutput(in, 3, true)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) || out != "" {
			t.Errorf("%q: %q, %v; want nothing and EOF", in, out, err)
		}
	}
}

// TestGuardInlineLikeRedis sends the same inline lines to redis-server and to the admin
// port, each on a new connection: an unknown command's reply quotes the arguments as they
// were split, and a protocol error closes the connection in both. (One difference is not
// tested: a NUL byte ends an inline line here, while Redis, which looks for the newline with
// strchr, waits forever for a newline it cannot see.)
func TestGuardInlineLikeRedis(t *testing.T) {
	lines := []string{
		`FOO a"b c"d`,
		`FOO a"b c" 'x\'y' "\x41\n\q" plain`,
		"FOO \t a\vb \"\" ''",
		`FOO "\x4"`,
		`FOO 'a\nb' "tab\tx"`,
		`FOO "unterminated`,
		strings.Repeat("FOO ", 2000),
	}
	redisAddr := adminTestRedis(t)
	a := adminTestStart(t, Options{})
	for _, l := range lines {
		got := adminTestExchange(t, a.Addr(), l+"\r\n", 300*time.Millisecond)
		want := adminTestExchange(t, redisAddr, l+"\r\n", 300*time.Millisecond)
		if got != want {
			t.Errorf("%.60q:\n ours:  %q\n redis: %q", l, got, want)
		}
	}
}

// TestGuardProtocolErrorsLikeRedis sends hostile input to redis-server and to the admin port,
// both with requirepass: the same reply, then the connection closed.
func TestGuardProtocolErrorsLikeRedis(t *testing.T) {
	inputs := []string{
		"*1\r\n$9223372036854775800\r\n",
		"*11\r\n",
		"*2\r\n$4\r\nAUTH\r\n$20000\r\n",
		"*2\r\n$4\r\nAUTH\r\n#20000\r\n",
		"*99999999999\r\n",
		"a \"b\r\n",
		"*1\r\n$-1\r\n",
		"*abc\r\n",
	}
	redisAddr := adminTestRedis(t, "--requirepass", "pw")
	a := adminTestStart(t, Options{RequirePass: "pw"})
	for _, in := range inputs {
		got, want := adminTestExchange(t, a.Addr(), in, 2*time.Second), adminTestExchange(t, redisAddr, in, 2*time.Second)
		if got != want {
			t.Errorf("%q:\n ours:  %q\n redis: %q", in, got, want)
		}
	}
}

// adminTestExchange sends in on a new connection and returns what comes back before the
// server closes it (or wait passes, shown as " <open>").
func adminTestExchange(t *testing.T, addr, in string, wait time.Duration) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c, in); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return string(out) + " <open>"
	}
	return string(out)
}

// adminTestAlive fails unless the admin port at addr answers AUTH and PING.
func adminTestAlive(t *testing.T, addr, pass string) {
	t.Helper()
	r := adminTestRawDial(t, addr)
	if pass != "" {
		if got := r.cmd("AUTH", pass); got != "+OK\r\n" {
			t.Fatalf("AUTH: %q", got)
		}
	}
	if got := r.cmd("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
}

// TestAdminSurvivesHostileInput sends what crashed or bloated rmtd before the guard: the
// admin port answers the next client, and an inline line of many tokens costs little.
func TestAdminSurvivesHostileInput(t *testing.T) {
	a := adminTestStart(t, Options{RequirePass: "pw"})
	for _, in := range []string{
		"*1\r\n$9223372036854775800\r\n",
		strings.Repeat("a ", 30<<10) + "\r\n", // 60 KB, 30,720 arguments: allowed, linear
		strings.Repeat("a ", 40<<10) + "\r\n", // 80 KB: over the inline limit
	} {
		got := adminTestExchange(t, a.Addr(), in, 2*time.Second)
		if !strings.HasPrefix(got, "-") {
			t.Errorf("%.30q: %q, want an error reply", in, got)
		}
		adminTestAlive(t, a.Addr(), "pw")
	}
}

// TestAdminRecoversPanic: a command that panics closes its connection, not the daemon.
func TestAdminRecoversPanic(t *testing.T) {
	core, logs := observer.New(zapcore.ErrorLevel)
	a := adminTestStart(t, Options{Logger: zap.New(core)})
	a.cmds["boom"] = &command{name: "boom", arity: 1, run: func(redcon.Conn, [][]byte, *session) {
		panic("a programmer error the recover must contain")
	}}
	r := adminTestRawDial(t, a.Addr())
	r.send("*1\r\n$4\r\nBOOM\r\n")
	if err := r.eof(); err != nil {
		t.Fatalf("after a panic: %v", err)
	}
	adminTestAlive(t, a.Addr(), "")
	if logs.FilterMessage("admin command panicked: connection closed").Len() != 1 {
		t.Fatalf("panic not logged: %v", logs.All())
	}
}

// TestAdminIdleClientsCannotLockOut holds max_clients connections that never authenticate:
// the operator's AUTH and INFO still answer, by evicting the oldest of them.
func TestAdminIdleClientsCannotLockOut(t *testing.T) {
	const limit = 100
	a := adminTestStart(t, Options{RequirePass: "pw", MaxClients: limit, IdleTimeout: time.Minute})
	var idle []net.Conn
	for range limit {
		c, err := net.DialTimeout("tcp", a.Addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	redistest.WaitFor(t, 5*time.Second, func() error {
		if n, _ := a.Clients(); n != limit {
			return fmt.Errorf("%d connected", n)
		}
		return nil
	})
	op := adminTestDial(t, a.Addr(), radix.Dialer{AuthPass: "pw"})
	var info string
	if err := adminTestDo(t, op, &info, "INFO", "clients"); err != nil {
		t.Fatalf("operator's INFO with %d idle clients: %v", limit, err)
	}
	if err := adminContains(info, "connected_clients:100\r\n", "evicted_clients:1\r\n"); err != nil {
		t.Fatal(err)
	}
	// The evicted one is the oldest.
	idle[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := idle[0].Read(make([]byte, 1)); err == nil {
		t.Fatalf("the oldest idle client still open (read %d bytes)", n)
	}
	// Once every client is trusted, the next is refused, and refusals are counted.
	b := adminTestStart(t, Options{MaxClients: 1})
	trusted := adminTestRawDial(t, b.Addr())
	if got := trusted.cmd("PING"); got != "+PONG\r\n" {
		t.Fatal(got)
	}
	if got := adminTestRawDial(t, b.Addr()).reply(); got != "-ERR max number of clients reached\r\n" {
		t.Fatalf("over max_clients: %q", got)
	}
	if got := b.Counters().Rejected; got != 1 {
		t.Fatalf("rejected = %d", got)
	}
}

func TestAdminIdleTimeoutBeforeAuth(t *testing.T) {
	a := adminTestStart(t, Options{RequirePass: "pw", IdleTimeout: 200 * time.Millisecond})
	unauth := adminTestRawDial(t, a.Addr())
	if got := unauth.cmd("PING"); !strings.HasPrefix(got, "-NOAUTH") {
		t.Fatalf("PING: %q", got)
	}
	authed := adminTestRawDial(t, a.Addr())
	if got := authed.cmd("AUTH", "pw"); got != "+OK\r\n" {
		t.Fatalf("AUTH: %q", got)
	}
	if err := unauth.eof(); err != nil {
		t.Fatalf("unauthenticated idle client: %v", err)
	}
	// The authenticated one stays open well past the timeout.
	authed.c.SetReadDeadline(time.Now().Add(600 * time.Millisecond))
	var ne net.Error
	if _, err := authed.rd.ReadByte(); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("authenticated idle client: %v, want to stay open", err)
	}
	if got := authed.cmd("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING after idling: %q", got)
	}
}

// TestAdminAuthFailuresSlowedAndAggregated: failed AUTHs wait longer each time, and a burst
// of them from one host makes two log lines, not one per failure.
func TestAdminAuthFailuresSlowedAndAggregated(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	a := adminTestStart(t, Options{RequirePass: "pw", Logger: zap.New(core), LogInterval: time.Hour})
	r := adminTestRawDial(t, a.Addr())
	start := time.Now()
	var pipeline strings.Builder
	for range 4 {
		pipeline.WriteString("*2\r\n$4\r\nAUTH\r\n$5\r\nwrong\r\n")
	}
	r.send(pipeline.String())
	for range 4 {
		if got := r.reply(); !strings.HasPrefix(got, "-WRONGPASS") {
			t.Fatalf("AUTH wrong: %q", got)
		}
	}
	// 100 + 200 + 400 + 800 ms of delay at least: a lower bound, not a timing measurement.
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Fatalf("4 failed AUTHs answered in %v: not slowed down", took)
	}
	if got := r.cmd("AUTH", "pw"); got != "+OK\r\n" {
		t.Fatalf("AUTH after failures: %q", got)
	}
	if n := logs.FilterMessage("admin AUTH failed").Len(); n != 1 {
		t.Fatalf("%d log lines for 4 failures before the interval ended, want 1", n)
	}
	a.events.flush()
	lines := logs.FilterMessage("admin AUTH failed").All()
	if len(lines) != 2 || lines[1].ContextMap()["count"] != int64(3) || lines[1].ContextMap()["client"] != "127.0.0.1" {
		t.Fatalf("aggregated lines: %v", lines)
	}
	if a.Counters().AuthFailures != 4 {
		t.Fatalf("auth failures counted: %d", a.Counters().AuthFailures)
	}
}

// TestAdminAuthDelayEndsOnEviction: a connection evicted while its failed AUTH's reply is held
// back does not keep its handler waiting out the delay (here an hour): one wrong AUTH per
// new connection would otherwise pile up goroutines and buffers past max_clients, as many as
// a client opens in the delay.
func TestAdminAuthDelayEndsOnEviction(t *testing.T) {
	a := New(Options{Addr: "127.0.0.1:0", RequirePass: "pw", MaxClients: 1})
	a.authDelayMin, a.authDelayMax = time.Hour, time.Hour
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	r := adminTestRawDial(t, a.Addr())
	r.send("AUTH wrong\r\n")
	redistest.WaitFor(t, 5*time.Second, func() error {
		if n := a.authWaiting.Load(); n != 1 {
			return fmt.Errorf("%d AUTH replies held back, want 1", n)
		}
		return nil
	})
	op := adminTestRawDial(t, a.Addr()) // max_clients 1: the failed one makes room
	if got := op.cmd("AUTH", "pw"); got != "+OK\r\n" {
		t.Fatalf("operator's AUTH: %q", got)
	}
	if err := r.eof(); err != nil {
		t.Fatalf("the evicted connection: %v", err)
	}
	redistest.WaitFor(t, 5*time.Second, func() error {
		if n := a.authWaiting.Load(); n != 0 {
			return fmt.Errorf("%d AUTH replies still held back after the eviction", n)
		}
		return nil
	})
	if c := a.Counters(); c.Evicted != 1 || c.AuthFailures != 1 {
		t.Fatalf("counters: %+v", c)
	}
}

func TestEventLogBounded(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	l := newEventLog(zap.New(core), time.Hour)
	for i := range 10000 {
		l.add("refused", fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	}
	l.flush()
	if n := logs.Len(); n > eventLogKeys+2 {
		t.Fatalf("%d lines for 10,000 events from 10,000 hosts", n)
	}
	var sum int64
	for _, e := range logs.All() {
		if c, ok := e.ContextMap()["count"].(int64); ok {
			sum += c
		} else {
			sum++
		}
	}
	if sum != 10000 {
		t.Fatalf("lines account for %d events, want 10000", sum)
	}
}

// FuzzAdminPort drives the real admin port over TCP with arbitrary bytes: the server must
// neither panic nor stop answering. `make test` runs it for a bounded number of inputs.
func FuzzAdminPort(f *testing.F) {
	for _, seed := range []string{
		"*1\r\n$9223372036854775800\r\n",
		"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*1\r\n$4\r\nINFO\r\n",
		"PING\r\nECHO \"a\\x41\" 'b'\r\n",
		"*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$1\r\nx\r\n",
		"AUTH pw\r\nCOMMAND\r\nCOMMAND INFO echo\r\nSHUTDOWN x\r\n",
		strings.Repeat("a ", 1000) + "\r\n",
		"*-5\r\n*0\r\n\r\n\n",
		"AUTH pw\r\n*2\r\n$4\r\nECHO\r\n$3000\r\n" + strings.Repeat("x", 3000) + "\r\n",
	} {
		f.Add([]byte(seed))
	}
	a := New(Options{Addr: "127.0.0.1:0", RequirePass: "pw", MaxClients: 20,
		IdleTimeout: 500 * time.Millisecond})
	if err := a.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { a.Close() })
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := net.DialTimeout("tcp", a.Addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(3 * time.Second))
		_, _ = c.Write(in)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		_, _ = io.Copy(io.Discard, c)
		c.Close()
		h, err := net.DialTimeout("tcp", a.Addr(), 5*time.Second)
		if err != nil {
			t.Fatalf("admin port gone after %q: %v", in, err)
		}
		defer h.Close()
		h.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(h, "*1\r\n$4\r\nPING\r\n")
		buf := make([]byte, 64)
		n, err := h.Read(buf)
		if err != nil || !bytes.HasPrefix(buf[:n], []byte("-NOAUTH")) {
			t.Fatalf("admin port does not answer after %q: %q %v", in, buf[:n], err)
		}
	})
}
