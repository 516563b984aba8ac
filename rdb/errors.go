package rdb

import (
	"errors"
	"fmt"
	"strconv"
)

// Errors wrapped by the decoder and the value parsers; test them with errors.Is.
var (
	ErrChecksum    = errors.New("checksum mismatch")
	ErrCorrupt     = errors.New("corrupt data")
	ErrUnsupported = errors.New("unsupported")
	ErrTooLarge    = errors.New("too large")
)

// quoteKey renders a key for an error message, escaped and cut to a readable length.
func quoteKey(k []byte) string {
	const max = 64
	if len(k) > max {
		return strconv.Quote(string(k[:max])) + "..."
	}
	return strconv.Quote(string(k))
}

// corrupt returns an ErrCorrupt-wrapping error with a formatted reason.
func corrupt(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrCorrupt)...)
}
