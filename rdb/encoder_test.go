package rdb

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

type keyed struct {
	db     int
	key    []byte
	v      *Value
	expire int64
}

func randBytes(r *rand.Rand) []byte {
	switch r.IntN(6) {
	case 0:
		return []byte(strconv.FormatInt(r.Int64N(1<<40)-1<<39, 10)) // integer-looking
	case 1:
		return bytes.Repeat([]byte("ab"), r.IntN(3000)) // compressible, sometimes big
	case 2:
		return []byte{}
	}
	b := make([]byte, r.IntN(80))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// randValue makes a random value of a random type, as ParseValue would return it for the
// encoding the encoder picks.
func randValue(r *rand.Rand, version int) *Value {
	n := 1 + r.IntN(40)
	switch r.IntN(6) {
	case 0:
		return &Value{Type: TypeString, String: randBytes(r)}
	case 1:
		v := &Value{Type: TypeList}
		for range n {
			v.List = append(v.List, randBytes(r))
		}
		return v
	case 2:
		v := &Value{Type: TypeSet}
		for range n {
			v.Set = append(v.Set, randBytes(r))
		}
		return v
	case 3:
		v := &Value{Type: TypeZSet2}
		if version < 8 {
			v.Type = TypeZSet
		}
		for range n {
			s := []float64{r.NormFloat64() * 1e6, math.Inf(1), math.Inf(-1), float64(r.IntN(100)), 0.1}[r.IntN(5)]
			v.ZSet = append(v.ZSet, ZMember{randBytes(r), s})
		}
		return v
	case 4:
		v := &Value{Type: TypeHash}
		ttl := version >= 12 && r.IntN(2) == 0
		for i := range n {
			f := HashField{Field: randBytes(r), Value: randBytes(r)}
			if ttl && i%3 == 0 {
				f.ExpireMs = 4102444800000 + r.Int64N(1e9)
			}
			v.Hash = append(v.Hash, f)
		}
		if ttl {
			v.Type = TypeHashMetadata
			v.Hash[0].ExpireMs = 4102444800000
		}
		return v
	}
	if version < 9 {
		return &Value{Type: TypeString, String: []byte("x")}
	}
	s := &Stream{}
	id := StreamID{uint64(r.Int64N(1 << 42)), 0}
	for i := range n * 5 {
		id.Seq += uint64(r.IntN(3))
		if i%7 == 0 {
			id.Ms += uint64(r.IntN(1000))
		}
		f := [][]byte{[]byte("field"), randBytes(r)}
		if i%5 == 0 {
			f = append(f, []byte(strconv.Itoa(i)), randBytes(r))
		}
		s.Entries = append(s.Entries, StreamEntry{id, f})
		id.Seq++
	}
	s.Length = uint64(len(s.Entries))
	s.LastID = s.Entries[len(s.Entries)-1].ID
	s.FirstID = s.Entries[0].ID
	s.EntriesAdded = s.Length
	g := StreamGroup{Name: []byte("g1"), LastID: s.Entries[2].ID, EntriesRead: 3,
		PEL: []StreamNACK{{s.Entries[0].ID, 1700000000000, 2}, {s.Entries[1].ID, 1700000000001, 1}}}
	g.Consumers = []StreamConsumer{{Name: []byte("c1"), SeenTime: 1700000000005, ActiveTime: 1700000000004,
		PEL: []StreamID{s.Entries[0].ID, s.Entries[1].ID}}}
	s.Groups = []StreamGroup{g}
	v := &Value{Type: TypeStreamListpacks3, Stream: s}
	switch {
	case version == 10:
		v.Type = TypeStreamListpacks2
		s.Groups[0].Consumers[0].ActiveTime = s.Groups[0].Consumers[0].SeenTime
	case version == 9:
		v.Type = TypeStreamListpacks
		s.Groups[0].Consumers[0].ActiveTime = s.Groups[0].Consumers[0].SeenTime
		s.Groups[0].EntriesRead = -1
	}
	return v
}

// TestEncoderRoundTrip writes random values with the encoder and reads them back.
func TestEncoderRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for _, version := range []int{3, 6, 8, 9, 10, 11, 12} {
		for round := range 20 {
			var want []keyed
			var buf bytes.Buffer
			enc := NewEncoder(&buf, version)
			enc.WriteHeader()
			enc.WriteAux("redis-ver", "7.4.1")
			for db := range 1 + r.IntN(3) {
				enc.SelectDB(db * 7)
				for i := range 1 + r.IntN(10) {
					k := keyed{db: db * 7, key: fmt.Appendf(randBytes(r), ":%d", i), v: randValue(r, version)}
					if r.IntN(3) == 0 {
						k.expire = 4102444800000 + int64(r.IntN(1000))*1000
					}
					if err := enc.WriteEntry(k.key, k.v, k.expire); err != nil {
						t.Fatal(err)
					}
					want = append(want, k)
				}
			}
			if err := enc.Close(); err != nil {
				t.Fatal(err)
			}
			d := NewDecoder(bytes.NewReader(buf.Bytes()))
			var e Entry
			var got []keyed
			for {
				err := d.Next(&e)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("v%d round %d: %v", version, round, err)
				}
				if e.Kind != KindKey {
					continue
				}
				v, err := ParseValue(e.Type, e.Value)
				if err != nil {
					t.Fatalf("v%d round %d key %q: %v", version, round, e.Key, err)
				}
				got = append(got, keyed{e.DB, bytes.Clone(e.Key), v, e.ExpireMs})
			}
			if len(got) != len(want) {
				t.Fatalf("v%d: %d keys back, %d written", version, len(got), len(want))
			}
			for i := range want {
				if !equalKeyed(got[i], want[i]) {
					t.Fatalf("v%d key %q:\n got %+v\nwant %+v", version, want[i].key, got[i].v, want[i].v)
				}
			}
		}
	}
}

// equalKeyed compares two entries, treating nil and empty byte slices alike.
func equalKeyed(a, b keyed) bool {
	ja, jb := fmt.Sprintf("%d %q %d %v", a.db, a.key, a.expire, dumpValue(a.v)), fmt.Sprintf("%d %q %d %v", b.db, b.key, b.expire, dumpValue(b.v))
	return ja == jb
}

func dumpValue(v *Value) string {
	var b strings.Builder
	fmt.Fprintf(&b, "type %d string %q list %q set %q", v.Type, v.String, v.List, v.Set)
	for _, z := range v.ZSet {
		fmt.Fprintf(&b, " z %q %v", z.Member, z.Score)
	}
	for _, h := range v.Hash {
		fmt.Fprintf(&b, " h %q %q %d", h.Field, h.Value, h.ExpireMs)
	}
	if v.Stream != nil {
		for _, e := range v.Stream.Entries {
			fmt.Fprintf(&b, " e %v %q", e.ID, e.Fields)
		}
		m := v.Stream.StreamMeta
		fmt.Fprintf(&b, " meta %d %v %v %v %d", m.Length, m.LastID, m.FirstID, m.MaxDeletedID, m.EntriesAdded)
		for _, g := range m.Groups {
			fmt.Fprintf(&b, " g %q %v %d %v", g.Name, g.LastID, g.EntriesRead, g.PEL)
			for _, c := range g.Consumers {
				fmt.Fprintf(&b, " c %q %d %d %v", c.Name, c.SeenTime, c.ActiveTime, c.PEL)
			}
		}
	}
	return b.String()
}

// TestEncoderFixtures re-encodes every fixture and checks the copy decodes to the same values.
func TestEncoderFixtures(t *testing.T) {
	for _, path := range fixtureFiles(t) {
		data := readFixture(t, path)
		recs, err := decodeAll(t, bytes.NewReader(data), -1)
		if err != io.EOF {
			t.Fatal(err)
		}
		version := max(recs0Version(recs), 9)
		var buf bytes.Buffer
		enc := NewEncoder(&buf, version)
		enc.WriteHeader()
		var want []keyed
		for _, r := range recs {
			if r.Kind != KindKey {
				continue
			}
			v, err := ParseValue(r.Type, r.Value)
			if err != nil {
				t.Fatal(err)
			}
			enc.SelectDB(r.DB)
			if err := enc.WriteEntry(r.Key, v, r.ExpireMs); err != nil {
				t.Fatalf("%s %q: %v", path, r.Key, err)
			}
			want = append(want, keyed{r.DB, r.Key, v, r.ExpireMs})
		}
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
		back, err := decodeAll(t, bytes.NewReader(buf.Bytes()), -1)
		if err != io.EOF {
			t.Fatalf("%s: %v", path, err)
		}
		if len(back) != len(want) {
			t.Fatalf("%s: %d entries back, want %d", path, len(back), len(want))
		}
		for i, r := range back {
			v, err := ParseValue(r.Type, r.Value)
			if err != nil {
				t.Fatal(err)
			}
			w := want[i]
			w.v = &Value{Type: r.Type, String: w.v.String, List: w.v.List, Set: w.v.Set, ZSet: w.v.ZSet, Hash: w.v.Hash, Stream: w.v.Stream}
			if !equalKeyed(keyed{r.DB, r.Key, v, r.ExpireMs}, w) {
				t.Errorf("%s %q: re-encoded value differs:\n got %s\nwant %s", path, r.Key, dumpValue(v), dumpValue(w.v))
			}
		}
	}
}

func recs0Version(recs []rec) int {
	if len(recs) == 0 {
		return 0
	}
	return recs[0].version
}

// TestEncoderLoadsInRedis writes a file for Redis 7.0 (RDB v10) and starts redis-server on it.
func TestEncoderLoadsInRedis(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(3, 4))
	f, err := os.Create(filepath.Join(dir, "f.rdb"))
	if err != nil {
		t.Fatal(err)
	}
	enc := NewEncoder(f, 10)
	enc.WriteHeader()
	enc.WriteAux("redis-ver", "7.0.15")
	enc.WriteFunction([]byte("#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return 1 end)"))
	type kv struct {
		db     int
		key    []byte
		v      *Value
		expire int64
	}
	var all []kv
	for db := range 2 {
		enc.SelectDB(db)
		for i := range 60 {
			k := kv{db, []byte(fmt.Sprintf("k:%d:%d", db, i)), randValue(r, 10), 0}
			if i%4 == 0 {
				k.expire = 4102444800000
			}
			if z := k.v.ZSet; z != nil { // a set of members: no duplicates
				k.v.ZSet = dedupZ(z)
			}
			if h := k.v.Hash; h != nil {
				k.v.Hash = dedupH(h)
			}
			if s := k.v.Set; s != nil {
				k.v.Set = dedupS(s)
			}
			enc.WriteEntry(k.key, k.v, k.expire)
			all = append(all, k)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	rc := startRedis(t, dir, "--dbfilename", "f.rdb")
	for _, k := range all {
		rc.must("SELECT", k.db)
		want := normalize(t, renderValue(k.v, k.expire, 0))
		if isEmpty(k.v) {
			want = nil
		}
		var got any
		if rc.must("EXISTS", k.key).(int64) == 1 {
			got = serverView(t, rc, k.key)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("db %d %q:\n got %s\nwant %s", k.db, k.key, short(got), short(want))
		}
	}
	if l := rc.must("FUNCTION", "LIST").([]any); len(l) != 1 {
		t.Errorf("FUNCTION LIST: %v", l)
	}
}

func dedupS(s [][]byte) [][]byte {
	seen := map[string]bool{}
	var out [][]byte
	for _, m := range s {
		if !seen[string(m)] {
			seen[string(m)] = true
			out = append(out, m)
		}
	}
	return out
}

func dedupZ(z []ZMember) []ZMember {
	seen := map[string]bool{}
	var out []ZMember
	for _, m := range z {
		if !seen[string(m.Member)] {
			seen[string(m.Member)] = true
			out = append(out, m)
		}
	}
	return out
}

func dedupH(h []HashField) []HashField {
	seen := map[string]bool{}
	var out []HashField
	for _, f := range h {
		if !seen[string(f.Field)] {
			seen[string(f.Field)] = true
			out = append(out, f)
		}
	}
	return out
}
