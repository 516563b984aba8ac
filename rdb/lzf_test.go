package rdb

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestLZFRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	inputs := [][]byte{
		[]byte(strings.Repeat("abc", 1000)),
		[]byte(strings.Repeat("a", 100000)),
		[]byte("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"),
	}
	for range 200 {
		b := make([]byte, r.IntN(20000))
		for i := range b {
			b[i] = "abcdefgh"[r.IntN(1+r.IntN(8))]
		}
		inputs = append(inputs, b)
	}
	for i, in := range inputs {
		c, ok := lzfCompress(nil, in, nil)
		if !ok {
			if i < 3 {
				t.Fatalf("input %d: not compressed", i)
			}
			continue
		}
		if len(c) >= len(in) {
			t.Fatalf("input %d: %d bytes compressed to %d", i, len(in), len(c))
		}
		out, err := lzfDecompress([]byte("x"), c, len(in))
		if err != nil || !bytes.Equal(out[1:], in) || out[0] != 'x' {
			t.Fatalf("input %d: round trip failed: %v", i, err)
		}
	}
}

func TestLZFCorrupt(t *testing.T) {
	tests := []struct {
		name string
		src  []byte
		ulen int
	}{
		{"back reference before start", []byte{0x00, 'a', 0x20, 0x05}, 4},
		{"literal past input", []byte{0x05, 'a'}, 6},
		{"output longer than said", []byte{0x02, 'a', 'b', 'c'}, 2},
		{"output shorter than said", []byte{0x00, 'a'}, 5},
		{"truncated reference", []byte{0x00, 'a', 0x20}, 4},
		{"truncated long reference", []byte{0x00, 'a', 0xe0}, 20},
	}
	for _, tc := range tests {
		if _, err := lzfDecompress(nil, tc.src, tc.ulen); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	// a valid overlapping reference: "a" then copy 3 from 1 back = "aaaa"
	out, err := lzfDecompress(nil, []byte{0x00, 'a', 0x20, 0x00}, 4)
	if err != nil || string(out) != "aaaa" {
		t.Fatalf("overlapping reference: %q %v", out, err)
	}
}

func FuzzLZF(f *testing.F) {
	f.Add([]byte(strings.Repeat("abcd", 50)), 200)
	f.Add([]byte{0x00, 'a', 0x20, 0x00}, 4)
	var table lzfTable // reused across inputs, as the encoder does
	f.Fuzz(func(t *testing.T, src []byte, ulen int) {
		if ulen < 0 || ulen > 1<<20 {
			return
		}
		out, err := lzfDecompress(nil, src, ulen)
		if err == nil && len(out) != ulen {
			t.Fatalf("got %d bytes, want %d", len(out), ulen)
		}
		if c, ok := lzfCompress(nil, src, &table); ok {
			back, err := lzfDecompress(nil, c, len(src))
			if err != nil || !bytes.Equal(back, src) {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}
