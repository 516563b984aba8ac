package rdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
)

// lpRaw appends one entry given its encoding bytes, adding the back-length.
func lpRaw(lp []byte, enc ...byte) []byte {
	return lpAppendBacklen(append(lp, enc...), len(enc))
}

func TestListpackEncodings(t *testing.T) {
	long := strings.Repeat("x", 5000)
	mid := strings.Repeat("y", 4095)
	lp := []byte{0, 0, 0, 0, 0, 0}
	lp = lpRaw(lp, 0x05)                                               // 7-bit uint
	lp = lpRaw(lp, 0x7f)                                               // 7-bit uint, max
	lp = lpRaw(lp, 0x83, 'a', 'b', 'c')                                // 6-bit string
	lp = lpRaw(lp, 0xd0, 0x00)                                         // 13-bit int, min
	lp = lpRaw(lp, 0xcf, 0xff)                                         // 13-bit int, max
	lp = lpRaw(lp, append([]byte{0xef, 0xff}, mid...)...)              // 12-bit string, max
	lp = lpRaw(lp, append([]byte{0xf0, 0x88, 0x13, 0, 0}, long...)...) // 32-bit string
	lp = lpRaw(lp, 0xf1, 0x00, 0x80)                                   // int16 min
	lp = lpRaw(lp, 0xf2, 0x00, 0x00, 0x80)                             // int24 min
	lp = lpRaw(lp, 0xf3, 0x00, 0x00, 0x00, 0x80)                       // int32 min
	lp = lpRaw(append(lp, 0xf4), binary.LittleEndian.AppendUint64(nil, 1<<63)...)
	lp = lpRaw(lp, 0xf4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f) // int64 max
	lp = lpRaw(lp, 0x80)                                                 // empty string
	lp = lpFinish(lp, 13)
	want := []string{"5", "127", "abc", "-4096", "4095", mid, long, "-32768", "-8388608", "-2147483648",
		strconv.FormatInt(math.MinInt64, 10), strconv.FormatInt(math.MaxInt64, 10), ""}
	v, err := ParseValue(TypeListQuicklist2, appendString([]byte{1, quicklistPacked}, lp))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%q", v.List) != fmt.Sprintf("%q", want) {
		t.Fatalf("got %q\nwant %q", v.List, want)
	}
}

// TestListpackWriter checks the writer's choice of encodings through the reader, at each edge.
func TestListpackWriter(t *testing.T) {
	ints := []int64{0, 127, 128, -1, -4096, 4095, 4096, -4097, 32767, -32768, 32768, 1<<23 - 1, -1 << 23,
		1 << 23, 1<<31 - 1, -1 << 31, 1 << 31, math.MaxInt64, math.MinInt64}
	strs := []string{"", "a", strings.Repeat("b", 63), strings.Repeat("c", 64), strings.Repeat("d", 4095),
		strings.Repeat("e", 4096), strings.Repeat("f", 70000)}
	lp := []byte{0, 0, 0, 0, 0, 0}
	var want []string
	for _, n := range ints {
		lp = lpAppendInt(lp, n)
		want = append(want, strconv.FormatInt(n, 10))
	}
	for _, s := range strs {
		lp = lpAppendString(lp, []byte(s))
		want = append(want, s)
	}
	lp = lpFinish(lp, len(want))
	it, err := newListpackIter(lp)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		s, n, isInt, err := it.next()
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if got := string(appendText(nil, s, n, isInt)); got != w {
			t.Fatalf("entry %d: got %.20q want %.20q", i, got, w)
		}
		if isInt != (i < len(ints)) {
			t.Fatalf("entry %d: isInt %v", i, isInt)
		}
	}
	if _, _, _, err := it.next(); err != errEnd {
		t.Fatalf("after the last entry: %v", err)
	}
}

func TestListpackCorrupt(t *testing.T) {
	good := lpFinish(lpAppendString([]byte{0, 0, 0, 0, 0, 0}, []byte("hello")), 1)
	tests := []struct {
		name string
		lp   []byte
	}{
		{"size field", func() []byte { b := bytes.Clone(good); b[0]++; return b }()},
		{"string overrun", func() []byte { b := bytes.Clone(good); b[6] = 0x80 | 40; return b }()},
		{"bad encoding", func() []byte { b := bytes.Clone(good); b[6] = 0xf5; return b }()},
		{"no end", func() []byte { b := bytes.Clone(good); b[len(b)-1] = 0; return b }()},
		{"short", []byte{7, 0, 0, 0, 0, 0}},
	}
	for _, tc := range tests {
		_, err := ParseValue(TypeSetListpack, appendString(nil, tc.lp))
		if err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// zlBuild makes a ziplist from raw entry encodings, adding each entry's prevlen.
func zlBuild(entries ...[]byte) []byte {
	zl := make([]byte, 10)
	prev := 0
	for _, e := range entries {
		start := len(zl)
		if prev < 254 {
			zl = append(zl, byte(prev))
		} else {
			zl = binary.LittleEndian.AppendUint32(append(zl, 0xfe), uint32(prev))
		}
		zl = append(zl, e...)
		prev = len(zl) - start
	}
	zl = append(zl, 0xff)
	binary.LittleEndian.PutUint32(zl, uint32(len(zl)))
	binary.LittleEndian.PutUint16(zl[8:], uint16(len(entries)))
	return zl
}

func TestZiplistEncodings(t *testing.T) {
	s300 := strings.Repeat("s", 300)
	s20k := strings.Repeat("t", 20000)
	zl := zlBuild(
		append([]byte{0x03}, "abc"...),
		append([]byte{0x40 | 300>>8, 300 & 0xff}, s300...),
		append([]byte{0x80, 0, 0, 0x4e, 0x20}, s20k...),
		[]byte{0xc0, 0x00, 0x80},             // int16
		[]byte{0xd0, 0x00, 0x00, 0x00, 0x80}, // int32
		append([]byte{0xe0}, binary.LittleEndian.AppendUint64(nil, uint64(1)<<63)...),
		[]byte{0xf0, 0xff, 0xff, 0xff}, // int24 -1
		[]byte{0xfe, 0x80},             // int8
		[]byte{0xf1},                   // immediate 0
		[]byte{0xfd},                   // immediate 12
	)
	want := []string{"abc", s300, s20k, "-32768", "-2147483648", strconv.FormatInt(math.MinInt64, 10), "-1", "-128", "0", "12"}
	v, err := ParseValue(TypeListZiplist, appendString(nil, zl))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%q", v.List) != fmt.Sprintf("%q", want) {
		t.Fatalf("got %.200q\nwant %.200q", v.List, want)
	}
	// the same entries as a zset: member, score pairs
	zs := zlBuild(append([]byte{0x01}, 'a'), []byte{0xfe, 0xfb}, append([]byte{0x01}, 'b'), append([]byte{0x03}, "2.5"...))
	v, err = ParseValue(TypeZSetZiplist, appendString(nil, zs))
	if err != nil || len(v.ZSet) != 2 || v.ZSet[0].Score != -5 || v.ZSet[1].Score != 2.5 {
		t.Fatalf("zset ziplist: %+v %v", v, err)
	}
	// odd count for a hash
	if _, err := ParseValue(TypeHashZiplist, appendString(nil, zlBuild([]byte{0xf1}))); err == nil {
		t.Fatal("hash ziplist with one entry: no error")
	}
}

func TestIntset(t *testing.T) {
	for _, w := range []int{2, 4, 8} {
		b := binary.LittleEndian.AppendUint32(nil, uint32(w))
		b = binary.LittleEndian.AppendUint32(b, 2)
		var want []string
		for _, n := range []int64{-1, 1<<(8*w-1) - 1} {
			b = binary.LittleEndian.AppendUint64(b, uint64(n))[:len(b)+w]
			want = append(want, strconv.FormatInt(n, 10))
		}
		v, err := ParseValue(TypeSetIntset, appendString(nil, b))
		if err != nil || fmt.Sprintf("%q", v.Set) != fmt.Sprintf("%q", want) {
			t.Fatalf("width %d: %q %v, want %q", w, v.Set, err, want)
		}
		if _, err := ParseValue(TypeSetIntset, appendString(nil, b[:len(b)-1])); err == nil {
			t.Fatalf("width %d: short intset accepted", w)
		}
	}
}

func TestQuicklist2PlainNode(t *testing.T) {
	big := strings.Repeat("p", 10000)
	lp := lpFinish(lpAppendString([]byte{0, 0, 0, 0, 0, 0}, []byte("small")), 1)
	raw := appendLen(nil, 3)
	raw = appendString(appendLen(raw, quicklistPacked), lp)
	raw = appendString(appendLen(raw, quicklistPlain), []byte(big))
	raw = appendString(appendLen(raw, quicklistPacked), lp)
	v, err := ParseValue(TypeListQuicklist2, raw)
	if err != nil || len(v.List) != 3 || string(v.List[1]) != big || string(v.List[2]) != "small" {
		t.Fatalf("got %d elements, %v", len(v.List), err)
	}
	bad := appendString(appendLen(appendLen(nil, 1), 3), lp) // container 3 does not exist
	if _, err := ParseValue(TypeListQuicklist2, bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("container 3: %v", err)
	}
}
