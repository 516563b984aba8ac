package target

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

// collector records replies as the reply reader hands them over.
type collector struct {
	mu      sync.Mutex
	kinds   []byte
	ints    []int64
	strs    []string
	prefix  []string
	seqs    []uint64
	offsets []int64
}

func (c *collector) onReply(t *Tag, r *Reply) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kinds = append(c.kinds, r.Kind)
	c.ints = append(c.ints, r.Int)
	c.strs = append(c.strs, string(r.Str))
	c.seqs = append(c.seqs, t.Seq)
	c.offsets = append(c.offsets, t.Offset)
	p := ""
	if re, ok := r.Err.(*ReplyError); ok {
		p = re.Prefix
	}
	c.prefix = append(c.prefix, p)
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.kinds)
}

func TestPipelineSmallWindow(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		window      int
		windowBytes int64
	}{
		{"count-bound", 8, 0},
		{"bytes-bound", 1024, 200},
		{"window-1", 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var col collector
			c, err := Dial(ctx, Options{Addr: srv.Addr, Window: tc.window, WindowBytes: tc.windowBytes, OnReply: col.onReply})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			key := []byte("counter:" + tc.name)
			const n = 5000
			maxIn := 0
			for i := range n {
				if err := c.Send(ctx, Tag{Offset: int64(i)}, []byte("INCR"), key); err != nil {
					t.Fatal(err)
				}
				st := c.Stats()
				maxIn = max(maxIn, st.InFlight)
				if st.InFlight > tc.window {
					t.Fatalf("in flight %d > window %d", st.InFlight, tc.window)
				}
			}
			if err := c.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			if col.len() != n {
				t.Fatalf("got %d replies, want %d", col.len(), n)
			}
			for i := range n {
				if col.kinds[i] != KindInteger || col.ints[i] != int64(i+1) || col.seqs[i] != uint64(i) || col.offsets[i] != int64(i) {
					t.Fatalf("reply %d: kind %q int %d seq %d offset %d", i, col.kinds[i], col.ints[i], col.seqs[i], col.offsets[i])
				}
			}
			st := c.Stats()
			if st.Sent != n || st.Replies != n || st.InFlight != 0 || st.InFlightBytes != 0 {
				t.Fatalf("stats %+v", st)
			}
			t.Logf("max in flight %d", maxIn)
		})
	}
}

// TestPipelineLargeCommands sends commands bigger than the writer's buffer, which go to the
// socket before the writer publishes its batch: replies can come before that.
func TestPipelineLargeCommands(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	var col collector
	c, err := Dial(ctx, Options{Addr: srv.Addr, OnReply: col.onReply})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	val := make([]byte, 100<<10)
	const n = 500
	for i := range n {
		if err := c.Send(ctx, Tag{}, []byte("SET"), []byte("k"+strconv.Itoa(i%7)), val); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			if err := c.Send(ctx, Tag{}, []byte("PING")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if col.len() != n+n/50 {
		t.Fatalf("%d replies, want %d", col.len(), n+n/50)
	}
	for i, s := range col.strs {
		if s != "OK" && s != "PONG" {
			t.Fatalf("reply %d: %q", i, s)
		}
	}
}

func TestErrorReplyKeepsStream(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	var col collector
	c, err := Dial(ctx, Options{Addr: srv.Addr, OnReply: col.onReply})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cmds := []struct {
		args   []string
		kind   byte
		prefix string
		str    string
	}{
		{[]string{"RPUSH", "l", "a"}, KindInteger, "", ""},
		{[]string{"INCR", "l"}, KindError, "WRONGTYPE", ""},
		{[]string{"NOSUCHCOMMAND"}, KindError, "ERR", ""},
		{[]string{"SET", "s", "v"}, KindSimple, "", "OK"},
		{[]string{"GET", "s"}, KindBulk, "", "v"},
		{[]string{"GET", "missing"}, KindBulk, "", ""},
		{[]string{"LRANGE", "l", "0", "-1"}, KindArray, "", ""},
		{[]string{"RESTORE", "s", "0", "garbage"}, KindError, "BUSYKEY", ""},
		{[]string{"RESTORE", "s", "0", "garbage", "REPLACE"}, KindError, "ERR", ""},
		{[]string{"PING"}, KindSimple, "", "PONG"},
	}
	for _, cmd := range cmds {
		args := make([][]byte, len(cmd.args))
		for i, a := range cmd.args {
			args[i] = []byte(a)
		}
		if err := c.Send(ctx, Tag{}, args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	for i, cmd := range cmds {
		if col.kinds[i] != cmd.kind || col.prefix[i] != cmd.prefix || (cmd.str != "" && col.strs[i] != cmd.str) {
			t.Errorf("%v: got kind %q prefix %q str %q", cmd.args, col.kinds[i], col.prefix[i], col.strs[i])
		}
	}
	if st := c.Stats(); st.ErrorReplies != 4 || st.Broken {
		t.Errorf("stats %+v, want 4 error replies and a usable conn", st)
	}
	rep, err := c.Do(ctx, "GET", "s")
	if err != nil || string(rep.Str) != "v" {
		t.Fatalf("Do after errors: %v %v", rep, err)
	}
}

func TestKilledServerFailsInFlight(t *testing.T) {
	srv := startRedis(t, "--enable-debug-command", "yes")
	ctx := context.Background()
	var col collector
	c, err := Dial(ctx, Options{Addr: srv.Addr, OnReply: col.onReply})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(ctx, Tag{}, []byte("DEBUG"), []byte("SLEEP"), []byte("10")); err != nil {
		t.Fatal(err)
	}
	const n = 100
	for i := range n {
		if err := c.Send(ctx, Tag{Offset: int64(i + 1)}, []byte("SET"), []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	// The server sleeps 10 s in DEBUG SLEEP before answering anything: kill it now, so every
	// request is in flight, none answered.
	srv.Kill()
	err = c.Drain(ctx)
	if !errors.Is(err, ErrBroken) {
		t.Fatalf("Drain: %v, want ErrBroken", err)
	}
	if col.len() != n+1 {
		t.Fatalf("%d callbacks, want %d", col.len(), n+1)
	}
	for i, k := range col.kinds {
		if k != KindFailed || col.offsets[i] != int64(i) {
			t.Fatalf("record %d: kind %q offset %d, want failed in order", i, k, col.offsets[i])
		}
	}
	if err := c.Send(ctx, Tag{}, []byte("PING")); !errors.Is(err, ErrBroken) {
		t.Fatalf("Send after break: %v", err)
	}
}

func TestDialAuth(t *testing.T) {
	srv := startRedis(t, "--requirepass", "secret")
	ctx := context.Background()
	tests := []struct {
		name, user, pass string
		wantErr          bool
	}{
		{"none", "", "", true},
		{"wrong", "", "nope", true},
		{"password", "", "secret", false},
		{"user-password", "default", "secret", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Dial(ctx, Options{Addr: srv.Addr, Username: tc.user, Password: tc.pass, DB: 3, Timeout: 2 * time.Second})
			if (err != nil) != tc.wantErr {
				t.Fatalf("Dial: %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			defer c.Close()
			if _, err := c.Do(ctx, "SET", "in3", "x"); err != nil {
				t.Fatal(err)
			}
			rep, err := c.Do(ctx, "CLIENT", "INFO")
			if err != nil || !containsStr(string(rep.Str), " db=3 ") {
				t.Fatalf("CLIENT INFO: %q %v, want db=3", rep.Str, err)
			}
		})
	}
}

func containsStr(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestBeginCancelled(t *testing.T) {
	srv := startRedis(t, "--enable-debug-command", "yes")
	c, err := Dial(context.Background(), Options{Addr: srv.Addr, Window: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	for _, args := range [][][]byte{{[]byte("DEBUG"), []byte("SLEEP"), []byte("1")}, {[]byte("PING")}} {
		if err := c.Send(ctx, Tag{}, args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Send(ctx, Tag{}, []byte("PING")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send on a full window: %v, want deadline exceeded", err)
	}
	if err := c.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Replies != 2 {
		t.Fatalf("replies %d, want 2", st.Replies)
	}
}

func TestReplyTimeout(t *testing.T) {
	srv := startRedis(t, "--enable-debug-command", "yes")
	ctx := context.Background()
	c, err := Dial(ctx, Options{Addr: srv.Addr, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Idle longer than Timeout with nothing in flight: the connection must stay usable.
	if _, err := c.Do(ctx, "PING"); err != nil {
		t.Fatal(err)
	}
	<-time.After(1500 * time.Millisecond)
	if _, err := c.Do(ctx, "PING"); err != nil {
		t.Fatalf("PING after idling: %v", err)
	}
	// A reply slower than Timeout breaks it.
	if err := c.Send(ctx, Tag{}, []byte("DEBUG"), []byte("SLEEP"), []byte("3")); err != nil {
		t.Fatal(err)
	}
	if err := c.Drain(ctx); !errors.Is(err, ErrBroken) || !containsStr(err.Error(), "no reply within") {
		t.Fatalf("Drain: %v, want a reply timeout", err)
	}
}
