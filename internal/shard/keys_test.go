package shard

import (
	"fmt"
	"math/rand/v2"
)

// testKeys returns n distinct keys, the same ones for the same seed: ASCII keys, keys of random
// bytes (every value 0..255, so many >= 0x80 and some NUL, CR, LF), UTF-8 text, long keys up to
// 1,000 bytes, and keys with hash tags of every shape ({x}, {}, {{x}}, x{y, }x{, tags in the
// middle, several tags), plus the empty key.
func testKeys(seed uint64, n int) [][]byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	seen := make(map[string]bool, n)
	keys := make([][]byte, 0, n)
	add := func(k []byte) {
		if len(keys) < n && !seen[string(k)] {
			seen[string(k)] = true
			keys = append(keys, k)
		}
	}
	randBytes := func(size int) []byte {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	tags := []string{"{user1000}", "{}", "{{x}}", "{a}{b}", "x{y", "}x{", "{", "}", "{\xff\x80}", "{h\xc3\xa9}", "{ }"}
	words := []string{"user", "session", "caf\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac", "\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87", "order", "\xf0\x9f\x94\x91"}
	add([]byte{})
	for i := 0; len(keys) < n; i++ {
		switch i % 8 {
		case 0:
			add(fmt.Appendf(nil, "key:%d", rng.IntN(1_000_000)))
		case 1:
			add(randBytes(1 + rng.IntN(24)))
		case 2:
			add(fmt.Appendf(nil, "%s:%d:%s", words[rng.IntN(len(words))], rng.IntN(100000), words[rng.IntN(len(words))]))
		case 3:
			add(randBytes(100 + rng.IntN(900)))
		case 4, 5:
			tag := tags[rng.IntN(len(tags))]
			pre := fmt.Sprint(rng.IntN(100))
			if rng.IntN(2) == 0 {
				pre = ""
			}
			add(fmt.Appendf(nil, "%s%s:%d", pre, tag, rng.IntN(10000)))
		case 6:
			k := append([]byte("{"), randBytes(1+rng.IntN(6))...)
			k = append(k, '}')
			add(append(k, randBytes(rng.IntN(8))...))
		case 7:
			add([]byte{byte(rng.IntN(256))})
		}
	}
	return keys
}
