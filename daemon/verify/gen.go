package verify

import (
	"math/rand/v2"
	"strconv"
	"time"
)

// testGen makes the random names and values of redis_testinsert. One per worker: not shared.
type testGen struct {
	r   *rand.Rand
	buf []byte
}

func newTestGen(seed, stream uint64) *testGen {
	return &testGen{r: rand.New(rand.NewPCG(seed, stream))}
}

// between returns a number in lo..hi, both included.
func (g *testGen) between(lo, hi int) int { return lo + g.r.IntN(hi-lo+1) }

// bytes returns n random bytes in 5..254, as RMT's generator draws them.
func (g *testGen) bytes(n int) string {
	g.buf = g.buf[:0]
	for len(g.buf) < n {
		u := g.r.Uint64()
		for j := 0; j < 8 && len(g.buf) < n; j++ {
			g.buf = append(g.buf, byte(5+(u&0xff)%250)) // slightly uneven: fine for test data
			u >>= 8
		}
	}
	return string(g.buf)
}

// printable returns n random letters and digits.
func (g *testGen) printable(n int) string {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	g.buf = g.buf[:0]
	for i := 0; i < n; i++ {
		g.buf = append(g.buf, chars[g.r.IntN(len(chars))])
	}
	return string(g.buf)
}

// value returns a string value: one in five an integer (int encoding), one in four 65 to 300
// bytes (past the listpack value limit of 64), the rest 0 to 64 bytes.
func (g *testGen) value() string {
	switch r := g.r.IntN(20); {
	case r < 4:
		return strconv.FormatInt(g.r.Int64N(1<<40)-1<<39, 10)
	case r < 9:
		return g.bytes(g.between(65, 300))
	default:
		return g.bytes(g.r.IntN(65))
	}
}

// score returns a zset score as text that parses back to the exact double.
func (g *testGen) score() string {
	switch r := g.r.IntN(50); {
	case r == 0:
		return "inf"
	case r == 1:
		return "-inf"
	case r < 20:
		return strconv.Itoa(g.r.IntN(2000000) - 1000000)
	default:
		return strconv.FormatFloat((g.r.Float64()-0.5)*1e9, 'g', -1, 64)
	}
}

// ttl returns a time to live of 2 to 4 hours, in ms.
func (g *testGen) ttl() int64 {
	return int64(2*time.Hour/time.Millisecond) + g.r.Int64N(int64(2*time.Hour/time.Millisecond))
}
