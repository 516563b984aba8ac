package redisfmt

import "testing"

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"plain key:1", `"plain key:1"`},
		{"a\x00b", `"a\x00b"`},
		{"q\"b\\s", `"q\"b\\s"`},
		{"\n\r\t\a\b", `"\n\r\t\a\b"`},
		{"\x7f\xff\x1f~ ", `"\x7f\xff\x1f~ "`},
	}
	for _, tc := range tests {
		if got := Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
