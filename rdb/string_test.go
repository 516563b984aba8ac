package rdb

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestAppendString(t *testing.T) {
	long := strings.Repeat("x", 70000)
	lzfSrc := []byte(strings.Repeat("abcdefgh", 40))
	compressed, ok := lzfCompress(nil, lzfSrc, nil)
	if !ok {
		t.Fatal("test data did not compress")
	}
	lzf := append([]byte{0xc3}, appendLen(appendLen(nil, uint64(len(compressed))), uint64(len(lzfSrc)))...)
	lzf = append(lzf, compressed...)
	for _, tc := range []struct {
		name string
		raw  []byte
		want string
	}{
		{"empty", []byte{0x00}, ""},
		{"6-bit length", []byte("\x03abc"), "abc"},
		{"14-bit length", append([]byte{0x40 | 300>>8, 300 & 0xff}, strings.Repeat("y", 300)...), strings.Repeat("y", 300)},
		{"32-bit length", append(appendLen(nil, uint64(len(long))), long...), long},
		{"64-bit length", append([]byte{0x81, 0, 0, 0, 0, 0, 0, 0, 2}, "ok"...), "ok"},
		{"int8", []byte{0xc0, 0xfe}, "-2"},
		{"int16", []byte{0xc1, 0x39, 0x30}, "12345"},
		{"int32", []byte{0xc2, 0xff, 0xff, 0xff, 0x7f}, "2147483647"},
		{"lzf", lzf, string(lzfSrc)},
	} {
		got, err := AppendString([]byte("pre:"), tc.raw)
		if err != nil || string(got) != "pre:"+tc.want {
			t.Errorf("%s: got %.40q, %v; want %.40q", tc.name, got, err, tc.want)
		}
	}
}

func TestAppendStringRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"nothing", nil},
		{"trailing byte", []byte("\x01ab")},
		{"cut", []byte("\x05abc")},
		{"cut 14-bit length", []byte{0x41}},
		{"cut 32-bit length", []byte{0x80, 0, 0}},
		{"cut int16", []byte{0xc1, 0x01}},
		{"unknown encoding", []byte{0xc4}},
		{"bad length byte", []byte{0x82}},
		{"lzf lengths out of proportion", []byte{0xc3, 0x01, 0x3f, 0x00}},
		{"lzf data cut", []byte{0xc3, 0x05, 0x05, 0x00}},
		{"lzf data wrong", []byte{0xc3, 0x02, 0x05, 0x00, 'a'}},
	} {
		got, err := AppendString([]byte("keep"), tc.raw)
		if err == nil || !errors.Is(err, ErrCorrupt) && !strings.Contains(err.Error(), "LZF") {
			t.Errorf("%s: error %v, want a corrupt-data error", tc.name, err)
		}
		if string(got) != "keep" {
			t.Errorf("%s: dst changed to %q", tc.name, got)
		}
	}
}

// Every string of every fixture decodes as ParseValue decodes it.
func TestAppendStringFixtures(t *testing.T) {
	n := 0
	for _, path := range fixtureFiles(t) {
		d := NewDecoder(bytes.NewReader(readFixture(t, path)))
		var e Entry
		for d.Next(&e) == nil {
			if e.Kind != KindKey || e.Type != TypeString {
				continue
			}
			v, err := ParseValue(e.Type, e.Value)
			if err != nil {
				t.Fatalf("%s: key %q: %v", path, e.Key, err)
			}
			got, err := AppendString(nil, e.Value)
			if err != nil || !bytes.Equal(got, v.String) {
				t.Fatalf("%s: key %q: got %q, %v; want %q", path, e.Key, got, err, v.String)
			}
			n++
		}
	}
	if n < 100 {
		t.Fatalf("only %d strings in the fixtures", n)
	}
}
