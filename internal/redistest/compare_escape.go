package redistest

import (
	"fmt"
	"strings"

	"github.com/rmt-project/rmt/internal/redisfmt"
)

// Escape quotes s as redis-cli prints a bulk string: printable ASCII as is, `"` and `\`
// escaped, \n \r \t \a \b, and any other byte as \xHH.
func Escape(s string) string { return redisfmt.Quote(s) }

// escapeShort is Escape for values in messages, cut to 64 bytes with the full length noted.
func escapeShort(s string) string {
	const max = 64
	if len(s) <= max {
		return Escape(s)
	}
	return fmt.Sprintf("%s... (%d bytes)", Escape(s[:max]), len(s))
}

func escapeList(ss []string) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = escapeShort(s)
	}
	return "[" + strings.Join(parts, " ") + "]"
}
