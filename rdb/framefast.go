package rdb

import "encoding/binary"

// frameBuffered frames a value whose elements are strings one after the other (a set or list of
// strings, a hash as a hashtable, a zset as a skiplist, a quicklist) from the bytes already in the
// bufio.Reader, when the whole value is there: one pass over a slice, then one consume of all of
// its bytes (checksum, capture), instead of a consume for each length byte and each element, which
// cost tens of nanoseconds an element. It reports false, having consumed nothing, for other types,
// when the value runs past the buffered bytes, or when it is not well formed: frameValue then reads
// it element by element, and says what is wrong where it is. Nothing is read from the input here,
// so a value is never waited for longer than the element-by-element path would wait.
func frameBuffered(in *input, typ byte) bool {
	strs, score, container := 1, 0, false // per element: strings, bytes of score, a container length
	switch typ {
	case TypeList, TypeSet, TypeListQuicklist:
	case TypeHash:
		strs = 2
	case TypeZSet2:
		score = 8
	case TypeListQuicklist2:
		container = true
	default:
		return false
	}
	p, _ := in.br.Peek(in.br.Buffered())
	n, enc, i, ok := lenAt(p, 0)
	if !ok || enc || n > uint64(len(p)) { // every element takes a byte at least
		return false
	}
	for ; n > 0; n-- {
		if container {
			if _, enc, i, ok = lenAt(p, i); !ok || enc {
				return false
			}
		}
		for range strs {
			if i, ok = stringEnd(p, i); !ok {
				return false
			}
		}
		if score > len(p)-i {
			return false
		}
		i += score
	}
	in.consume(p[:i])
	_, _ = in.br.Discard(i)
	return true
}

// lenAt reads a length encoding at p[i:], as input.readLen: the length (or the string encoding
// when enc), and the index after it; ok is false when p ends first or the byte is not a length.
func lenAt(p []byte, i int) (n uint64, enc bool, next int, ok bool) {
	if i >= len(p) {
		return 0, false, 0, false
	}
	b := p[i]
	switch b >> 6 {
	case len6Bit:
		return uint64(b & 0x3f), false, i + 1, true
	case len14Bit:
		if len(p)-i < 2 {
			return 0, false, 0, false
		}
		return uint64(b&0x3f)<<8 | uint64(p[i+1]), false, i + 2, true
	case lenEnc:
		return uint64(b & 0x3f), true, i + 1, true
	}
	switch b {
	case len32Bit:
		if len(p)-i < 5 {
			return 0, false, 0, false
		}
		return uint64(binary.BigEndian.Uint32(p[i+1:])), false, i + 5, true
	case len64Bit:
		if len(p)-i < 9 {
			return 0, false, 0, false
		}
		return binary.BigEndian.Uint64(p[i+1:]), false, i + 9, true
	}
	return 0, false, 0, false
}

// stringEnd returns the index just after the string (in any encoding, as input.skipString takes
// it) that starts at p[i]; ok is false when p ends first or the string is not well formed.
func stringEnd(p []byte, i int) (int, bool) {
	n, enc, i, ok := lenAt(p, i)
	if !ok {
		return 0, false
	}
	if enc {
		switch n {
		case encInt8:
			n = 1
		case encInt16:
			n = 2
		case encInt32:
			n = 4
		case encLZF:
			var clenEnc, ulenEnc bool
			if n, clenEnc, i, ok = lenAt(p, i); !ok || clenEnc {
				return 0, false
			}
			if _, ulenEnc, i, ok = lenAt(p, i); !ok || ulenEnc {
				return 0, false
			}
		default:
			return 0, false
		}
	}
	if n > uint64(len(p)-i) {
		return 0, false
	}
	return i + int(n), true
}
