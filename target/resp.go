package target

import (
	"strconv"

	"github.com/rmt-project/rmt/internal/redisfmt"
)

// appendArrayHeader appends "*n\r\n".
func appendArrayHeader(dst []byte, n int) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, '\r', '\n')
}

// appendBulkHeader appends "$n\r\n".
func appendBulkHeader(dst []byte, n int) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, '\r', '\n')
}

// appendBulkHeader64 is appendBulkHeader for a length of any size.
func appendBulkHeader64(dst []byte, n int64) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, '\r', '\n')
}

// appendBulk appends one bulk string.
func appendBulk(dst, b []byte) []byte {
	dst = appendBulkHeader(dst, len(b))
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}

// appendBulkString appends one bulk string.
func appendBulkString(dst []byte, s string) []byte {
	dst = appendBulkHeader(dst, len(s))
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

// appendBulkInt appends an integer as a bulk string.
func appendBulkInt(dst []byte, v int64) []byte {
	var tmp [20]byte
	return appendBulk(dst, strconv.AppendInt(tmp[:0], v, 10))
}

// appendCommand appends a RESP multibulk command.
func appendCommand(dst []byte, args ...[]byte) []byte {
	dst = appendArrayHeader(dst, len(args))
	for _, a := range args {
		dst = appendBulk(dst, a)
	}
	return dst
}

// appendCommandStrings appends a RESP multibulk command of strings.
func appendCommandStrings(dst []byte, args ...string) []byte {
	dst = appendArrayHeader(dst, len(args))
	for _, a := range args {
		dst = appendBulkString(dst, a)
	}
	return dst
}

// quoteKey appends b quoted as redis-cli shows binary strings (sdscatrepr): "a\x00b".
func quoteKey(dst, b []byte) []byte { return redisfmt.AppendQuoted(dst, b) }

// keyString is quoteKey as a string, for logs.
func keyString(b []byte) string { return string(quoteKey(nil, b)) }
