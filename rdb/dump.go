package rdb

import (
	"encoding/binary"
	"fmt"
)

// DumpPayload appends to dst the payload DUMP returns and RESTORE takes for a value: the type
// byte, the value's bytes as in the RDB file, the 2-byte little-endian RDB version and the
// little-endian CRC64 of all that.
func DumpPayload(dst []byte, typ byte, value []byte, rdbVersion int) []byte {
	start := len(dst)
	dst = append(dst, typ)
	dst = append(dst, value...)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(rdbVersion))
	return binary.LittleEndian.AppendUint64(dst, CRC64(0, dst[start:]))
}

// SplitPayload checks a DUMP payload and returns its type byte, value bytes (aliasing p) and RDB
// version.
func SplitPayload(p []byte) (typ byte, value []byte, rdbVersion int, err error) {
	if len(p) < 11 {
		return 0, nil, 0, fmt.Errorf("rdb: DUMP payload of %d bytes: %w", len(p), ErrCorrupt)
	}
	body := p[:len(p)-8]
	if sum := binary.LittleEndian.Uint64(p[len(p)-8:]); sum != CRC64(0, body) {
		return 0, nil, 0, fmt.Errorf("rdb: DUMP payload: %w", ErrChecksum)
	}
	return p[0], p[1 : len(body)-2], int(binary.LittleEndian.Uint16(body[len(body)-2:])), nil
}
