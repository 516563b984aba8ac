package glob

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"testing"

	"github.com/mediocregopher/radix/v4"

	"github.com/rmt-project/rmt/internal/redistest"
)

func TestMatchTable(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"user:*", "user:1", true},
		{"user:*", "users:1", false},
		{"a*b", "a/x/b", true}, // unlike path.Match, * crosses '/'
		{"h?llo", "hello", true},
		{"h?llo", "hllo", false},
		{"h[ae]llo", "hallo", true},
		{"h[ae]llo", "hillo", false},
		{"h[^e]llo", "hallo", true},
		{"h[^e]llo", "hello", false},
		{"h[!e]llo", "h!llo", true}, // '!' is a plain member, not negation
		{"h[a-b]llo", "hbllo", true},
		{"h[b-a]llo", "hallo", true}, // reversed ranges are swapped
		{"{a,b}", "a", false},        // no alternation
		{"{a,b}", "{a,b}", true},
		{`\*`, "*", true},
		{`\*`, "a", false},
		{`a\`, `a\`, true}, // a trailing backslash is literal
		{"a[", "a", false},
		{"a[", "ab", false},
		{"a[b", "ab", true}, // an unclosed class ends with the pattern
		{`[\]]`, "]", true},
		{"**a", "xa", true},
		{"a*", "a", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "acb", false},
		{"\xff*", "\xff\x00", true}, // bytes, not runes
		{"?", "\xe2\x82\xac", false},
	}
	for _, tc := range tests {
		if got := Match([]byte(tc.pattern), []byte(tc.s)); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

func TestManyStarsTerminate(t *testing.T) {
	p := []byte("a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b")
	s := make([]byte, 200)
	for i := range s {
		s[i] = 'a'
	}
	if Match(p, s) {
		t.Fatal("matched a string without b")
	}
}

// TestAgainstRedisKeys checks Match against KEYS on a real redis-server, for fixed and random
// patterns over a fixed key set.
func TestAgainstRedisKeys(t *testing.T) {
	client := redistest.StartRedis(t).Client(t)
	ctx := context.Background()

	keys := []string{"a", "b", "ab", "abc", "acb", "a/b", "user:1", "user:22", "users:1", "hello", "hallo",
		"hxllo", "h!llo", "]", "[", "*", "?", `\`, `a\`, "a[b", "{a,b}", "\xff\x00", "\xe2\x82\xac", "-", "^", "a-b"}
	for _, k := range keys {
		if err := client.Do(ctx, radix.Cmd(nil, "SET", k, "1")); err != nil {
			t.Fatal(err)
		}
	}
	patterns := []string{"*", "a*", "*b", "a?b", "[ab]", "[^ab]", "[a-c]*", "[c-a]*", `\**`, `[\]]`, "[]]", "[",
		"a[", "a[b", "[^", "h[^e]llo", "*[", `*\`, `a\`, "{a,b}", "?", "??", "[-]", "[a-]", "[^-]*", "*-*"}
	rng := rand.New(rand.NewSource(1))
	alphabet := []byte(`ab*?[]^-\!`)
	for i := 0; i < 300; i++ {
		n := 1 + rng.Intn(6)
		p := make([]byte, n)
		for j := range p {
			p[j] = alphabet[rng.Intn(len(alphabet))]
		}
		patterns = append(patterns, string(p))
	}
	for _, p := range patterns {
		var got []string
		if err := client.Do(ctx, radix.Cmd(&got, "KEYS", p)); err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, k := range keys {
			if Match([]byte(p), []byte(k)) {
				want = append(want, k)
			}
		}
		sort.Strings(got)
		sort.Strings(want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("pattern %q: KEYS gives %q, Match gives %q", p, got, want)
		}
	}
}

func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{{"*", "x"}, {"a[", "ab"}, {`[\`, `\`}, {"[^a-]*?", "b-c"}} {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, p, s []byte) {
		Match(p, s) // must not panic or hang
		if !Match(p, p) && !hasSpecial(p) {
			t.Fatalf("a pattern without special bytes must match itself: %q", p)
		}
	})
}

func hasSpecial(p []byte) bool {
	for _, c := range p {
		switch c {
		case '*', '?', '[', '\\':
			return true
		}
	}
	return false
}
