package rdb

import (
	"encoding/binary"
	"errors"
)

// errEnd marks the end of an encoded container; it never leaves the package.
var errEnd = errors.New("end of container")

// blobIter walks the entries of a ziplist, listpack, intset or zipmap held in memory. next
// returns a string entry (aliasing the blob) or an integer entry.
type blobIter interface {
	next() (s []byte, n int64, isInt bool, err error)
}

// listpackIter walks a listpack: 4-byte total size, 2-byte count, entries, 0xFF.
type listpackIter struct {
	b   []byte
	pos int
}

func newListpackIter(b []byte) (*listpackIter, error) {
	if len(b) < 7 || int(binary.LittleEndian.Uint32(b)) != len(b) || b[len(b)-1] != 0xff {
		return nil, corrupt("bad listpack header (%d bytes)", len(b))
	}
	return &listpackIter{b: b, pos: 6}, nil
}

// lpBacklenSize is the size of the back-length that follows an entry of l bytes.
func lpBacklenSize(l int) int {
	switch {
	case l <= 127:
		return 1
	case l < 16383:
		return 2
	case l < 2097151:
		return 3
	case l < 268435455:
		return 4
	}
	return 5
}

func (it *listpackIter) next() (s []byte, n int64, isInt bool, err error) {
	b, p := it.b, it.pos
	if p >= len(b) {
		return nil, 0, false, corrupt("listpack without end marker")
	}
	c := b[p]
	var hdr, size int // header bytes, then string bytes (strings) or integer bytes
	switch {
	case c == 0xff:
		return nil, 0, false, errEnd
	case c&0x80 == 0: // 7-bit uint
		n, isInt, hdr = int64(c&0x7f), true, 1
	case c&0xc0 == 0x80: // 6-bit string length
		hdr, size = 1, int(c&0x3f)
	case c&0xe0 == 0xc0: // 13-bit int
		if p+2 > len(b) {
			return nil, 0, false, corrupt("truncated listpack entry")
		}
		v := int64(c&0x1f)<<8 | int64(b[p+1])
		if v >= 1<<12 {
			v -= 1 << 13
		}
		n, isInt, hdr = v, true, 2
	case c&0xf0 == 0xe0: // 12-bit string length
		if p+2 > len(b) {
			return nil, 0, false, corrupt("truncated listpack entry")
		}
		hdr, size = 2, int(c&0x0f)<<8|int(b[p+1])
	case c == 0xf0: // 32-bit string length
		if p+5 > len(b) {
			return nil, 0, false, corrupt("truncated listpack entry")
		}
		hdr, size = 5, int(binary.LittleEndian.Uint32(b[p+1:]))
	case c >= 0xf1 && c <= 0xf4: // 16, 24, 32, 64-bit int
		w := [...]int{2, 3, 4, 8}[c-0xf1]
		if p+1+w > len(b) {
			return nil, 0, false, corrupt("truncated listpack entry")
		}
		var u uint64
		for i := w - 1; i >= 0; i-- {
			u = u<<8 | uint64(b[p+1+i])
		}
		shift := 64 - 8*uint(w)
		n, isInt, hdr = int64(u<<shift)>>shift, true, 1+w
	default:
		return nil, 0, false, corrupt("bad listpack encoding %#x", c)
	}
	l := hdr
	if !isInt {
		if size > len(b)-p-hdr {
			return nil, 0, false, corrupt("listpack string overruns its listpack")
		}
		s = b[p+hdr : p+hdr+size]
		l += size
	}
	end := p + l + lpBacklenSize(l)
	if end > len(b) {
		return nil, 0, false, corrupt("truncated listpack entry")
	}
	it.pos = end
	return s, n, isInt, nil
}

// intsetIter walks an intset: 4-byte width, 4-byte count, little-endian integers.
type intsetIter struct {
	b   []byte
	w   int
	pos int
}

func newIntsetIter(b []byte) (*intsetIter, error) {
	if len(b) < 8 {
		return nil, corrupt("intset of %d bytes", len(b))
	}
	w := int(binary.LittleEndian.Uint32(b))
	n := uint64(binary.LittleEndian.Uint32(b[4:]))
	if (w != 2 && w != 4 && w != 8) || uint64(len(b)) != 8+n*uint64(w) {
		return nil, corrupt("bad intset header")
	}
	return &intsetIter{b: b, w: w, pos: 8}, nil
}

func (it *intsetIter) next() ([]byte, int64, bool, error) {
	if it.pos >= len(it.b) {
		return nil, 0, false, errEnd
	}
	p := it.b[it.pos:]
	it.pos += it.w
	switch it.w {
	case 2:
		return nil, int64(int16(binary.LittleEndian.Uint16(p))), true, nil
	case 4:
		return nil, int64(int32(binary.LittleEndian.Uint32(p))), true, nil
	}
	return nil, int64(binary.LittleEndian.Uint64(p)), true, nil
}

// lpAppendBacklen appends the back-length of an entry of l bytes (lpEncodeBacklen).
func lpAppendBacklen(dst []byte, l int) []byte {
	switch {
	case l <= 127:
		return append(dst, byte(l))
	case l < 16383:
		return append(dst, byte(l>>7), byte(l&127)|128)
	case l < 2097151:
		return append(dst, byte(l>>14), byte(l>>7&127)|128, byte(l&127)|128)
	case l < 268435455:
		return append(dst, byte(l>>21), byte(l>>14&127)|128, byte(l>>7&127)|128, byte(l&127)|128)
	}
	return append(dst, byte(l>>28), byte(l>>21&127)|128, byte(l>>14&127)|128, byte(l>>7&127)|128, byte(l&127)|128)
}

// lpAppendInt appends an integer entry in the smallest listpack encoding.
func lpAppendInt(dst []byte, v int64) []byte {
	start := len(dst)
	switch {
	case v >= 0 && v <= 127:
		dst = append(dst, byte(v))
	case v >= -4096 && v <= 4095:
		u := uint64(v) & 0x1fff
		dst = append(dst, 0xc0|byte(u>>8), byte(u))
	case v >= -32768 && v <= 32767:
		dst = append(dst, 0xf1)
		dst = binary.LittleEndian.AppendUint16(dst, uint16(v))
	case v >= -1<<23 && v < 1<<23:
		dst = append(dst, 0xf2, byte(v), byte(v>>8), byte(v>>16))
	case v >= -1<<31 && v < 1<<31:
		dst = append(dst, 0xf3)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(v))
	default:
		dst = append(dst, 0xf4)
		dst = binary.LittleEndian.AppendUint64(dst, uint64(v))
	}
	return lpAppendBacklen(dst, len(dst)-start)
}

// lpAppendString appends a string entry.
func lpAppendString(dst, s []byte) []byte {
	start := len(dst)
	switch n := len(s); {
	case n < 64:
		dst = append(dst, 0x80|byte(n))
	case n < 4096:
		dst = append(dst, 0xe0|byte(n>>8), byte(n))
	default:
		dst = append(dst, 0xf0)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	}
	dst = append(dst, s...)
	return lpAppendBacklen(dst, len(dst)-start)
}

// lpFinish turns entries (appended after a 6-byte placeholder at lp[0:6]) into a listpack.
func lpFinish(lp []byte, count int) []byte {
	lp = append(lp, 0xff)
	binary.LittleEndian.PutUint32(lp, uint32(len(lp)))
	binary.LittleEndian.PutUint16(lp[4:], uint16(min(count, 65535)))
	return lp
}
