package rdb

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"
)

// Encoder writes an RDB file. Values are written in plain encodings (list 1, set 2, zset 5 or 3,
// hash 4 or 24 with field TTLs), which every Redis of the file's version loads and re-encodes;
// streams as listpacks, the only encoding they have. Methods record the first error; Close
// returns it.
type Encoder struct {
	w       *bufio.Writer
	crc     uint64
	version int
	err     error
	buf     []byte
	lp      []byte
	lzf     []byte
	copyBuf []byte // WriteRawEntryFrom's
	table   *lzfTable
}

// NewEncoder returns an encoder writing an RDB file of the given version (1 to 12) to w.
func NewEncoder(w io.Writer, version int) *Encoder {
	e := &Encoder{w: bufio.NewWriterSize(w, 64<<10), version: version, table: new(lzfTable)}
	if version < 1 || (version > MaxVersion && version != ValkeyVersion) {
		e.err = fmt.Errorf("rdb: cannot write RDB version %d: %w", version, ErrUnsupported)
	}
	return e
}

func (e *Encoder) write(p []byte) {
	if e.err != nil {
		return
	}
	e.crc = CRC64(e.crc, p)
	_, e.err = e.w.Write(p)
}

// WriteHeader writes the magic string and version.
func (e *Encoder) WriteHeader() error {
	if e.version == ValkeyVersion {
		e.write(fmt.Appendf(e.buf[:0], "VALKEY%03d", e.version))
	} else {
		e.write(fmt.Appendf(e.buf[:0], "REDIS%04d", e.version))
	}
	return e.err
}

// WriteAux writes an auxiliary field (RDB version 7 and later; ignored before).
func (e *Encoder) WriteAux(name, value string) error {
	if e.version < 7 {
		return e.err
	}
	b := append(e.buf[:0], opAux)
	b = appendString(b, []byte(name))
	e.buf = appendString(b, []byte(value))
	e.write(e.buf)
	return e.err
}

// SelectDB makes the following entries belong to database db.
func (e *Encoder) SelectDB(db int) error {
	e.buf = appendLen(append(e.buf[:0], opSelectDB), uint64(db))
	e.write(e.buf)
	return e.err
}

// WriteFunction writes a function library (FUNCTION2, RDB version 10 and later).
func (e *Encoder) WriteFunction(code []byte) error {
	if e.err == nil && e.version < 10 {
		e.err = fmt.Errorf("rdb: functions need RDB version 10: %w", ErrUnsupported)
	}
	e.buf = appendString(append(e.buf[:0], opFunction2), code)
	e.write(e.buf)
	return e.err
}

// WriteEntry writes a key, its value and its absolute expiry in Unix ms (0: none).
func (e *Encoder) WriteEntry(key []byte, v *Value, expireMs int64) error {
	if e.err != nil {
		return e.err
	}
	b := e.buf[:0]
	if expireMs != 0 {
		if e.version >= 3 {
			b = binary.LittleEndian.AppendUint64(append(b, opExpireTimeMs), uint64(expireMs))
		} else {
			b = binary.LittleEndian.AppendUint32(append(b, opExpireTime), uint32(expireMs/1000))
		}
	}
	typ, err := e.valueType(v)
	if err != nil {
		e.err = fmt.Errorf("rdb: key %s: %w", quoteKey(key), err)
		return e.err
	}
	b = e.str(append(b, typ), key)
	b, err = e.appendValue(b, typ, v)
	if err != nil {
		e.err = fmt.Errorf("rdb: key %s: %w", quoteKey(key), err)
		return e.err
	}
	e.buf = b
	e.write(b)
	if cap(e.buf) > 1<<20 {
		e.buf = nil
	}
	return e.err
}

// WriteRawEntry writes a key with a value already in RDB form (Entry.Type and Entry.Value from
// a decoder), without decoding it. The value's encoding must be one the file's version knows.
func (e *Encoder) WriteRawEntry(key []byte, typ byte, raw []byte, expireMs int64) error {
	if e.err != nil {
		return e.err
	}
	b := e.buf[:0]
	if expireMs != 0 {
		b = binary.LittleEndian.AppendUint64(append(b, opExpireTimeMs), uint64(expireMs))
	}
	e.buf = appendString(append(b, typ), key)
	e.write(e.buf)
	e.write(raw)
	return e.err
}

// WriteRawEntryFrom is WriteRawEntry for a value of n bytes read from r (a section of another
// RDB file), copied in pieces: a value of any size is written without being held.
func (e *Encoder) WriteRawEntryFrom(key []byte, typ byte, r io.Reader, n int64, expireMs int64) error {
	if e.err != nil {
		return e.err
	}
	b := e.buf[:0]
	if expireMs != 0 {
		b = binary.LittleEndian.AppendUint64(append(b, opExpireTimeMs), uint64(expireMs))
	}
	e.buf = appendString(append(b, typ), key)
	e.write(e.buf)
	if e.copyBuf == nil {
		e.copyBuf = make([]byte, 64<<10)
	}
	buf := e.copyBuf
	for done := int64(0); done < n && e.err == nil; {
		p := buf[:min(int64(len(buf)), n-done)]
		k, err := io.ReadFull(r, p)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			e.err = fmt.Errorf("rdb: key %s: reading its value at byte %d of %d: %w", quoteKey(key), done+int64(k), n, err)
			break
		}
		e.write(p)
		done += int64(k)
	}
	return e.err
}

// AppendValue appends v in the encoding WriteEntry uses for the given RDB version and returns
// its type byte: with DumpPayload, a RESTORE payload for a value built from commands.
func AppendValue(dst []byte, v *Value, rdbVersion int) ([]byte, byte, error) {
	e := Encoder{version: rdbVersion, table: new(lzfTable)}
	typ, err := e.valueType(v)
	if err != nil {
		return dst, 0, err
	}
	dst, err = e.appendValue(dst, typ, v)
	return dst, typ, err
}

func (e *Encoder) valueType(v *Value) (byte, error) {
	switch {
	case v.Stream != nil:
		switch {
		case e.version >= 11:
			return TypeStreamListpacks3, nil
		case e.version >= 10:
			return TypeStreamListpacks2, nil
		case e.version >= 9:
			return TypeStreamListpacks, nil
		}
		return 0, fmt.Errorf("streams need RDB version 9: %w", ErrUnsupported)
	case v.Module != nil:
		if e.version < 8 {
			return 0, fmt.Errorf("modules need RDB version 8: %w", ErrUnsupported)
		}
		return TypeModule2, nil
	case v.Hash != nil:
		for _, f := range v.Hash {
			if f.ExpireMs != 0 {
				if e.version < 12 {
					return 0, fmt.Errorf("hash field TTLs need RDB version 12: %w", ErrUnsupported)
				}
				return TypeHashMetadata, nil
			}
		}
		return TypeHash, nil
	case v.ZSet != nil:
		if e.version >= 8 {
			return TypeZSet2, nil
		}
		return TypeZSet, nil
	case v.Set != nil:
		return TypeSet, nil
	case v.List != nil:
		return TypeList, nil
	}
	return TypeString, nil
}

func (e *Encoder) appendValue(b []byte, typ byte, v *Value) ([]byte, error) {
	switch typ {
	case TypeString:
		return e.str(b, v.String), nil
	case TypeList, TypeSet:
		l := v.List
		if typ == TypeSet {
			l = v.Set
		}
		b = appendLen(b, uint64(len(l)))
		for _, m := range l {
			b = e.str(b, m)
		}
	case TypeZSet, TypeZSet2:
		b = appendLen(b, uint64(len(v.ZSet)))
		for _, m := range v.ZSet {
			b = e.str(b, m.Member)
			if typ == TypeZSet2 {
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(m.Score))
			} else {
				b = appendStringDouble(b, m.Score)
			}
		}
	case TypeHash:
		b = appendLen(b, uint64(len(v.Hash)))
		for _, f := range v.Hash {
			b = e.str(e.str(b, f.Field), f.Value)
		}
	case TypeHashMetadata:
		minExp := int64(math.MaxInt64)
		for _, f := range v.Hash {
			if f.ExpireMs != 0 && f.ExpireMs < minExp {
				minExp = f.ExpireMs
			}
		}
		b = binary.LittleEndian.AppendUint64(b, uint64(minExp))
		b = appendLen(b, uint64(len(v.Hash)))
		for _, f := range v.Hash {
			ttl := uint64(0)
			if f.ExpireMs != 0 {
				ttl = uint64(f.ExpireMs-minExp) + 1
			}
			b = e.str(e.str(appendLen(b, ttl), f.Field), f.Value)
		}
	case TypeModule2:
		return append(b, v.Module.Raw...), nil
	default:
		return e.appendStream(b, typ, v.Stream), nil
	}
	return b, nil
}

// appendStringDouble writes a double as text (RDB_TYPE_ZSET).
func appendStringDouble(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, 253)
	case math.IsInf(f, 1):
		return append(b, 254)
	case math.IsInf(f, -1):
		return append(b, 255)
	}
	s := strconv.AppendFloat(nil, f, 'g', 17, 64)
	return append(append(b, byte(len(s))), s...)
}

// streamNodeEntries is how many entries go in one stream listpack.
const streamNodeEntries = 100

func (e *Encoder) appendStream(b []byte, typ byte, s *Stream) []byte {
	nodes := (len(s.Entries) + streamNodeEntries - 1) / streamNodeEntries
	b = appendLen(b, uint64(nodes))
	for i := 0; i < len(s.Entries); i += streamNodeEntries {
		chunk := s.Entries[i:min(i+streamNodeEntries, len(s.Entries))]
		master := chunk[0]
		var key [16]byte
		binary.BigEndian.PutUint64(key[:], master.ID.Ms)
		binary.BigEndian.PutUint64(key[8:], master.ID.Seq)
		b = e.str(b, key[:])
		lp := append(e.lp[:0], 0, 0, 0, 0, 0, 0)
		nf := len(master.Fields) / 2
		lp = lpAppendInt(lp, int64(len(chunk))) // count
		lp = lpAppendInt(lp, 0)                 // deleted
		lp = lpAppendInt(lp, int64(nf))
		for k := 0; k < nf; k++ {
			lp = lpAppendString(lp, master.Fields[2*k])
		}
		lp = lpAppendInt(lp, 0)
		count := 4 + nf
		for _, en := range chunk {
			same := len(en.Fields)/2 == nf
			for k := 0; same && k < nf; k++ {
				same = string(en.Fields[2*k]) == string(master.Fields[2*k])
			}
			flags := int64(0)
			if same {
				flags = streamItemSameFields
			}
			lp = lpAppendInt(lp, flags)
			lp = lpAppendInt(lp, int64(en.ID.Ms-master.ID.Ms))
			lp = lpAppendInt(lp, int64(en.ID.Seq-master.ID.Seq))
			n := len(en.Fields) / 2
			if same {
				for k := 0; k < n; k++ {
					lp = lpAppendString(lp, en.Fields[2*k+1])
				}
				lp = lpAppendInt(lp, int64(3+n))
				count += 4 + n
			} else {
				lp = lpAppendInt(lp, int64(n))
				for k := 0; k < 2*n; k++ {
					lp = lpAppendString(lp, en.Fields[k])
				}
				lp = lpAppendInt(lp, int64(4+2*n))
				count += 5 + 2*n
			}
		}
		lp = lpFinish(lp, count)
		b = e.str(b, lp)
		e.lp = lp
	}
	b = appendLen(b, s.Length)
	b = appendLen(appendLen(b, s.LastID.Ms), s.LastID.Seq)
	if typ >= TypeStreamListpacks2 {
		b = appendLen(appendLen(b, s.FirstID.Ms), s.FirstID.Seq)
		b = appendLen(appendLen(b, s.MaxDeletedID.Ms), s.MaxDeletedID.Seq)
		b = appendLen(b, s.EntriesAdded)
	}
	b = appendLen(b, uint64(len(s.Groups)))
	for _, g := range s.Groups {
		b = e.str(b, g.Name)
		b = appendLen(appendLen(b, g.LastID.Ms), g.LastID.Seq)
		if typ >= TypeStreamListpacks2 {
			b = appendLen(b, uint64(g.EntriesRead))
		}
		b = appendLen(b, uint64(len(g.PEL)))
		for _, n := range g.PEL {
			b = binary.BigEndian.AppendUint64(b, n.ID.Ms)
			b = binary.BigEndian.AppendUint64(b, n.ID.Seq)
			b = binary.LittleEndian.AppendUint64(b, uint64(n.DeliveryTime))
			b = appendLen(b, n.DeliveryCount)
		}
		b = appendLen(b, uint64(len(g.Consumers)))
		for _, c := range g.Consumers {
			b = e.str(b, c.Name)
			b = binary.LittleEndian.AppendUint64(b, uint64(c.SeenTime))
			if typ >= TypeStreamListpacks3 {
				b = binary.LittleEndian.AppendUint64(b, uint64(c.ActiveTime))
			}
			b = appendLen(b, uint64(len(c.PEL)))
			for _, id := range c.PEL {
				b = binary.BigEndian.AppendUint64(b, id.Ms)
				b = binary.BigEndian.AppendUint64(b, id.Seq)
			}
		}
	}
	return b
}

// Close writes the EOF opcode and the checksum (RDB version 5 and later), and flushes.
func (e *Encoder) Close() error {
	e.write([]byte{opEOF})
	if e.version >= 5 {
		var sum [8]byte
		binary.LittleEndian.PutUint64(sum[:], e.crc)
		e.write(sum[:])
	}
	if e.err == nil {
		e.err = e.w.Flush()
	}
	return e.err
}

// appendLen appends a length in the smallest encoding.
func appendLen(b []byte, n uint64) []byte {
	switch {
	case n < 1<<6:
		return append(b, byte(n))
	case n < 1<<14:
		return append(b, 0x40|byte(n>>8), byte(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, len32Bit), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, len64Bit), n)
}

// str appends a string as Redis does with rdbcompression on: LZF-compressed when longer than 20
// bytes and compressible, else plain.
func (e *Encoder) str(b, s []byte) []byte {
	if len(s) > 20 {
		if c, ok := lzfCompress(e.lzf[:0], s, e.table); ok {
			e.lzf = c
			b = appendLen(append(b, 0xc0|encLZF), uint64(len(c)))
			return append(appendLen(b, uint64(len(s))), c...)
		}
	}
	return appendString(b, s)
}

// appendString appends a plain (length-prefixed) string.
func appendString(b, s []byte) []byte {
	return append(appendLen(b, uint64(len(s))), s...)
}
