package rdb

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strconv"
	"testing"
	"testing/iotest"
)

// encodedString is s as an RDB string value's raw bytes (LZF when it compresses).
func encodedString(s []byte) []byte {
	e := &Encoder{table: new(lzfTable)}
	return e.str(nil, s)
}

// TestStringReader: every encoding of a string value reads back as AppendString decodes it,
// whole or one byte at a time, and LZF strings far longer than the window.
func TestStringReader(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	long := make([]byte, 3<<20)
	for i := range long { // compressible, with back references of every distance
		if i > 9000 && rng.IntN(4) > 0 {
			long[i] = long[i-1-rng.IntN(8191)]
		} else {
			long[i] = byte('a' + rng.IntN(26))
		}
	}
	random := make([]byte, 200_000)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	cases := map[string][]byte{
		"empty": {}, "short": []byte("hello"), "int8": []byte("-12"), "int16": []byte("1234"),
		"int32": []byte("-2000000000"), "long": long, "random": random,
		"runs": bytes.Repeat([]byte("abcdefgh"), 100_000),
	}
	for name, s := range cases {
		var raw []byte
		if n, err := strconv.ParseInt(string(s), 10, 32); err == nil && strconv.FormatInt(n, 10) == string(s) {
			raw = appendIntString(nil, n)
		} else {
			raw = encodedString(s)
		}
		want, err := AppendString(nil, raw)
		if err != nil || !bytes.Equal(want, s) {
			t.Fatalf("%s: AppendString: %v", name, err)
		}
		for mode, r := range map[string]func() io.Reader{
			"whole":    func() io.Reader { return bytes.NewReader(raw) },
			"one_byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(raw)) },
		} {
			if mode == "one_byte" && len(raw) > 1<<20 {
				continue
			}
			sr, err := NewStringReader(r())
			if err != nil {
				t.Fatalf("%s/%s: %v", name, mode, err)
			}
			got, err := io.ReadAll(iotest.HalfReader(sr))
			if err != nil || !bytes.Equal(got, s) || sr.Len() != int64(len(s)) {
				t.Fatalf("%s/%s: %d bytes of %d (Len %d), %v", name, mode, len(got), len(s), sr.Len(), err)
			}
		}
	}
}

// appendIntString appends n as Redis's integer string encodings store it.
func appendIntString(b []byte, n int64) []byte {
	switch {
	case n >= -1<<7 && n < 1<<7:
		return append(b, 0xc0|encInt8, byte(n))
	case n >= -1<<15 && n < 1<<15:
		return append(b, 0xc0|encInt16, byte(n), byte(n>>8))
	}
	return append(b, 0xc0|encInt32, byte(n), byte(n>>8), byte(n>>16), byte(n>>24))
}

// TestStringReaderCorrupt: a string cut anywhere, or whose bytes are damaged, fails with an
// error (never a panic, never more bytes than it says).
func TestStringReaderCorrupt(t *testing.T) {
	raw := encodedString(bytes.Repeat([]byte("0123456789abcdef"), 10_000))
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 300; i++ {
		in := bytes.Clone(raw)
		switch i % 3 {
		case 0:
			in = in[:rng.IntN(len(in))]
		default:
			for range 1 + rng.IntN(4) {
				in[rng.IntN(len(in))] = byte(rng.Uint32())
			}
		}
		sr, err := NewStringReader(bytes.NewReader(in))
		if err != nil {
			continue
		}
		got, err := io.ReadAll(sr)
		if int64(len(got)) > sr.Len() {
			t.Fatalf("case %d: %d bytes read, Len %d", i, len(got), sr.Len())
		}
		if i%3 == 0 && err == nil {
			t.Fatalf("case %d: a cut string read without error", i)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("case %d: error %v", i, err)
		}
	}
}

// FuzzStringReader: any input either fails or reads what AppendString decodes from it.
func FuzzStringReader(f *testing.F) {
	f.Add(encodedString(bytes.Repeat([]byte("abc"), 1000)))
	f.Add(encodedString([]byte("hello world, hello world, hello")))
	f.Add(appendIntString(nil, -300))
	f.Fuzz(func(t *testing.T, in []byte) {
		want, _, werr := appendRawString(nil, in)
		sr, err := NewStringReader(bytes.NewReader(in))
		if err != nil {
			return
		}
		got, err := io.ReadAll(io.LimitReader(sr, 1<<24))
		if err == nil && werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("read %q, AppendString %q", got, want)
		}
	})
}
