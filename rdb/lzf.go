package rdb

import "errors"

var errLZF = errors.New("corrupt LZF data")

// lzfDecompress appends to dst the ulen bytes that LZF-compressed src expands to. Every literal
// run and back reference is checked against src, the output so far and ulen.
func lzfDecompress(dst, src []byte, ulen int) ([]byte, error) {
	base := len(dst)
	end := base + ulen
	if cap(dst) < end {
		n := make([]byte, len(dst), end)
		copy(n, dst)
		dst = n
	}
	i := 0
	for i < len(src) {
		ctrl := int(src[i])
		i++
		if ctrl < 32 { // literal run of ctrl+1 bytes
			n := ctrl + 1
			if i+n > len(src) || len(dst)+n > end {
				return dst[:base], errLZF
			}
			dst = append(dst, src[i:i+n]...)
			i += n
			continue
		}
		n := ctrl >> 5
		if n == 7 {
			if i >= len(src) {
				return dst[:base], errLZF
			}
			n += int(src[i])
			i++
		}
		n += 2
		if i >= len(src) {
			return dst[:base], errLZF
		}
		back := (ctrl&0x1f)<<8 | int(src[i]) + 1
		i++
		ref := len(dst) - back
		if ref < base || len(dst)+n > end {
			return dst[:base], errLZF
		}
		for k := 0; k < n; { // may overlap: copy what exists, in growing chunks
			c := min(n-k, len(dst)-(ref+k))
			dst = append(dst, dst[ref+k:ref+k+c]...)
			k += c
		}
	}
	if len(dst) != end {
		return dst[:base], errLZF
	}
	return dst, nil
}

// lzfMaxExpansion bounds how many bytes one compressed byte can stand for: a 3-byte back
// reference yields at most 264 bytes.
const lzfMaxExpansion = 89

const lzfHashLog = 14

// lzfTable is the compressor's hash table. It may be reused without clearing: a stale entry
// only costs a failed comparison.
type lzfTable [1 << lzfHashLog]int32

// lzfCompress appends the LZF compression of src to dst. It returns dst unchanged and false when
// the result would not be smaller than src (Redis then stores the string plain). table may be
// nil.
func lzfCompress(dst, src []byte, table *lzfTable) ([]byte, bool) {
	const (
		hlog   = lzfHashLog
		maxOff = 1 << 13
		maxRef = (1 << 8) + (1 << 3)
		maxLit = 1 << 5
	)
	if table == nil {
		table = new(lzfTable)
	}
	if len(src) < 4 {
		return dst, false
	}
	base := len(dst)
	limit := base + len(src) - 1 // must come out strictly smaller
	hash := func(p int) uint32 {
		v := uint32(src[p])<<16 | uint32(src[p+1])<<8 | uint32(src[p+2])
		return (v * 2654435761) >> (32 - hlog)
	}
	litStart := len(dst)
	dst = append(dst, 0) // literal length placeholder
	lit := 0
	ip := 0
	for ip+2 < len(src) {
		h := hash(ip)
		ref := int(table[h]) - 1
		table[h] = int32(ip + 1)
		off := ip - ref - 1
		if ref >= 0 && ref < ip && off < maxOff &&
			src[ref] == src[ip] && src[ref+1] == src[ip+1] && src[ref+2] == src[ip+2] {
			n := 3 // matched length
			maxN := min(len(src)-ip, maxRef)
			for n < maxN && src[ref+n] == src[ip+n] {
				n++
			}
			if lit == 0 { // close the literal run
				dst = dst[:len(dst)-1]
			} else {
				dst[litStart] = byte(lit - 1)
			}
			if len(dst)+3 > limit {
				return dst[:base], false
			}
			if ln := n - 2; ln < 7 {
				dst = append(dst, byte(off>>8)|byte(ln<<5), byte(off))
			} else {
				dst = append(dst, byte(off>>8)|7<<5, byte(ln-7), byte(off))
			}
			ip += n
			litStart = len(dst)
			dst = append(dst, 0)
			lit = 0
			continue
		}
		if len(dst)+2 > limit {
			return dst[:base], false
		}
		dst = append(dst, src[ip])
		lit++
		ip++
		if lit == maxLit {
			dst[litStart] = byte(lit - 1)
			litStart = len(dst)
			dst = append(dst, 0)
			lit = 0
		}
	}
	for ip < len(src) {
		if len(dst)+2 > limit {
			return dst[:base], false
		}
		dst = append(dst, src[ip])
		lit++
		ip++
		if lit == maxLit {
			dst[litStart] = byte(lit - 1)
			litStart = len(dst)
			dst = append(dst, 0)
			lit = 0
		}
	}
	if lit == 0 {
		dst = dst[:len(dst)-1]
	} else {
		dst[litStart] = byte(lit - 1)
	}
	if len(dst)-base >= len(src) {
		return dst[:base], false
	}
	return dst, true
}
