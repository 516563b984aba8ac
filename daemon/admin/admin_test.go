package admin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"
	"github.com/mediocregopher/radix/v4/resp/resp3"
	"github.com/tidwall/redcon"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rmt-project/rmt/daemon/status"
	"github.com/rmt-project/rmt/daemon/status/statustest"
	"github.com/rmt-project/rmt/internal/redistest"
)

// adminTestStart starts a Server on a random loopback port and closes it in
// t.Cleanup.
func adminTestStart(t *testing.T, opts Options) *Server {
	t.Helper()
	opts.Addr = "127.0.0.1:0"
	a := New(opts)
	if err := a.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return a
}

func adminTestDial(t *testing.T, addr string, d radix.Dialer) radix.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.Dial(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// adminTestDo runs one command on c and returns its reply; an error reply
// comes back as err.
func adminTestDo(t *testing.T, c radix.Conn, rcv any, cmd string, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Do(ctx, radix.Cmd(rcv, cmd, args...))
}

// adminRaw is a raw RESP connection: it sends bytes and reads whole replies
// as bytes, to compare replies with redis-server byte for byte.
type adminRaw struct {
	t  *testing.T
	c  net.Conn
	rd *bufio.Reader
}

func adminTestRawDial(t *testing.T, addr string) *adminRaw {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &adminRaw{t: t, c: c, rd: bufio.NewReader(c)}
}

// cmd sends args as a RESP multibulk and returns the reply's raw bytes.
func (r *adminRaw) cmd(args ...string) string {
	r.t.Helper()
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	r.send(b.String())
	return r.reply()
}

func (r *adminRaw) send(s string) {
	r.t.Helper()
	r.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// reply reads one RESP2 reply whole.
func (r *adminRaw) reply() string {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	if err := r.readValue(&b); err != nil {
		r.t.Fatalf("read reply (so far %q): %v", b.String(), err)
	}
	return b.String()
}

func (r *adminRaw) readValue(b *strings.Builder) error {
	return adminReadValue(r.rd, b)
}

// adminReadValue reads one RESP2 value from rd into b.
func adminReadValue(rd *bufio.Reader, b *strings.Builder) error {
	line, err := rd.ReadString('\n')
	b.WriteString(line)
	if err != nil {
		return err
	}
	if len(line) < 3 || !strings.HasSuffix(line, "\r\n") {
		return fmt.Errorf("bad line %q", line)
	}
	switch line[0] {
	case '+', '-', ':':
		return nil
	case '$', '*':
		n, err := strconv.Atoi(line[1 : len(line)-2])
		if err != nil {
			return err
		}
		if line[0] == '$' {
			if n < 0 {
				return nil
			}
			buf := make([]byte, n+2)
			_, err := io.ReadFull(rd, buf)
			b.Write(buf)
			return err
		}
		for range max(n, 0) {
			if err := adminReadValue(rd, b); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("bad type byte in %q", line)
}

// eof waits for the server to close the connection.
func (r *adminRaw) eof() error {
	r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest, err := io.ReadAll(r.rd)
	if err != nil && !errors.Is(err, net.ErrClosed) && !adminIsReset(err) {
		return fmt.Errorf("waiting for close: %w (read %q)", err, rest)
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected bytes before close: %q", rest)
	}
	return nil
}

func adminIsReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && strings.Contains(op.Err.Error(), "connection reset")
}

// adminTestRedis starts a redis-server (internal/redistest) with extra command-line arguments
// and returns its address; it is killed when the test ends.
func adminTestRedis(t *testing.T, extra ...string) string {
	t.Helper()
	return redistest.StartRedis(t, redistest.WithFlags(extra...)).Addr
}

func TestAdminCommandsRadix(t *testing.T) {
	snap := statustest.Fixed()
	snap.Server.TCPPort = 0 // filled in by the admin port
	a := adminTestStart(t, Options{MaxClients: 50, Snapshot: func() *status.Snapshot { return snap }})
	c := adminTestDial(t, a.Addr(), radix.Dialer{})
	_, port, _ := net.SplitHostPort(a.Addr())

	var s string
	var n int
	var arr []any
	tests := []struct {
		name  string
		rcv   any
		cmd   []string
		check func() error
	}{
		{"ping", &s, []string{"PING"}, func() error { return adminWant(s, "PONG") }},
		{"ping msg", &s, []string{"ping", "hello world"}, func() error { return adminWant(s, "hello world") }},
		{"echo binary", &s, []string{"ECHO", "a\r\nb\x00c"}, func() error { return adminWant(s, "a\r\nb\x00c") }},
		{"info default", &s, []string{"INFO"}, func() error {
			return adminContains(s, "# Server\r\n", "tcp_port:"+port+"\r\n", "connected_clients:1\r\n",
				"max_clients_limit:50\r\n", "total_connections_received:1\r\n", "# Progress\r\n", "source1:ip=::1,port=6380,")
		}},
		{"info sections", &s, []string{"info", "CLIENTS", "group"}, func() error {
			want := "# Clients\r\nconnected_clients:1\r\nmax_clients_limit:50\r\ntotal_connections_received:1\r\nrejected_connections:0\r\nevicted_clients:0\r\nauth_failures:0\r\n\r\n" +
				"# Group\r\nsource_nodes_count:2\r\ntarget_nodes_count:1\r\n"
			return adminWant(s, want)
		}},
		{"info unknown", &s, []string{"INFO", "keyspace"}, func() error { return adminWant(s, "") }},
		{"command count", &n, []string{"COMMAND", "COUNT"}, func() error { return adminWant(n, len(a.cmds)) }},
		{"command docs", &arr, []string{"COMMAND", "DOCS"}, func() error { return adminWant(len(arr), 0) }},
		{"command", &arr, []string{"COMMAND"}, func() error {
			if len(arr) != len(a.cmds) {
				return fmt.Errorf("%d entries, want %d", len(arr), len(a.cmds))
			}
			for _, e := range arr {
				if f, ok := e.([]any); !ok || len(f) != 10 {
					return fmt.Errorf("entry %v is not 10 fields", e)
				}
			}
			return nil
		}},
		{"command info", &arr, []string{"COMMAND", "INFO", "ping", "nosuch", "CLIENT"}, func() error {
			if len(arr) != 3 {
				return fmt.Errorf("got %v", arr)
			}
			if b, ok := arr[1].([]byte); arr[1] != nil && (!ok || b != nil) {
				return fmt.Errorf("unknown command's entry %#v, want null", arr[1])
			}
			ping, _ := arr[0].([]any)
			client, _ := arr[2].([]any)
			if len(ping) != 10 || adminStr(ping[0]) != "ping" || ping[1] != int64(-1) || len(client) != 10 {
				return fmt.Errorf("entries %v", arr)
			}
			subs, _ := client[9].([]any)
			if len(subs) != 4 || adminStr(subs[3].([]any)[0]) != "client|setname" { // getname, kill, setinfo, setname
				return fmt.Errorf("client subcommands %v", subs)
			}
			return nil
		}},
		{"client setname", &s, []string{"CLIENT", "SETNAME", "watcher"}, func() error { return adminWant(s, "OK") }},
		{"client getname", &s, []string{"client", "getname"}, func() error { return adminWant(s, "watcher") }},
		{"client setinfo", &s, []string{"CLIENT", "SETINFO", "lib-name", "radix"}, func() error { return adminWant(s, "OK") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := adminTestDo(t, c, tt.rcv, tt.cmd[0], tt.cmd[1:]...); err != nil {
				t.Fatalf("%q: %v", tt.cmd, err)
			}
			if err := tt.check(); err != nil {
				t.Fatalf("%q: %v", tt.cmd, err)
			}
		})
	}
}

// errText returns the text of an error reply, "" if err is not one.
func errText(err error) string {
	var e resp3.SimpleError
	if errors.As(err, &e) {
		return e.S
	}
	return ""
}

// adminStr turns a bulk string decoded into an any (radix gives []byte)
// into a string.
func adminStr(v any) string {
	switch v := v.(type) {
	case []byte:
		return string(v)
	case string:
		return v
	}
	return fmt.Sprint(v)
}

// adminRecv waits up to 5 s for a value on ch.
func adminRecv[T any](ch <-chan T) (T, error) {
	select {
	case v := <-ch:
		return v, nil
	case <-time.After(5 * time.Second):
		var zero T
		return zero, errors.New("nothing received in 5s")
	}
}

func adminWant[T comparable](got, want T) error {
	if got != want {
		return fmt.Errorf("got %#v, want %#v", got, want)
	}
	return nil
}

func adminContains(s string, parts ...string) error {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return fmt.Errorf("%q not in %q", p, s)
		}
	}
	return nil
}

// TestAdminRepliesLikeRedis sends the same commands to the admin port and to
// a real redis-server and wants the same bytes back.
func TestAdminRepliesLikeRedis(t *testing.T) {
	long := strings.Repeat("x", 200)
	open := [][]string{
		{"PING"},
		{"PING", "hi"},
		{"PING", "a", "b"},
		{"ECHO", "hi"},
		{"ECHO"},
		{"echo", "a", "b"},
		{"FOO"},
		{"foo", "a", "b"},
		{"FooBar", "", "x y"},
		{"FOO", long, "b"},
		{"FOO", strings.Repeat("a", 60), strings.Repeat("b", 60), strings.Repeat("c", 60), "d"},
		{"FOO", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17",
			"18", "19", "20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31", "32", "33", "34"},
		{"FOO", "a\r\nb", "c\x00d"},
		{long + "cmd", "a"},
		{"foo\r\nbar", "a"},
		{"CLIENT"},
		{"CLIENT", "NOSUCH"},
		{"client", "nosuch\r\nx", "y"},
		{"CLIENT", "SETNAME"},
		{"CLIENT", "SETNAME", "a b"},
		{"CLIENT", "SETNAME", "ok-name"},
		{"COMMAND", "NOSUCH"},
		{"COMMAND", "COUNT", "x"},
		{"COMMAND", "DOCS", "nosuchcommand"},
		{"AUTH"},
		{"AUTH", "x"},
		{"AUTH", "default", "x"},
		{"AUTH", "bob", "x"},
		{"AUTH", "a", "b", "c"},
		{"INFO", "nosuchsection"},
		{"COMMAND", "INFO", "echo", "auth", "quit", "shutdown", "nosuch"},
	}
	guarded := [][]string{
		{"PING"},
		{"INFO"},
		{"ECHO"},
		{"NOSUCH", "x"},
		{"CLIENT", "NOSUCH"},
		{"COMMAND", "COUNT"},
		{"AUTH", "wrong"},
		{"AUTH", "default", "wrong"},
		{"AUTH", "bob", "s3cret"},
		{"PING"},
		{"AUTH", "s3cret"},
		{"PING"},
		{"AUTH", "wrong"},
		{"PING"},
		{"AUTH", "default", "s3cret"},
		{"ECHO", "in"},
	}
	tests := []struct {
		name  string
		pass  string
		cmds  [][]string
		extra []string
	}{
		{"no password", "", open, nil},
		{"requirepass", "s3cret", guarded, []string{"--requirepass", "s3cret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			redisAddr := adminTestRedis(t, tt.extra...)
			a := adminTestStart(t, Options{RequirePass: tt.pass})
			ours, theirs := adminTestRawDial(t, a.Addr()), adminTestRawDial(t, redisAddr)
			for _, cmd := range tt.cmds {
				if len(cmd) == 0 {
					continue
				}
				want := theirs.cmd(cmd...)
				if got := ours.cmd(cmd...); got != want {
					t.Errorf("%q:\n ours:  %q\n redis: %q", cmd, got, want)
				}
			}
			// QUIT works before AUTH, in both.
			want, got := theirs.cmd("QUIT"), ours.cmd("QUIT")
			if got != want {
				t.Errorf("QUIT: ours %q, redis %q", got, want)
			}
			if err := ours.eof(); err != nil {
				t.Errorf("after QUIT: %v", err)
			}
		})
	}
}

// adminTestRedisCli runs redis-cli against addr with stdin and returns
// its combined output; a non-zero exit fails the test.
func adminTestRedisCli(t *testing.T, addr, stdin string, args ...string) string {
	t.Helper()
	redistest.NeedBinary(t, "redis-cli")
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "redis-cli", append([]string{"-h", host, "-p", port}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %q: %v\n%s", args, err, out)
	}
	return string(out)
}

// adminNoErrorLines fails on any line of redis-cli output that reports an
// error.
func adminNoErrorLines(out string) error {
	for _, line := range strings.Split(out, "\n") {
		for _, bad := range []string{"ERR", "(error)", "NOAUTH", "WRONGPASS", "Unrecognized", "Could not"} {
			if strings.HasPrefix(line, bad) {
				return fmt.Errorf("error line %q in output %q", line, out)
			}
		}
	}
	if strings.Contains(out, "unknown command") {
		return fmt.Errorf("unknown command in output %q", out)
	}
	return nil
}

func TestAdminRedisCli(t *testing.T) {
	type call struct {
		wait time.Duration
		asap bool
	}
	calls := make(chan call, 4)
	core, logs := observer.New(zapcore.DebugLevel)
	a := adminTestStart(t, Options{Snapshot: statustest.Fixed, Logger: zap.New(core),
		Shutdown: func(w time.Duration, asap bool) { calls <- call{w, asap} }})
	tests := []struct {
		name  string
		stdin string
		args  []string
		check func(out string) error
	}{
		{"ping", "", []string{"ping"}, func(out string) error { return adminWant(out, "PONG\n") }},
		{"info", "", []string{"info"}, func(out string) error {
			if err := adminNoErrorLines(out); err != nil {
				return err
			}
			// The fixed snapshot's port wins over the bound one.
			return adminContains(out, "# Server\r\n", "tcp_port:8888\r\n", "# Stats\r\n",
				"total_net_input_bytes_human:10.00M\r\n", "connected_clients:1\r\n")
		}},
		{"info stats", "", []string{"info", "stats"}, func(out string) error {
			if strings.Contains(out, "# Server") {
				return fmt.Errorf("server section in %q", out)
			}
			return adminContains(out, "# Stats\r\n", "total_msgs_outqueue:12\r\n")
		}},
		{"interactive", "ping\necho hello\ninfo group\n", nil, func(out string) error {
			if err := adminNoErrorLines(out); err != nil {
				return err
			}
			if err := adminContains(out, "PONG\n", "hello\n", "source_nodes_count:2"); err != nil {
				return err
			}
			// redis-cli 7 asks for COMMAND DOCS at start-up; it falls
			// back quietly on an error, so check the server side too.
			if logs.FilterMessage("admin command").FilterField(zap.String("cmd", "command|docs")).Len() != 1 {
				return fmt.Errorf("redis-cli did not run COMMAND DOCS: %v", logs.All())
			}
			if refused := logs.FilterMessage("admin command refused").All(); len(refused) > 0 {
				return fmt.Errorf("commands refused: %v", refused)
			}
			return nil
		}},
		{"shutdown", "", []string{"shutdown"}, func(out string) error {
			if err := adminWant(out, "OK\n"); err != nil {
				return err
			}
			got, err := adminRecv(calls)
			if err != nil {
				return err
			}
			return adminWant(got, call{10 * time.Second, false})
		}},
		{"shutdown 3", "", []string{"shutdown", "3"}, func(out string) error {
			if err := adminWant(out, "OK\n"); err != nil {
				return err
			}
			got, err := adminRecv(calls)
			if err != nil {
				return err
			}
			return adminWant(got, call{3 * time.Second, false})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.check(adminTestRedisCli(t, a.Addr(), tt.stdin, tt.args...)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestAdminRedisCliAuth runs redis-cli with and without a password against
// the admin port and against redis-server with the same requirepass, and
// wants the same output from both.
func TestAdminRedisCliAuth(t *testing.T) {
	a := adminTestStart(t, Options{RequirePass: "s3cret"})
	redisAddr := adminTestRedis(t, "--requirepass", "s3cret")
	tests := []struct {
		args []string
		want string // a part of the output, so the comparison is not vacuous
	}{
		{[]string{"ping"}, "NOAUTH"},
		{[]string{"--no-auth-warning", "-a", "wrong", "ping"}, "WRONGPASS"},
		{[]string{"--no-auth-warning", "-a", "s3cret", "ping"}, "PONG"},
		{[]string{"--no-auth-warning", "--user", "default", "--pass", "s3cret", "ping"}, "PONG"},
		{[]string{"--no-auth-warning", "--user", "bob", "--pass", "s3cret", "ping"}, "WRONGPASS"},
	}
	for _, tt := range tests {
		got := adminTestRedisCli(t, a.Addr(), "", tt.args...)
		want := adminTestRedisCli(t, redisAddr, "", tt.args...)
		if got != want || !strings.Contains(got, tt.want) {
			t.Errorf("redis-cli %q:\n ours:  %q\n redis: %q (want %q in it)", tt.args, got, want, tt.want)
		}
	}
}

func TestAdminAuth(t *testing.T) {
	const pass = "pa55-w0rd-never-logged"
	core, logs := observer.New(zapcore.DebugLevel)
	a := adminTestStart(t, Options{RequirePass: pass, Logger: zap.New(core)})

	// No AUTH: NOAUTH on everything but AUTH and QUIT.
	c := adminTestDial(t, a.Addr(), radix.Dialer{})
	var s string
	if err := adminTestDo(t, c, &s, "PING"); errText(err) != errNoAuth {
		t.Fatalf("PING before AUTH: %v", err)
	}
	if err := adminTestDo(t, c, &s, "AUTH", "nope"); errText(err) != errWrongPass {
		t.Fatalf("AUTH nope: %v", err)
	}
	if err := adminTestDo(t, c, &s, "INFO"); errText(err) != errNoAuth {
		t.Fatalf("INFO after a failed AUTH: %v", err)
	}
	if err := adminTestDo(t, c, &s, "AUTH", pass); err != nil || s != "OK" {
		t.Fatalf("AUTH: %q %v", s, err)
	}
	if err := adminTestDo(t, c, &s, "INFO", "server"); err != nil || !strings.HasPrefix(s, "# Server\r\n") {
		t.Fatalf("INFO after AUTH: %q %v", s, err)
	}

	// radix's own AUTH on dial, with and without a user name.
	for _, d := range []radix.Dialer{{AuthPass: pass}, {AuthUser: "default", AuthPass: pass}} {
		c := adminTestDial(t, a.Addr(), d)
		if err := adminTestDo(t, c, &s, "PING"); err != nil || s != "PONG" {
			t.Fatalf("PING with %+v: %q %v", d.AuthUser, s, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, d := range []radix.Dialer{{AuthPass: "wrong"}, {AuthUser: "bob", AuthPass: pass}} {
		if c, err := d.Dial(ctx, "tcp", a.Addr()); err == nil {
			c.Close()
			t.Fatalf("dial with user %q and a wrong password succeeded", d.AuthUser)
		}
	}

	if logs.Len() == 0 {
		t.Fatalf("no logs captured: the password check below would be vacuous")
	}
	for _, e := range logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		if strings.Contains(line, pass) {
			t.Fatalf("password logged: %q", line)
		}
	}
}

func TestAdminMaxClients(t *testing.T) {
	a := adminTestStart(t, Options{MaxClients: 2})
	c1 := adminTestDial(t, a.Addr(), radix.Dialer{})
	c2 := adminTestDial(t, a.Addr(), radix.Dialer{})
	var s string
	for _, c := range []radix.Conn{c1, c2} {
		if err := adminTestDo(t, c, &s, "PING"); err != nil {
			t.Fatal(err)
		}
	}
	if conn, total := a.Clients(); conn != 2 || total != 2 {
		t.Fatalf("Clients() = %d, %d; want 2, 2", conn, total)
	}

	over := adminTestRawDial(t, a.Addr())
	if got := over.reply(); got != "-ERR max number of clients reached\r\n" {
		t.Fatalf("third client got %q", got)
	}
	if err := over.eof(); err != nil {
		t.Fatal(err)
	}

	// Redis refuses the client over maxclients with the same bytes.
	redisAddr := adminTestRedis(t, "--maxclients", "1")
	// The readiness probe's connection may not be gone yet: retry until one
	// client holds the only slot.
	redistest.WaitFor(t, 5*time.Second, func() error {
		r := adminTestRawDial(t, redisAddr)
		if got := r.cmd("PING"); got != "+PONG\r\n" {
			r.c.Close()
			return fmt.Errorf("PING: %q", got)
		}
		return nil
	})
	if got := adminTestRawDial(t, redisAddr).reply(); got != "-ERR max number of clients reached\r\n" {
		t.Errorf("redis-server refuses with %q, not what the admin port sends", got)
	}

	c1.Close()
	redistest.WaitFor(t, 5*time.Second, func() error {
		if n, _ := a.Clients(); n != 1 {
			return fmt.Errorf("%d connected", n)
		}
		return nil
	})
	c3 := adminTestDial(t, a.Addr(), radix.Dialer{})
	if err := adminTestDo(t, c3, &s, "INFO", "clients"); err != nil {
		t.Fatal(err)
	}
	if err := adminContains(s, "connected_clients:2\r\n", "max_clients_limit:2\r\n", "total_connections_received:3\r\n"); err != nil {
		t.Fatal(err)
	}
}

func TestAdminShutdown(t *testing.T) {
	type call struct {
		wait time.Duration
		asap bool
	}
	calls := make(chan call, 10)
	a := adminTestStart(t, Options{Shutdown: func(w time.Duration, asap bool) { calls <- call{w, asap} }})
	c := adminTestDial(t, a.Addr(), radix.Dialer{})
	tests := []struct {
		args []string
		want *call // nil: syntax error, no call
	}{
		{nil, &call{10 * time.Second, false}},
		{[]string{"3"}, &call{3 * time.Second, false}},
		{[]string{"asap"}, &call{0, true}},
		{[]string{"ASAP"}, &call{0, true}},
		{[]string{"0"}, &call{0, true}},
		{[]string{"x"}, nil},
		{[]string{"-1"}, nil},
		{[]string{"1.5"}, nil},
		{[]string{""}, nil},
		{[]string{"99999999999999999999"}, nil},
		{[]string{"9223372037"}, nil}, // seconds that overflow a Duration
		{[]string{"1", "2"}, nil},
	}
	// The callback runs after +OK is flushed, on the connection's goroutine,
	// so it has returned by the time the connection answers its next
	// command: the channel is checked for stray calls after each reply.
	for _, tt := range tests {
		var s string
		err := adminTestDo(t, c, &s, "SHUTDOWN", tt.args...)
		if tt.want == nil {
			if errText(err) != "ERR syntax error" {
				t.Errorf("SHUTDOWN %q: %q, %v; want ERR syntax error", tt.args, s, err)
			}
			select {
			case got := <-calls:
				t.Errorf("SHUTDOWN %q: stray Shutdown call %+v", tt.args, got)
			default:
			}
			continue
		}
		if err != nil || s != "OK" {
			t.Errorf("SHUTDOWN %q: %q, %v", tt.args, s, err)
			continue
		}
		select {
		case got := <-calls:
			if got != *tt.want {
				t.Errorf("SHUTDOWN %q called Shutdown(%v, %v), want (%v, %v)", tt.args, got.wait, got.asap, tt.want.wait, tt.want.asap)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("SHUTDOWN %q did not call Shutdown", tt.args)
		}
	}

	// Without a callback SHUTDOWN is refused.
	b := adminTestStart(t, Options{})
	var s string
	if err := adminTestDo(t, adminTestDial(t, b.Addr(), radix.Dialer{}), &s, "SHUTDOWN"); err == nil {
		t.Errorf("SHUTDOWN without a callback: %q", s)
	}
}

// TestAdminShutdownCloses checks that a Shutdown callback may close the
// admin port itself: the client still gets +OK, Close returns, and the port
// stops answering.
func TestAdminShutdownCloses(t *testing.T) {
	var a *Server
	closed := make(chan error, 1)
	a = adminTestStart(t, Options{Shutdown: func(time.Duration, bool) { closed <- a.Close() }})
	r := adminTestRawDial(t, a.Addr())
	if got := r.cmd("SHUTDOWN", "asap"); got != "+OK\r\n" {
		t.Fatalf("SHUTDOWN asap: %q", got)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close from Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Close from the Shutdown callback did not return")
	}
	if err := r.eof(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", a.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatalf("admin port still accepts connections after Close")
	}
}

// TestAdminHello checks that HELLO is refused as by Redis before 6, so
// RESP3 clients fall back to RESP2.
func TestAdminHello(t *testing.T) {
	a := adminTestStart(t, Options{RequirePass: "x"})
	r := adminTestRawDial(t, a.Addr())
	want := "-ERR unknown command 'HELLO', with args beginning with: '3' 'AUTH' 'default' 'x' \r\n"
	if got := r.cmd("HELLO", "3", "AUTH", "default", "x"); got != want {
		t.Fatalf("HELLO: %q, want %q", got, want)
	}
}

func TestAdminQuitAndInline(t *testing.T) {
	a := adminTestStart(t, Options{})
	r := adminTestRawDial(t, a.Addr())
	// Inline commands (telnet), then QUIT pipelined with a command after it
	// that must not run.
	r.send("PING\r\nECHO hey\r\n*1\r\n$4\r\nQUIT\r\n*1\r\n$4\r\nPING\r\n")
	for _, want := range []string{"+PONG\r\n", "$3\r\nhey\r\n", "+OK\r\n"} {
		if got := r.reply(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if err := r.eof(); err != nil {
		t.Fatal(err)
	}
}

// TestAdminInputCap checks that a client cannot make the server buffer an
// endless command: a bulk string over the 1 MiB command cap is refused at its
// header, as Redis refuses one over proto-max-bulk-len, and the connection
// is dropped; other clients are served.
func TestAdminInputCap(t *testing.T) {
	a := adminTestStart(t, Options{})
	r := adminTestRawDial(t, a.Addr())
	r.send("*2\r\n$4\r\nECHO\r\n$3000000\r\n")
	if got := r.reply(); got != "-ERR Protocol error: invalid bulk length\r\n" {
		t.Fatalf("oversized bulk: %q", got)
	}
	if err := r.eof(); err != nil {
		t.Fatalf("oversized command: %v", err)
	}
	redistest.WaitFor(t, 5*time.Second, func() error {
		if n, _ := a.Clients(); n != 0 {
			return fmt.Errorf("%d connected", n)
		}
		return nil
	})
	if got := adminTestRawDial(t, a.Addr()).cmd("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING after a dropped client: %q", got)
	}
	// Just under the cap is served.
	big := strings.Repeat("x", guardMaxCommand-4)
	if got := adminTestRawDial(t, a.Addr()).cmd("ECHO", big); got != "$"+strconv.Itoa(len(big))+"\r\n"+big+"\r\n" {
		t.Fatalf("ECHO of %d bytes: %.40q", len(big), got)
	}
}

func TestAdminStartClose(t *testing.T) {
	a := adminTestStart(t, Options{})
	if err := a.Start(); err == nil {
		t.Errorf("second Start succeeded")
	}
	b := New(Options{Addr: a.Addr()})
	if err := b.Start(); err == nil {
		b.Close()
		t.Fatalf("Start on a port in use succeeded")
	} else if !strings.Contains(err.Error(), a.Addr()) {
		t.Errorf("bind error does not name the address: %v", err)
	}
	if b.Addr() != "" {
		t.Errorf("Addr of an unbound admin = %q", b.Addr())
	}
	if err := b.Close(); err != nil {
		t.Errorf("Close of an unbound admin: %v", err)
	}

	c := New(Options{Addr: "127.0.0.1:0"})
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	r := adminTestRawDial(t, c.Addr())
	if got := r.cmd("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	for i := 0; i < 2; i++ {
		if err := c.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if err := r.eof(); err != nil {
		t.Fatalf("client after Close: %v", err)
	}
	if err := c.Start(); err == nil {
		t.Errorf("Start after Close succeeded")
	}
}

// TestAdminConcurrentInfo runs INFO from several clients at once while the
// snapshot source changes, for the race detector.
func TestAdminConcurrentInfo(t *testing.T) {
	var mu sync.Mutex
	n := int64(0)
	a := adminTestStart(t, Options{Snapshot: func() *status.Snapshot {
		mu.Lock()
		defer mu.Unlock()
		n++
		s := statustest.Fixed()
		s.Stats.TotalMsgsRecv = n
		return s
	}})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		c := adminTestDial(t, a.Addr(), radix.Dialer{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				var s string
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := c.Do(ctx, radix.Cmd(&s, "INFO", "stats"))
				cancel()
				if err == nil && !strings.Contains(s, "total_msgs_recv:") {
					err = fmt.Errorf("bad INFO %q", s)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n != 400 {
		t.Fatalf("Snapshot called %d times, want 400", n)
	}
}

// adminFakeConn is a redcon.Conn that records replies, for driving the
// dispatcher without a socket. Methods it does not override panic (nil
// embedded interface), which the fuzz target would report.
type adminFakeConn struct {
	redcon.Conn
	buf    bytes.Buffer
	w      *redcon.Writer
	ctx    any
	closed bool
}

func adminNewFakeConn() *adminFakeConn {
	c := &adminFakeConn{}
	c.w = redcon.NewWriter(&c.buf)
	return c
}

func (c *adminFakeConn) RemoteAddr() string             { return "fake:1" }
func (c *adminFakeConn) Close() error                   { c.closed = true; return c.w.Flush() }
func (c *adminFakeConn) Context() any                   { return c.ctx }
func (c *adminFakeConn) SetContext(v any)               { c.ctx = v }
func (c *adminFakeConn) NetConn() net.Conn              { return nil }
func (c *adminFakeConn) ReadPipeline() []redcon.Command { return nil }
func (c *adminFakeConn) WriteString(s string)           { c.w.WriteString(s) }
func (c *adminFakeConn) WriteBulk(b []byte)             { c.w.WriteBulk(b) }
func (c *adminFakeConn) WriteBulkString(s string)       { c.w.WriteBulkString(s) }
func (c *adminFakeConn) WriteInt(n int)                 { c.w.WriteInt(n) }
func (c *adminFakeConn) WriteInt64(n int64)             { c.w.WriteInt64(n) }
func (c *adminFakeConn) WriteError(s string)            { c.w.WriteError(s) }
func (c *adminFakeConn) WriteArray(n int)               { c.w.WriteArray(n) }
func (c *adminFakeConn) WriteNull()                     { c.w.WriteNull() }

// FuzzAdminDispatch feeds arbitrary commands to the dispatcher, with and
// without a password, and wants exactly one well-formed reply per command
// (QUIT included), never a panic.
func FuzzAdminDispatch(f *testing.F) {
	seeds := []string{
		"PING", "PING\xfehi", "ECHO", "ECHO\xfea\r\nb", "INFO", "INFO\xfeserver\xfeSTATS", "AUTH\xfes3cret",
		"AUTH\xfedefault\xfes3cret", "AUTH\xfea\xfeb\xfec", "COMMAND", "COMMAND\xfeDOCS", "COMMAND\xfeINFO\xfeping\xfex",
		"COMMAND\xfeCOUNT", "CLIENT", "CLIENT\xfeSETNAME\xfex", "CLIENT\xfeGETNAME", "CLIENT\xfeSETINFO\xfelib-name\xfex",
		"QUIT", "SHUTDOWN", "SHUTDOWN\xfe3", "SHUTDOWN\xfeasap", "SHUTDOWN\xfe-1", "HELLO\xfe3", "\x00\xfe\x00",
		"foo\xfe" + strings.Repeat("y", 300), "",
	}
	for _, s := range seeds {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, in string, withPass bool) {
		opts := Options{Snapshot: statustest.Fixed, Shutdown: func(time.Duration, bool) {}}
		if withPass {
			opts.RequirePass = "s3cret"
		}
		a := New(opts)
		c := adminNewFakeConn()
		c.SetContext(&session{authed: !withPass})
		var args [][]byte
		for _, p := range strings.Split(in, "\xfe") {
			args = append(args, []byte(p))
		}
		a.handle(c, redcon.Command{Args: args})
		if err := c.w.Flush(); err != nil {
			t.Fatal(err)
		}
		out := c.buf.String()
		rd := bufio.NewReader(strings.NewReader(out))
		var b strings.Builder
		if err := adminReadValue(rd, &b); err != nil {
			t.Fatalf("%q: reply %q: %v", args, out, err)
		}
		if rest, _ := io.ReadAll(rd); len(rest) > 0 {
			t.Fatalf("%q: more than one reply: %q", args, out)
		}
		if out[0] == '-' && strings.ContainsAny(out[:len(out)-2], "\r\n") {
			t.Fatalf("%q: error reply spans lines: %q", args, out)
		}
	})
}

// BenchmarkAdminInfo measures a whole INFO round trip over loopback with
// radix, snapshot rendering included.
func BenchmarkAdminInfo(b *testing.B) {
	a := New(Options{Addr: "127.0.0.1:0", Snapshot: statustest.Fixed})
	if err := a.Start(); err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	c, err := radix.Dial(ctx, "tcp", a.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ReportAllocs()
	var s string
	for b.Loop() {
		if err := c.Do(ctx, radix.Cmd(&s, "INFO")); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(s)))
}
