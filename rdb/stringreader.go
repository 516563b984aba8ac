package rdb

import (
	"bufio"
	"encoding/binary"
	"io"
	"strconv"
)

// StringReader reads a string value (TypeString) decoded, in pieces, from its raw bytes (the file
// section Entry.ValueOffset/ValueLen name): integers as decimal text, LZF expanded through an
// 8 KiB window (the farthest an LZF back reference reaches), so that a string of any size is
// read without being held.
//
//	sr, err := rdb.NewStringReader(io.NewSectionReader(f, e.ValueOffset, e.ValueLen))
//	n := sr.Len()            // the decoded length, what STRLEN says
//	io.CopyN(w, sr, n)
type StringReader struct {
	br   *bufio.Reader
	n    int64     // decoded length
	left int64     // decoded bytes not yet read
	mem  []byte    // an integer's text
	lzf  *lzfInput // an LZF string's decompressor; nil for the others
}

// NewStringReader reads the string's encoding header from r and returns a reader of its bytes.
func NewStringReader(r io.Reader) (*StringReader, error) {
	s := &StringReader{br: bufio.NewReaderSize(r, 32<<10)}
	n, enc, err := s.length()
	if err != nil {
		return nil, err
	}
	if !enc {
		s.n, s.left = int64(n), int64(n)
		return s, nil
	}
	var num [4]byte
	switch n {
	case encInt8, encInt16, encInt32:
		size := 1 << n // 1, 2, 4 bytes
		if _, err := io.ReadFull(s.br, num[:size]); err != nil {
			return nil, unexpected(err)
		}
		var v int64
		switch size {
		case 1:
			v = int64(int8(num[0]))
		case 2:
			v = int64(int16(binary.LittleEndian.Uint16(num[:2])))
		default:
			v = int64(int32(binary.LittleEndian.Uint32(num[:4])))
		}
		s.mem = strconv.AppendInt(nil, v, 10)
		s.n, s.left = int64(len(s.mem)), int64(len(s.mem))
		return s, nil
	case encLZF:
		clen, cenc, err := s.length()
		if err != nil {
			return nil, err
		}
		ulen, uenc, err := s.length()
		if err != nil {
			return nil, err
		}
		if cenc || uenc {
			return nil, corrupt("string encoding where an LZF length belongs")
		}
		if ulen > clen*lzfMaxExpansion+64 {
			return nil, corrupt("LZF lengths %d/%d", clen, ulen)
		}
		s.n, s.left = int64(ulen), int64(ulen)
		s.lzf = &lzfInput{br: s.br, left: int64(clen), ulen: int64(ulen)}
		return s, nil
	}
	return nil, corrupt("unknown string encoding %d", n)
}

// length reads a length, or a special encoding (enc) whose number is then n.
func (s *StringReader) length() (n uint64, enc bool, err error) {
	b, err := s.br.ReadByte()
	if err != nil {
		return 0, false, unexpected(err)
	}
	var num [8]byte
	switch b >> 6 {
	case len6Bit:
		return uint64(b & 0x3f), false, nil
	case len14Bit:
		b2, err := s.br.ReadByte()
		if err != nil {
			return 0, false, unexpected(err)
		}
		return uint64(b&0x3f)<<8 | uint64(b2), false, nil
	case lenEnc:
		return uint64(b & 0x3f), true, nil
	}
	switch b {
	case len32Bit:
		if _, err := io.ReadFull(s.br, num[:4]); err != nil {
			return 0, false, unexpected(err)
		}
		return uint64(binary.BigEndian.Uint32(num[:4])), false, nil
	case len64Bit:
		if _, err := io.ReadFull(s.br, num[:8]); err != nil {
			return 0, false, unexpected(err)
		}
		return binary.BigEndian.Uint64(num[:8]), false, nil
	}
	return 0, false, corrupt("bad length byte %#x", b)
}

// Len returns the string's decoded length.
func (s *StringReader) Len() int64 { return s.n }

// Read reads decoded bytes; it returns io.EOF after the last one, and an error wrapping
// ErrCorrupt (or io.ErrUnexpectedEOF) when the encoded bytes do not make the string they say.
func (s *StringReader) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p = p[:min(int64(len(p)), s.left)]
	var n int
	var err error
	switch {
	case s.mem != nil:
		n = copy(p, s.mem[s.n-s.left:])
	case s.lzf != nil:
		n, err = s.lzf.read(p)
	default:
		n, err = s.br.Read(p)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	}
	s.left -= int64(n)
	if err == io.EOF && s.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// lzfWindow is the farthest back an LZF back reference reaches (13 bits of offset, plus one).
const lzfWindow = 1 << 13

// lzfInput decompresses an LZF stream as it is read: out holds the last lzfWindow bytes made
// (for back references) and those not read yet.
type lzfInput struct {
	br    *bufio.Reader
	left  int64 // compressed bytes not consumed
	ulen  int64 // decompressed bytes not made yet
	out   []byte
	start int // out[start:] is not read yet
}

func (z *lzfInput) read(p []byte) (int, error) {
	if z.start == len(z.out) {
		if err := z.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, z.out[z.start:])
	z.start += n
	return n, nil
}

// lzfChunk is how many bytes one fill makes at least (when there are that many).
const lzfChunk = 64 << 10

// fill makes more bytes: after keeping the window, up to lzfChunk (plus one back reference or
// literal run) or to the end.
func (z *lzfInput) fill() error {
	if z.out == nil {
		z.out = make([]byte, 0, lzfWindow+lzfChunk+512)
	}
	if keep := min(len(z.out), lzfWindow); len(z.out) > keep {
		n := copy(z.out, z.out[len(z.out)-keep:])
		z.out = z.out[:n]
	}
	z.start = len(z.out)
	for len(z.out)-z.start < lzfChunk && z.left > 0 {
		ctrl, err := z.byte()
		if err != nil {
			return err
		}
		if ctrl < 32 { // literal run of ctrl+1 bytes
			n := int(ctrl) + 1
			if int64(n) > z.left || int64(n) > z.ulen {
				return corrupt("LZF literal run past the end")
			}
			have := len(z.out)
			z.out = z.out[:have+n]
			if _, err := io.ReadFull(z.br, z.out[have:]); err != nil {
				return unexpected(err)
			}
			z.left -= int64(n)
			z.ulen -= int64(n)
			continue
		}
		n := int(ctrl >> 5)
		if n == 7 {
			b, err := z.byte()
			if err != nil {
				return err
			}
			n += int(b)
		}
		n += 2
		b, err := z.byte()
		if err != nil {
			return err
		}
		back := int(ctrl&0x1f)<<8 | int(b) + 1
		ref := len(z.out) - back
		if ref < 0 || int64(n) > z.ulen {
			return corrupt("LZF back reference out of range")
		}
		for k := 0; k < n; { // may overlap: copy what exists, in growing pieces
			c := min(n-k, len(z.out)-(ref+k))
			z.out = append(z.out, z.out[ref+k:ref+k+c]...)
			k += c
		}
		z.ulen -= int64(n)
	}
	switch {
	case z.left == 0 && z.ulen != 0:
		return corrupt("LZF data ends %d bytes short", z.ulen)
	case z.ulen == 0 && z.left != 0:
		return corrupt("%d bytes after the LZF data", z.left)
	}
	if z.start == len(z.out) {
		return io.ErrUnexpectedEOF
	}
	return nil
}

func (z *lzfInput) byte() (byte, error) {
	if z.left == 0 {
		return 0, corrupt("LZF data cut short")
	}
	b, err := z.br.ReadByte()
	if err != nil {
		return 0, unexpected(err)
	}
	z.left--
	return b, nil
}
