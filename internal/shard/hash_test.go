package shard

import (
	"fmt"
	"testing"
)

// Vectors for "apple" come from twemproxy's own unit test, src/test_all.c
// (test_hash_algorithms, "same result as libmemcached/tests/hash_results.h").
var appleVectors = map[string]uint32{
	"one_at_a_time": 2297466611,
	"md5":           3195025439,
	"crc16":         3662830516,
	"crc32":         10542,
	"crc32a":        2838417488,
	"fnv1_32":       67176023,
	"fnv1a_32":      280767167,
	"fnv1_64":       473199127,
	"fnv1a_64":      1488911807,
	"hsieh":         3738850110,
	"jenkins":       1442444624,
	"murmur":        4142305122,
}

func TestHashApple(t *testing.T) {
	if len(appleVectors) != len(HashNames()) {
		t.Fatalf("%d vectors for %d hashes", len(appleVectors), len(HashNames()))
	}
	for _, name := range HashNames() {
		fn, err := Hash(name)
		if err != nil {
			t.Fatal(err)
		}
		want, ok := appleVectors[name]
		if !ok {
			t.Fatalf("no vector for %s", name)
		}
		if got := fn([]byte("apple")); got != want {
			t.Errorf("%s(apple) = %d, want %d", name, got, want)
		}
	}
}

func TestHashUnknown(t *testing.T) {
	for _, name := range []string{"", "FNV1A_64", "murmur3", "ketama"} {
		if _, err := Hash(name); err == nil {
			t.Errorf("Hash(%q): no error", name)
		}
	}
}

// TestKetamaHash checks md5 words against twemproxy's test_all.c: ketama_hash("server1-8", 0)
// and ketama_hash("server1-8", 3).
func TestKetamaHash(t *testing.T) {
	sum := md5Sum([]byte("server1-8"))
	word := func(x int) uint32 {
		return uint32(sum[4*x]) | uint32(sum[4*x+1])<<8 | uint32(sum[4*x+2])<<16 | uint32(sum[4*x+3])<<24
	}
	if got := word(0); got != 3853726576 {
		t.Errorf("word 0 = %d, want 3853726576", got)
	}
	if got := word(3); got != 2667054752 {
		t.Errorf("word 3 = %d, want 2667054752", got)
	}
}

func BenchmarkHash(b *testing.B) {
	key := []byte("user:1234567:session:abcdef") // 27 bytes, a typical key
	for _, name := range HashNames() {
		fn, _ := Hash(name)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(key)))
			var s uint32
			for b.Loop() {
				s += fn(key)
			}
			sink = fmt.Sprint(s)
		})
	}
}

var sink string

// TestHashVectors compares every hash with twemproxy's own C functions (vectors_test.go,
// produced by testdata/hashvectors/gen.c): non-ASCII bytes, every length 0..40, long keys.
func TestHashVectors(t *testing.T) {
	names := HashNames()
	for _, v := range hashVectors {
		for i, name := range names {
			fn, _ := Hash(name)
			if got := fn([]byte(v.key)); got != v.want[i] {
				t.Errorf("%s(%q) (len %d) = %d, want %d", name, v.key, len(v.key), got, v.want[i])
			}
		}
	}
}
