package target

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/rdb"
)

// fillSource writes keys of every type and encoding into db.
func fillSource(t *testing.T, c radix.Client, db int) {
	t.Helper()
	ctx := context.Background()
	p := radix.NewPipeline()
	p.Append(radix.Cmd(nil, "SELECT", strconv.Itoa(db)))
	p.Append(radix.Cmd(nil, "SET", "str", "value"))
	p.Append(radix.Cmd(nil, "SET", "int", "123456"))
	p.Append(radix.Cmd(nil, "SET", "long", strings.Repeat("abc", 1000)))
	p.Append(radix.Cmd(nil, "SET", "bin\x00key\xff", "bin\x00value"))
	p.Append(radix.Cmd(nil, "RPUSH", "list", "a", "b", "1", "2"))
	p.Append(radix.Cmd(nil, "SADD", "intset", "1", "2", "300000", "-5"))
	p.Append(radix.Cmd(nil, "SADD", "set", "x", "y", "z"))
	p.Append(radix.Cmd(nil, "HSET", "hash", "f1", "v1", "f2", "2"))
	p.Append(radix.Cmd(nil, "ZADD", "zset", "1.5", "a", "-2", "b", "1e300", "c"))
	p.Append(radix.Cmd(nil, "XADD", "stream", "1-1", "f", "v"))
	p.Append(radix.Cmd(nil, "XADD", "stream", "2-1", "f", "w", "g", "x"))
	p.Append(radix.Cmd(nil, "XADD", "stream", "3-0", "f", "gone"))
	p.Append(radix.Cmd(nil, "XDEL", "stream", "3-0"))
	p.Append(radix.Cmd(nil, "XGROUP", "CREATE", "stream", "grp", "1-1"))
	p.Append(radix.Cmd(nil, "XGROUP", "CREATECONSUMER", "stream", "grp", "alice"))
	exp := strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)
	p.Append(radix.Cmd(nil, "PEXPIREAT", "hash", exp))
	p.Append(radix.Cmd(nil, "PEXPIREAT", "long", exp))
	for i := range 1000 {
		s := strconv.Itoa(i)
		p.Append(radix.Cmd(nil, "RPUSH", "biglist", "elem-"+s))
		p.Append(radix.Cmd(nil, "SADD", "bigset", "member-"+s))
		p.Append(radix.Cmd(nil, "HSET", "bighash", "field-"+s, "value-"+s))
		p.Append(radix.Cmd(nil, "ZADD", "bigzset", strconv.Itoa(i*7%13), "m-"+s))
	}
	if err := c.Do(ctx, p); err != nil {
		t.Fatal(err)
	}
}

// entryFromDump turns a DUMP payload into the rdb.Entry a decoder would give.
func entryFromDump(t *testing.T, e *rdb.Entry, db int, key string, payload []byte) {
	t.Helper()
	if len(payload) < 11 {
		t.Fatalf("DUMP %q: %d bytes", key, len(payload))
	}
	body := payload[:len(payload)-8]
	*e = rdb.Entry{Kind: rdb.KindKey, DB: db, Key: append(e.Key[:0], key...), Type: payload[0],
		Value: append(e.Value[:0], body[1:len(body)-2]...), Idle: -1, Freq: -1}
	e.ValueLen = int64(len(e.Value))
	if v := binary.LittleEndian.Uint16(body[len(body)-2:]); v != 10 {
		t.Fatalf("DUMP version %d, want 10", v)
	}
}

// readBack returns every key of db with its whole value, in a comparable text form.
func readBack(t *testing.T, addr string, db int) map[string]string {
	t.Helper()
	ctx := context.Background()
	c, err := radix.Dialer{SelectDB: strconv.Itoa(db)}.Dial(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var keys []string
	if err := c.Do(ctx, radix.Cmd(&keys, "KEYS", "*")); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string)
	for _, k := range keys {
		var typ string
		if err := c.Do(ctx, radix.Cmd(&typ, "TYPE", k)); err != nil {
			t.Fatal(err)
		}
		var vals []string
		var cmd radix.Action
		switch typ {
		case "string":
			var s string
			if err := c.Do(ctx, radix.Cmd(&s, "GET", k)); err != nil {
				t.Fatal(err)
			}
			vals = []string{s}
		case "list":
			cmd = radix.Cmd(&vals, "LRANGE", k, "0", "-1")
		case "set":
			cmd = radix.Cmd(&vals, "SMEMBERS", k)
		case "zset":
			cmd = radix.Cmd(&vals, "ZRANGE", k, "0", "-1", "WITHSCORES")
		case "hash":
			cmd = radix.Cmd(&vals, "HGETALL", k)
		case "stream":
			var v any
			if err := c.Do(ctx, radix.Cmd(&v, "XRANGE", k, "-", "+")); err != nil {
				t.Fatal(err)
			}
			var g any
			if err := c.Do(ctx, radix.Cmd(&g, "XINFO", "GROUPS", k)); err != nil {
				t.Fatal(err)
			}
			var info []any
			if err := c.Do(ctx, radix.Cmd(&info, "XINFO", "STREAM", k)); err != nil {
				t.Fatal(err)
			}
			vals = []string{fmt.Sprint(v), fmt.Sprint(g)}
			for i := 0; i+1 < len(info); i += 2 {
				switch fmt.Sprint(info[i]) {
				case "length", "last-generated-id", "max-deleted-entry-id", "entries-added", "groups":
					vals = append(vals, fmt.Sprint(info[i], "=", info[i+1]))
				}
			}
		default:
			t.Fatalf("key %q of type %s", k, typ)
		}
		if cmd != nil {
			if err := c.Do(ctx, cmd); err != nil {
				t.Fatal(err)
			}
		}
		if typ == "hash" {
			var pairs []string
			for i := 0; i+1 < len(vals); i += 2 {
				pairs = append(pairs, vals[i]+"="+vals[i+1])
			}
			vals = pairs
		}
		if typ == "set" || typ == "hash" {
			slices.Sort(vals) // order is not part of the value
		}
		var pexp int64
		if err := c.Do(ctx, radix.Cmd(&pexp, "PEXPIRETIME", k)); err != nil {
			t.Fatal(err)
		}
		if pexp != -1 {
			vals = append(vals, "pexpiretime="+strconv.FormatInt(pexp, 10))
		}
		out[k] = typ + ":" + strings.Join(vals, "\x01")
	}
	return out
}

func newSingle(t *testing.T, addr string, o SingleOptions) *Single {
	t.Helper()
	o.Conn.Addr = addr
	if o.SourceRDBVersion == 0 {
		o.SourceRDBVersion = 10
	}
	s, err := NewSingle(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRestoreRoundTrip(t *testing.T) {
	src := startRedis(t)
	sc := client(t, src.Addr)
	dbs := []int{0, 5, 1}
	for _, db := range dbs {
		fillSource(t, sc, db)
	}
	for _, tc := range []struct {
		name    string
		opts    SingleOptions
		rewrite bool
	}{
		{"restore", SingleOptions{Conns: 3, Conn: Options{Window: 4, WindowBytes: 4096}}, false},
		{"rewrite", SingleOptions{Conns: 2, BigKeyBytes: 1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) { roundTrip(t, src, dbs, tc.opts, tc.rewrite) })
	}
}

func roundTrip(t *testing.T, src *redistest.Redis, dbs []int, o SingleOptions, rewrite bool) {
	dst := startRedis(t)
	w := newSingle(t, dst.Addr, o)
	if si := w.Info(); si.RDBVersion != 10 || !si.AbsTTL || !si.Functions {
		t.Fatalf("target info %+v", si)
	}
	ctx := context.Background()
	var e rdb.Entry // reused, as a decoder would
	n := 0
	for _, db := range dbs {
		c, err := radix.Dialer{SelectDB: strconv.Itoa(db)}.Dial(ctx, "tcp", src.Addr)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		if err := c.Do(ctx, radix.Cmd(&keys, "KEYS", "*")); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			var payload []byte
			if err := c.Do(ctx, radix.Cmd(&payload, "DUMP", k)); err != nil {
				t.Fatal(err)
			}
			entryFromDump(t, &e, db, k, payload)
			var pexp int64
			if err := c.Do(ctx, radix.Cmd(&pexp, "PEXPIRETIME", k)); err != nil {
				t.Fatal(err)
			}
			if pexp > 0 {
				e.ExpireMs = pexp
			}
			if err := w.Restore(&e); err != nil {
				t.Fatalf("Restore %q: %v", k, err)
			}
			for i := range e.Value { // the decoder reuses its buffers
				e.Value[i] = 0xee
			}
			copy(e.Key, "XXXXXXXXXXXXXXXXXXXXX")
			n++
		}
		c.Close()
	}
	if err := w.WaitRDB(ctx); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	restored := st.Restored
	if rewrite {
		restored = st.Rewritten
	}
	if restored != uint64(n) || len(st.Errors) != 0 {
		t.Fatalf("restored %d of %d, errors %v (%s)", restored, n, st.Errors, st.LastError)
	}
	if !rewrite {
		// Strings without expiry (str, int, bin\x00key\xff) go as one MSET per db, the rest as
		// a RESTORE each.
		msets, restores := commandCalls(t, dst.Addr, "mset"), commandCalls(t, dst.Addr, "restore")
		if msets != len(dbs) || restores != n-3*len(dbs) {
			t.Errorf("%d MSET and %d RESTORE for %d keys in %d dbs", msets, restores, n, len(dbs))
		}
	}
	for _, db := range dbs {
		want, got := readBack(t, src.Addr, db), readBack(t, dst.Addr, db)
		if len(want) != 14 {
			t.Fatalf("db %d: source has %d keys", db, len(want))
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("db %d key %q: got %.300q, want %.300q", db, k, got[k], v)
			}
		}
		if len(got) != len(want) {
			t.Errorf("db %d: %d keys, want %d", db, len(got), len(want))
		}
	}
}

// commandCalls returns how many times the server at addr ran cmd (INFO commandstats).
func commandCalls(t *testing.T, addr, cmd string) int {
	t.Helper()
	var info string
	do(t, client(t, addr), &info, "INFO", "commandstats")
	for line := range strings.Lines(info) {
		rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":calls=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
		if err != nil {
			t.Fatalf("INFO commandstats: %q: %v", line, err)
		}
		return n
	}
	return 0
}

// stringEntry builds an entry for a short string value (RDB string encoding: 6-bit length).
func stringEntry(db int, key, val string, expireMs int64) *rdb.Entry {
	v := append([]byte{byte(len(val))}, val...)
	return &rdb.Entry{Kind: rdb.KindKey, DB: db, Key: []byte(key), Type: rdb.TypeString, ExpireMs: expireMs,
		Value: v, ValueLen: int64(len(v)), Idle: -1, Freq: -1}
}

// Strings over strBatchValueMax go as RESTORE, not into an MSET batch.
func TestRestoreBigStringNotBatched(t *testing.T) {
	dst := startRedis(t)
	w := newSingle(t, dst.Addr, SingleOptions{Conns: 1})
	big := strings.Repeat("x", strBatchValueMax+1)
	raw := append([]byte{0x40 | byte(len(big)>>8), byte(len(big))}, big...) // 14-bit length
	e := &rdb.Entry{Kind: rdb.KindKey, Key: []byte("big"), Type: rdb.TypeString, Value: raw,
		ValueLen: int64(len(raw)), Idle: -1, Freq: -1}
	for _, e := range []*rdb.Entry{e, stringEntry(0, "small", "v", 0)} {
		if err := w.Restore(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WaitRDB(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r, m := commandCalls(t, dst.Addr, "restore"), commandCalls(t, dst.Addr, "mset"); r != 1 || m != 1 {
		t.Fatalf("%d RESTORE and %d MSET, want 1 and 1", r, m)
	}
	if got := readBack(t, dst.Addr, 0); got["big"] != "string:"+big || got["small"] != "string:v" {
		t.Fatalf("db 0: %.80v", got)
	}
}

func TestRestoreExpiry(t *testing.T) {
	dst := startRedis(t)
	w := newSingle(t, dst.Addr, SingleOptions{})
	now := time.Now().UnixMilli()
	future := now + 3600_000
	for _, e := range []*rdb.Entry{
		stringEntry(0, "past", "v", now-1000),
		stringEntry(0, "future", "v", future),
		stringEntry(0, "none", "v", 0),
	} {
		if err := w.Restore(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WaitRDB(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st.Expired != 1 || st.Skipped[SkipExpired] != 1 || st.Restored != 2 {
		t.Fatalf("stats %+v", st)
	}
	c := client(t, dst.Addr)
	tests := []struct {
		key  string
		want int64
	}{{"past", -2}, {"future", future}, {"none", -1}}
	for _, tc := range tests {
		var got int64
		do(t, c, &got, "PEXPIRETIME", tc.key)
		if got != tc.want && (tc.want < 0 || got < tc.want-2000 || got > tc.want+2000) {
			t.Errorf("%s: PEXPIRETIME %d, want %d", tc.key, got, tc.want)
		}
	}
}

// TestRestoreOldTargetShape sends what a target older than 5.0 gets (RESTORE key 0 payload
// REPLACE, then PEXPIREAT) and, older than 3.0, no REPLACE; a 7.0 server takes both forms.
func TestRestoreOldTargetShape(t *testing.T) {
	dst := startRedis(t)
	ctx := context.Background()
	future := time.Now().Add(time.Hour).UnixMilli()
	for _, tc := range []struct {
		name    string
		replace bool
	}{{"4.0", true}, {"2.8", false}} {
		w := newSingle(t, dst.Addr, SingleOptions{Conns: 1})
		w.info.AbsTTL, w.info.Replace = false, tc.replace
		for _, e := range []*rdb.Entry{stringEntry(0, tc.name+"-ttl", "v", future), stringEntry(0, tc.name+"-none", "v", 0)} {
			if err := w.Restore(e); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.WaitRDB(ctx); err != nil {
			t.Fatal(err)
		}
		if st := w.Stats(); st.Restored != 2 || len(st.Errors) != 0 {
			t.Fatalf("%s: %+v", tc.name, st)
		}
	}
	got := readBack(t, dst.Addr, 0)
	exp := "string:v\x01pexpiretime=" + strconv.FormatInt(future, 10)
	if got["4.0-ttl"] != exp || got["2.8-ttl"] != exp || got["4.0-none"] != "string:v" || got["2.8-none"] != "string:v" {
		t.Fatalf("got %q", got)
	}
}

func TestRestoreNeedsRewrite(t *testing.T) {
	dst := startRedis(t)
	newer := newSingle(t, dst.Addr, SingleOptions{SourceRDBVersion: 11})
	same := newSingle(t, dst.Addr, SingleOptions{BigKeyBytes: 10})
	held := stringEntry(0, "nil", "held-elsewhere", 0)
	raw := held.Value
	held.Value = nil
	// Keys RESTORE cannot carry but whose bytes are held are rewritten by Restore itself.
	if err := newer.Restore(stringEntry(0, "newer", "v", 0)); err != nil {
		t.Fatal(err)
	}
	if err := same.Restore(stringEntry(0, "big", strings.Repeat("x", 20), 0)); err != nil {
		t.Fatal(err)
	}
	if err := same.Restore(held); !errors.Is(err, ErrNeedsRewrite) {
		t.Fatalf("value not held: %v, want ErrNeedsRewrite", err)
	}
	if err := same.Rewrite(held, bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	if err := same.Restore(stringEntry(0, "small", "v", 0)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, w := range []*Single{newer, same} {
		if err := w.WaitRDB(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A string not held goes as one RESTORE read from its reader, whatever BigKeyBytes says
	// (SET would keep the target as busy); a held one over BigKeyBytes as commands.
	if a, b := newer.Stats(), same.Stats(); a.Rewritten != 1 || b.Rewritten != 1 || b.Restored != 2 || b.RestoresFromFile != 1 {
		t.Fatalf("rewritten %d and %d, restored %d (%d from a reader)", a.Rewritten, b.Rewritten, b.Restored, b.RestoresFromFile)
	}
	got := readBack(t, dst.Addr, 0)
	want := map[string]string{"newer": "string:v", "big": "string:" + strings.Repeat("x", 20),
		"nil": "string:held-elsewhere", "small": "string:v"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestRestoreErrorCounted(t *testing.T) {
	dst := startRedis(t)
	core, logs := observer.New(zap.WarnLevel)
	w := newSingle(t, dst.Addr, SingleOptions{Conns: 1, Logger: zap.New(core)})
	bad := stringEntry(2, "bad\x00key", "v", 0)
	bad.Value = []byte{0xff, 0xff, 0xff}
	for _, e := range []*rdb.Entry{stringEntry(2, "a", "1", 0), bad, stringEntry(2, "b", "2", 0)} {
		if err := w.Restore(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WaitRDB(context.Background()); err != nil {
		t.Fatalf("WaitRDB: %v", err)
	}
	st := w.Stats()
	if st.Errors["ERR"] != 1 || st.Restored != 2 || !strings.Contains(st.LastError, "Bad data format") {
		t.Fatalf("stats %+v", st)
	}
	got := readBack(t, dst.Addr, 2)
	if len(got) != 2 || got["a"] != "string:1" || got["b"] != "string:2" {
		t.Fatalf("db 2: %v", got)
	}
	errLogs := logs.FilterMessage("target error").All()
	if len(errLogs) != 1 || errLogs[0].ContextMap()["key"] != `"bad\x00key"` || errLogs[0].ContextMap()["reason"] != "ERR" {
		t.Fatalf("logs %+v", logs.All())
	}
}

func TestRestoreFunction(t *testing.T) {
	dst := startRedis(t)
	w := newSingle(t, dst.Addr, SingleOptions{})
	code := "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return 42 end)"
	if err := w.Restore(&rdb.Entry{Kind: rdb.KindFunction, Value: []byte(code)}); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitRDB(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got int
	do(t, client(t, dst.Addr), &got, "FCALL", "myfunc", "0")
	if got != 42 || w.Stats().Functions != 1 {
		t.Fatalf("FCALL %d, functions %d", got, w.Stats().Functions)
	}
}

// rawCmd builds an aof.Command as the stream reader would.
func rawCmd(args ...string) *aof.Command {
	raw := aof.AppendCommandString(nil, args...)
	cmd := &aof.Command{Raw: raw, N: int64(len(raw))}
	for _, a := range args {
		cmd.Args = append(cmd.Args, []byte(a))
	}
	return cmd
}

func TestApplyStream(t *testing.T) {
	dst := startRedis(t)
	w := newSingle(t, dst.Addr, SingleOptions{Conn: Options{Window: 4}})
	ctx := context.Background()
	stream := [][]string{
		{"SELECT", "0"},
		{"SET", "a", "1"},
		{"PING"},
		{"select", "3"},
		{"MULTI"},
		{"INCR", "c"},
		{"incrby", "c", "10"},
		{"EXEC"},
		{"REPLCONF", "GETACK", "*"},
		{"PUBLISH", "ch", "msg"},
		{"SET", "bin\x00key", "v"},
		{"LPUSH", "a", "x"}, // db 3's own "a"
		{"SET", "c", "x"},
		{"INCR", "c"}, // ERR not an integer: counted, stream goes on
		{"SELECT", "7"},
		{"PING"},
	}
	var end int64
	for _, args := range stream {
		cmd := rawCmd(args...)
		end += cmd.N
		if err := w.Apply(cmd, end); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	if off, db := w.Applied(); off != end || db != 7 {
		t.Fatalf("Applied() = %d, %d; want %d, 7", off, db, end)
	}
	st := w.Stats()
	if st.Skipped[SkipControl] != 3 || st.Skipped[SkipPubSub] != 1 || st.Errors["ERR"] != 1 || len(st.Errors) != 1 {
		t.Fatalf("stats %+v", st)
	}
	db0, db3 := readBack(t, dst.Addr, 0), readBack(t, dst.Addr, 3)
	if len(db0) != 1 || db0["a"] != "string:1" {
		t.Errorf("db 0: %v", db0)
	}
	if len(db3) != 3 || db3["c"] != "string:x" || db3["bin\x00key"] != "string:v" || db3["a"] != "list:x" {
		t.Errorf("db 3: %v", db3)
	}
}

func TestApplyOffsetWaitsForReplies(t *testing.T) {
	dst := startRedis(t, "--enable-debug-command", "yes")
	w := newSingle(t, dst.Addr, SingleOptions{})
	ctx := context.Background()
	if err := w.StartOplog(ctx, 100, 2); err != nil {
		t.Fatal(err)
	}
	if off, db := w.Applied(); off != 100 || db != 2 {
		t.Fatalf("start: %d %d", off, db)
	}
	sleep := rawCmd("DEBUG", "SLEEP", "1")
	if err := w.Apply(sleep, 100+sleep.N); err != nil {
		t.Fatal(err)
	}
	ping := rawCmd("PING")
	if err := w.Apply(ping, 100+sleep.N+ping.N); err != nil {
		t.Fatal(err)
	}
	if off, _ := w.Applied(); off != 100 {
		t.Fatalf("applied %d before DEBUG SLEEP's reply, want 100", off)
	}
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	if off, db := w.Applied(); off != 100+sleep.N+ping.N || db != 2 {
		t.Fatalf("applied %d %d, want %d 2", off, db, 100+sleep.N+ping.N)
	}
}

func TestApplyReconnect(t *testing.T) {
	dst := startRedis(t)
	w := newSingle(t, dst.Addr, SingleOptions{})
	ctx := context.Background()
	var end int64
	apply := func(args ...string) error {
		cmd := rawCmd(args...)
		end += cmd.N
		return w.Apply(cmd, end)
	}
	for _, args := range [][]string{{"SELECT", "4"}, {"SET", "x", "1"}} {
		if err := apply(args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	wantOff := end
	var killed int
	do(t, client(t, dst.Addr), &killed, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
	// The oplog connection is gone: Apply or the wait after it reports ErrBroken.
	err := redistest.Poll(5*time.Second, func() error {
		if err := apply("SET", "lost", "1"); err != nil {
			return nil
		}
		if err := w.WaitOplog(ctx); err != nil {
			return nil
		}
		return errors.New("oplog connection still works")
	})
	if err != nil {
		t.Fatal(err)
	}
	off, db, err := w.Reconnect(ctx)
	if err != nil || off != wantOff || db != 4 {
		t.Fatalf("Reconnect: %d %d %v, want %d 4", off, db, err, wantOff)
	}
	end = off
	if err := apply("SET", "y", "2"); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	got := readBack(t, dst.Addr, 4)
	if got["x"] != "string:1" || got["y"] != "string:2" {
		t.Fatalf("db 4 after reconnect: %v", got)
	}
	st := w.Stats()
	if oc := st.Conns[len(st.Conns)-1]; oc.Name != "oplog" || oc.Broken || oc.Replies != 1 {
		t.Fatalf("oplog conn after reconnect: %+v", oc)
	}
}

func TestRestoreRetriesBusy(t *testing.T) {
	dst := startRedis(t, "--busy-reply-threshold", "20")
	ctx := context.Background()
	w := newSingle(t, dst.Addr, SingleOptions{Conns: 2})
	// A script that never ends makes the server answer BUSY to everything else.
	busy, err := Dial(ctx, Options{Addr: dst.Addr})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if err := busy.Send(ctx, Tag{}, []byte("EVAL"), []byte("while true do end"), []byte("0")); err != nil {
		t.Fatal(err)
	}
	c := client(t, dst.Addr)
	if err := redistest.Poll(5*time.Second, func() error {
		err := c.Do(ctx, radix.Cmd(nil, "PING"))
		if err == nil {
			return errors.New("not busy yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// n keys with an expiry (a RESTORE each) and one MSET's worth of plain strings.
	const n = 10
	expire := time.Now().Add(time.Hour).UnixMilli()
	for i := range n {
		if err := w.Restore(stringEntry(0, "k"+strconv.Itoa(i), "v", expire)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range strBatchKeys {
		if err := w.Restore(stringEntry(0, "s"+strconv.Itoa(i), "v", 0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := redistest.Poll(5*time.Second, func() error {
		if w.Stats().Retried < n+1 {
			return errors.New("no BUSY replies yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	do(t, c, nil, "SCRIPT", "KILL")
	if err := w.WaitRDB(ctx); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st.Restored != n+strBatchKeys || len(st.Errors) != 0 {
		t.Fatalf("restored %d, errors %v (%s)", st.Restored, st.Errors, st.LastError)
	}
	if got := readBack(t, dst.Addr, 0); len(got) != n+strBatchKeys {
		t.Fatalf("%d keys, want %d", len(got), n+strBatchKeys)
	}
}

func TestApplyRefusedResends(t *testing.T) {
	dst := startRedis(t, "--busy-reply-threshold", "20")
	ctx := context.Background()
	w := newSingle(t, dst.Addr, SingleOptions{})
	if err := w.StartOplog(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	busy, err := Dial(ctx, Options{Addr: dst.Addr})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if err := busy.Send(ctx, Tag{}, []byte("EVAL"), []byte("while true do end"), []byte("0")); err != nil {
		t.Fatal(err)
	}
	c := client(t, dst.Addr)
	if err := redistest.Poll(5*time.Second, func() error {
		if c.Do(ctx, radix.Cmd(nil, "PING")) == nil {
			return errors.New("not busy yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	stream := []*aof.Command{rawCmd("SELECT", "6"), rawCmd("SET", "a", "1"), rawCmd("INCR", "n")}
	apply := func(from int64) error {
		var end int64
		for _, cmd := range stream {
			end += cmd.N
			if end <= from {
				continue
			}
			if err := w.Apply(cmd, end); err != nil {
				return err
			}
		}
		return w.WaitOplog(ctx)
	}
	if err := apply(0); err != nil {
		t.Fatal(err)
	}
	if err := w.Apply(rawCmd("SET", "late", "1"), 1000); !errors.Is(err, ErrRetry) {
		t.Fatalf("Apply after BUSY: %v, want ErrRetry", err)
	}
	if off, db := w.Applied(); off != 0 || db != 0 {
		t.Fatalf("applied %d %d after refusal, want 0 0", off, db)
	}
	do(t, c, nil, "SCRIPT", "KILL")
	off, db, err := w.Reconnect(ctx)
	if err != nil || off != 0 || db != 0 {
		t.Fatalf("Reconnect: %d %d %v", off, db, err)
	}
	if err := apply(off); err != nil {
		t.Fatal(err)
	}
	got := readBack(t, dst.Addr, 6)
	if got["a"] != "string:1" || got["n"] != "string:1" {
		t.Fatalf("db 6: %v", got)
	}
	if st := w.Stats(); st.Errors["retry_BUSY"] != 1 || st.Errors[ReasonAfterRefusal] != 0 {
		t.Fatalf("errors %v", st.Errors)
	}
}
