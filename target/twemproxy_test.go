package target

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/internal/shard"
)

// testPool is a twemproxy pool of redis-server backends (no proxy: the writer never uses it;
// placement is checked against nutcracker itself in test/).
type testPool struct {
	servers []*redistest.Redis
	members []shard.Server // the pool's servers, as TwemproxyOptions.Servers
	cli     []radix.Client
	ring    *shard.Ring
}

func startPool(t testing.TB, n int, hash, dist string) *testPool {
	t.Helper()
	p := &testPool{}
	for i := range n {
		s := startRedis(t)
		p.servers = append(p.servers, s)
		p.members = append(p.members, shard.Server{Addr: s.Addr, Weight: 1, Name: "b" + strconv.Itoa(i)})
		p.cli = append(p.cli, client(t, s.Addr))
	}
	var err error
	if p.ring, err = shard.NewRing(p.members, hash, dist, "{}"); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *testPool) pick(key string) int { return p.ring.Pick([]byte(key)) }

func newTwemproxy(t testing.TB, p *testPool, hash, dist string) *Twemproxy {
	t.Helper()
	w, err := NewTwemproxy(context.Background(), TwemproxyOptions{Servers: p.members, Hash: hash,
		Distribution: dist, HashTag: "{}", NodeOptions: NodeOptions{SourceRDBVersion: 10}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// keysOf returns every key of backend i, db 0.
func (p *testPool) keysOf(t *testing.T, i int) []string {
	t.Helper()
	var keys []string
	do(t, p.cli[i], &keys, "KEYS", "*")
	return keys
}

func TestTwemproxyRestore(t *testing.T) {
	for _, tc := range []struct{ hash, dist string }{{"fnv1a_64", "ketama"}, {"murmur", "modula"}} {
		t.Run(tc.hash+"_"+tc.dist, func(t *testing.T) {
			p := startPool(t, 3, tc.hash, tc.dist)
			w := newTwemproxy(t, p, tc.hash, tc.dist)
			const n = 2000
			want := make([]int, 3)
			for i := range n {
				k := "key:" + strconv.Itoa(i)
				if i%10 == 0 {
					k = "{tag}:" + strconv.Itoa(i)
				}
				want[p.pick(k)]++
				if err := w.Restore(stringEntry(0, k, "v"+strconv.Itoa(i), 0)); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Restore(stringEntry(2, "other-db", "v", 0)); err != nil {
				t.Fatal(err)
			}
			if err := w.WaitRDB(context.Background()); err != nil {
				t.Fatal(err)
			}
			for i := range p.cli {
				keys := p.keysOf(t, i)
				if len(keys) != want[i] || want[i] == 0 {
					t.Errorf("backend %d holds %d keys, want %d (> 0)", i, len(keys), want[i])
				}
				for _, k := range keys {
					if p.pick(k) != i {
						t.Errorf("key %q on backend %d, ring says %d", k, i, p.pick(k))
					}
				}
				var n2 int
				c2, err := (radix.Dialer{SelectDB: "2"}).Dial(context.Background(), "tcp", p.servers[i].Addr)
				if err != nil {
					t.Fatal(err)
				}
				if err := c2.Do(context.Background(), radix.Cmd(&n2, "DBSIZE")); err != nil {
					t.Fatal(err)
				}
				c2.Close()
				if n2 != 0 {
					t.Errorf("backend %d: db 2 holds %d keys", i, n2)
				}
			}
			st := w.Stats()
			if st.Restored != n || st.Skipped[SkipDBNonZero] != 1 || len(st.Errors) != 0 {
				t.Errorf("stats: restored %d, skipped %v, errors %v", st.Restored, st.Skipped, st.Errors)
			}
			if addrs := strings.Split(st.Addr, ","); len(addrs) != 3 || len(st.Conns) != 3*2 {
				t.Errorf("stats: addr %q, %d conns", st.Addr, len(st.Conns))
			}
		})
	}
}

func TestTwemproxyRandomRefused(t *testing.T) {
	_, err := NewTwemproxy(context.Background(), TwemproxyOptions{
		Servers: []shard.Server{{Addr: "127.0.0.1:1", Weight: 1}, {Addr: "127.0.0.1:2", Weight: 1}}, Distribution: "random"})
	if !errors.Is(err, ErrRandomDistribution) {
		t.Fatalf("err = %v, want ErrRandomDistribution", err)
	}
	if _, err := NewTwemproxy(context.Background(), TwemproxyOptions{Servers: []shard.Server{{Addr: "nonsense", Weight: 1}}}); err == nil {
		t.Fatal("a bad server line was accepted")
	}
}

// twemStream applies a stream and returns the offset after each command.
func twemStream(t *testing.T, w *Twemproxy, from int64, stream [][]string) []int64 {
	t.Helper()
	ends := make([]int64, len(stream))
	end := from
	for i, args := range stream {
		cmd := rawCmd(args...)
		end += cmd.N
		ends[i] = end
		if err := w.Apply(cmd, end); err != nil {
			t.Fatal(err)
		}
	}
	return ends
}

// distinctKeys returns n keys of the form prefix+i living on n distinct backends.
func distinctKeys(p *testPool, prefix string, n int) []string {
	out := make([]string, n)
	seen := map[int]bool{}
	for i := 0; len(seen) < n; i++ {
		k := prefix + strconv.Itoa(i)
		if h := p.pick(k); !seen[h] {
			seen[h] = true
			out[len(seen)-1] = k
		}
	}
	return out
}

func TestTwemproxyApplyRouting(t *testing.T) {
	p := startPool(t, 3, "fnv1a_64", "ketama")
	w := newTwemproxy(t, p, "fnv1a_64", "ketama")
	ctx := context.Background()
	if err := w.StartOplog(ctx, 100, 0); err != nil {
		t.Fatal(err)
	}
	k := distinctKeys(p, "k", 3) // one key per backend
	e := distinctKeys(p, "e", 2)
	tx := distinctKeys(p, "tx", 2)
	stream := [][]string{
		{"SELECT", "0"},
		{"SET", "old", "1"},
		{"FLUSHALL"},
		{"MSET", k[0], "1", k[1], "2", k[2], "3", k[0], "5"},
		{"SET", e[0], "x"},
		{"SET", e[1], "y"},
		{"DEL", e[0], e[1], "missing"},
		{"RENAME", k[0], k[1]}, // across backends: not applied
		{"MULTI"},
		{"SET", "{t}x", "1"},
		{"INCR", "{t}x"},
		{"SET", "{t}y", "z"},
		{"EXEC"},
		{"MULTI"},
		{"SET", tx[0], "1"},
		{"SET", tx[1], "2"},
		{"EXEC"},
		{"PING"},
		{"SELECT", "1"},
		{"SET", "db1", "v"},
		{"FLUSHDB"},
		{"SELECT", "0"},
		{"EVAL", "return 1", "0"},
		{"NOSUCHCOMMAND", "k"},
		{"PUBLISH", "ch", "m"},
	}
	ends := twemStream(t, w, 100, stream)
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	end := ends[len(ends)-1]
	if off, db := w.Applied(); off != end || db != 0 {
		t.Fatalf("Applied() = %d, %d; want %d, 0", off, db, end)
	}
	want := map[string]string{k[0]: "5", k[1]: "2", k[2]: "3", "{t}x": "2", "{t}y": "z", tx[0]: "1", tx[1]: "2"}
	total := 0
	for i := range p.cli {
		keys := p.keysOf(t, i)
		total += len(keys)
		for _, key := range keys {
			if p.pick(key) != i {
				t.Errorf("key %q on backend %d, ring says %d", key, i, p.pick(key))
			}
			var v string
			do(t, p.cli[i], &v, "GET", key)
			if v != want[key] {
				t.Errorf("%q = %q, want %q", key, v, want[key])
			}
		}
	}
	if total != len(want) {
		t.Errorf("%d keys on the pool, want %d", total, len(want))
	}
	st := w.Stats()
	for reason, n := range map[string]uint64{SkipCrossNode: 1, CountMultiSplit: 1, SkipControl: 1,
		SkipSelectNonZero: 2, SkipNoKey: 1, SkipUnknown: 1, SkipPubSub: 1} {
		if st.Skipped[reason] != n {
			t.Errorf("skipped %s = %d, want %d (all: %v)", reason, st.Skipped[reason], n, st.Skipped)
		}
	}
	if _, ok := st.Skipped[""]; ok || len(st.Errors) != 0 {
		t.Errorf("skipped %v, errors %v", st.Skipped, st.Errors)
	}
	if len(st.Conns) != 3*2+3 || st.AppliedOffset != end {
		t.Errorf("%d conns (want 9), applied %d", len(st.Conns), st.AppliedOffset)
	}
	// A stream that ends in a non-zero db: Applied says so.
	more := twemStream(t, w, end, [][]string{{"SELECT", "3"}, {"SET", "x", "1"}})
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	if off, db := w.Applied(); off != more[1] || db != 3 {
		t.Fatalf("Applied() = %d, %d; want %d, 3", off, db, more[1])
	}
	// A command the daemon's filter leaves out moves every backend past it; a SELECT inside a
	// transaction splits it.
	more = twemStream(t, w, more[1], [][]string{{"SELECT", "0"}, {"MULTI"}, {"SET", "{s}1", "1"},
		{"SELECT", "0"}, {"SET", "{s}2", "2"}, {"EXEC"}})
	more = more[len(more)-1:]
	filtered := rawCmd("SET", "filtered", "1")
	w.Skip(filtered, more[0]+filtered.N, "filtered")
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	if off, db := w.Applied(); off != more[0]+filtered.N || db != 0 || w.Stats().Skipped["filtered"] != 1 {
		t.Fatalf("after a skip: Applied() = %d, %d; want %d, 0; skipped %v", off, db, more[0]+filtered.N, w.Stats().Skipped)
	}
	if n := w.Stats().Skipped[CountMultiSplit]; n != 2 {
		t.Errorf("multi_split %d, want 2", n)
	}
	for _, key := range []string{"{s}1", "{s}2"} {
		var v string
		do(t, p.cli[p.pick(key)], &v, "GET", key)
		if v == "" {
			t.Errorf("%s not set", key)
		}
	}
}

// TestTwemproxyReconnect breaks one backend's connections mid-stream: after Reconnect and a
// resend from the returned offset, every INCR counted exactly once on every backend (the healthy
// ones are not sent what they acknowledged already).
func TestTwemproxyReconnect(t *testing.T) {
	p := startPool(t, 3, "fnv1a_64", "ketama")
	w := newTwemproxy(t, p, "fnv1a_64", "ketama")
	ctx := context.Background()
	if err := w.StartOplog(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	const n = 600
	counters := distinctKeys(p, "c", 3)
	var cmds [][]string
	want := map[string]int{}
	for i := range n {
		key := counters[i%3]
		if i%7 == 0 {
			key = "x" + strconv.Itoa(i%50)
		}
		want[key]++
		cmds = append(cmds, []string{"INCR", key})
	}
	var ends []int64
	var end int64
	for _, c := range cmds {
		end += rawCmd(c...).N
		ends = append(ends, end)
	}
	from := func(off int64) int {
		for i, e := range ends {
			if e > off {
				return i
			}
		}
		return len(ends)
	}
	reconnects := 0
	i := 0
	for i < len(cmds) {
		if i == n/2 {
			if err := w.WaitOplog(ctx); err != nil {
				t.Fatal(err)
			}
			var killed int
			do(t, p.cli[1], &killed, "CLIENT", "KILL", "TYPE", "normal")
			if killed == 0 {
				t.Fatal("no client killed")
			}
		}
		err := w.Apply(rawCmd(cmds[i]...), ends[i])
		if err == nil && i == len(cmds)-1 {
			err = w.WaitOplog(ctx)
		}
		if err == nil {
			i++
			continue
		}
		if !errors.Is(err, ErrBroken) {
			t.Fatalf("apply %d: %v", i, err)
		}
		reconnects++
		if reconnects > 5 {
			t.Fatalf("too many reconnects: %v", err)
		}
		off, _, rerr := w.Reconnect(ctx)
		if rerr != nil {
			t.Fatal(rerr)
		}
		i = from(off)
	}
	if reconnects == 0 {
		t.Fatal("the broken backend was never noticed")
	}
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	if off, _ := w.Applied(); off != end {
		t.Fatalf("applied %d, want %d", off, end)
	}
	for key, cnt := range want {
		var v int
		do(t, p.cli[p.pick(key)], &v, "GET", key)
		if v != cnt {
			t.Errorf("%s = %d, want %d", key, v, cnt)
		}
	}
}

// BenchmarkTwemproxyApply forwards SET commands over 3 backends' ordered pipelines (each
// command a skip on the other two), plain and in checkpointed batches; the timed part includes
// the wait for the last reply.
func BenchmarkTwemproxyApply(b *testing.B) {
	b.Run("plain", func(b *testing.B) {
		p := startPool(b, 3, "fnv1a_64", "ketama")
		benchTwemproxyApply(b, newTwemproxy(b, p, "fnv1a_64", "ketama"))
	})
	b.Run("checkpointed", func(b *testing.B) {
		p := startPool(b, 3, "fnv1a_64", "ketama")
		benchTwemproxyApply(b, newCheckpointedTwemproxy(b, p))
	})
}

func benchTwemproxyApply(b *testing.B, w *Twemproxy) {
	ctx := context.Background()
	if err := w.StartOplog(ctx, 0, 0); err != nil {
		b.Fatal(err)
	}
	val := []byte(strings.Repeat("v", 100))
	var cmd aof.Command
	var key []byte
	args := make([][]byte, 3)
	set := []byte("SET")
	var end int64
	b.ReportAllocs()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		key = strconv.AppendInt(append(key[:0], "key:"...), int64(i), 10)
		args[0], args[1], args[2] = set, key, val
		cmd.Raw = aof.AppendCommand(cmd.Raw[:0], args...)
		cmd.Args, cmd.N = args, int64(len(cmd.Raw))
		end += cmd.N
		if err := w.Apply(&cmd, end); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.WaitOplog(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
	if off, _ := w.Applied(); off != end {
		b.Fatalf("applied %d, want %d", off, end)
	}
}

// TestTwemproxyBusyResent: commands a backend refuses for now (BUSY, a script running past
// busy-reply-threshold) are resent until it takes them, none lost and none run twice, while the
// other backends go on answering.
func TestTwemproxyBusyResent(t *testing.T) {
	p := startPool(t, 2, "fnv1a_64", "ketama")
	w := newTwemproxy(t, p, "fnv1a_64", "ketama")
	ctx := context.Background()
	if err := w.StartOplog(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	keys := distinctKeys(p, "busy", 2)
	busy := p.pick(keys[0])
	do(t, p.cli[busy], nil, "CONFIG", "SET", "busy-reply-threshold", "20")
	// A script that keeps the backend busy for a second, then ends by itself.
	script := `local t0 = redis.call('TIME')
while true do
  local t = redis.call('TIME')
  if (t[1] - t0[1]) * 1000000 + (t[2] - t0[2]) > 1000000 then return 1 end
end`
	done := make(chan error, 1)
	go func() {
		c, err := radix.Dialer{}.Dial(ctx, "tcp", p.servers[busy].Addr)
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		done <- c.Do(ctx, radix.Cmd(nil, "EVAL", script, "0"))
	}()
	probe, err := radix.Dialer{}.Dial(ctx, "tcp", p.servers[busy].Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	if err := redistest.Poll(5*time.Second, func() error {
		if err := probe.Do(ctx, radix.Cmd(nil, "PING")); err == nil || !strings.Contains(err.Error(), "BUSY") {
			return errors.New("the backend is not busy yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	const n = 50
	var end int64
	for i := range n {
		for _, k := range keys {
			cmd := rawCmd("INCR", k)
			end += cmd.N
			if err := w.Apply(cmd, end); err != nil {
				t.Fatalf("apply %d: %v", i, err)
			}
		}
	}
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("script: %v", err)
	}
	if off, _ := w.Applied(); off != end {
		t.Fatalf("applied %d, want %d", off, end)
	}
	for _, k := range keys {
		var v int
		do(t, p.cli[p.pick(k)], &v, "GET", k)
		if v != n {
			t.Errorf("%s = %d, want %d", k, v, n)
		}
	}
	if st := w.Stats(); st.Retried == 0 || len(st.Errors) != 0 {
		t.Errorf("retried %d, errors %v: the refusals were not seen, or cost errors", st.Retried, st.Errors)
	}
}
