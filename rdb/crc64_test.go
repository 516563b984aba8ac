package rdb

import (
	"hash/crc64"
	"math/rand/v2"
	"testing"
)

func TestCRC64(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
	}{
		{"", 0},
		{"123456789", 0xe9c6d914c4b8d9ca},
	}
	for _, tc := range tests {
		if got := CRC64(0, []byte(tc.in)); got != tc.want {
			t.Errorf("CRC64(%q) = %#x, want %#x", tc.in, got, tc.want)
		}
	}
}

// TestCRC64AgainstStdlib checks the slicing-by-16 code against hash/crc64 with the same polynomial,
// at every length and split point that matters.
func TestCRC64AgainstStdlib(t *testing.T) {
	tab := crc64.MakeTable(crcPoly)
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 300)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	for n := range len(buf) {
		want := ^crc64.Update(^uint64(0), tab, buf[:n]) // Redis: init 0, no final xor
		split := n / 3
		got := CRC64(CRC64(0, buf[:split]), buf[split:n])
		if got != want {
			t.Fatalf("len %d: got %#x want %#x", n, got, want)
		}
	}
}
