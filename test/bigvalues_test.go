package test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/rdb"
)

// respGen generates one big RESP command without holding it: `SADD key member:0 ...` with n
// members, or `SET key <size bytes>`.
type respGen struct {
	pending []byte
	buf     []byte
	tmp     []byte
	members int // members left to generate
	next    int
	size    int64 // value bytes left
	tail    bool  // the value's CRLF is due
}

func genSadd(key string, n int) *respGen {
	g := &respGen{members: n}
	g.pending = fmt.Appendf(nil, "*%d\r\n$4\r\nSADD\r\n$%d\r\n%s\r\n", n+2, len(key), key)
	return g
}

func genSet(key string, size int64) *respGen {
	g := &respGen{size: size, tail: true}
	g.pending = fmt.Appendf(nil, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n", len(key), key, size)
	return g
}

func (g *respGen) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		switch {
		case len(g.pending) > 0:
			k := copy(p[n:], g.pending)
			g.pending = g.pending[k:]
			n += k
		case g.members > 0:
			g.tmp = strconv.AppendInt(append(g.tmp[:0], "member:"...), int64(g.next), 10)
			g.buf = strconv.AppendInt(append(g.buf[:0], '$'), int64(len(g.tmp)), 10)
			g.buf = append(append(append(g.buf, '\r', '\n'), g.tmp...), '\r', '\n')
			g.pending = g.buf
			g.next++
			g.members--
		case g.size > 0:
			k := int(min(int64(len(p)-n), g.size))
			for i := range k {
				p[n+i] = 'a' + byte((g.size-int64(i))%23)
			}
			g.size -= int64(k)
			n += k
		case g.tail:
			g.tail = false
			g.pending = []byte("\r\n")
		default:
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		}
	}
	return n, nil
}

// sendBig writes the command gen makes to the server at addr on a raw connection, in pieces as
// they are generated, and returns its reply line.
func sendBig(t *testing.T, addr string, gen io.Reader) string {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(2 * time.Minute))
	if _, err := io.CopyBuffer(nc, gen, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line)
}

// vmHWM is the peak resident set size of process pid, in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// bigSource is a master that takes commands of any size and keeps a replica through them.
func bigSource(t *testing.T) *redistest.Redis {
	return redistest.StartRedis(t, redistest.WithFlags("--proto-max-bulk-len", "1gb",
		"--client-output-buffer-limit", "replica 1gb 1gb 0", "--enable-debug-command", "local"))
}

// withDebug lets DEBUG DIGEST-VALUE run (from a local connection).
var withDebug = redistest.WithFlags("--enable-debug-command", "local")

// digest is DEBUG DIGEST-VALUE of key on r.
func digest(t *testing.T, r *redistest.Redis, key string) string {
	t.Helper()
	v := r.Do(t, "DEBUG", "DIGEST-VALUE", key).([]interface{})
	return fmt.Sprint(v...)
}

const (
	bigSaddMembers = 1_100_000
	bigSetBytes    = 300 << 20
)

// writeBigCommands writes, on the source, a 1,100,000-member SADD, a 300 MB SET, then a small
// write, with a client that holds none of them.
func writeBigCommands(t *testing.T, src *redistest.Redis) {
	t.Helper()
	if r := sendBig(t, src.Addr, genSadd("bigset", bigSaddMembers)); r != ":"+strconv.Itoa(bigSaddMembers) {
		t.Fatalf("SADD: %s", r)
	}
	if r := sendBig(t, src.Addr, genSet("bigstr", bigSetBytes)); r != "+OK" {
		t.Fatalf("SET: %s", r)
	}
	src.Do(t, "SET", "after", "1")
}

// checkBigCommands compares the keys writeBigCommands wrote on the source and the target (for
// a cluster, the node of each key).
func checkBigCommands(t *testing.T, src *redistest.Redis, dst func(key string) *redistest.Redis) {
	t.Helper()
	if n := dst("bigset").Do(t, "SCARD", "bigset"); n != int64(bigSaddMembers) {
		t.Fatalf("SCARD on the target: %v", n)
	}
	if n := dst("bigstr").Do(t, "STRLEN", "bigstr"); n != int64(bigSetBytes) {
		t.Fatalf("STRLEN on the target: %v", n)
	}
	for _, k := range []string{"bigset", "bigstr", "after"} {
		if a, b := digest(t, src, k), digest(t, dst(k), k); a != b {
			t.Fatalf("%s: digest %s on the source, %s on the target", k, a, b)
		}
	}
}

// TestBigCommandsLive: on a live migration, a 1,100,000-member SADD (more arguments than the
// plain reader's cap), a 300 MB SET and a normal write after them all arrive on the target, and
// rmtd (the binary, a process of its own) stays under 100 MB of peak RSS all along; on a single
// target (checkpointed batches) and on a cluster (the SADD's chunks on its key's node).
func TestBigCommandsLive(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 330 MB through a live migration")
	}
	for _, kind := range []string{"single", "redis cluster"} {
		t.Run(strings.ReplaceAll(kind, " ", "_"), func(t *testing.T) {
			src := bigSource(t)
			src.Do(t, "SET", "before", "1")
			var servers []string
			var nodeOf func(key string) *redistest.Redis
			if kind == "single" {
				dst := redistest.StartRedis(t, withDebug)
				servers, nodeOf = []string{dst.Addr}, func(string) *redistest.Redis { return dst }
			} else {
				cl := redistest.StartCluster(t, 3, withDebug)
				servers, nodeOf = cl.Addrs[:1], func(k string) *redistest.Redis { return cl.NodeForKey(t, k) }
			}
			dir := t.TempDir()
			admin := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
			writeConfig(t, dir, fmt.Sprintf("source:\n  type: single\n  servers: [%s]\ntarget:\n  type: %s\n  servers: [%s]\n"+
				"common:\n  listen: %s\n  dir: %s\n", src.Addr, kind, strings.Join(servers, ", "), admin, filepath.Join(dir, "data")))
			p := startRmtdProcess(t, dir)
			r := &Rmtd{Admin: admin}
			waitPhase(t, r, "oplog", 60*time.Second)

			start := time.Now()
			writeBigCommands(t, src)
			waitCaughtUp(t, r, src, 3*time.Minute)
			took := time.Since(start)
			hwm := vmHWM(t, p.cmd.Process.Pid)
			checkBigCommands(t, src, nodeOf)
			m := r.Info(t)
			t.Logf("%s target: written and applied in %s; rmtd peak RSS %.1f MB; INFO errors: %s",
				kind, took.Round(time.Millisecond), float64(hwm)/(1<<20), errorFields(m))
			if hwm > 100<<20 {
				t.Fatalf("rmtd's peak RSS %.1f MB, over 100 MB", float64(hwm)/(1<<20))
			}
			if e := errorFields(m); e != "" {
				t.Fatalf("INFO counts errors: %s", e)
			}
			// The SADD goes in chunks, the SET whole from the spool.
			if m["big_commands_chunked"] != "1" || m["big_commands_streamed"] != "1" || atoi(t, m["big_command_chunks"]) < 2 {
				t.Errorf("INFO big_commands_chunked=%s big_commands_streamed=%s big_command_chunks=%s, want 1, 1 and several",
					m["big_commands_chunked"], m["big_commands_streamed"], m["big_command_chunks"])
			}
		})
	}
}

// errorFields lists INFO's errors_* fields that are not zero.
func errorFields(m map[string]string) string {
	var out []string
	for k, v := range m {
		if strings.HasPrefix(k, "errors_") && v != "0" {
			out = append(out, k+"="+v)
		}
	}
	return strings.Join(out, ",")
}

// bigKeysRDB writes an RDB file holding a zset of zsetMembers members, a hash of hashFields
// fields and a small string (rdb.Encoder: a source loads it at start far faster than it builds
// such keys from commands).
func bigKeysRDB(t *testing.T, zsetMembers, hashFields int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "big.rdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc := rdb.NewEncoder(f, 10)
	enc.WriteHeader()
	enc.SelectDB(0)
	z := make([]rdb.ZMember, zsetMembers)
	for i := range z {
		z[i] = rdb.ZMember{Member: []byte("member:" + strconv.Itoa(i)), Score: float64(i) * 0.5}
	}
	enc.WriteEntry([]byte("bigzset"), &rdb.Value{ZSet: z}, 0)
	z = nil
	h := make([]rdb.HashField, hashFields)
	for i := range h {
		h[i] = rdb.HashField{Field: []byte("field:" + strconv.Itoa(i)), Value: []byte("value-" + strconv.Itoa(i%9973))}
	}
	enc.WriteEntry([]byte("bighash"), &rdb.Value{Hash: h}, 0)
	enc.WriteEntry([]byte("small"), &rdb.Value{String: []byte("1")}, 0)
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// dumpLen is the length of key's DUMP payload on r.
func dumpLen(t *testing.T, r *redistest.Redis, key string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var b []byte
	if err := r.Client(t).Do(ctx, radix.Cmd(&b, "DUMP", key)); err != nil {
		t.Fatalf("redis %s: DUMP %s: %v", r.Addr, key, err)
	}
	return len(b)
}

// longDigest is digest for a big key: DEBUG DIGEST-VALUE of millions of elements takes seconds.
func longDigest(t *testing.T, r *redistest.Redis, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var v []string
	if err := r.Client(t).Do(ctx, radix.Cmd(&v, "DEBUG", "DIGEST-VALUE", key)); err != nil {
		t.Fatalf("redis %s: DEBUG DIGEST-VALUE %s: %v", r.Addr, key, err)
	}
	return strings.Join(v, " ")
}

// snapshotRun is what one migration of the big keys measured.
type snapshotRun struct {
	load    time.Duration // rmtd's start to the end of its RDB load
	peakRSS int64         // rmtd's VmHWM
	maxCmd  int64         // the target's longest command, ms (LATENCY LATEST, threshold 1 ms)
	cmds    string        // the target's command counts and times (INFO commandstats)
}

// migrateBigKeys runs rmtd (the binary) from src into a new target with big_key_bytes bigKey
// (0: the default) until its load is over, compares the big keys, and returns what it measured.
func migrateBigKeys(t *testing.T, src *redistest.Redis, bigKey int64) snapshotRun {
	t.Helper()
	dst := redistest.StartRedis(t, withDebug, redistest.WithFlags("--latency-monitor-threshold", "1"))
	dir := t.TempDir()
	admin := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	extra := ""
	if bigKey > 0 {
		extra = fmt.Sprintf("  big_key_bytes: %d\n", bigKey)
	}
	writeConfig(t, dir, fmt.Sprintf("source:\n  type: single\n  servers: [%s]\ntarget:\n  type: single\n  servers: [%s]\n"+
		"common:\n  listen: %s\n  dir: %s\n%s", src.Addr, dst.Addr, admin, filepath.Join(dir, "data"), extra))
	start := time.Now()
	p := startRmtdProcess(t, dir)
	r := &Rmtd{Admin: admin}
	waitPhase(t, r, "oplog", 5*time.Minute)
	var run snapshotRun
	run.load = time.Since(start)
	run.peakRSS = vmHWM(t, p.cmd.Process.Pid)
	for _, ev := range dst.Do(t, "LATENCY", "LATEST").([]interface{}) {
		if e := ev.([]interface{}); e[0] == "command" {
			run.maxCmd = e[3].(int64)
		}
	}
	stats := redistest.ParseInfo(dst.DoString(t, "INFO", "commandstats"))
	var parts []string
	for _, c := range []string{"restore", "zadd", "hset", "del"} {
		if v, ok := stats["cmdstat_"+c]; ok {
			f := strings.Split(v, ",")
			parts = append(parts, c+":"+f[0]+","+f[1]+","+f[2])
		}
	}
	run.cmds = strings.Join(parts, " ")
	p.kill()
	for _, k := range []string{"bigzset", "bighash", "small"} {
		if a, b := longDigest(t, src, k), longDigest(t, dst, k); a != b {
			t.Fatalf("%s: digest %s on the source, %s on the target", k, a, b)
		}
	}
	return run
}

// TestBigSnapshotValues: a snapshot holding a 3,000,000-member zset and a 2,000,000-field hash
// loads into the target equal to the source (DEBUG DIGEST-VALUE) with rmtd (the binary) at
// most 64 MB of peak RSS, with the default settings (each value one RESTORE copied from the
// snapshot) and with big_key_bytes at 1 GiB; RMT_BIGKEY_MEASURE="bytes,bytes..." measures
// other big_key_bytes the same way (0: the default). About 80 s on 2 shared cores: 5 s to write
// the source's RDB and start it, then per run the load (4-12 s) and the digests of 5 million
// elements on both sides.
func TestBigSnapshotValues(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and moves 5 million elements")
	}
	t0 := time.Now()
	src := redistest.StartRedis(t, withDebug, redistest.WithRDB(bigKeysRDB(t, 3_000_000, 2_000_000)))
	t.Logf("source written and started in %s: zset of %d members (%.1f MB of RESTORE payload), hash of %d fields (%.1f MB)",
		time.Since(t0).Round(time.Millisecond), src.Do(t, "ZCARD", "bigzset"), float64(dumpLen(t, src, "bigzset"))/(1<<20),
		src.Do(t, "HLEN", "bighash"), float64(dumpLen(t, src, "bighash"))/(1<<20))
	sizes := []int64{0, 1 << 30}
	if s := os.Getenv("RMT_BIGKEY_MEASURE"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				t.Fatalf("RMT_BIGKEY_MEASURE: %v", err)
			}
			sizes = append(sizes, n)
		}
	}
	for _, bigKey := range sizes {
		run := migrateBigKeys(t, src, bigKey)
		t.Logf("big_key_bytes %d: loaded in %s, rmtd peak RSS %.1f MB, target's longest command %d ms; %s",
			bigKey, run.load.Round(time.Millisecond), float64(run.peakRSS)/(1<<20), run.maxCmd, run.cmds)
		if run.peakRSS > 64<<20 {
			t.Errorf("big_key_bytes %d: rmtd's peak RSS %.1f MB, over 64 MB", bigKey, float64(run.peakRSS)/(1<<20))
		}
	}
}

// TestAOFSourceBigCommands: an aof file source whose base part ends with a 1,200,000-member
// SADD (more arguments than the plain reader's cap; it is read again after the reader moved to
// the next part) and whose incremental part holds a 300,000-element LPUSH (re-chunked, the
// list's order kept) and a 40 MB SET is applied in full: the target equals what redis-server
// loads from the same files.
func TestAOFSourceBigCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and loads a 70 MB AOF")
	}
	dir := filepath.Join(t.TempDir(), "appendonlydir")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, parts ...io.Reader) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := io.Copy(f, io.MultiReader(parts...)); err != nil {
			t.Fatal(err)
		}
	}
	lpush := []string{"LPUSH", "list"}
	for i := range 300_000 {
		lpush = append(lpush, "e"+strconv.Itoa(i))
	}
	write("appendonly.aof.1.base.aof", strings.NewReader("*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n"), genSadd("bigset", 1_200_000))
	write("appendonly.aof.1.incr.aof", strings.NewReader(string(aof.AppendCommandString(nil, lpush...))),
		genSet("bigstr", 40<<20), strings.NewReader("*3\r\n$3\r\nSET\r\n$5\r\nafter\r\n$1\r\n1\r\n"))
	write("appendonly.aof.manifest", strings.NewReader("file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"))

	dst := redistest.StartRedis(t, withDebug)
	info, _, err := runToEnd(t, fileJob(t, conf.TypeAOFFile, []string{filepath.Join(dir, "appendonly.aof.manifest")}, conf.TypeSingle, dst.Addr), 2*time.Minute)
	if err != nil {
		t.Fatalf("rmtd: %v", err)
	}
	if info["phase"] != "done" || info["total_errors"] != "0" {
		t.Fatalf("INFO phase %q total_errors %q", info["phase"], info["total_errors"])
	}
	// The reference: redis-server loading the same files at start.
	refDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(refDir, "appendonlydir"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"appendonly.aof.1.base.aof", "appendonly.aof.1.incr.aof", "appendonly.aof.manifest"} {
		if err := redistest.CopyFile(filepath.Join(dir, n), filepath.Join(refDir, "appendonlydir", n)); err != nil {
			t.Fatal(err)
		}
	}
	ref := redistest.StartRedis(t, redistest.WithDir(refDir), redistest.WithArgs("appendonly yes"), withDebug)
	for _, k := range []string{"a", "bigset", "list", "bigstr", "after"} {
		if a, b := longDigest(t, ref, k), longDigest(t, dst, k); a != b || a == strings.Repeat("0", 40) {
			t.Fatalf("%s: digest %s loaded by redis-server, %s applied by rmtd", k, a, b)
		}
	}
}

// TestTargetBulkLimit: a target whose proto-max-bulk-len is below a command's argument (1 MB
// against 2 MB, held, and 10 MB, over big_key_bytes: copied whole from the spool) refuses it and
// closes the connection; on a checkpointed single target the refusal is counted and logged with
// its key, the command left out, and the stream goes on: a write made after it arrives (design
// rule 7: no single command stalls the stream).
func TestTargetBulkLimit(t *testing.T) {
	for _, tc := range []struct {
		kind string
		size int
	}{{"single", 2 << 20}, {"single", 10 << 20}, {conf.TypeRedisCluster, 2 << 20}, {conf.TypeRedisCluster, 10 << 20}} {
		size := tc.size
		t.Run(strings.ReplaceAll(tc.kind, " ", "_")+"/"+strconv.Itoa(size>>20)+"MB", func(t *testing.T) {
			src := redistest.StartRedis(t)
			limit := redistest.WithArgs("proto-max-bulk-len 1mb")
			var dst *redistest.Redis
			var cfg *conf.Config
			if tc.kind == "single" {
				dst = redistest.StartRedis(t, limit)
				cfg = singleConfig(t, src, dst)
			} else {
				cl := redistest.StartCluster(t, 3, limit)
				dst = cl.NodeForKey(t, "after")
				cfg = singleConfig(t, src, dst)
				cfg.Target.Type, cfg.Target.Servers = conf.TypeRedisCluster, cl.Addrs[:1]
			}
			r := StartRmtd(t, cfg)
			waitPhase(t, r, "oplog", 30*time.Second)
			src.Do(t, "SET", "too:big", strings.Repeat("x", size))
			src.Do(t, "SET", "after", "1")
			redistest.WaitFor(t, 20*time.Second, func() error {
				if got := dst.DoString(t, "GET", "after"); got != "1" {
					m := r.Info(t)
					return fmt.Errorf("the write after the refused command is not on the target (%q); source0: %s", got, m["source0"])
				}
				return nil
			})
			if tc.kind == "single" && dst.DoString(t, "EXISTS", "too:big") != "0" {
				t.Error("too:big is on the target")
			}
			e := errorFields(r.Info(t))
			t.Logf("INFO errors: %s", e)
			if e == "" {
				t.Error("INFO counts no error for the refused command")
			}
			if !strings.Contains(r.LogBuf.String(), "too:big") {
				t.Error("the log does not name the refused command's key")
			}
		})
	}
}
