package daemon

// cmdjobQuote writes a key as redis-cli shows it (sdscatrepr): in double quotes, with \\ \" \n \r
// \t \a \b escaped, other bytes outside 0x20..0x7e as \xhh.
func cmdjobQuote(key string) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, len(key)+2)
	b = append(b, '"')
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch c {
		case '\\', '"':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		case '\a':
			b = append(b, '\\', 'a')
		case '\b':
			b = append(b, '\\', 'b')
		default:
			if c >= 0x20 && c <= 0x7e {
				b = append(b, c)
			} else {
				b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
			}
		}
	}
	return string(append(b, '"'))
}
