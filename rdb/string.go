package rdb

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// AppendString appends to dst the bytes of a string value (TypeString) given its raw bytes
// (Entry.Value): integers as decimal text, LZF expanded, exactly what GET returns. raw must hold
// the one string and nothing after it.
func AppendString(dst, raw []byte) ([]byte, error) {
	out, n, err := appendRawString(dst, raw)
	if err == nil && n != len(raw) {
		err = corrupt("%d bytes after the string", len(raw)-n)
	}
	if err != nil {
		return dst, fmt.Errorf("rdb: string value of %d bytes: %w", len(raw), err)
	}
	return out, nil
}

// appendRawString decodes the string at the start of raw and says how many bytes it took.
func appendRawString(dst, raw []byte) ([]byte, int, error) {
	n, enc, used, err := rawLen(raw)
	if err != nil {
		return dst, 0, err
	}
	rest := raw[used:]
	if !enc {
		if uint64(len(rest)) < n {
			return dst, 0, corrupt("string of %d bytes cut at %d", n, len(rest))
		}
		return append(dst, rest[:n]...), used + int(n), nil
	}
	switch n {
	case encInt8:
		if len(rest) < 1 {
			return dst, 0, corrupt("cut integer")
		}
		return strconv.AppendInt(dst, int64(int8(rest[0])), 10), used + 1, nil
	case encInt16:
		if len(rest) < 2 {
			return dst, 0, corrupt("cut integer")
		}
		return strconv.AppendInt(dst, int64(int16(binary.LittleEndian.Uint16(rest))), 10), used + 2, nil
	case encInt32:
		if len(rest) < 4 {
			return dst, 0, corrupt("cut integer")
		}
		return strconv.AppendInt(dst, int64(int32(binary.LittleEndian.Uint32(rest))), 10), used + 4, nil
	case encLZF:
		clen, cenc, u1, err := rawLen(rest)
		if err != nil {
			return dst, 0, err
		}
		ulen, uenc, u2, err := rawLen(rest[u1:])
		if err != nil {
			return dst, 0, err
		}
		if cenc || uenc {
			return dst, 0, corrupt("string encoding where an LZF length belongs")
		}
		data := rest[u1+u2:]
		if uint64(len(data)) < clen {
			return dst, 0, corrupt("LZF data of %d bytes cut at %d", clen, len(data))
		}
		if ulen > clen*lzfMaxExpansion+64 {
			return dst, 0, corrupt("LZF lengths %d/%d", clen, ulen)
		}
		out, err := lzfDecompress(dst, data[:clen], int(ulen))
		if err != nil {
			return dst, 0, err
		}
		return out, used + u1 + u2 + int(clen), nil
	}
	return dst, 0, corrupt("unknown string encoding %d", n)
}

// rawLen reads a length (or a special string encoding, enc) at the start of b.
func rawLen(b []byte) (n uint64, enc bool, used int, err error) {
	if len(b) == 0 {
		return 0, false, 0, corrupt("cut length")
	}
	switch b[0] >> 6 {
	case len6Bit:
		return uint64(b[0] & 0x3f), false, 1, nil
	case len14Bit:
		if len(b) < 2 {
			return 0, false, 0, corrupt("cut length")
		}
		return uint64(b[0]&0x3f)<<8 | uint64(b[1]), false, 2, nil
	case lenEnc:
		return uint64(b[0] & 0x3f), true, 1, nil
	}
	switch b[0] {
	case len32Bit:
		if len(b) < 5 {
			return 0, false, 0, corrupt("cut length")
		}
		return uint64(binary.BigEndian.Uint32(b[1:])), false, 5, nil
	case len64Bit:
		if len(b) < 9 {
			return 0, false, 0, corrupt("cut length")
		}
		return binary.BigEndian.Uint64(b[1:]), false, 9, nil
	}
	return 0, false, 0, corrupt("bad length byte %#x", b[0])
}
