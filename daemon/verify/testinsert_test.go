package verify

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/mediocregopher/radix/v4"

	"github.com/rmt-project/rmt/internal/redisfmt"
)

func TestParseTestInsertArgs(t *testing.T) {
	tests := []struct {
		args    []string
		types   InsertTypes
		n       int
		wantErr bool
	}{
		{nil, InsertAll, 1000, false},
		{[]string{"5000"}, InsertAll, 5000, false},
		{[]string{"string|list"}, InsertString | InsertList, 1000, false},
		{[]string{"string|list", "5000"}, InsertString | InsertList, 5000, false},
		{[]string{"5000", "hash|zset"}, InsertHash | InsertZSet, 5000, false},
		{[]string{"STREAM"}, InsertStream, 1000, false},
		{[]string{"all", "7"}, InsertAll, 7, false},
		{[]string{"set|all"}, InsertAll, 1000, false},
		{[]string{"zset|zset", "1"}, InsertZSet, 1, false},
		{[]string{"Hash|List|String|Set|ZSet", "2"}, InsertAll &^ InsertStream, 2, false},
		{[]string{"0"}, 0, 0, true},
		{[]string{"-5"}, 0, 0, true},           // not a number: taken as a type, unknown
		{[]string{"string", "-5"}, 0, 0, true}, // no number
		{[]string{"99999999999"}, 0, 0, true},
		{[]string{"bitmap"}, 0, 0, true},
		{[]string{"string|"}, 0, 0, true},
		{[]string{"string", "list"}, 0, 0, true},
		{[]string{"5", "6"}, 0, 0, true}, // "6" is not a type
		{[]string{"string", "5", "x"}, 0, 0, true},
		{[]string{""}, 0, 0, true},
	}
	for _, tc := range tests {
		types, n, err := ParseTestInsertArgs(tc.args)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseTestInsertArgs(%q) = %v, %d, want an error", tc.args, types, n)
			}
			continue
		}
		if err != nil || types != tc.types || n != tc.n {
			t.Errorf("ParseTestInsertArgs(%q) = %v, %d, %v; want %v, %d", tc.args, types, n, err, tc.types, tc.n)
		}
	}
}

func FuzzParseTestInsertArgs(f *testing.F) {
	for _, s := range []string{"", "5000", "string|list 5000", "5000 hash|zset", "all", "x y z", "|", "0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		types, n, err := ParseTestInsertArgs(strings.Fields(s))
		if err == nil && (types == 0 || types&^InsertAll != 0 || n <= 0) {
			t.Fatalf("%q: accepted with types %v, n %d", s, types, n)
		}
	})
}

func TestInsertTypesString(t *testing.T) {
	if got := (InsertString | InsertZSet | InsertStream).String(); got != "string|zset|stream" {
		t.Fatalf("String() = %q", got)
	}
}

var insertTimeLine = regexp.MustCompile(`^Test insert job finished, used \d+\.\d{3}s$`)

func TestRunTestInsert(t *testing.T) {
	src := cjStartRedis(t)
	cfg := cjConfig(src, nil)
	ctx := context.Background()

	var out bytes.Buffer
	res, err := RunTestInsert(ctx, cfg, TestInsertOptions{Keys: 1200, Types: InsertAll, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	want := TestInsertResult{Strings: 200, Lists: 200, Sets: 200, ZSets: 200, Hashes: 200, Streams: 200,
		Total: 1200, Correct: 1200, Prefix: res.Prefix, Elapsed: res.Elapsed}
	if res != want {
		t.Fatalf("result %+v, want %+v", res, want)
	}
	got := cjLines(out.String())
	wantLines := []string{"Test insert job is running...", "", "Insert string keys: 200", "Insert list keys  : 200",
		"Insert set keys   : 200", "Insert zset keys  : 200", "Insert hash keys  : 200", "Insert stream keys: 200",
		"Insert total keys : 1200", "", "Correct inserted keys: 1200"}
	if len(got) != len(wantLines)+1 || strings.Join(got[:len(wantLines)], "\n") != strings.Join(wantLines, "\n") || !insertTimeLine.MatchString(got[len(got)-1]) {
		t.Fatalf("report:\n%s", out.String())
	}
	if n := src.Int("DBSIZE"); n != 1200 {
		t.Fatalf("DBSIZE %d, want 1200", n)
	}
	// One key in ten has a TTL.
	if v := src.Info("keyspace", "db0"); v != "keys=1200,expires=120,avg_ttl=" && !strings.HasPrefix(v, "keys=1200,expires=120,") {
		t.Fatalf("keyspace %q, want 120 keys with a TTL", v)
	}
	// Every key has the run's prefix and the type its name says.
	byType := map[string]int{}
	var keys []string
	if err := src.c.Do(ctx, radix.Cmd(&keys, "KEYS", "*")); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		rest, ok := strings.CutPrefix(k, res.Prefix)
		if !ok {
			t.Fatalf("key %s lacks prefix %q", redisfmt.Quote(k), res.Prefix)
		}
		name, _, _ := strings.Cut(rest, ":")
		var typ string
		if err := src.c.Do(ctx, radix.Cmd(&typ, "TYPE", k)); err != nil {
			t.Fatal(err)
		}
		if typ != name {
			t.Fatalf("key %s has type %s", redisfmt.Quote(k), typ)
		}
		byType[typ]++
	}
	for _, typ := range []string{"string", "list", "set", "zset", "hash", "stream"} {
		if byType[typ] != 200 {
			t.Fatalf("%d keys of type %s, want 200", byType[typ], typ)
		}
	}
	// Several encodings show up.
	enc := map[string]bool{}
	for _, k := range keys {
		var e string
		if err := src.c.Do(ctx, radix.Cmd(&e, "OBJECT", "ENCODING", k)); err != nil {
			t.Fatal(err)
		}
		enc[e] = true
	}
	for _, e := range []string{"int", "embstr", "raw", "listpack", "intset", "hashtable", "skiplist", "quicklist", "stream"} {
		if !enc[e] {
			t.Errorf("no key with encoding %s (got %v)", e, enc)
		}
	}

	// A second run never collides with the first.
	res2, err := RunTestInsert(ctx, cfg, TestInsertOptions{Keys: 1200})
	if err != nil || res2.Correct != 1200 || res2.Prefix == res.Prefix {
		t.Fatalf("second run: %+v, %v", res2, err)
	}
	if n := src.Int("DBSIZE"); n != 2400 {
		t.Fatalf("DBSIZE after two runs %d, want 2400", n)
	}
}

func TestRunTestInsertSubset(t *testing.T) {
	src := cjStartRedis(t)
	var out bytes.Buffer
	types, n, err := ParseTestInsertArgs([]string{"101", "hash|zset"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := RunTestInsert(context.Background(), cjConfig(src, nil), TestInsertOptions{Types: types, Keys: n, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	// zset comes before hash in RMT's order: keys 0, 2, ... are zsets.
	if res.ZSets != 51 || res.Hashes != 50 || res.Strings+res.Lists+res.Sets+res.Streams != 0 || res.Correct != 101 || res.Failed != 0 {
		t.Fatalf("result %+v", res)
	}
	if strings.Contains(out.String(), "stream") {
		t.Fatalf("stream line without streams:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "\nInsert zset keys  : 51\nInsert hash keys  : 50\nInsert total keys : 101\n") {
		t.Fatalf("report:\n%s", out.String())
	}
}

// A server that refuses XGROUP fails every stream key, and only those.
func TestRunTestInsertCountsFailures(t *testing.T) {
	src := cjStartRedis(t, "--rename-command", "XGROUP", "")
	res, err := RunTestInsert(context.Background(), cjConfig(src, nil), TestInsertOptions{Keys: 600})
	if err != nil {
		t.Fatal(err)
	}
	if res.Streams != 100 || res.Failed != 100 || res.Correct != 500 || res.Total != 600 {
		t.Fatalf("result %+v, want 100 failed stream keys", res)
	}
}

func TestRunTestInsertRefusesBadSource(t *testing.T) {
	cfg := cjConfig(&cjRedis{Addr: "127.0.0.1:1"}, nil)
	cfg.Source.Type = "rdb file"
	_, err := RunTestInsert(context.Background(), cfg, TestInsertOptions{Keys: 1})
	if err == nil || !strings.Contains(err.Error(), `source: type "rdb file" is not supported`) {
		t.Fatalf("error %v", err)
	}
}
