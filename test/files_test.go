package test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/daemon/status"
	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/rdb"
	"github.com/rmt-project/rmt/target"
)

// fileJob is a job config from a file source (or to a file target) with the admin port on a
// free port and dir in TempDir.
func fileJob(t testing.TB, srcType string, srcs []string, dstType string, dst string) *conf.Config {
	cfg := conf.Default()
	cfg.File = "test"
	cfg.Source.Type, cfg.Source.Servers = srcType, srcs
	cfg.Target.Type, cfg.Target.Servers = dstType, []string{dst}
	cfg.Common.Listen = "127.0.0.1:0"
	cfg.Common.Dir = filepath.Join(t.TempDir(), "data")
	return cfg
}

// runToEnd runs rmtd in-process until it exits by itself, and returns the INFO it would show at
// the end, the daemon, and Run's error.
func runToEnd(t testing.TB, cfg *conf.Config, timeout time.Duration) (map[string]string, *Rmtd, error) {
	t.Helper()
	r := StartRmtd(t, cfg)
	var err error
	select {
	case err = <-r.done:
		r.done <- nil // for Stop in the cleanup
	case <-time.After(timeout):
		t.Fatalf("rmtd did not exit within %s", timeout)
	}
	return parseAdminInfo(status.RenderInfo(r.D.Snapshot(), []string{"everything"})), r, err
}

// pendingLost is a difference in a stream group's pending entries, all of them missing.
var pendingLost = regexp.MustCompile(`: group "[^"]*": pending [0-9]+ vs 0$`)

// fixtureFieldTTLs counts the hash fields with a TTL in a fixture's expected contents.
func fixtureFieldTTLs(ds *redistest.Dataset) int {
	n := 0
	for _, keys := range ds.DBs {
		for _, v := range keys {
			n += len(v.FieldExpireMs)
		}
	}
	return n
}

// TestRDBFileSourceFixtures gives every fixture RDB, one at a time, as an rdb file source to
// one Redis 7.0 target (flushed in between) and reads it back: it must equal the fixture's
// JSON, except hash field TTLs (7.4), which 7.0 cannot hold and INFO and the log must name.
func TestRDBFileSourceFixtures(t *testing.T) {
	files, _ := filepath.Glob(redistest.Fixture(t, "*.rdb"))
	cases, _ := filepath.Glob(redistest.Fixture(t, "cases/*.rdb"))
	files = append(files, cases...)
	if len(files) < 10 {
		t.Fatalf("only %d fixtures under %s", len(files), redistest.Fixture(t, ""))
	}
	dst := redistest.StartRedis(t)
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".rdb")
		if strings.Contains(path, "/cases/") {
			name = "cases/" + name
		}
		t.Run(name, func(t *testing.T) {
			dst.Do(t, "FLUSHALL")
			dst.Do(t, "FUNCTION", "FLUSH")
			want, err := redistest.DatasetFromFixtureJSON(strings.TrimSuffix(path, ".rdb") + ".json")
			if err != nil {
				t.Fatal(err)
			}
			info, _, runErr := runToEnd(t, fileJob(t, conf.TypeRDBFile, []string{path}, conf.TypeSingle, dst.Addr), 30*time.Second)
			if runErr != nil {
				t.Fatalf("rmtd: %v", runErr)
			}
			got := dst.Dump(t)
			var diffs []string
			for _, d := range redistest.Diff(want, got, redistest.TTLTolerance) {
				// Known gap of the rewrite path (target/rewrite.go): a stream's pending entries
				// are not rebuilt on a target that cannot RESTORE the payload; tolerated only
				// when INFO counts them by reason.
				if pendingLost.MatchString(d) && info["skipped_stream_pel"] != "" {
					continue
				}
				diffs = append(diffs, d)
			}
			if len(diffs) > 0 {
				t.Fatalf("target differs from %s.json:\n%s", name, strings.Join(diffs, "\n"))
			}
			if ttls := fixtureFieldTTLs(want); ttls > 0 {
				if info["skipped_hash_field_ttl"] != strconv.Itoa(ttls) {
					t.Errorf("INFO skipped_hash_field_ttl %q, the fixture has %d field TTLs", info["skipped_hash_field_ttl"], ttls)
				}
			} else if info["skipped_hash_field_ttl"] != "" {
				t.Errorf("INFO skipped_hash_field_ttl %s, the fixture has none", info["skipped_hash_field_ttl"])
			}
			if info["phase"] != "done" || info["total_errors"] != "0" {
				t.Errorf("INFO phase %q, total_errors %q", info["phase"], info["total_errors"])
			}
		})
	}
}

// TestRDBFileSourcesParallel: several rdb file servers are loaded together (one node job
// each) and the job exits 0; a missing file makes it exit non-zero naming the file.
func TestRDBFileSourcesParallel(t *testing.T) {
	dst := redistest.StartRedis(t)
	files := []string{redistest.Fixture(t, "cases/multiple_databases.rdb"), redistest.Fixture(t, "cases/hash.rdb"), redistest.Fixture(t, "cases/quicklist.rdb")}
	info, _, err := runToEnd(t, fileJob(t, conf.TypeRDBFile, files, conf.TypeSingle, dst.Addr), 30*time.Second)
	if err != nil {
		t.Fatalf("rmtd: %v", err)
	}
	var parts []*redistest.Dataset
	for _, f := range files {
		ds, err := redistest.DatasetFromFixtureJSON(strings.TrimSuffix(f, ".rdb") + ".json")
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, ds)
	}
	redistest.CompareDatasets(t, redistest.MergeDatasets(t, "fixtures", parts...), dst.Dump(t))
	if info["rdb_parsed_count"] != "3" && info["all_rdb_parsed"] != "1" {
		t.Errorf("INFO rdb_parsed_count %q all_rdb_parsed %q", info["rdb_parsed_count"], info["all_rdb_parsed"])
	}

	// A cut file among good ones: the others load, the job fails naming the bad one.
	data, err := os.ReadFile(redistest.Fixture(t, "redis-7.0.15.rdb"))
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "cut.rdb")
	if err := os.WriteFile(bad, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	dst.Do(t, "FLUSHALL")
	info, _, err = runToEnd(t, fileJob(t, conf.TypeRDBFile, []string{files[0], bad}, conf.TypeSingle, dst.Addr), 30*time.Second)
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("rmtd with a cut file: %v", err)
	}
	// The good file is whole on the target (the cut one may have put some keys there too).
	got := dst.Dump(t)
	for db, keys := range parts[0].DBs {
		for k := range keys {
			if got.DBs[db][k] == nil {
				t.Errorf("db %d key %s of %s missing", db, redistest.Escape(k), files[0])
			}
		}
	}
	if info["errors_rdb_load"] != "1" {
		t.Errorf("INFO errors_rdb_load %q", info["errors_rdb_load"])
	}
}

// TestLiveToRDBFile migrates a live Redis 7.0 source into an rdb file target: rmtd exits 0
// and a redis-server started on the file holds what the source holds.
func TestLiveToRDBFile(t *testing.T) {
	src := redistest.StartRedis(t, redistest.WithRDB(redistest.Fixture(t, "redis-7.0.15.rdb")))
	for i := 0; i < 200; i++ {
		src.Do(t, "SET", fmt.Sprintf("live:%d", i), strings.Repeat("v", i))
	}
	src.Do(t, "SELECT", "3")
	src.Do(t, "HSET", "live:h", "a", "1", "b", "2")
	src.Do(t, "EXPIRE", "live:h", "7200")
	src.Do(t, "ZADD", "live:z", "1.5", "m1", "-2", "m2")
	out := filepath.Join(t.TempDir(), "out.rdb")
	info, _, err := runToEnd(t, fileJob(t, conf.TypeSingle, []string{src.Addr}, conf.TypeRDBFile, out), 60*time.Second)
	if err != nil {
		t.Fatalf("rmtd: %v", err)
	}
	if _, err := os.Stat(out + ".tmp"); err == nil {
		t.Error("temporary file left behind")
	}
	if info["phase"] != "done" {
		t.Errorf("INFO phase %q", info["phase"])
	}
	check := redistest.StartRedis(t, redistest.WithRDB(out))
	redistest.CompareServers(t, src, check)
	if n := check.Dump(t).Keys(); n < 230 {
		t.Errorf("only %d keys in the file", n)
	}
}

// aofWrites puts a mix of commands on r: several dbs, MULTI/EXEC, expiries, every type.
func aofWrites(t *testing.T, r *redistest.Redis, round int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := radix.Dial(ctx, "tcp", r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	do := func(args ...string) {
		if err := c.Do(ctx, radix.Cmd(nil, args[0], args[1:]...)); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	p := fmt.Sprintf("r%d:", round)
	for _, db := range []string{"0", "1", "7"} {
		do("SELECT", db)
		for i := 0; i < 50; i++ {
			do("SET", p+"s"+strconv.Itoa(i), strings.Repeat("x", i))
		}
		do("INCRBY", "counter", "5")
		do("RPUSH", p+"l", "a", "b", "c")
		do("LPOP", p+"l")
		do("HSET", p+"h", "f1", "v1", "f2", "v2")
		do("SADD", p+"set", "m1", "m2", "m3")
		do("SREM", p+"set", "m2")
		do("ZADD", p+"z", "1", "one", "2.5", "two")
		do("XADD", p+"x", "*", "f", "v")
		do("SET", p+"ttl", "v", "EX", "3600")
		do("PEXPIRE", p+"h", "7200000")
		do("MULTI")
		do("SET", p+"tx", "1")
		do("INCR", p+"tx")
		do("DEL", p+"s1")
		do("EXEC")
		do("SET", p+"gone", "v", "PX", "1") // expires at once: an AOF keeps its PEXPIREAT
	}
}

// startFrom starts a redis-server whose dir is a copy of the files given (name → path), with
// appendonly on, so it loads them itself: the reference for an AOF source.
func startFrom(t *testing.T, files map[string]string) *redistest.Redis {
	t.Helper()
	dir := t.TempDir()
	for name, p := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := redistest.CopyFile(p, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return redistest.StartRedis(t, redistest.WithDir(dir), redistest.WithArgs("appendonly yes"))
}

// TestAOFSourceMultiPart: a Redis 7 multi-part AOF directory (base with and without an RDB
// preamble, then an incremental file) applied by rmtd equals what redis-server loads from it.
func TestAOFSourceMultiPart(t *testing.T) {
	for _, preamble := range []string{"yes", "no"} {
		t.Run("preamble="+preamble, func(t *testing.T) {
			src := redistest.StartRedis(t, redistest.WithArgs("appendonly yes", "aof-use-rdb-preamble "+preamble, "appendfsync always"))
			aofWrites(t, src, 1)
			src.Do(t, "BGREWRITEAOF")
			redistest.WaitFor(t, 20*time.Second, func() error {
				p := src.Info(t, "persistence")
				if p["aof_rewrite_in_progress"] != "0" || p["aof_rewrite_scheduled"] != "0" || p["aof_rewrites"] == "0" {
					return fmt.Errorf("AOF rewrite not done: %v", p)
				}
				return nil
			})
			aofWrites(t, src, 2) // into the incremental file
			src.Stop()

			dir := filepath.Join(src.Dir, "appendonlydir")
			// The manifest names the parts (conf refuses a directory as a server for now).
			manifest := filepath.Join(dir, "appendonly.aof.manifest")
			files := map[string]string{}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			base := ""
			for _, e := range entries {
				files["appendonlydir/"+e.Name()] = filepath.Join(dir, e.Name())
				if strings.Contains(e.Name(), ".base.") {
					base = e.Name()
				}
			}
			if wantRDB := preamble == "yes"; strings.HasSuffix(base, ".rdb") != wantRDB {
				t.Fatalf("base file %q: want an RDB preamble %v", base, wantRDB)
			}
			dst := redistest.StartRedis(t)
			info, _, runErr := runToEnd(t, fileJob(t, conf.TypeAOFFile, []string{manifest}, conf.TypeSingle, dst.Addr), 30*time.Second)
			if runErr != nil {
				t.Fatalf("rmtd: %v", runErr)
			}
			ref := startFrom(t, files)
			redistest.CompareServers(t, ref, dst)
			if ref.Dump(t).Keys() < 300 {
				t.Fatal("the reference holds too few keys: the comparison proves little")
			}
			if info["phase"] != "done" || info["total_errors"] != "0" || atoi(t, info["total_msgs_recv"]) < 100 {
				t.Errorf("INFO phase %q total_errors %q total_msgs_recv %q", info["phase"], info["total_errors"], info["total_msgs_recv"])
			}
		})
	}
}

// plainAOF writes a single-file AOF of commands: several dbs, MULTI/EXEC, expiries.
func plainAOF(t *testing.T) (path string, ends []int64) {
	t.Helper()
	exp := strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)
	cmds := [][]string{
		{"SELECT", "0"}, {"SET", "a", "1"}, {"RPUSH", "l", "x", "y", "z"}, {"HSET", "h", "f", "v"},
		{"PEXPIREAT", "h", exp}, {"SELECT", "2"}, {"MULTI"}, {"SET", "b", "2"}, {"INCR", "b"},
		{"SADD", "s", "m1", "m2"}, {"EXEC"}, {"ZADD", "z", "1", "a", "2", "b"},
		{"XADD", "x", "1-1", "f", "v"}, {"SELECT", "0"}, {"APPEND", "a", "23"}, {"SET", "last", "value"},
	}
	var b []byte
	for _, c := range cmds {
		b = aof.AppendCommandString(b, c...)
		ends = append(ends, int64(len(b)))
	}
	path = filepath.Join(t.TempDir(), "appendonly.aof")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, ends
}

// TestAOFSourcePlain: a plain single-file AOF, whole and truncated in its last command. The
// truncated one applies everything before the cut, then exits non-zero naming the file and
// the offset of the cut command; INFO counts it.
func TestAOFSourcePlain(t *testing.T) {
	whole, ends := plainAOF(t)
	data, err := os.ReadFile(whole)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "appendonly.aof")
	if err := os.WriteFile(cut, data[:len(data)-4], 0o644); err != nil {
		t.Fatal(err)
	}
	lastStart := ends[len(ends)-2]
	for _, tc := range []struct {
		name, path string
		truncated  bool
	}{{"whole", whole, false}, {"truncated", cut, true}} {
		t.Run(tc.name, func(t *testing.T) {
			dst := redistest.StartRedis(t)
			info, r, runErr := runToEnd(t, fileJob(t, conf.TypeAOFFile, []string{tc.path}, conf.TypeSingle, dst.Addr), 30*time.Second)
			ref := startFrom(t, map[string]string{"appendonly.aof": tc.path})
			redistest.CompareServers(t, ref, dst)
			if !tc.truncated {
				if runErr != nil {
					t.Fatalf("rmtd: %v", runErr)
				}
				if dst.DoString(t, "GET", "last") != "value" {
					t.Error("the last command was not applied")
				}
				return
			}
			want := fmt.Sprintf("offset %d", lastStart)
			if runErr == nil || !strings.Contains(runErr.Error(), tc.path) || !strings.Contains(runErr.Error(), want) {
				t.Fatalf("rmtd on a truncated AOF: %v; want the file and %q", runErr, want)
			}
			var ae *aof.Error
			if !errors.As(runErr, &ae) || info["errors_aof_truncated"] != "1" || info["source0.state"] != "failed" {
				t.Errorf("INFO errors_aof_truncated %q state %q", info["errors_aof_truncated"], info["source0.state"])
			}
			if !strings.Contains(r.LogBuf.String(), want) {
				t.Errorf("the log does not name the offset")
			}
			if dst.DoString(t, "GET", "a") != "123" || dst.DoString(t, "EXISTS", "last") != "" && dst.Do(t, "EXISTS", "last") != int64(0) {
				t.Errorf("commands before the cut not applied, or the cut one applied")
			}
		})
	}
}

// TestLiveToRDBFileTwoSources: two live masters written into one rdb file (one node job
// each, one shared encoder): the file holds both, each key in its db.
func TestLiveToRDBFileTwoSources(t *testing.T) {
	a := redistest.StartRedis(t, redistest.WithRDB(redistest.Fixture(t, "redis-7.0.15.rdb")))
	b := redistest.StartRedis(t)
	for _, db := range []string{"0", "2", "15"} {
		b.Do(t, "SELECT", db)
		for i := 0; i < 100; i++ {
			b.Do(t, "SET", fmt.Sprintf("b:%s:%d", db, i), strconv.Itoa(i))
		}
		b.Do(t, "RPUSH", "b:list:"+db, "x", "y")
		b.Do(t, "PEXPIRE", "b:list:"+db, "3600000")
	}
	out := filepath.Join(t.TempDir(), "two.rdb")
	info, _, err := runToEnd(t, fileJob(t, conf.TypeSingle, []string{a.Addr, b.Addr}, conf.TypeRDBFile, out), 60*time.Second)
	if err != nil {
		t.Fatalf("rmtd: %v", err)
	}
	if info["phase"] != "done" {
		t.Errorf("INFO phase %q", info["phase"])
	}
	check := redistest.StartRedis(t, redistest.WithRDB(out))
	redistest.CompareDatasets(t, redistest.MergeDatasets(t, "a+b", a.Dump(t), b.Dump(t)), check.Dump(t))
}

// TestAOFToRDBFile: an AOF that is all RDB preamble can go into an rdb file; one with
// commands cannot (a file takes no command stream): rmtd exits non-zero, leaving no file.
func TestAOFToRDBFile(t *testing.T) {
	// Switching AOF on at run time rewrites the data set into a base file: an RDB preamble.
	src := redistest.StartRedis(t, redistest.WithRDB(redistest.Fixture(t, "redis-7.0.15.rdb")), redistest.WithArgs("aof-use-rdb-preamble yes"))
	src.Do(t, "CONFIG", "SET", "appendonly", "yes")
	redistest.WaitFor(t, 20*time.Second, func() error {
		p := src.Info(t, "persistence")
		if p["aof_rewrite_in_progress"] != "0" || p["aof_rewrite_scheduled"] != "0" || p["aof_rewrites"] == "0" {
			return fmt.Errorf("AOF rewrite not done: %v", p)
		}
		return nil
	})
	want := src.Dump(t)
	if want.Keys() < 20 {
		t.Fatalf("the source holds %d keys: the comparison would prove little", want.Keys())
	}
	src.Stop()
	manifest := filepath.Join(src.Dir, "appendonlydir", "appendonly.aof.manifest")
	out := filepath.Join(t.TempDir(), "from-aof.rdb")
	_, _, err := runToEnd(t, fileJob(t, conf.TypeAOFFile, []string{manifest}, conf.TypeRDBFile, out), 30*time.Second)
	if err != nil {
		t.Fatalf("rmtd, preamble only: %v", err)
	}
	redistest.CompareDatasets(t, want, redistest.StartRedis(t, redistest.WithRDB(out)).Dump(t))

	plain, _ := plainAOF(t)
	out2 := filepath.Join(t.TempDir(), "from-plain.rdb")
	info, _, err := runToEnd(t, fileJob(t, conf.TypeAOFFile, []string{plain}, conf.TypeRDBFile, out2), 30*time.Second)
	if err == nil || !strings.Contains(err.Error(), "rdb file target cannot take the commands") {
		t.Fatalf("rmtd, commands into a file: %v", err)
	}
	if info["source0.state"] != "failed" {
		t.Errorf("INFO state %q", info["source0.state"])
	}
	for _, p := range []string{out2, out2 + ".tmp"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
}

// TestRDBFileForOlderRedis writes fixtures of every version, 7.4's field TTLs included, as
// RDB files for Redis 7.0 (version 10: newer values converted, field TTLs dropped and counted)
// and loads each into a redis-server 7.0: it must hold what the fixture's JSON says.
func TestRDBFileForOlderRedis(t *testing.T) {
	files, _ := filepath.Glob(redistest.Fixture(t, "redis-*.rdb"))
	files = append(files, redistest.Fixture(t, "cases/hash_with_hfe.rdb"), redistest.Fixture(t, "cases/hash_as_listpack_with_hfe.rdb"),
		redistest.Fixture(t, "cases/stream_listoacks_3.rdb"), redistest.Fixture(t, "cases/set_listpack.rdb"))
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".rdb"), func(t *testing.T) {
			want, err := redistest.DatasetFromFixtureJSON(strings.TrimSuffix(path, ".rdb") + ".json")
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "v10.rdb")
			file := target.NewRDBFile(target.RDBFileOptions{Path: out, Version: 10})
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			dec := rdb.NewDecoder(f)
			var w *target.RDBFileNode
			var e rdb.Entry
			for {
				err := dec.Next(&e)
				if w == nil && (err == nil || errors.Is(err, io.EOF)) {
					if w, err = file.Node(path, dec.Version()); err != nil {
						t.Fatal(err)
					}
				}
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if err := w.Restore(&e); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.WaitRDB(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got := redistest.StartRedis(t, redistest.WithRDB(out)).Dump(t)
			if diffs := redistest.Diff(want, got, redistest.TTLTolerance); len(diffs) > 0 {
				t.Fatalf("a 7.0 server loading the v10 file differs from the JSON:\n%s", strings.Join(diffs, "\n"))
			}
			if n, st := fixtureFieldTTLs(want), w.Stats(); st.Skipped[target.SkipFieldTTL] != uint64(n) {
				t.Errorf("%d field TTLs counted as dropped, the fixture has %d", st.Skipped[target.SkipFieldTTL], n)
			}
		})
	}
}

// TestAOFSourceTargetCut: the target connection is cut while an AOF is applied; rmtd
// reconnects, resends from the last acknowledged command, and still exits 0 with the
// target equal to what redis-server loads from the file.
func TestAOFSourceTargetCut(t *testing.T) {
	var b []byte
	for db := 0; db < 2; db++ {
		b = aof.AppendCommandString(b, "SELECT", strconv.Itoa(db))
		for i := 0; i < 20000; i++ {
			b = aof.AppendCommandString(b, "SET", fmt.Sprintf("k:%d:%d", db, i), strings.Repeat("v", 40))
		}
	}
	path := filepath.Join(t.TempDir(), "appendonly.aof")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	dst := redistest.StartRedis(t)
	p := redistest.StartProxy(t, dst.Addr)
	p.SetRate(int64(len(b)) / 2) // about 2 s for the whole file
	r := StartRmtd(t, fileJob(t, conf.TypeAOFFile, []string{path}, conf.TypeSingle, p.Addr))
	redistest.WaitFor(t, 10*time.Second, func() error {
		if n := p.Stats().BytesUp; n < int64(len(b))/4 {
			return fmt.Errorf("%d bytes sent to the target", n)
		}
		return nil
	})
	p.Cut()
	var err error
	select {
	case err = <-r.done:
		r.done <- nil
	case <-time.After(30 * time.Second):
		t.Fatal("rmtd did not exit")
	}
	if err != nil {
		t.Fatalf("rmtd: %v", err)
	}
	info := parseAdminInfo(status.RenderInfo(r.D.Snapshot(), []string{"everything"}))
	if info["errors_target_conn"] == "" {
		t.Errorf("the cut was not counted: %v", info)
	}
	ref := startFrom(t, map[string]string{"appendonly.aof": path})
	redistest.CompareServers(t, ref, dst)
}
