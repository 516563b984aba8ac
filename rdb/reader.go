package rdb

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"strconv"
)

// countingReader counts the bytes its reader gave; the decoder's offset is that count minus what
// still sits in the bufio.Reader above it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// maxHeld bounds strings that must be held whole whatever the raw limit: keys, aux fields,
// function libraries (Redis's proto-max-bulk-len default).
const maxHeld = 512 << 20

// input is the decoder's byte source: every byte consumed goes through the CRC and, while a value
// is being framed, into the capture buffer (until the raw limit is passed).
type input struct {
	cr  countingReader
	br  *bufio.Reader
	crc uint64
	tab *[16][256]uint64

	capturing bool  // inside a value: count (and maybe keep) its bytes
	held      bool  // the value's bytes are still being kept in raw
	maxRaw    int64 // limit for raw
	raw       []byte
	rawLen    int64

	scratch []byte // compressed string bytes
	num     [16]byte
}

func (in *input) offset() int64 { return in.cr.n - int64(in.br.Buffered()) }

func (in *input) consume(p []byte) {
	if in.tab != nil {
		in.crc = crcUpdate(in.tab, in.crc, p)
	}
	if !in.capturing {
		return
	}
	in.rawLen += int64(len(p))
	if !in.held {
		return
	}
	if int64(len(in.raw))+int64(len(p)) > in.maxRaw {
		in.held = false
		in.raw = in.raw[:0]
		return
	}
	in.raw = append(in.raw, p...)
}

func (in *input) startCapture() {
	in.capturing, in.held = true, true
	in.raw, in.rawLen = in.raw[:0], 0
	if cap(in.raw) > 1<<20 && in.maxRaw < int64(cap(in.raw)) {
		in.raw = nil // a smaller limit was set: let a big buffer go
	}
}

func (in *input) stopCapture() { in.capturing = false }

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (in *input) readByte() (byte, error) {
	b, err := in.br.ReadByte()
	if err != nil {
		return 0, unexpected(err)
	}
	if in.tab != nil {
		in.crc = in.tab[0][byte(in.crc)^b] ^ in.crc>>8
	}
	if in.capturing {
		in.rawLen++
		if in.held {
			if int64(len(in.raw)) >= in.maxRaw {
				in.held = false
				in.raw = in.raw[:0]
			} else {
				in.raw = append(in.raw, b)
			}
		}
	}
	return b, nil
}

func (in *input) readFull(p []byte) error {
	if _, err := io.ReadFull(in.br, p); err != nil {
		return unexpected(err)
	}
	in.consume(p)
	return nil
}

// skip consumes n bytes without keeping them (except in the capture buffer).
func (in *input) skip(n uint64) error {
	for n > 0 {
		k := in.br.Size()
		if uint64(k) > n {
			k = int(n)
		}
		p, err := in.br.Peek(k)
		if len(p) > 0 {
			in.consume(p)
			_, _ = in.br.Discard(len(p))
			n -= uint64(len(p))
		}
		if err != nil && n > 0 {
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			return unexpected(err)
		}
	}
	return nil
}

// readBytes appends n bytes to dst. The buffer grows with the data that actually arrives, so a
// lying length costs nothing before the input runs out.
func (in *input) readBytes(dst []byte, n uint64, limit int64) ([]byte, error) {
	if n > uint64(limit) {
		return dst, ErrTooLarge
	}
	for n > 0 {
		k := in.br.Size()
		if uint64(k) > n {
			k = int(n)
		}
		p, err := in.br.Peek(k)
		if len(p) > 0 {
			in.consume(p)
			dst = append(dst, p...)
			_, _ = in.br.Discard(len(p))
			n -= uint64(len(p))
		}
		if err != nil && n > 0 {
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			return dst, unexpected(err)
		}
	}
	return dst, nil
}

// readLen reads a length; enc reports a special string encoding, whose number is then n.
func (in *input) readLen() (n uint64, enc bool, err error) {
	b, err := in.readByte()
	if err != nil {
		return 0, false, err
	}
	switch b >> 6 {
	case len6Bit:
		return uint64(b & 0x3f), false, nil
	case len14Bit:
		b2, err := in.readByte()
		if err != nil {
			return 0, false, err
		}
		return uint64(b&0x3f)<<8 | uint64(b2), false, nil
	case lenEnc:
		return uint64(b & 0x3f), true, nil
	}
	switch b {
	case len32Bit:
		if err := in.readFull(in.num[:4]); err != nil {
			return 0, false, err
		}
		return uint64(binary.BigEndian.Uint32(in.num[:4])), false, nil
	case len64Bit:
		if err := in.readFull(in.num[:8]); err != nil {
			return 0, false, err
		}
		return binary.BigEndian.Uint64(in.num[:8]), false, nil
	}
	return 0, false, corrupt("bad length byte %#x", b)
}

// readPlainLen reads a length that may not be a string encoding.
func (in *input) readPlainLen() (uint64, error) {
	n, enc, err := in.readLen()
	if err == nil && enc {
		err = corrupt("string encoding %d where a length belongs", n)
	}
	return n, err
}

// skipString consumes one string in any encoding.
func (in *input) skipString() error {
	n, enc, err := in.readLen()
	if err != nil {
		return err
	}
	if !enc {
		return in.skip(n)
	}
	switch n {
	case encInt8:
		return in.skip(1)
	case encInt16:
		return in.skip(2)
	case encInt32:
		return in.skip(4)
	case encLZF:
		clen, err := in.readPlainLen()
		if err != nil {
			return err
		}
		if _, err := in.readPlainLen(); err != nil {
			return err
		}
		return in.skip(clen)
	}
	return corrupt("unknown string encoding %d", n)
}

// readString appends one decoded string (integers as decimal text, LZF expanded) to dst.
func (in *input) readString(dst []byte, limit int64) ([]byte, error) {
	n, enc, err := in.readLen()
	if err != nil {
		return dst, err
	}
	if !enc {
		return in.readBytes(dst, n, limit)
	}
	switch n {
	case encInt8:
		b, err := in.readByte()
		return strconv.AppendInt(dst, int64(int8(b)), 10), err
	case encInt16:
		err := in.readFull(in.num[:2])
		return strconv.AppendInt(dst, int64(int16(binary.LittleEndian.Uint16(in.num[:2]))), 10), err
	case encInt32:
		err := in.readFull(in.num[:4])
		return strconv.AppendInt(dst, int64(int32(binary.LittleEndian.Uint32(in.num[:4]))), 10), err
	case encLZF:
		clen, err := in.readPlainLen()
		if err != nil {
			return dst, err
		}
		ulen, err := in.readPlainLen()
		if err != nil {
			return dst, err
		}
		if ulen > uint64(limit) {
			return dst, ErrTooLarge
		}
		if ulen > clen*lzfMaxExpansion+64 {
			return dst, corrupt("LZF lengths %d/%d", clen, ulen)
		}
		in.scratch, err = in.readBytes(in.scratch[:0], clen, limit)
		if err != nil {
			return dst, err
		}
		return lzfDecompress(dst, in.scratch, int(ulen))
	}
	return dst, corrupt("unknown string encoding %d", n)
}

// skipStringDouble consumes a double written as text (RDB_TYPE_ZSET, module v1 style).
func (in *input) skipStringDouble() error {
	b, err := in.readByte()
	if err != nil || b >= 253 {
		return err
	}
	return in.skip(uint64(b))
}

// readUint64LE reads 8 little-endian bytes (millisecond times, binary doubles).
func (in *input) readUint64LE() (uint64, error) {
	if err := in.readFull(in.num[:8]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(in.num[:8]), nil
}

// parseStringDouble reads the text form of a double: NaN, ±inf, or "%.17g" text.
func parseStringDouble(b byte, text []byte) (float64, error) {
	switch b {
	case 253:
		return math.NaN(), nil
	case 254:
		return math.Inf(1), nil
	case 255:
		return math.Inf(-1), nil
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil {
		return 0, corrupt("bad double %q", text)
	}
	return f, nil
}
