package verify

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rmt-project/rmt/internal/redisfmt"
)

var checkTimeLine = regexp.MustCompile(`^Check job finished, used \d+\.\d{3}s$`)

// cjCheckReport asserts RMT's report text for r (colour off).
func cjCheckReport(t *testing.T, out string, r CheckResult) {
	t.Helper()
	want := []string{"Check job is running...", "",
		fmt.Sprintf("Checked keys: %d", r.Checked),
		fmt.Sprintf("Inconsistent value keys: %d", r.ValueDiff),
		fmt.Sprintf("Inconsistent expire keys : %d", r.ExpireDiff),
		fmt.Sprintf("Other check error keys: %d", r.OtherErr),
		fmt.Sprintf("Checked OK keys: %d", r.OK), ""}
	if r.ValueDiff+r.ExpireDiff+r.OtherErr == 0 {
		want = append(want, "All keys checked OK!")
	}
	got := cjLines(out)
	if len(got) != len(want)+1 || strings.Join(got[:len(want)], "\n") != strings.Join(want, "\n") || !checkTimeLine.MatchString(got[len(got)-1]) {
		t.Fatalf("report:\n%s\nwant:\n%s\nCheck job finished, used X.XXXs", out, strings.Join(want, "\n"))
	}
}

func cjFastCheck(out *bytes.Buffer) CheckOptions {
	o := CheckOptions{RoundInterval: 10 * time.Millisecond}
	if out != nil {
		o.Out = out
	}
	return o
}

func TestCheckFindsEveryKindOfDifference(t *testing.T) {
	src, tgt := cjStartRedis(t), cjStartRedis(t)
	ctx := context.Background()
	cfg := cjConfig(src, tgt)

	// A mix of test keys, and keys that will be made to differ.
	if res, err := RunTestInsert(ctx, cfg, TestInsertOptions{Keys: 300}); err != nil || res.Failed != 0 {
		t.Fatalf("testinsert: %+v %v", res, err)
	}
	expAt := strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)
	src.DoDB(0,
		[]string{"SET", "d:string", "v1"},
		[]string{"RPUSH", "d:list", "a", "b", "c"},
		[]string{"ZADD", "d:zset", "1.5", "m", "2", "n"},
		[]string{"HSET", "d:hash", "f", "1", "g", "2"},
		[]string{"SADD", "d:set", "a", "b", "c"},
		[]string{"XADD", "d:group", "1-1", "a", "1"},
		[]string{"XGROUP", "CREATE", "d:group", "g", "$"},
		[]string{"SET", "d:missing", "x"},
		[]string{"SET", "d:type", "x"},
		[]string{"SET", "d:ttl10", "x", "PXAT", expAt},
		[]string{"SET", "d:ttl1", "x", "PXAT", expAt},
		[]string{"SET", "d:ttlone", "x", "PXAT", expAt},
		[]string{"SET", "d:ttlnone", "x"},
		[]string{"SET", "d:fixed", "good"},
		[]string{"SET", "a\x00b\xff", "binary key"},
	)
	src.DoDB(2, []string{"SET", "d:db2", "one"}, []string{"SET", "d:db2ok", "same"})
	tgt.copyFrom(src)
	// Streams differing only in one entry's value: written on each side.
	src.DoDB(0, []string{"XADD", "d:stream", "1-1", "a", "1"}, []string{"XADD", "d:stream", "2-1", "b", "2"})
	tgt.DoDB(0, []string{"XADD", "d:stream", "1-1", "a", "1"}, []string{"XADD", "d:stream", "2-1", "b", "3"})

	total := int(src.Int("DBSIZE")) + 2 // db2
	var out bytes.Buffer
	opts := cjFastCheck(&out)
	opts.Keys = 100000
	opts.Color = false
	tgt.Do("SET", "d:stream-only-on-target", "x") // never sampled: the sample comes from the source
	// Same data except d:stream: one value difference.
	res, err := RunCheck(ctx, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Checked != total || res.ValueDiff != 1 || res.ExpireDiff != 0 || res.OtherErr != 0 || res.OK != total-1 {
		t.Fatalf("before changes: %+v", res)
	}

	ms := math.Nextafter(1.5, 2)
	tgt.DoDB(0,
		[]string{"SET", "d:string", "v2"},
		[]string{"LSET", "d:list", "1", "x"},
		[]string{"ZADD", "d:zset", strconv.FormatFloat(ms, 'g', -1, 64), "m"},
		[]string{"HSET", "d:hash", "g", "3"},
		[]string{"SREM", "d:set", "c"}, []string{"SADD", "d:set", "d"},
		[]string{"XGROUP", "SETID", "d:group", "g", "0"},
		[]string{"DEL", "d:missing"},
		[]string{"DEL", "d:type"}, []string{"SADD", "d:type", "x"},
		[]string{"PEXPIREAT", "d:ttl10", strconv.FormatInt(cjMustInt(t, expAt)+10000, 10)},
		[]string{"PEXPIREAT", "d:ttl1", strconv.FormatInt(cjMustInt(t, expAt)+800, 10)},
		[]string{"PERSIST", "d:ttlone"},
		[]string{"PEXPIRE", "d:ttlnone", "3600000"},
		[]string{"SET", "d:fixed", "bad"},
	)
	tgt.DoDB(2, []string{"SET", "d:db2", "two"})

	core, logs := observer.New(zapcore.DebugLevel)
	out.Reset()
	opts.Logger = zap.New(core)
	opts.Rounds = 3
	rounds := 0
	opts.afterRound = func(round int) {
		rounds = round
		if round == 1 {
			tgt.Do("SET", "d:fixed", "good") // fixed between rounds: not reported
		}
	}
	res, err = RunCheck(ctx, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rounds != 2 {
		t.Errorf("afterRound last called for round %d, want 2 (3 rounds)", rounds)
	}
	cjCheckReport(t, out.String(), res)
	wantBad := map[string]CheckCategory{
		"d:string": CheckValue, "d:list": CheckValue, "d:zset": CheckValue, "d:hash": CheckValue,
		"d:set": CheckValue, "d:stream": CheckValue, "d:group": CheckValue, "d:missing": CheckValue,
		"d:type": CheckValue, "d:db2": CheckValue,
		"d:ttl10": CheckExpire, "d:ttlone": CheckExpire, "d:ttlnone": CheckExpire,
	}
	if res.Checked != total || res.ValueDiff != 10 || res.ExpireDiff != 3 || res.OtherErr != 0 || res.OK != total-13 {
		t.Errorf("counts %+v", res)
	}
	gotBad := map[string]CheckCategory{}
	for _, b := range res.Bad {
		gotBad[b.Key] = b.Category
		if b.Reason == "" {
			t.Errorf("key %s: no reason", b.Key)
		}
		if (b.Key == "d:db2") != (b.DB == 2) {
			t.Errorf("key %s in db %d", b.Key, b.DB)
		}
		t.Logf("%s %s %s: %s", b.Category, b.Type, redisfmt.Quote(b.Key), b.Reason)
	}
	if fmt.Sprint(gotBad) != fmt.Sprint(wantBad) {
		t.Errorf("bad keys %v, want %v", gotBad, wantBad)
	}
	for key, reason := range map[string]string{
		"d:zset":  "score differs: source 1.5, target 1.5000000000000002",
		"d:group": "last-delivered-id differs",
		"d:set":   "missing on the target",
		"d:type":  "type differs: source string, target set",
		"d:ttl10": "(10.000s apart)",
	} {
		for _, b := range res.Bad {
			if b.Key == key && !strings.Contains(b.Reason, reason) {
				t.Errorf("key %s: reason %q, want it to mention %q", key, b.Reason, reason)
			}
		}
	}
	// Every bad key logged once, escaped as redis-cli does.
	if n := logs.FilterMessage("key checked failed").Len(); n != 13 {
		t.Errorf("%d bad keys logged, want 13", n)
	}
	if logs.FilterField(zap.String("key", `"d:db2"`)).Len() != 1 {
		t.Errorf("d:db2 not logged with its quoted name")
	}
}

func cjMustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A command the target refuses is an "other" error for every key.
func TestCheckOtherErrors(t *testing.T) {
	src, tgt := cjStartRedis(t), cjStartRedis(t, "--rename-command", "PEXPIRETIME", "")
	for i := 0; i < 5; i++ {
		src.Do("SET", "k"+strconv.Itoa(i), "v")
	}
	tgt.copyFrom(src)
	var out bytes.Buffer
	res, err := RunCheck(context.Background(), cjConfig(src, tgt), cjFastCheck(&out))
	if err != nil {
		t.Fatal(err)
	}
	if res.Checked != 5 || res.OtherErr != 5 || res.OK != 0 {
		t.Fatalf("result %+v", res)
	}
	cjCheckReport(t, out.String(), res)
	if !strings.Contains(res.Bad[0].Reason, "PEXPIRETIME") {
		t.Fatalf("reason %q does not name the command", res.Bad[0].Reason)
	}
}

func TestCheckSamplesEachKeyOnce(t *testing.T) {
	src, tgt := cjStartRedis(t), cjStartRedis(t)
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		src.Do("SET", "small"+strconv.Itoa(i), "v")
	}
	tgt.copyFrom(src)
	var out bytes.Buffer
	opts := cjFastCheck(&out)
	opts.Keys = 1000
	res, err := RunCheck(ctx, cjConfig(src, tgt), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Checked != 10 || res.OK != 10 {
		t.Fatalf("result %+v, want 10 keys checked", res)
	}
	cjCheckReport(t, out.String(), res)

	// Bigger dbs: RANDOMKEY, in proportion to the dbs' sizes, never a key twice.
	var db0, db1 [][]string
	for i := 0; i < 3000; i++ {
		db0 = append(db0, []string{"SET", "a" + strconv.Itoa(i), "v"})
	}
	for i := 0; i < 1000; i++ {
		db1 = append(db1, []string{"SET", "b" + strconv.Itoa(i), "v"})
	}
	src.DoDB(0, db0...)
	src.DoDB(1, db1...)
	set, err := openNodeSet(ctx, "source", cjConfig(src, nil).Source, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	for _, n := range []int{100, 1000, 2000, 5000} {
		keys, err := sampleKeys(ctx, set, n, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		perDB := map[int]int{}
		seen := map[string]bool{}
		for _, k := range keys {
			id := strconv.Itoa(k.db) + "/" + k.key
			if seen[id] {
				t.Fatalf("n=%d: key %s sampled twice", n, id)
			}
			seen[id] = true
			perDB[k.db]++
		}
		total := 3010 + 1000
		want0 := min(n, total) * 3010 / total
		if len(keys) != min(n, total) || perDB[0] < want0 || perDB[0] > want0+1 {
			t.Fatalf("n=%d: sampled %d keys, %v per db", n, len(keys), perDB)
		}
	}
}

func TestCheckBigKeysByPages(t *testing.T) {
	src, tgt := cjStartRedis(t), cjStartRedis(t)
	ctx := context.Background()
	const n = 100000
	var cmds [][]string
	for start := 0; start < n; start += 1000 {
		l := []string{"RPUSH", "big:list"}
		h := []string{"HSET", "big:hash"}
		z := []string{"ZADD", "big:zset"}
		s := []string{"SADD", "big:set"}
		for i := start; i < start+1000; i++ {
			v := strconv.Itoa(i)
			l = append(l, "e"+v)
			h = append(h, "f"+v, "v"+v)
			z = append(z, v+".25", "m"+v)
			s = append(s, "s"+v)
		}
		cmds = append(cmds, l, h, z, s)
	}
	src.DoDB(0, cmds...)
	src.Do("SET", "big:string", strings.Repeat("0123456789abcdef", 3<<16)) // 3 MB
	src.Do("XGROUP", "CREATE", "big:stream", "g", "$", "MKSTREAM")
	var xs [][]string
	for i := 0; i < 2000; i++ {
		xs = append(xs, []string{"XADD", "big:stream", "*", "i", strconv.Itoa(i)})
	}
	src.DoDB(0, xs...)
	tgt.copyFrom(src)
	tgt.Do("CONFIG", "RESETSTAT")

	var out bytes.Buffer
	cfg := cjConfig(src, tgt)
	res, err := RunCheck(ctx, cfg, cjFastCheck(&out))
	if err != nil {
		t.Fatal(err)
	}
	if res.Checked != 6 || res.OK != 6 {
		t.Fatalf("identical big keys: %+v", res)
	}
	// Pages, not one reply: LRANGE of 512, HMGET/ZMSCORE/SMISMEMBER per SCAN page, XRANGE pages.
	for cmd, least := range map[string]int{"lrange": n / 512, "hmget": 10, "zmscore": 10, "smismember": 10, "xrange": 2000 / 512, "getrange": 3} {
		calls := tgt.Info("commandstats", "cmdstat_"+cmd)
		c, _, _ := strings.Cut(strings.TrimPrefix(calls, "calls="), ",")
		if got, _ := strconv.Atoi(c); got < least {
			t.Errorf("%s called %d times on the target, want at least %d", cmd, got, least)
		}
	}

	tgt.DoDB(0,
		[]string{"LSET", "big:list", "77777", "changed"},
		[]string{"HSET", "big:hash", "f77777", "changed"},
		[]string{"ZADD", "big:zset", "77777.5", "m77777"},
		[]string{"XTRIM", "big:stream", "MAXLEN", "1999"},
		[]string{"SETRANGE", "big:string", "2500000", "X"},
	)
	out.Reset()
	res, err = RunCheck(ctx, cfg, cjFastCheck(&out))
	if err != nil {
		t.Fatal(err)
	}
	if res.ValueDiff != 5 || res.OK != 1 {
		t.Fatalf("after changes: %+v", res)
	}
	var reasons []string
	for _, b := range res.Bad {
		reasons = append(reasons, b.Key+": "+b.Reason)
	}
	sort.Strings(reasons)
	want := []string{
		"big:hash: field \"f77777\": value differs",
		"big:list: element 77777 differs",
		"big:stream: stream: length differs: source 2000, target 1999",
		"big:string: value differs in bytes 2097152..3145727",
		"big:zset: member \"m77777\": score differs: source 77777.25, target 77777.5",
	}
	if strings.Join(reasons, "\n") != strings.Join(want, "\n") {
		t.Fatalf("reasons:\n%s\nwant:\n%s", strings.Join(reasons, "\n"), strings.Join(want, "\n"))
	}
}

func TestCheckAfterTestInsert(t *testing.T) {
	src, tgt := cjStartRedis(t), cjStartRedis(t)
	ctx := context.Background()
	cfg := cjConfig(src, tgt)
	if res, err := RunTestInsert(ctx, cfg, TestInsertOptions{Keys: 3000}); err != nil || res.Failed != 0 {
		t.Fatalf("testinsert: %+v %v", res, err)
	}
	tgt.copyFrom(src)
	var out bytes.Buffer
	opts := cjFastCheck(&out)
	opts.Keys = 1000
	res, err := RunCheck(ctx, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Checked != 1000 || res.OK != 1000 {
		t.Fatalf("result %+v, bad %v", res, res.Bad)
	}
	cjCheckReport(t, out.String(), res)
}

func TestCheckReportColor(t *testing.T) {
	var b bytes.Buffer
	writeCheckReport(&b, CheckResult{Checked: 3, ValueDiff: 1, ExpireDiff: 1, OK: 1, Elapsed: 1500 * time.Millisecond}, true)
	want := "\nChecked keys: 3\n\033[31mInconsistent value keys: 1\033[0m\n\033[33mInconsistent expire keys : 1\033[0m\n" +
		"Other check error keys: 0\nChecked OK keys: 1\n\nCheck job finished, used 1.500s\n"
	if b.String() != want {
		t.Fatalf("got %q\nwant %q", b.String(), want)
	}
	b.Reset()
	writeCheckReport(&b, CheckResult{Checked: 2, OK: 2, Elapsed: time.Millisecond}, true)
	if !strings.Contains(b.String(), "\n\033[32mAll keys checked OK!\033[0m\n") {
		t.Fatalf("got %q", b.String())
	}
}

func TestCheckRefusesUnsupportedPools(t *testing.T) {
	cfg := cjConfig(&cjRedis{Addr: "127.0.0.1:1"}, &cjRedis{Addr: "127.0.0.1:1"})
	cfg.Target.Type = "rdb file"
	_, err := RunCheck(context.Background(), cfg, CheckOptions{})
	if err == nil || !strings.Contains(err.Error(), `target: type "rdb file" is not supported`) {
		t.Fatalf("error %v", err)
	}
}

// cjComparer opens both sides and returns a comparer factory for keys of db 0.
func cjComparer(t *testing.T, src, tgt *cjRedis, version [3]int) func(key string) keyVerdict {
	t.Helper()
	ctx := context.Background()
	cfg := cjConfig(src, tgt)
	s, err := openNodeSet(ctx, "source", cfg.Source, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	d, err := openNodeSet(ctx, "target", cfg.Target, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	if version != [3]int{} {
		s.nodes[0].version, d.nodes[0].version = version, version
	}
	return func(key string) keyVerdict {
		c := keyComparer{src: s.nodes[0], tgt: d.nodeFor(key), key: key, tol: 2 * time.Second, now: time.Now}
		return c.compare(ctx)
	}
}

// The paths for servers older than 6.2 (SISMEMBER, ZSCORE) and 7.0 (PTTL) find the same things.
func TestCompareOldServerPaths(t *testing.T) {
	src, tgt := cjStartRedis(t), cjStartRedis(t)
	src.DoDB(0,
		[]string{"SADD", "set:same", "a", "b"}, []string{"SADD", "set:diff", "a", "b"},
		[]string{"ZADD", "z:same", "1", "a", "inf", "b"}, []string{"ZADD", "z:diff", "1", "a", "2", "b"},
		[]string{"ZADD", "z:gone", "1", "a", "2", "b"},
		[]string{"SET", "ttl:same", "x", "EX", "3600"}, []string{"SET", "ttl:diff", "x", "EX", "3600"},
		[]string{"SET", "vanished", "x"},
	)
	tgt.copyFrom(src)
	tgt.DoDB(0,
		[]string{"SREM", "set:diff", "b"}, []string{"SADD", "set:diff", "c"},
		[]string{"ZADD", "z:diff", "2.5", "b"},
		[]string{"ZREM", "z:gone", "b"}, []string{"ZADD", "z:gone", "2", "c"},
		[]string{"EXPIRE", "ttl:diff", "3610"},
		[]string{"SET", "only-target", "x"},
	)
	src.Do("DEL", "vanished")
	tgt.Do("DEL", "vanished")
	src.Do("SET", "only-source-gone", "x") // then deleted, target has it
	src.Do("DEL", "only-source-gone")
	tgt.Do("SET", "only-source-gone", "x")
	for _, v := range [][3]int{{}, {6, 0, 16}} {
		cmp := cjComparer(t, src, tgt, v)
		for key, want := range map[string]CheckCategory{
			"set:same": CheckOK, "set:diff": CheckValue, "z:same": CheckOK, "z:diff": CheckValue,
			"z:gone": CheckValue, "ttl:same": CheckOK, "ttl:diff": CheckExpire,
			"vanished": CheckOK, "only-source-gone": CheckOther,
		} {
			if got := cmp(key); got.cat != want {
				t.Errorf("version %v: key %s: %v (%s), want %v", v, key, got.cat, got.reason, want)
			}
		}
	}
}

// ACL users and passwords from redis_auth.
func TestCheckWithAuth(t *testing.T) {
	src := cjStartRedis(t, "--requirepass", "s3cret")
	tgt := cjStartRedis(t, "--user", "mig", "on", ">pw", "~*", "&*", "+@all")
	cfg := cjConfig(src, tgt)
	ctx := context.Background()
	if _, err := RunTestInsert(ctx, cfg, TestInsertOptions{Keys: 10}); err == nil {
		t.Fatal("insert without the password worked")
	}
	cfg.Source.RedisAuth = "s3cret"
	cfg.Target.RedisAuth = "mig:pw"
	if res, err := RunTestInsert(ctx, cfg, TestInsertOptions{Keys: 60}); err != nil || res.Correct != 60 {
		t.Fatalf("insert: %+v %v", res, err)
	}
	res, err := RunCheck(ctx, cfg, cjFastCheck(nil))
	if err != nil {
		t.Fatal(err)
	}
	if res.Checked != 60 || res.ValueDiff != 60 {
		t.Fatalf("empty target: %+v", res)
	}
}
