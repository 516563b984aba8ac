package rdb

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
)

// maxElement bounds one element or one encoded container (listpack, ziplist...) a ValueReader
// holds at a time.
const maxElement = 512 << 20

// Element is one element of a value, as a ValueReader yields it. Its slices belong to the reader
// and stay valid until the next call to Next.
type Element struct {
	Member   []byte  // the string's value; the list, set or zset member; the hash field
	Score    float64 // zset score
	Value    []byte  // hash value
	ExpireMs int64   // hash field expiry, absolute Unix ms; 0: none
	ID       StreamID
	Fields   [][]byte // stream entry: field, value, field, value...
}

// ValueReader decodes a value one element at a time from its raw bytes (the file section that
// Entry.ValueOffset and Entry.ValueLen name), so that a value of any size can be rewritten as
// commands without being held.
type ValueReader struct {
	typ       byte
	in        input
	err       error
	begun     bool
	count     uint64 // top-level items left
	minExpire uint64
	it        blobIter
	blob      []byte
	a, b      []byte // element scratch

	// streams
	stream       *listpackIter
	master       StreamID
	masterFields []lpItem
	items        []lpItem
	fields       [][]byte
	fbuf         []byte
	meta         StreamMeta
	sawFirst     bool
}

type lpItem struct {
	s     []byte
	n     int64
	isInt bool
}

// NewValueReader returns a reader of the value of type typ whose bytes r yields.
func NewValueReader(typ byte, r io.Reader) *ValueReader {
	size := 32 << 10
	switch x := r.(type) { // a small value needs no big buffer
	case interface{ Len() int }:
		size = min(max(x.Len(), 16), size)
	case interface{ Size() int64 }:
		size = int(min(max(x.Size(), 16), int64(size)))
	}
	return newValueReader(typ, r, size)
}

func newValueReader(typ byte, r io.Reader, bufSize int) *ValueReader {
	v := &ValueReader{typ: typ}
	v.in.cr.r = r
	v.in.br = bufio.NewReaderSize(&v.in.cr, bufSize)
	return v
}

// Stream returns the stream's metadata once Next has returned io.EOF (nil for other types).
func (r *ValueReader) Stream() *StreamMeta {
	if TypeName(r.typ) != "stream" || r.err != io.EOF {
		return nil
	}
	return &r.meta
}

// Next fills el with the next element, or returns io.EOF after the last one.
func (r *ValueReader) Next(el *Element) error {
	if r.err != nil {
		return r.err
	}
	if !r.begun {
		r.begun = true
		if err := r.begin(); err != nil {
			return r.fail(err)
		}
	}
	*el = Element{}
	if err := r.next(el); err != nil {
		return r.fail(err)
	}
	return nil
}

func (r *ValueReader) fail(err error) error {
	if err == io.EOF {
		r.err = err
	} else {
		r.err = fmt.Errorf("rdb: value of type %d at offset %d: %w", r.typ, r.in.offset(), err)
	}
	return r.err
}

func (r *ValueReader) begin() error {
	var err error
	switch r.typ {
	case TypeString, TypeHashZipmap, TypeListZiplist, TypeSetIntset, TypeZSetZiplist,
		TypeHashZiplist, TypeHashListpack, TypeZSetListpack, TypeSetListpack,
		TypeHashListpackExPreGA:
		r.count = 1
	case TypeHashListpackEx:
		_, err = r.in.readUint64LE()
		r.count = 1
	case TypeHashMetadata:
		if r.minExpire, err = r.in.readUint64LE(); err == nil {
			r.count, err = r.in.readPlainLen()
		}
	case TypeList, TypeSet, TypeZSet, TypeZSet2, TypeHash, TypeListQuicklist, TypeListQuicklist2,
		TypeHashMetadataPreGA, TypeStreamListpacks, TypeStreamListpacks2, TypeStreamListpacks3:
		r.count, err = r.in.readPlainLen()
	case TypeModule, TypeModule2:
		err = fmt.Errorf("module values have no elements: %w", ErrUnsupported)
	default:
		err = fmt.Errorf("unknown value type %d: %w", r.typ, ErrUnsupported)
	}
	return err
}

func (r *ValueReader) next(el *Element) error {
	var err error
	switch r.typ {
	case TypeString, TypeList, TypeSet, TypeZSet, TypeZSet2, TypeHash:
		if r.count == 0 {
			return io.EOF
		}
		r.count--
		if r.a, err = r.in.readString(r.a[:0], maxElement); err != nil {
			return err
		}
		el.Member = r.a
		switch r.typ {
		case TypeZSet:
			el.Score, err = r.readStringDouble()
		case TypeZSet2:
			var u uint64
			u, err = r.in.readUint64LE()
			el.Score = math.Float64frombits(u)
		case TypeHash:
			r.b, err = r.in.readString(r.b[:0], maxElement)
			el.Value = r.b
		}
		return err
	case TypeHashMetadata, TypeHashMetadataPreGA:
		if r.count == 0 {
			return io.EOF
		}
		r.count--
		ttl, err := r.in.readPlainLen()
		if err != nil {
			return err
		}
		if ttl != 0 && r.typ == TypeHashMetadata {
			ttl += r.minExpire - 1
		}
		el.ExpireMs = int64(ttl)
		if r.a, err = r.in.readString(r.a[:0], maxElement); err != nil {
			return err
		}
		r.b, err = r.in.readString(r.b[:0], maxElement)
		el.Member, el.Value = r.a, r.b
		return err
	case TypeStreamListpacks, TypeStreamListpacks2, TypeStreamListpacks3:
		return r.nextStream(el)
	}
	return r.nextPacked(el)
}

func (r *ValueReader) readStringDouble() (float64, error) {
	b, err := r.in.readByte()
	if err != nil {
		return 0, err
	}
	if b < 253 {
		if r.b, err = r.in.readBytes(r.b[:0], uint64(b), 255); err != nil {
			return 0, err
		}
	}
	return parseStringDouble(b, r.b)
}

// loadContainer reads the next encoded container of the value into r.it. For a plain quicklist
// node it fills el instead and reports plain.
func (r *ValueReader) loadContainer(el *Element) (plain bool, err error) {
	r.count--
	container := uint64(quicklistPacked)
	if r.typ == TypeListQuicklist2 {
		if container, err = r.in.readPlainLen(); err != nil {
			return false, err
		}
	}
	if r.blob, err = r.in.readString(r.blob[:0], maxElement); err != nil {
		return false, err
	}
	switch r.typ {
	case TypeListQuicklist2:
		switch container {
		case quicklistPlain:
			el.Member = r.blob
			return true, nil
		case quicklistPacked:
			r.it, err = newListpackIter(r.blob)
		default:
			err = corrupt("quicklist container %d", container)
		}
	case TypeHashZipmap:
		r.it, err = newZipmapIter(r.blob)
	case TypeListZiplist, TypeZSetZiplist, TypeHashZiplist, TypeListQuicklist:
		r.it, err = newZiplistIter(r.blob)
	case TypeSetIntset:
		r.it, err = newIntsetIter(r.blob)
	default: // listpacks
		r.it, err = newListpackIter(r.blob)
	}
	return false, err
}

// appendText appends an entry as text.
func appendText(dst, s []byte, n int64, isInt bool) []byte {
	if isInt {
		return strconv.AppendInt(dst, n, 10)
	}
	return append(dst, s...)
}

func (r *ValueReader) nextPacked(el *Element) error {
	for {
		if r.it == nil {
			if r.count == 0 {
				return io.EOF
			}
			plain, err := r.loadContainer(el)
			if err != nil || plain {
				return err
			}
		}
		s, n, isInt, err := r.it.next()
		if err == errEnd {
			r.it = nil
			continue
		}
		if err != nil {
			return err
		}
		if isInt {
			r.a = strconv.AppendInt(r.a[:0], n, 10)
			s = r.a
		}
		el.Member = s
		group := 1
		switch r.typ {
		case TypeZSetZiplist, TypeZSetListpack, TypeHashZipmap, TypeHashZiplist, TypeHashListpack:
			group = 2
		case TypeHashListpackEx, TypeHashListpackExPreGA:
			group = 3
		}
		if group == 1 {
			return nil
		}
		s, n, isInt, err = r.it.next()
		if err == errEnd {
			return corrupt("odd number of entries in a %s", TypeName(r.typ))
		}
		if err != nil {
			return err
		}
		switch r.typ {
		case TypeZSetZiplist, TypeZSetListpack:
			if isInt {
				el.Score = float64(n)
			} else if el.Score, err = strconv.ParseFloat(string(s), 64); err != nil {
				return corrupt("bad score %q", s)
			}
			return nil
		}
		if isInt {
			r.b = strconv.AppendInt(r.b[:0], n, 10)
			s = r.b
		}
		el.Value = s
		if group == 2 {
			return nil
		}
		_, n, isInt, err = r.it.next()
		if err == errEnd || (err == nil && !isInt) {
			return corrupt("hash field without a TTL")
		}
		el.ExpireMs = n
		return err
	}
}
