package verify

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/rmt-project/rmt/internal/redisfmt"
	"github.com/rmt-project/rmt/internal/redistest"
)

func TestCmdjobApportion(t *testing.T) {
	tests := []struct {
		n     int
		sizes []int64
		want  []int
	}{
		{100, []int64{300, 100}, []int{75, 25}},
		{1000, []int64{10}, []int{10}},
		{1000, []int64{10, 0, 5}, []int{10, 0, 5}},
		{10, []int64{1, 1, 1, 1000}, []int{0, 0, 0, 10}},
		{3, []int64{10, 10, 10}, []int{1, 1, 1}},
		{2, []int64{10, 10, 10}, []int{1, 1, 0}},
		{5, []int64{2, 100}, []int{0, 5}},
		{7, []int64{3, 3, 3}, []int{3, 2, 2}},
		{0, []int64{3}, []int{0}},
		{1, nil, []int{}},
		{1 << 30, []int64{1 << 50, 1 << 50}, []int{1 << 29, 1 << 29}},
	}
	for _, tc := range tests {
		got := apportion(tc.n, tc.sizes)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("apportion(%d, %v) = %v, want %v", tc.n, tc.sizes, got, tc.want)
		}
		sum := 0
		for i, g := range got {
			sum += g
			if int64(g) > tc.sizes[i] {
				t.Errorf("apportion(%d, %v): bucket %d gets %d > its size", tc.n, tc.sizes, i, g)
			}
		}
	}
}

func FuzzCmdjobApportion(f *testing.F) {
	f.Add(100, int64(300), int64(100), int64(0))
	f.Add(7, int64(3), int64(3), int64(3))
	f.Fuzz(func(t *testing.T, n int, a, b, c int64) {
		if n < 0 || n > 1<<31 || a < 0 || b < 0 || c < 0 || a > 1<<40 || b > 1<<40 || c > 1<<40 {
			return
		}
		sizes := []int64{a, b, c}
		got := apportion(n, sizes)
		sum := 0
		for i, g := range got {
			if g < 0 || int64(g) > sizes[i] {
				t.Fatalf("apportion(%d, %v) = %v", n, sizes, got)
			}
			sum += g
		}
		if want := min(int64(n), a+b+c); int64(sum) != want {
			t.Fatalf("apportion(%d, %v) = %v: sum %d, want %d", n, sizes, got, sum, want)
		}
	})
}

func TestCmdjobQuote(t *testing.T) {
	tests := map[string]string{
		"plain":            `"plain"`,
		"a\x00b\xff":       `"a\x00b\xff"`,
		"q\"b\\":           `"q\"b\\"`,
		"\n\r\t\a\b\x7f ~": `"\n\r\t\a\b\x7f ~"`,
		"":                 `""`,
	}
	for in, want := range tests {
		if got := redisfmt.Quote(in); got != want {
			t.Errorf("redisfmt.Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

// redisfmt.Quote agrees with redis-cli's own rendering of keys.
func TestCmdjobQuoteMatchesRedisCLI(t *testing.T) {
	redistest.NeedBinary(t, "redis-cli")
	r := cjStartRedis(t)
	var all []byte
	for c := 0; c < 256; c++ {
		all = append(all, byte(c))
	}
	key := "k" + string(all)
	r.Do("SET", key, "v")
	host, port, _ := strings.Cut(r.Addr, ":")
	out, err := exec.CommandContext(context.Background(), "redis-cli", "-h", host, "-p", port, "--no-raw", "KEYS", "*").Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.TrimSpace(string(out))
	got = strings.TrimPrefix(got, "1) ")
	if got != redisfmt.Quote(key) {
		t.Fatalf("redis-cli shows %s\nquoteKey gives %s", got, redisfmt.Quote(key))
	}
}

func TestCmdjobAddrAndVersion(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:6379":           "127.0.0.1:6379",
		"127.0.0.1:6379:1":         "127.0.0.1:6379",
		"127.0.0.1:6379:1 server1": "127.0.0.1:6379",
		"[::1]:6379:1":             "[::1]:6379",
		"[::1]:6379":               "[::1]:6379",
		"  redis.example:7000  ":   "redis.example:7000",
	} {
		if got := serverAddr(in); got != want {
			t.Errorf("serverAddr(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string][3]int{"7.0.15": {7, 0, 15}, "2.8": {2, 8, 0}, "x": {}, "6.2.x": {6, 2, 0}} {
		if got := parseVersion(in); got != want {
			t.Errorf("parseVersion(%q) = %v, want %v", in, got, want)
		}
	}
	n := &cmdNode{version: [3]int{6, 2, 14}}
	if !n.atLeast(6, 2) || n.atLeast(7, 0) || !n.atLeast(5, 9) {
		t.Errorf("atLeast wrong for %v", n.version)
	}
}
