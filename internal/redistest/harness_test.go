package redistest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"
)

// TestFixtureRoundTrip: a server loaded from an RDB holds what the fixture JSON says (both
// directions of the dataset code), a second server loaded from it and a replica of it compare
// equal to it.
func TestFixtureRoundTrip(t *testing.T) {
	t.Parallel()
	a := StartRedis(t, WithRDB(Fixture(t, "redis-7.0.15.rdb")))
	b := StartRedis(t, WithRDB(Fixture(t, "redis-7.0.15.rdb")))
	replica := StartRedis(t)
	replica.ReplicaOf(t, a)

	da, db, dr := a.Dump(t), b.Dump(t), replica.Dump(t)
	want, err := DatasetFromFixtureJSON(Fixture(t, "redis-7.0.15.json"))
	if err != nil {
		t.Fatal(err)
	}
	if want.Keys() != 30 || da.Keys() != 30 {
		t.Fatalf("keys: fixture JSON %d, server %d; want 30", want.Keys(), da.Keys())
	}
	if len(da.Functions) != 1 || len(want.Functions) != 1 {
		t.Errorf("function libraries: server %d, JSON %d; want 1", len(da.Functions), len(want.Functions))
	}
	for _, pair := range [][2]*Dataset{{da, db}, {want, da}, {da, want}, {da, dr}} {
		if d := Diff(pair[0], pair[1], TTLTolerance); len(d) != 0 {
			t.Errorf("%s vs %s: %d differences:\n%s", pair[0].Source, pair[1].Source, len(d), strings.Join(d, "\n"))
		}
	}
	CompareRedis(t, a.Addr, replica.Addr)
}

// TestDiffReportsExactlyTheChanges changes one zset score, one hash value, one group's
// last-delivered-id and one TTL, and expects exactly those four differences.
func TestDiffReportsExactlyTheChanges(t *testing.T) {
	t.Parallel()
	a := StartRedis(t, WithRDB(Fixture(t, "redis-7.0.15.rdb")))
	b := StartRedis(t, WithRDB(Fixture(t, "redis-7.0.15.rdb")))
	ttl := b.Do(t, "PEXPIRETIME", "str:ttl").(int64)
	b.Do(t, "ZADD", "zset:small", "XX", "7", "a")
	field := b.Do(t, "HKEYS", "hash:small").([]interface{})[0].(string)
	b.Do(t, "HSET", "hash:small", field, "changed")
	b.Do(t, "XGROUP", "SETID", "stream:s1", "g1", "1700000000008-2")
	b.Do(t, "PEXPIREAT", "str:ttl", ttl+10_000)

	got := Diff(a.Dump(t), b.Dump(t), TTLTolerance)
	want := [][]string{ // each difference, as the substrings it must contain, in key order
		{`db 0 key "hash:small"`, strconv.Quote(field), `"changed"`},
		{`db 0 key "str:ttl"`, "expire", "10s apart"},
		{`db 0 key "stream:s1"`, `group "g1"`, "last-delivered-id 1700000000007-1 vs 1700000000008-2"},
		{`db 0 key "zset:small"`, `member "a"`, "score 1 vs 7"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d differences, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i, parts := range want {
		for _, p := range parts {
			if !strings.Contains(got[i], p) {
				t.Errorf("difference %d %q does not contain %q", i, got[i], p)
			}
		}
	}
	// The same differences seen from the other side, and a 1 s TTL change is tolerated.
	if d := Diff(b.Dump(t), a.Dump(t), TTLTolerance); len(d) != 4 {
		t.Errorf("reverse diff: %d differences, want 4:\n%s", len(d), strings.Join(d, "\n"))
	}
	b.Do(t, "PEXPIREAT", "str:ttl", ttl+1_000)
	if d := Diff(a.Dump(t), b.Dump(t), TTLTolerance); len(d) != 3 {
		t.Errorf("after a 1 s TTL change: %d differences, want 3:\n%s", len(d), strings.Join(d, "\n"))
	}
}

// TestDiffTable covers what a dump cannot easily produce: missing keys, type changes, stream
// details, functions, the cap on reported differences and key escaping.
func TestDiffTable(t *testing.T) {
	t.Parallel()
	strv := func(s string) *Value { return &Value{Type: "string", Str: s} }
	stream := func(mut func(*Stream)) *Value {
		s := &Stream{Length: 1, LastGeneratedID: "1-1", EntriesAdded: 1,
			Entries: []StreamEntry{{ID: "1-1", Fields: []string{"f", "v"}}},
			Groups: []StreamGroup{{Name: "g", LastDeliveredID: "1-1", Pending: 1, ConsumerCount: 1, EntriesRead: "1",
				Consumers: []StreamConsumer{{Name: "c", Pending: 1}}, PEL: []StreamPending{{ID: "1-1", Consumer: "c", Deliveries: 1}}}}}
		if mut != nil {
			mut(s)
		}
		return &Value{Type: "stream", Stream: s}
	}
	one := func(db int, k string, v *Value) *Dataset {
		return &Dataset{Source: "x", DBs: map[int]map[string]*Value{db: {k: v}}, Detailed: true}
	}
	many := func(n int, v string) *Dataset {
		d := &Dataset{Source: "x", DBs: map[int]map[string]*Value{0: {}}}
		for i := 0; i < n; i++ {
			d.DBs[0][fmt.Sprintf("k%02d", i)] = strv(v)
		}
		return d
	}
	cases := []struct {
		name  string
		a, b  *Dataset
		n     int
		total int
		want  string
	}{
		{"equal", one(0, "k", strv("v")), one(0, "k", strv("v")), 0, 0, ""},
		{"missing", one(0, "k", strv("v")), one(1, "k", strv("v")), 2, 2, `db 0 key "k": only in`},
		{"type", one(3, "k", strv("v")), one(3, "k", &Value{Type: "list", List: []string{"v"}}), 1, 1, "type string vs list"},
		{"binary key", one(0, "\x00\xff\n\"", strv("a")), one(0, "\x00\xff\n\"", strv("b")), 1, 1, `key "\x00\xff\n\"": value "a" vs "b"`},
		{"expire", one(0, "k", &Value{Type: "string", ExpireMs: 5000}), one(0, "k", strv("")), 1, 1, "expire 5000"},
		{"list", one(0, "k", &Value{Type: "list", List: []string{"a", "b"}}), one(0, "k", &Value{Type: "list", List: []string{"a"}}), 1, 1, "length 2 vs 1"},
		{"entries-read", one(0, "s", stream(nil)), one(0, "s", stream(func(s *Stream) { s.Groups[0].EntriesRead = "2" })), 1, 1, "entries-read 1 vs 2"},
		{"entries-read unknown", one(0, "s", stream(nil)), one(0, "s", stream(func(s *Stream) { s.Groups[0].EntriesRead = "nil" })), 0, 0, ""},
		{"PEL", one(0, "s", stream(nil)), one(0, "s", stream(func(s *Stream) { s.Groups[0].PEL[0].Deliveries = 2 })), 1, 1, "PEL entry 0"},
		{"consumers", one(0, "s", stream(nil)), one(0, "s", stream(func(s *Stream) { s.Groups[0].Consumers[0].Name = "d" })), 1, 1, `consumers ["c":1] vs ["d":1]`},
		{"max-deleted", one(0, "s", stream(nil)), one(0, "s", stream(func(s *Stream) { s.MaxDeletedID = "1-0" })), 1, 1, "max-deleted-entry-id"},
		{"entry fields", one(0, "s", stream(nil)), one(0, "s", stream(func(s *Stream) { s.Entries[0].Fields[1] = "w" })), 1, 1, `fields ["f" "v"] vs ["f" "w"]`},
		{"capped", many(25, "a"), many(25, "b"), MaxDiffs, 25, `key "k00"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, total := DiffCount(c.a, c.b, TTLTolerance)
			if len(got) != c.n || total != c.total {
				t.Fatalf("%d shown of %d, want %d of %d:\n%s", len(got), total, c.n, c.total, strings.Join(got, "\n"))
			}
			if c.want != "" && !strings.Contains(got[0], c.want) {
				t.Errorf("first difference %q does not contain %q", got[0], c.want)
			}
		})
	}
	// Details a fixture lacks are not compared against one.
	a, b := one(0, "s", stream(nil)), one(0, "s", stream(func(s *Stream) { s.Groups[0].PEL = nil }))
	b.Detailed = false
	if d := Diff(a, b, TTLTolerance); len(d) != 0 {
		t.Errorf("undetailed side: %v", d)
	}
	a.Functions, b.Functions = map[string]string{"lib": "x"}, map[string]string{"lib": "y"}
	if d := Diff(a, b, TTLTolerance); len(d) != 1 || !strings.Contains(d[0], "function library") {
		t.Errorf("functions: %v", d)
	}
}

// TestWriterReplicated runs the writer for 2 s on a master with a replica attached; once it is
// stopped and the replica has caught up, the two compare equal.
func TestWriterReplicated(t *testing.T) {
	t.Parallel()
	master := StartRedis(t)
	replica := StartRedis(t)
	replica.ReplicaOf(t, master)
	w := StartWriter(t, master.Addr, WriterOptions{DBs: []int{0, 1, 15}, Seed: 1})
	start := time.Now()
	WaitFor(t, 20*time.Second, func() error {
		if el := time.Since(start); el < 2*time.Second || w.Ops() < 2000 {
			return fmt.Errorf("writer: %d commands in %v", w.Ops(), el)
		}
		return nil
	})
	stopAt := time.Now()
	stats := w.Stop()
	t.Logf("writer stopped in %v: %v", time.Since(stopAt), stats)
	if stats.Errors != 0 {
		t.Fatalf("writer errors: %v", stats)
	}
	for _, cmd := range []string{"SET", "APPEND", "INCR", "HSET", "HDEL", "LPUSH", "LPOP", "SADD", "ZADD", "ZINCRBY",
		"XADD", "XGROUP", "XREADGROUP", "XACK", "DEL", "EXPIRE", "PEXPIRE", "PERSIST", "SELECT"} {
		if stats.Ops[cmd] == 0 {
			t.Errorf("writer never sent %s: %v", cmd, stats)
		}
	}
	WaitReplicaSynced(t, master, replica, 30*time.Second)
	dumpStart := time.Now()
	dm := master.Dump(t)
	t.Logf("dump of %d keys in %v", dm.Keys(), time.Since(dumpStart))
	for _, db := range []int{0, 1, 15} {
		if len(dm.DBs[db]) < 1000 {
			t.Errorf("db %d has %d keys, want most of 2000", db, len(dm.DBs[db]))
		}
	}
	groups, pending, ttls := 0, 0, 0
	for _, keys := range dm.DBs {
		for _, v := range keys {
			if v.ExpireMs != 0 {
				ttls++
			}
			if v.Stream != nil {
				for _, g := range v.Stream.Groups {
					groups++
					pending += len(g.PEL)
				}
			}
		}
	}
	if groups == 0 || pending == 0 || ttls == 0 {
		t.Errorf("dataset lacks variety: %d groups, %d pending entries, %d keys with expiry", groups, pending, ttls)
	}
	CompareDatasets(t, dm, replica.Dump(t))
}

// TestWriterRate: a rate-limited writer sends about Rate commands per second.
func TestWriterRate(t *testing.T) {
	t.Parallel()
	r := StartRedis(t)
	w := StartWriter(t, r.Addr, WriterOptions{Rate: 2000, Seed: 7, Keys: 100})
	start := time.Now()
	WaitFor(t, 10*time.Second, func() error {
		if w.Ops() < 1000 {
			return fmt.Errorf("writer at %d commands", w.Ops())
		}
		return nil
	})
	el := time.Since(start)
	st := w.Stop()
	if rate := float64(st.Total) / el.Seconds(); rate > 3000 || st.Errors != 0 {
		t.Errorf("writer at %.0f commands/s, want about 2000: %v", rate, st)
	}
}

// TestWriterSeed: the same seed gives the same command sequence, another seed another one.
func TestWriterSeed(t *testing.T) {
	t.Parallel()
	seq := func(seed uint64) []string {
		w := &Writer{opts: WriterOptions{DBs: []int{0, 1}, Keys: 100, Seed: seed}}
		st := &writerState{rng: newWriterRand(seed), db: -1, pending: map[string][]string{}}
		var out []string
		for i := 0; i < 500; i++ {
			out = append(out, strings.Join(w.command(st, i%2), " "))
		}
		return out
	}
	a, b, c := seq(1), seq(1), seq(2)
	if !slices.Equal(a, b) {
		t.Error("seed 1 gave two different sequences")
	}
	if slices.Equal(a, c) {
		t.Error("seeds 1 and 2 gave the same sequence")
	}
}

// TestWriterReconnect: with Reconnect the writer survives a restart of its server and goes on
// writing; without it, the lost connection is an error.
func TestWriterReconnect(t *testing.T) {
	t.Parallel()
	r := StartRedis(t)
	w := StartWriter(t, r.Addr, WriterOptions{Reconnect: true, Rate: 5000, Keys: 50})
	atLeast := func(n int64) func() error {
		return func() error {
			if w.Ops() < n {
				return fmt.Errorf("writer at %d commands, want %d", w.Ops(), n)
			}
			return nil
		}
	}
	WaitFor(t, 10*time.Second, atLeast(200))
	t0 := time.Now()
	r.Restart(t)
	t.Logf("restart %v", time.Since(t0))
	WaitFor(t, 10*time.Second, atLeast(w.Ops()+200))
	t.Logf("writing again %v", time.Since(t0))
	st := w.Stop()
	if st.Errors != 0 || st.Reconnects < 1 {
		t.Errorf("writer across a restart: %v", st)
	}
	if n := r.Do(t, "DBSIZE").(int64); n == 0 {
		t.Error("nothing written after the restart")
	}

	r2 := StartRedis(t)
	ft := &recordingTB{TB: t}
	w2 := StartWriter(ft, r2.Addr, WriterOptions{Keys: 50})
	WaitFor(t, 10*time.Second, func() error {
		if w2.Ops() == 0 {
			return errors.New("second writer idle")
		}
		return nil
	})
	r2.Kill()
	WaitFor(t, 10*time.Second, func() error {
		select {
		case <-w2.Done():
			return nil
		default:
			return errors.New("writer still running after its server was killed")
		}
	})
	st2 := w2.Stop()
	if st2.Errors == 0 || st2.Reconnects != 0 || !ft.errored() {
		t.Errorf("writer without Reconnect after Kill: %v, test failed: %v", st2, ft.errored())
	}
}

// TestRestartKeepsPort: Restart comes back on the same port and directory, with a new process,
// and reloads the RDB it was given.
func TestRestartKeepsPort(t *testing.T) {
	t.Parallel()
	r := StartRedis(t, WithRDB(Fixture(t, "redis-7.0.15.rdb")))
	port, addr, pid := r.Port, r.Addr, r.Pid()
	r.Do(t, "SET", "scratch", "gone after restart")
	r.Restart(t)
	if r.Port != port || r.Addr != addr {
		t.Fatalf("restart moved %s to %s", addr, r.Addr)
	}
	if r.Pid() == pid || r.Pid() == 0 {
		t.Fatalf("restart kept pid %d (now %d)", pid, r.Pid())
	}
	if got := r.Info(t, "server")["tcp_port"]; got != strconv.Itoa(port) {
		t.Fatalf("tcp_port %s, want %d", got, port)
	}
	if v := r.Do(t, "GET", "scratch"); v != nil {
		t.Errorf("scratch = %v after restart with save \"\"", v)
	}
	if n := r.Do(t, "DBSIZE").(int64); n != 27 {
		t.Errorf("db 0 has %d keys after restart, want the fixture's 27", n)
	}
}

// TestKillLeavesNoProcess: after Kill the process is reaped and the port is closed.
func TestKillLeavesNoProcess(t *testing.T) {
	t.Parallel()
	r := StartRedis(t)
	n := StartNutcracker(t, NutcrackerOptions{Backends: []*Redis{r}})
	pid := r.Pid()
	if pid == 0 {
		t.Fatal("no pid")
	}
	r.Kill()
	n.Kill()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d still exists after Kill: %v", pid, err)
	}
	for _, addr := range []string{r.Addr, n.Addr} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Kill", addr)
		}
	}
	if r.Pid() != 0 {
		t.Errorf("Pid() = %d after Kill", r.Pid())
	}
	r.Kill() // a second Kill is harmless
}

// TestAuth: WithPassword and WithACLUser protect the server, and the harness logs in.
func TestAuth(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opt  RedisOption
	}{
		{"password", WithPassword("s3cret")},
		{"acl user", WithACLUser("mig", "pw")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := StartRedis(t, c.opt, WithArgs("databases 4"))
			r.Do(t, "SET", "k", "v")
			if got := r.DoString(t, "GET", "k"); got != "v" {
				t.Fatalf("GET k = %q", got)
			}
			if got := r.Do(t, "CONFIG", "GET", "databases").([]interface{}); got[1] != "4" {
				t.Errorf("WithArgs ignored: databases %v", got)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			conn, err := radix.Dial(ctx, "tcp", r.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			err = conn.Do(ctx, radix.Cmd(nil, "GET", "k"))
			if err == nil || !strings.Contains(err.Error(), "NOAUTH") {
				t.Errorf("GET without AUTH: %v, want NOAUTH", err)
			}
			if d := r.Dump(t); d.Keys() != 1 {
				t.Errorf("dump with credentials: %d keys", d.Keys())
			}
		})
	}
}

// TestNutcracker: keys written through the proxy land on both backends and read back.
func TestNutcracker(t *testing.T) {
	t.Parallel()
	b1, b2 := StartRedis(t), StartRedis(t)
	n := StartNutcracker(t, NutcrackerOptions{Backends: []*Redis{b1, b2}, Names: []string{"s1", "s2"}, HashTag: "{}"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := radix.Dial(ctx, "tcp", n.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const keys = 200
	for i := 0; i < keys; i++ {
		if err := c.Do(ctx, radix.Cmd(nil, "SET", fmt.Sprintf("key:%d", i), "v")); err != nil {
			t.Fatal(err)
		}
		if err := c.Do(ctx, radix.Cmd(nil, "SET", fmt.Sprintf("{tag}:%d", i), "v")); err != nil {
			t.Fatal(err)
		}
	}
	n1, n2 := b1.Do(t, "DBSIZE").(int64), b2.Do(t, "DBSIZE").(int64)
	if n1+n2 != 2*keys || n1 <= keys/4 || n2 <= keys/4 {
		t.Errorf("backends hold %d and %d keys, want %d spread over both", n1, n2, 2*keys)
	}
	// Every {tag} key is on one backend.
	t1 := len(b1.Do(t, "KEYS", "{tag}:*").([]interface{}))
	t2 := len(b2.Do(t, "KEYS", "{tag}:*").([]interface{}))
	if t1*t2 != 0 || t1+t2 != keys {
		t.Errorf("hash tag split over backends: %d and %d", t1, t2)
	}
	var v string
	if err := c.Do(ctx, radix.Cmd(&v, "GET", "key:7")); err != nil || v != "v" {
		t.Errorf("GET through proxy = %q, %v", v, err)
	}
	// A writer through the proxy runs without errors.
	w := StartWriter(t, n.Addr, WriterOptions{Twemproxy: true, Seed: 3, Keys: 300})
	WaitFor(t, 10*time.Second, func() error {
		if w.Ops() < 3000 {
			return fmt.Errorf("writer through nutcracker at %d commands", w.Ops())
		}
		return nil
	})
	if st := w.Stop(); st.Errors != 0 || st.Ops["SELECT"] != 0 || st.Ops["XADD"] != 0 {
		t.Errorf("writer through nutcracker: %v", st)
	}
	// The stats port answers with JSON naming the pool's servers.
	sc, err := net.DialTimeout("tcp", n.StatsAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	stats, err := io.ReadAll(sc)
	if err != nil || !strings.Contains(string(stats), `"s1"`) {
		t.Errorf("stats: %q, %v", stats, err)
	}
}

// recordingTB records a Fatalf and ends its goroutine, as testing does, and records Errorf.
type recordingTB struct {
	testing.TB
	mu     sync.Mutex
	fatal  string
	errors []string
}

func (f *recordingTB) Errorf(format string, args ...interface{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *recordingTB) errored() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.errors) > 0
}

func (f *recordingTB) Helper() {}
func (f *recordingTB) Fatalf(format string, args ...interface{}) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

// runRecording runs fn with a fake TB in its own goroutine and returns its Fatalf message.
func runRecording(fn func(tb testing.TB)) string { return runRecordingTB(&recordingTB{}, fn) }

// runRecordingTB is runRecording with f, which may pass on to a real TB what it does not record
// (TempDir, Cleanup).
func runRecordingTB(f *recordingTB, fn func(tb testing.TB)) string {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fatal
}

func TestWaitFor(t *testing.T) {
	t.Parallel()
	calls := 0
	msg := runRecording(func(tb testing.TB) {
		WaitFor(tb, 200*time.Millisecond, func() error { calls++; return fmt.Errorf("attempt %d", calls) })
	})
	if !strings.Contains(msg, fmt.Sprintf("attempt %d", calls)) || calls < 3 || calls > 10 {
		t.Errorf("WaitFor failed with %q after %d calls, want the last error after about 5", msg, calls)
	}
	n := 0
	if msg := runRecording(func(tb testing.TB) {
		WaitFor(tb, 5*time.Second, func() error {
			if n++; n < 3 {
				return errors.New("not yet")
			}
			return nil
		})
	}); msg != "" || n != 3 {
		t.Errorf("WaitFor: %q after %d calls", msg, n)
	}
	// CompareDatasets fails with the differences.
	a := &Dataset{Source: "a", DBs: map[int]map[string]*Value{0: {"k": {Type: "string", Str: "1"}}}}
	b := &Dataset{Source: "b", DBs: map[int]map[string]*Value{0: {"k": {Type: "string", Str: "2"}}}}
	if msg := runRecording(func(tb testing.TB) { CompareDatasets(tb, a, b) }); !strings.Contains(msg, `db 0 key "k": value "1" vs "2"`) {
		t.Errorf("CompareDatasets: %q", msg)
	}
}

func TestEscapeAndVersions(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"abc": `"abc"`, "a b": `"a b"`, "\x00\xff": `"\x00\xff"`, "\r\n\t\a\b": `"\r\n\t\a\b"`, `"\`: `"\"\\"`, "": `""`,
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %s, want %s", in, got, want)
		}
	}
	for _, c := range []struct {
		a, b string
		want int
	}{{"7.0.15", "7.0", 1}, {"7.0", "7.0.0", 0}, {"6.2.16", "7.0", -1}, {"7.10.0", "7.9", 1}} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compareVersions(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	if id, err := nextStreamID("5-18446744073709551615"); id != "6-0" || err != nil {
		t.Errorf("nextStreamID = %s, %v", id, err)
	}
}

// TestFixtureJSONEveryVersion reads every fixture JSON; those whose RDB the installed server can
// load are compared with the server's contents.
func TestFixtureJSONEveryVersion(t *testing.T) {
	t.Parallel()
	cases := []struct {
		version  string
		keys     int
		fieldTTL bool
	}{
		{"5.0.14", 27, false}, {"6.2.16", 27, false}, {"7.0.15", 30, false}, {"7.2.6", 30, false}, {"7.4.1", 32, true},
	}
	installed := InstalledRedisVersion(t)
	for _, c := range cases {
		t.Run(c.version, func(t *testing.T) {
			t.Parallel()
			want, err := DatasetFromFixtureJSON(Fixture(t, "redis-"+c.version+".json"))
			if err != nil {
				t.Fatal(err)
			}
			if want.Keys() < c.keys || want.FieldTTL != c.fieldTTL {
				t.Fatalf("JSON: %d keys (want at least %d), FieldTTL %v", want.Keys(), c.keys, want.FieldTTL)
			}
			if compareVersions(c.version, installed) > 0 {
				t.Skipf("RDB of %s may be newer than redis-server %s can load", c.version, installed)
			}
			r := StartRedis(t, WithRDB(Fixture(t, "redis-"+c.version+".rdb")))
			CompareDatasets(t, want, r.Dump(t))
		})
	}
}

// TestDumpPaging: keys bigger than one page (1000) are read whole, in order.
func TestDumpPaging(t *testing.T) {
	t.Parallel()
	a := StartRedis(t)
	b := StartRedis(t)
	b.ReplicaOf(t, a)
	const n = 2500
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := radix.NewPipeline()
	for i := 0; i < n; i++ {
		s := strconv.Itoa(i)
		p.Append(radix.Cmd(nil, "RPUSH", "list", s))
		p.Append(radix.Cmd(nil, "SADD", "set", s))
		p.Append(radix.Cmd(nil, "HSET", "hash", "f"+s, s))
		p.Append(radix.Cmd(nil, "ZADD", "zset", strconv.Itoa(n-i), "m"+s))
		p.Append(radix.Cmd(nil, "XADD", "stream", fmt.Sprintf("%d-1", i+1), "i", s))
	}
	p.Append(radix.Cmd(nil, "XGROUP", "CREATE", "stream", "g", "0"))
	if err := a.Client(t).Do(ctx, p); err != nil {
		t.Fatal(err)
	}
	a.Do(t, "XREADGROUP", "GROUP", "g", "c", "COUNT", n, "STREAMS", "stream", ">")
	d := a.Dump(t)
	v := d.DBs[0]
	if len(v["list"].List) != n || v["list"].List[n-1] != strconv.Itoa(n-1) {
		t.Errorf("list: %d elements", len(v["list"].List))
	}
	if len(v["set"].Set) != n || len(v["hash"].Hash) != n || v["hash"].Hash["f2499"] != "2499" {
		t.Errorf("set %d members, hash %d fields", len(v["set"].Set), len(v["hash"].Hash))
	}
	if z := v["zset"].ZSet; len(z) != n || z[0].Member != "m2499" || z[n-1].Score != n {
		t.Errorf("zset: %d members", len(z))
	}
	s := v["stream"].Stream
	if len(s.Entries) != n || s.Entries[n-1].ID != fmt.Sprintf("%d-1", n) || len(s.Groups) != 1 || len(s.Groups[0].PEL) != n {
		t.Fatalf("stream: %d entries, groups %d", len(s.Entries), len(s.Groups))
	}
	if g := s.Groups[0]; g.PEL[n-1].ID != fmt.Sprintf("%d-1", n) || g.Consumers[0] != (StreamConsumer{"c", n}) {
		t.Errorf("group: %+v %+v", g.PEL[n-1], g.Consumers)
	}
	WaitReplicaSynced(t, a, b, 20*time.Second)
	CompareServers(t, a, b)
	// A change deep in the last page is seen.
	b.Do(t, "REPLICAOF", "NO", "ONE")
	b.Do(t, "LSET", "list", n-2, "x")
	if d := Diff(d, b.Dump(t), TTLTolerance); len(d) != 1 || !strings.Contains(d[0], "element 2498") {
		t.Errorf("LSET deep in the list: %v", d)
	}
}

// TestCluster: three masters cover every slot; each node owns exactly the slots NodeForSlot
// says, keys written to NodeForKey are accepted, and the merged dump of the nodes equals a standalone server with the same keys.
func TestCluster(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, 3)
	single := StartRedis(t)
	for i, r := range c.Nodes {
		info := ParseInfo(r.DoString(t, "CLUSTER", "INFO"))
		if info["cluster_state"] != "ok" || info["cluster_known_nodes"] != "3" {
			t.Fatalf("node %d: %v", i, info)
		}
	}
	for _, slot := range []int{0, 5460, 5461, 10922, 16383} {
		want := c.NodeForSlot(slot)
		shards := c.Nodes[0].Do(t, "CLUSTER", "SLOTS").([]interface{})
		owner := ""
		for _, s := range shards {
			s := s.([]interface{})
			if int(s[0].(int64)) <= slot && slot <= int(s[1].(int64)) {
				owner = fmt.Sprintf("127.0.0.1:%d", s[2].([]interface{})[1].(int64))
			}
		}
		if owner != want.Addr {
			t.Errorf("slot %d: owned by %s, NodeForSlot says %s", slot, owner, want.Addr)
		}
	}
	for i := 0; i < 60; i++ {
		k := fmt.Sprintf("key:%d", i)
		c.NodeForKey(t, k).Do(t, "SET", k, i)
		single.Do(t, "SET", k, i)
	}
	for i, r := range c.Nodes {
		if n := r.Do(t, "DBSIZE").(int64); n < 5 {
			t.Errorf("node %d holds %d of 60 keys", i, n)
		}
	}
	CompareDatasets(t, c.Dump(t), single.Dump(t))
	if _, err := Merge("twice", single.Dump(t), single.Dump(t)); err == nil {
		t.Error("merging a dataset with itself: no error for duplicate keys")
	}
}

// TestBindFailureIsRetried: a server whose port is taken reports errBind (which StartRedis and
// StartNutcracker retry with another port) rather than a generic failure.
func TestBindFailureIsRetried(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	cfg := redisConfig{bin: "redis-server"}
	conf := cfg.render(port, 0, 0, dir)
	r := &Redis{bin: "redis-server", Addr: l.Addr().String(), Port: port, Dir: dir,
		LogPath: filepath.Join(dir, "redis.log"), confPath: filepath.Join(dir, "redis.conf")}
	if err := os.WriteFile(r.confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.start(); !isBindErr(err) {
		t.Errorf("redis-server on a taken port: %v, want %v", err, errBind)
	}

	b := StartRedis(t)
	n := &Nutcracker{Dir: dir, Addr: l.Addr().String(), LogPath: filepath.Join(dir, "nc.log"), ConfPath: filepath.Join(dir, "nc.yml")}
	n.Pools = []NutcrackerPool{{Name: "pool", Addr: n.Addr}}
	if err := os.WriteFile(n.ConfPath, []byte(NutcrackerOptions{}.render("pool", n.Addr, []string{b.Addr + ":1"})), 0o644); err != nil {
		t.Fatal(err)
	}
	stats, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.start("nutcracker", stats); !isBindErr(err) {
		t.Errorf("nutcracker on a taken port: %v, want %v", err, errBind)
	}
}

// FuzzDatasetFromFixture: the fixture reader returns an error, never panics, on any input.
func FuzzDatasetFromFixture(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"0":{}}`, `{"functions":[{"library_name":"l","library_code":"c"}]}`,
		`{"0":{"k":{"type":"string","expire_ms":null,"value":"\u00ff"}}}`,
		`{"0":{"k":{"type":"zset","expire_ms":1,"value":[["a","1"],["b",2.5],["c","-inf"]]}}}`,
		`{"1":{"k":{"type":"hash","expire_ms":null,"value":{"f":"v"},"field_expire_ms":{"f":5}}}}`,
		`{"0":{"s":{"type":"stream","expire_ms":null,"value":{"entries":[["1-1",["f","v"]]],"length":1,"last_generated_id":"1-1","groups":[{"name":"g","last_delivered_id":"1-1","pending":0,"consumers":0}]}}}}`,
		`{"0":{"k":{"type":"zset","value":[[1,2]]}}}`, `{"x":1}`, `[`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := DatasetFromFixtureBytes("fuzz", data)
		if err != nil {
			return
		}
		if diff := Diff(d, d, TTLTolerance); len(diff) != 0 {
			t.Errorf("a dataset differs from itself: %v", diff)
		}
	})
}
