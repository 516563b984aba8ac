package rdb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/rmt-project/rmt/internal/redistest"
)

// rec is an Entry with its slices copied.
type rec struct {
	Entry
	version int
	end     int64
}

func decodeAll(t testing.TB, r io.Reader, maxRaw int64) ([]rec, error) {
	t.Helper()
	d := NewDecoder(r)
	if maxRaw >= 0 {
		d.SetMaxRaw(maxRaw)
	}
	var out []rec
	var e Entry
	for {
		err := d.Next(&e)
		if err != nil {
			return out, err
		}
		c := e
		c.Key = bytes.Clone(e.Key)
		c.Value = bytes.Clone(e.Value)
		out = append(out, rec{c, d.Version(), d.Offset()})
	}
}

func readFixture(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOneByteReader(t *testing.T) {
	for _, path := range fixtureFiles(t) {
		data := readFixture(t, path)
		want, err := decodeAll(t, bytes.NewReader(data), -1)
		if err != io.EOF {
			t.Fatalf("%s: %v", path, err)
		}
		got, err := decodeAll(t, iotest.OneByteReader(bytes.NewReader(data)), -1)
		if err != io.EOF {
			t.Fatalf("%s one byte at a time: %v", path, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: one-byte reads decode differently", path)
		}
		d := NewDecoder(bytes.NewReader(data))
		var e Entry
		for d.Next(&e) == nil {
		}
		if d.Offset() != int64(len(data)) {
			t.Errorf("%s: offset %d after EOF, file has %d bytes", path, d.Offset(), len(data))
		}
	}
}

// TestTruncated cuts fixtures at every length (small files) or at many lengths (big ones): the
// decoder must report an error, never io.EOF, never panic.
func TestTruncated(t *testing.T) {
	for _, path := range fixtureFiles(t) {
		data := readFixture(t, path)
		step := 1
		if len(data) > 4096 {
			step = 97
		}
		for n := 0; n < len(data); n += step {
			_, err := decodeAll(t, bytes.NewReader(data[:n]), -1)
			if err == nil || err == io.EOF {
				t.Fatalf("%s cut at %d of %d: err %v", path, n, len(data), err)
			}
		}
	}
}

// TestTruncatedValues cuts every held value of a fixture: ParseValue must fail cleanly.
func TestTruncatedValues(t *testing.T) {
	data := readFixture(t, redistest.Fixture(t, "redis-7.4.1.rdb"))
	recs, err := decodeAll(t, bytes.NewReader(data), -1)
	if err != io.EOF {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Kind != KindKey || len(r.Value) > 2000 {
			continue
		}
		for n := 0; n < len(r.Value); n++ {
			if _, err := ParseValue(r.Type, r.Value[:n]); err == nil {
				t.Fatalf("key %q type %d cut at %d of %d: no error", r.Key, r.Type, n, len(r.Value))
			}
		}
	}
}

// TestMaxRaw frames values without holding them: offsets and lengths must name the bytes a
// normal decode holds, and a ValueReader over that section must see the same elements.
func TestMaxRaw(t *testing.T) {
	for _, path := range fixtureFiles(t) {
		data := readFixture(t, path)
		full, err := decodeAll(t, bytes.NewReader(data), -1)
		if err != io.EOF {
			t.Fatal(err)
		}
		small, err := decodeAll(t, bytes.NewReader(data), 100)
		if err != io.EOF {
			t.Fatal(err)
		}
		if len(small) != len(full) {
			t.Fatalf("%s: %d entries with a small limit, %d without", path, len(small), len(full))
		}
		for i, s := range small {
			f := full[i]
			if f.ValueOffset != s.ValueOffset || f.ValueLen != s.ValueLen {
				t.Fatalf("%s %q: section %d+%d, want %d+%d", path, s.Key, s.ValueOffset, s.ValueLen, f.ValueOffset, f.ValueLen)
			}
			if s.Kind != KindKey && s.Kind != KindModuleAux {
				continue
			}
			if (s.Value == nil) != (s.ValueLen > 100) {
				t.Fatalf("%s %q: %d bytes, held %v", path, s.Key, s.ValueLen, s.Value != nil)
			}
			section := data[s.ValueOffset : s.ValueOffset+s.ValueLen]
			if !bytes.Equal(section, f.Value) {
				t.Fatalf("%s %q: file section differs from the held value", path, s.Key)
			}
			if s.Kind == KindKey && s.Type != TypeModule2 {
				compareReader(t, s.Type, f.Value, io.NewSectionReader(bytes.NewReader(data), s.ValueOffset, s.ValueLen))
			}
		}
	}
}

// compareReader checks that a ValueReader reading r yields what ParseValue makes of raw.
func compareReader(t *testing.T, typ byte, raw []byte, r io.Reader) {
	t.Helper()
	v, err := ParseValue(typ, raw)
	if err != nil {
		t.Fatal(err)
	}
	vr := NewValueReader(typ, r)
	var el Element
	var got []string
	for {
		err := vr.Next(&el)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%q %v %q %d %v %q", el.Member, el.Score, el.Value, el.ExpireMs, el.ID, el.Fields))
	}
	var want []string
	switch TypeName(typ) {
	case "string":
		want = append(want, fmt.Sprintf("%q %v %q %d %v %q", v.String, 0.0, []byte(nil), 0, StreamID{}, [][]byte(nil)))
	case "list", "set":
		for _, m := range append(v.List, v.Set...) {
			want = append(want, fmt.Sprintf("%q %v %q %d %v %q", m, 0.0, []byte(nil), 0, StreamID{}, [][]byte(nil)))
		}
	case "zset":
		for _, m := range v.ZSet {
			want = append(want, fmt.Sprintf("%q %v %q %d %v %q", m.Member, m.Score, []byte(nil), 0, StreamID{}, [][]byte(nil)))
		}
	case "hash":
		for _, f := range v.Hash {
			want = append(want, fmt.Sprintf("%q %v %q %d %v %q", f.Field, 0.0, f.Value, f.ExpireMs, StreamID{}, [][]byte(nil)))
		}
	case "stream":
		for _, e := range v.Stream.Entries {
			want = append(want, fmt.Sprintf("%q %v %q %d %v %q", []byte(nil), 0.0, []byte(nil), 0, e.ID, e.Fields))
		}
		if m := vr.Stream(); m == nil || fmt.Sprint(*m) != fmt.Sprint(v.Stream.StreamMeta) {
			t.Fatalf("stream metadata: got %v want %v", m, v.Stream.StreamMeta)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("type %d: ValueReader gives\n%s\nParseValue gives\n%s", typ, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCorruptInput(t *testing.T) {
	data := readFixture(t, redistest.Fixture(t, "cases/rdb_version_5_with_checksum.rdb"))
	recs, err := decodeAll(t, bytes.NewReader(data), -1)
	if err != io.EOF {
		t.Fatal(err)
	}
	lastKey := recs[len(recs)-1]
	tests := []struct {
		name   string
		mutate func([]byte) []byte
		want   error
		text   string
	}{
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }, ErrCorrupt, "magic"},
		{"future version", func(b []byte) []byte { copy(b[5:], "0099"); return b }, ErrUnsupported, "version"},
		{"checksum", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, ErrChecksum, "offset"},
		{"value byte", func(b []byte) []byte { b[lastKey.ValueOffset+lastKey.ValueLen-1] ^= 0x20; return b }, ErrChecksum, "offset"},
		{"unknown type", func(b []byte) []byte { b[lastKey.ValueOffset-int64(len(lastKey.Key))-2] = 200; return b }, ErrUnsupported, "type or opcode 200"},
		{"zero checksum is not checked", func(b []byte) []byte {
			copy(b[len(b)-8:], make([]byte, 8))
			b[lastKey.ValueOffset+lastKey.ValueLen-1] ^= 0x20
			return b
		}, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mutate(bytes.Clone(data))
			_, err := decodeAll(t, bytes.NewReader(b), -1)
			if tc.want == nil {
				if err != io.EOF {
					t.Fatalf("got %v, want io.EOF", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) || !strings.HasPrefix(err.Error(), "rdb: ") {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.want, tc.text)
			}
		})
	}
}

// TestErrorNamesKey checks that an error inside a value names the key and the offset.
func TestErrorNamesKey(t *testing.T) {
	b := []byte("REDIS0003")
	b = append(b, TypeList, 3, 'k', 'e', 'y', 2, 1, 'a', 0x40|0x3f, 0xff) // 2 items, 2nd too short
	_, err := decodeAll(t, bytes.NewReader(b), -1)
	if err == nil || !strings.Contains(err.Error(), `(key "key")`) || !strings.Contains(err.Error(), "at offset 19") {
		t.Fatalf("got %v", err)
	}
}

func TestModuleV1Refused(t *testing.T) {
	b := append([]byte("REDIS0008"), TypeModule, 1, 'k', 0)
	_, err := decodeAll(t, bytes.NewReader(b), -1)
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("got %v", err)
	}
}

// FuzzDecoder feeds arbitrary bytes to the decoder and to both value parsers. Run it with a short
// -fuzzminimizetime (the fixture seeds are large): go test -fuzz FuzzDecoder -fuzzminimizetime 2s
func FuzzDecoder(f *testing.F) {
	for _, path := range fixtureFiles(f) {
		f.Add(readFixture(f, path))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		defer func() {
			// LZF may expand 89 times, and the value is parsed twice; beyond that and the fixed
			// buffers, allocation must not depend on lengths read from the input.
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if n, limit := after.TotalAlloc-before.TotalAlloc, uint64(400*len(data)+16<<20); n > limit {
				t.Fatalf("%d bytes allocated for %d bytes of input", n, len(data))
			}
		}()
		d := NewDecoder(bytes.NewReader(data))
		d.SetMaxRaw(1 << 20)
		var e Entry
		for range 10000 {
			if err := d.Next(&e); err != nil {
				return
			}
			if d.Offset() > int64(len(data)) {
				t.Fatalf("offset %d past %d bytes", d.Offset(), len(data))
			}
			if e.Kind != KindKey || e.Value == nil {
				continue
			}
			v, err := ParseValue(e.Type, e.Value)
			vr := NewValueReader(e.Type, bytes.NewReader(e.Value))
			var el Element
			n := 0
			var rerr error
			for rerr = vr.Next(&el); rerr == nil; rerr = vr.Next(&el) {
				n++
			}
			if err == nil && v.Type != TypeModule2 && rerr != io.EOF {
				t.Fatalf("ParseValue accepts what ValueReader refuses: %v", rerr)
			}
			if e.Type == TypeString {
				str, serr := AppendString(nil, e.Value)
				if (serr == nil) != (err == nil) || err == nil && !bytes.Equal(str, v.String) {
					t.Fatalf("AppendString %q, %v; ParseValue %v", str, serr, err)
				}
			}
		}
	})
}

func TestRest(t *testing.T) {
	data := readFixture(t, redistest.Fixture(t, "cases/function.rdb"))
	tail := "*1\r\n$4\r\nPING\r\n"
	d := NewDecoder(iotest.HalfReader(bytes.NewReader(append(bytes.Clone(data), tail...))))
	var e Entry
	for d.Next(&e) == nil {
	}
	if d.Offset() != int64(len(data)) {
		t.Fatalf("offset %d, want %d", d.Offset(), len(data))
	}
	rest, err := io.ReadAll(d.Rest())
	if err != nil || string(rest) != tail {
		t.Fatalf("rest %q %v", rest, err)
	}
}
