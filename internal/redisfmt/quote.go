// Package redisfmt writes keys and values as redis-cli shows them, so that logs, INFO and reports
// name a key the way an operator would type or see it:
//
//	redisfmt.Quote("a\x00b") // "\"a\\x00b\""
package redisfmt

// AppendQuoted appends b as redis-cli prints a binary string (Redis's sdscatrepr): in double
// quotes, `"` and `\` escaped, \n \r \t \a \b, printable ASCII as is, any other byte as \xhh.
func AppendQuoted(dst, b []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for _, c := range b {
		switch c {
		case '\\', '"':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\a':
			dst = append(dst, '\\', 'a')
		case '\b':
			dst = append(dst, '\\', 'b')
		default:
			if c >= 0x20 && c < 0x7f {
				dst = append(dst, c)
			} else {
				dst = append(dst, '\\', 'x', hex[c>>4], hex[c&15])
			}
		}
	}
	return append(dst, '"')
}

// Quote is AppendQuoted for strings.
func Quote(s string) string { return string(AppendQuoted(make([]byte, 0, len(s)+2), []byte(s))) }
