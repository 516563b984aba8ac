package rdb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
)

func TestDumpPayloadShape(t *testing.T) {
	p := DumpPayload([]byte("prefix"), TypeString, []byte{0x05, 'h', 'e', 'l', 'l', 'o'}, 10)
	p = p[len("prefix"):]
	typ, val, ver, err := SplitPayload(p)
	if err != nil || typ != TypeString || string(val) != "\x05hello" || ver != 10 {
		t.Fatalf("SplitPayload = %d %q %d %v", typ, val, ver, err)
	}
	p[3] ^= 1
	if _, _, _, err := SplitPayload(p); !errors.Is(err, ErrChecksum) {
		t.Fatalf("corrupt payload: %v", err)
	}
}

// serverView reads a key back from a server in the fixture JSON shape.
func serverView(t *testing.T, rc *respConn, key []byte) any {
	t.Helper()
	typ := rc.must("TYPE", key).(string)
	out := map[string]any{"type": typ, "expire_ms": nil}
	if ms := rc.must("PEXPIRETIME", key).(int64); ms > 0 {
		out["expire_ms"] = ms
	}
	strs := func(v any) []any {
		var s []any
		for _, x := range v.([]any) {
			s = append(s, latin1(x.([]byte)))
		}
		return s
	}
	switch typ {
	case "string":
		out["value"] = latin1(rc.must("GET", key).([]byte))
	case "list":
		out["value"] = strs(rc.must("LRANGE", key, 0, -1))
	case "set":
		s := strs(rc.must("SMEMBERS", key))
		sort.Slice(s, func(i, j int) bool { return s[i].(string) < s[j].(string) })
		out["value"] = s
	case "zset":
		flat := strs(rc.must("ZRANGE", key, 0, -1, "WITHSCORES"))
		var z []any
		for i := 0; i+1 < len(flat); i += 2 {
			z = append(z, []any{flat[i], flat[i+1]})
		}
		out["value"] = z
	case "hash":
		flat := strs(rc.must("HGETALL", key))
		h := map[string]any{}
		for i := 0; i+1 < len(flat); i += 2 {
			h[flat[i].(string)] = flat[i+1]
		}
		out["value"] = h
	case "stream":
		var entries []any
		for _, e := range rc.must("XRANGE", key, "-", "+").([]any) {
			pair := e.([]any)
			entries = append(entries, []any{string(pair[0].([]byte)), strs(pair[1])})
		}
		info := kv(rc.must("XINFO", "STREAM", key))
		var groups []any
		for _, g := range rc.must("XINFO", "GROUPS", key).([]any) {
			gi := kv(g)
			groups = append(groups, map[string]any{"name": latin1(gi["name"].([]byte)),
				"consumers": gi["consumers"], "pending": gi["pending"],
				"last_delivered_id": string(gi["last-delivered-id"].([]byte))})
		}
		out["value"] = map[string]any{"entries": entries, "length": info["length"],
			"last_generated_id": string(info["last-generated-id"].([]byte)), "groups": groups}
	}
	return normalizeView(t, out)
}

func kv(v any) map[string]any {
	m := map[string]any{}
	l := v.([]any)
	for i := 0; i+1 < len(l); i += 2 {
		m[string(l[i].([]byte))] = l[i+1]
	}
	return m
}

// normalizeView is normalize, with empty JSON lists made equal to absent ones.
func normalizeView(t *testing.T, x map[string]any) any {
	if v, ok := x["value"].(map[string]any); ok && x["type"] == "stream" {
		for _, k := range []string{"entries", "groups"} {
			if v[k] == nil || len(fmt.Sprint(v[k])) == 0 {
				v[k] = []any{}
			}
			if l, ok := v[k].([]any); ok && l == nil {
				v[k] = []any{}
			}
		}
	}
	return normalize(t, x)
}

// TestDumpPayloadRedis DUMPs keys of every encoding Redis 7.0 writes, decodes each payload, and
// rebuilds it byte for byte with DumpPayload.
func TestDumpPayloadRedis(t *testing.T) {
	rc := startRedis(t, t.TempDir(), "--list-max-listpack-size", "4",
		"--zset-max-listpack-entries", "8", "--hash-max-listpack-entries", "8", "--set-max-intset-entries", "8")
	cmds := [][]any{
		{"SET", "s:short", "hello"}, {"SET", "s:int", "12345"}, {"SET", "s:neg", "-99999999999"},
		{"SET", "s:lzf", strings.Repeat("abc", 100)}, {"SET", "s:bin", "\x00\xff\r\n"},
		{"PEXPIREAT", "s:short", 4102444800000},
		{"RPUSH", "l:small", "a", "1", "-2", "300000", "x"},
		{"SADD", "set:ints", 1, 2, 3, -40000, 1 << 40}, {"SADD", "set:strs", "a", "b", "c"},
		{"ZADD", "z:small", 1, "a", 2.5, "b", "-inf", "c"},
		{"HSET", "h:small", "f1", "v1", "f2", "2"},
		{"XADD", "st", "1-1", "f", "v"}, {"XADD", "st", "2-1", "f", "v2", "g", "w"},
		{"XGROUP", "CREATE", "st", "g1", "0"}, {"XREADGROUP", "GROUP", "g1", "c1", "COUNT", "1", "STREAMS", "st", ">"},
	}
	for i := 0; i < 40; i++ {
		cmds = append(cmds, []any{"RPUSH", "l:big", fmt.Sprintf("item:%d", i)},
			[]any{"SADD", "set:big", fmt.Sprintf("m:%d", i)},
			[]any{"ZADD", "z:big", float64(i) * 1.5, fmt.Sprintf("z:%d", i)},
			[]any{"HSET", "h:big", fmt.Sprintf("f:%d", i), strings.Repeat("v", i)})
	}
	for _, c := range cmds {
		for i, a := range c {
			if f, ok := a.(float64); ok {
				c[i] = strconv.FormatFloat(f, 'g', -1, 64)
			}
		}
		rc.must(c...)
	}
	seen := map[byte]bool{}
	for _, k := range rc.must("KEYS", "*").([]any) {
		key := k.([]byte)
		payload := rc.must("DUMP", key).([]byte)
		typ, raw, ver, err := SplitPayload(payload)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		seen[typ] = true
		if got := DumpPayload(nil, typ, raw, ver); !bytes.Equal(got, payload) {
			t.Errorf("%s: DumpPayload differs from DUMP", key)
		}
		v, err := ParseValue(typ, raw)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		var exp int64
		if ms := rc.must("PEXPIRETIME", key).(int64); ms > 0 {
			exp = ms
		}
		got := normalize(t, renderValue(v, exp, 0))
		if want := serverView(t, rc, key); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s:\n got %s\nwant %s", key, short(got), short(want))
		}
	}
	for _, typ := range []byte{TypeString, TypeListQuicklist2, TypeSetIntset, TypeSet, TypeZSetListpack, TypeZSet2,
		TypeHashListpack, TypeHash, TypeStreamListpacks2} {
		if !seen[typ] {
			t.Errorf("no key of type %d was dumped", typ)
		}
	}
}

// TestRestoreFromFile RESTOREs every entry of RDB files into Redis 7.0 with payloads built from
// the raw values, and compares what the server then holds with the fixture JSON.
func TestRestoreFromFile(t *testing.T) {
	rc := startRedis(t, t.TempDir())
	for _, name := range []string{"redis-5.0.14", "redis-6.2.16", "redis-7.0.15", "redis-7.2.6"} {
		rc.must("FLUSHALL")
		f, err := os.Open(redistest.Fixture(t, name+".rdb"))
		if err != nil {
			t.Fatal(err)
		}
		d := NewDecoder(f)
		var e Entry
		var payload []byte
		restored := 0
		now := time.Now().UnixMilli()
		for {
			err := d.Next(&e)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.Kind != KindKey || (e.ExpireMs != 0 && e.ExpireMs < now) {
				continue
			}
			rc.must("SELECT", e.DB)
			payload = DumpPayload(payload[:0], e.Type, e.Value, d.Version())
			_, err = rc.do("RESTORE", e.Key, e.ExpireMs, payload, "REPLACE", "ABSTTL")
			if d.Version() > 10 {
				if err == nil || !strings.Contains(err.Error(), "payload version") {
					t.Fatalf("%s %q: RESTORE of a v%d payload on 7.0: %v", name, e.Key, d.Version(), err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s %q: RESTORE: %v", name, e.Key, err)
			}
			restored++
		}
		f.Close()
		if d.Version() > 10 {
			continue
		}
		want := loadFixtureJSON(t, redistest.Fixture(t, name+".json"))
		n := 0
		for db, keys := range want.dbs {
			dbn, _ := strconv.Atoi(db)
			rc.must("SELECT", dbn)
			for key, w := range keys {
				k := make([]byte, 0, len(key))
				for _, r := range key {
					k = append(k, byte(r))
				}
				if got := serverView(t, rc, k); fmt.Sprint(got) != fmt.Sprint(w) {
					t.Errorf("%s db %s %q:\n got %s\nwant %s", name, db, key, short(got), short(w))
				}
				n++
			}
		}
		if n != restored || n == 0 {
			t.Errorf("%s: restored %d keys, the JSON has %d", name, restored, n)
		}
	}
}
