package rdb

import "encoding/binary"

// ziplistIter walks a ziplist: 4-byte size, 4-byte tail offset, 2-byte count, entries, 0xFF.
type ziplistIter struct {
	b   []byte
	pos int
}

func newZiplistIter(b []byte) (*ziplistIter, error) {
	if len(b) < 11 || int(binary.LittleEndian.Uint32(b)) != len(b) || b[len(b)-1] != 0xff {
		return nil, corrupt("bad ziplist header (%d bytes)", len(b))
	}
	return &ziplistIter{b: b, pos: 10}, nil
}

func (it *ziplistIter) next() (s []byte, n int64, isInt bool, err error) {
	b, p := it.b, it.pos
	if p >= len(b) {
		return nil, 0, false, corrupt("ziplist without end marker")
	}
	if b[p] == 0xff {
		return nil, 0, false, errEnd
	}
	if b[p] == 0xfe { // previous entry length: 1 or 5 bytes
		p += 5
	} else {
		p++
	}
	if p >= len(b) {
		return nil, 0, false, corrupt("truncated ziplist entry")
	}
	e := b[p]
	need := func(k int) bool { return p+k <= len(b) }
	size := -1
	switch {
	case e>>6 == 0:
		size, p = int(e&0x3f), p+1
	case e>>6 == 1:
		if !need(2) {
			return nil, 0, false, corrupt("truncated ziplist entry")
		}
		size, p = int(e&0x3f)<<8|int(b[p+1]), p+2
	case e == 0x80:
		if !need(5) {
			return nil, 0, false, corrupt("truncated ziplist entry")
		}
		size, p = int(binary.BigEndian.Uint32(b[p+1:])), p+5
	case e == 0xc0, e == 0xd0, e == 0xe0, e == 0xf0, e == 0xfe:
		w := 1 // 0xfe: int8
		switch e {
		case 0xc0:
			w = 2
		case 0xd0:
			w = 4
		case 0xe0:
			w = 8
		case 0xf0:
			w = 3
		}
		if !need(1 + w) {
			return nil, 0, false, corrupt("truncated ziplist entry")
		}
		var u uint64
		for i := w - 1; i >= 0; i-- {
			u = u<<8 | uint64(b[p+1+i])
		}
		shift := 64 - 8*uint(w)
		n, isInt, p = int64(u<<shift)>>shift, true, p+1+w
	case e >= 0xf1 && e <= 0xfd:
		n, isInt, p = int64(e&0x0f)-1, true, p+1
	default:
		return nil, 0, false, corrupt("bad ziplist encoding %#x", e)
	}
	if !isInt {
		if size > len(b)-p {
			return nil, 0, false, corrupt("ziplist string overruns its ziplist")
		}
		s, p = b[p:p+size], p+size
	}
	it.pos = p
	return s, n, isInt, nil
}

// zipmapIter walks a zipmap (hashes before Redis 2.6): count byte, then key, value pairs with
// 1- or 5-byte lengths and a free-space byte before each value, then 0xFF.
type zipmapIter struct {
	b       []byte
	pos     int
	isValue bool
}

func newZipmapIter(b []byte) (*zipmapIter, error) {
	if len(b) < 2 || b[len(b)-1] != 0xff {
		return nil, corrupt("bad zipmap (%d bytes)", len(b))
	}
	return &zipmapIter{b: b, pos: 1}, nil
}

func (it *zipmapIter) next() ([]byte, int64, bool, error) {
	b, p := it.b, it.pos
	if p >= len(b) {
		return nil, 0, false, corrupt("zipmap without end marker")
	}
	if b[p] == 0xff {
		if it.isValue {
			return nil, 0, false, corrupt("zipmap key without value")
		}
		return nil, 0, false, errEnd
	}
	var size int
	switch c := b[p]; {
	case c < 254:
		size, p = int(c), p+1
	case c == 254:
		if p+5 > len(b) {
			return nil, 0, false, corrupt("truncated zipmap entry")
		}
		size, p = int(binary.LittleEndian.Uint32(b[p+1:])), p+5
	default:
		return nil, 0, false, corrupt("bad zipmap length")
	}
	free := 0
	if it.isValue {
		if p >= len(b) {
			return nil, 0, false, corrupt("truncated zipmap entry")
		}
		free, p = int(b[p]), p+1
	}
	if size > len(b)-p || free > len(b)-p-size {
		return nil, 0, false, corrupt("zipmap entry overruns its zipmap")
	}
	s := b[p : p+size]
	it.pos = p + size + free
	it.isValue = !it.isValue
	return s, 0, false, nil
}
