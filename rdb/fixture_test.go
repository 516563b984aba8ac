package rdb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
)

// fixtureFiles lists every RDB fixture with its expected JSON.
func fixtureFiles(t testing.TB) []string {
	t.Helper()
	dir := redistest.Fixture(t, "")
	var files []string
	for _, pat := range []string{"*.rdb", "cases/*.rdb"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatalf("no fixtures under %s", dir)
	}
	return files
}

// latin1 renders bytes as the fixtures do: one code point per byte.
func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// renderValue turns a parsed value into the fixture JSON shape. Hash fields and keys whose
// expiry is before now are left out, as Redis does on load.
func renderValue(v *Value, expireMs, now int64) map[string]any {
	out := map[string]any{"type": TypeName(v.Type), "expire_ms": nil}
	if expireMs != 0 {
		out["expire_ms"] = expireMs
	}
	strs := func(l [][]byte) []any {
		s := make([]any, len(l))
		for i, x := range l {
			s[i] = latin1(x)
		}
		return s
	}
	switch TypeName(v.Type) {
	case "string":
		out["value"] = latin1(v.String)
	case "list":
		out["value"] = strs(v.List)
	case "set":
		s := strs(v.Set)
		sort.Slice(s, func(i, j int) bool { return s[i].(string) < s[j].(string) })
		out["value"] = s
	case "zset":
		z := slices.Clone(v.ZSet)
		sort.SliceStable(z, func(i, j int) bool {
			if z[i].Score != z[j].Score {
				return z[i].Score < z[j].Score
			}
			return bytes.Compare(z[i].Member, z[j].Member) < 0
		})
		s := make([]any, len(z))
		for i, m := range z {
			s[i] = []any{latin1(m.Member), strconv.FormatFloat(m.Score, 'g', -1, 64)}
		}
		out["value"] = s
	case "hash":
		h, fe := map[string]any{}, map[string]any{}
		for _, f := range v.Hash {
			if f.ExpireMs != 0 && f.ExpireMs < now {
				continue
			}
			h[latin1(f.Field)] = latin1(f.Value)
			if f.ExpireMs != 0 {
				fe[latin1(f.Field)] = f.ExpireMs
			}
		}
		out["value"] = h
		if len(fe) > 0 {
			out["field_expire_ms"] = fe
		}
	case "stream":
		s := v.Stream
		entries := make([]any, len(s.Entries))
		for i, e := range s.Entries {
			entries[i] = []any{e.ID.String(), strs(e.Fields)}
		}
		groups := make([]any, len(s.Groups))
		for i, g := range s.Groups {
			groups[i] = map[string]any{"name": latin1(g.Name), "last_delivered_id": g.LastID.String(),
				"consumers": len(g.Consumers), "pending": len(g.PEL)}
		}
		out["value"] = map[string]any{"entries": entries, "length": s.Length,
			"last_generated_id": s.LastID.String(), "groups": groups}
	}
	return out
}

// normalize makes a JSON-shaped value comparable: round trip through encoding/json, zset scores
// as numbers (Redis writes 1.5e+4 where Go writes 15000).
func normalize(t *testing.T, x any) any {
	t.Helper()
	b, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out["type"] == "zset" {
		for _, m := range out["value"].([]any) {
			pair := m.([]any)
			f, err := strconv.ParseFloat(pair[1].(string), 64)
			if err != nil {
				t.Fatalf("score %q: %v", pair[1], err)
			}
			pair[1] = f
		}
	}
	return out
}

// isEmpty reports a collection Redis would drop on load as an empty key.
func isEmpty(v *Value) bool {
	switch TypeName(v.Type) {
	case "list":
		return len(v.List) == 0
	case "set":
		return len(v.Set) == 0
	case "zset":
		return len(v.ZSet) == 0
	case "hash":
		return len(v.Hash) == 0
	}
	return false
}

type decoded struct {
	dbs       map[string]map[string]any
	functions []any
	entries   int
}

// decodeFixture decodes a whole file with ParseValue and renders it like the fixture JSON.
func decodeFixture(t *testing.T, r io.Reader) decoded {
	t.Helper()
	now := time.Now().UnixMilli()
	out := decoded{dbs: map[string]map[string]any{}}
	d := NewDecoder(r)
	var e Entry
	for {
		err := d.Next(&e)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out.entries++
		switch e.Kind {
		case KindFunction:
			code := string(e.Value)
			name := ""
			if first, _, ok := strings.Cut(code, "\n"); ok {
				if _, n, ok := strings.Cut(first, "name="); ok {
					name, _, _ = strings.Cut(n, " ")
				}
			}
			out.functions = append(out.functions, map[string]any{"library_code": latin1(e.Value), "library_name": name})
		case KindKey:
			v, err := ParseValue(e.Type, e.Value)
			if err != nil {
				t.Fatalf("key %q: %v", e.Key, err)
			}
			if (e.ExpireMs != 0 && e.ExpireMs < now) || isEmpty(v) {
				continue
			}
			db := strconv.Itoa(e.DB)
			if out.dbs[db] == nil {
				out.dbs[db] = map[string]any{}
			}
			out.dbs[db][latin1(e.Key)] = normalize(t, renderValue(v, e.ExpireMs, now))
		}
	}
	return out
}

func TestFixtures(t *testing.T) {
	for _, path := range fixtureFiles(t) {
		name := strings.TrimPrefix(path, redistest.Fixture(t, "")+string(filepath.Separator))
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got := decodeFixture(t, f)
			want := loadFixtureJSON(t, strings.TrimSuffix(path, ".rdb")+".json")
			compareFixture(t, got, want)
		})
	}
}

type fixtureJSON struct {
	dbs       map[string]map[string]any
	functions []any
}

func loadFixtureJSON(t *testing.T, path string) fixtureJSON {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	out := fixtureJSON{dbs: map[string]map[string]any{}}
	for k, v := range raw {
		if k == "functions" {
			if err := json.Unmarshal(v, &out.functions); err != nil {
				t.Fatal(err)
			}
			continue
		}
		var keys map[string]map[string]any
		if err := json.Unmarshal(v, &keys); err != nil {
			t.Fatal(err)
		}
		db := map[string]any{}
		for key, val := range keys {
			db[key] = normalize(t, val)
		}
		out.dbs[k] = db
	}
	return out
}

func compareFixture(t *testing.T, got decoded, want fixtureJSON) {
	t.Helper()
	for db, keys := range want.dbs {
		for key, w := range keys {
			g, ok := got.dbs[db][key]
			if !ok {
				t.Errorf("db %s key %q: missing", db, key)
				continue
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("db %s key %q:\n got %s\nwant %s", db, key, short(g), short(w))
			}
		}
	}
	for db, keys := range got.dbs {
		for key := range keys {
			if _, ok := want.dbs[db][key]; !ok {
				t.Errorf("db %s key %q: decoded but not in the JSON", db, key)
			}
		}
	}
	gf, wf := fmt.Sprint(got.functions), fmt.Sprint(want.functions)
	if len(got.functions)+len(want.functions) > 0 && gf != wf {
		t.Errorf("functions:\n got %s\nwant %s", gf, wf)
	}
}

func short(x any) string {
	b, _ := json.Marshal(x)
	if len(b) > 600 {
		return string(b[:600]) + "..."
	}
	return string(b)
}
