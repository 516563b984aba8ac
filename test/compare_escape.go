package test

import (
	"fmt"
	"strings"
)

// Escape quotes s as redis-cli prints a bulk string: printable ASCII as is, `"` and `\`
// escaped, \n \r \t \a \b, and any other byte as \xHH.
func Escape(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\', '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\a':
			b.WriteString(`\a`)
		case '\b':
			b.WriteString(`\b`)
		default:
			if c >= 0x20 && c < 0x7f {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, `\x%02x`, c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

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
