package source

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/rmt-project/rmt/internal/redisfmt"
	"github.com/rmt-project/rmt/rdb"
)

// Big keys, read in pages instead of one DUMP: LRANGE, SSCAN, HSCAN, ZRANGE ... WITHSCORES and
// GETRANGE, a page at a time on the node's connection. For a pass, the pages become the RDB
// encoding of the value (a plain list, set, hash, zset with binary scores, or string), which
// the target writer's Rewrite reads element by element into native commands (bigValue). For
// the stream of scan_live they become those commands directly: DEL, then one command per page,
// then PEXPIREAT (bigCommands). Neither side holds more than a page.
//
// A key that changes while its pages are read can come out as a mix of its states; a SSCAN or
// HSCAN may return an element twice while the key changes. A pass's encoding must say its
// length first: it is the length when the read began; elements past it are left out and, when
// there are fewer, the last one is repeated (a no-op for a set, hash or zset). Either way the
// key is counted changed_during_read; scan_live reads it again (its notification is on its way
// anyway).

// pager reads the elements of one big key, page by page.
type pager struct {
	sc     *scanConn
	key    []byte
	typ    string
	cursor string // SSCAN, HSCAN
	start  int64  // LRANGE, ZRANGE, GETRANGE
	done   bool
	args   [][]byte
}

// stride is the number of items one element takes in a page: field and value, member and score.
func (p *pager) stride() int {
	if p.typ == "hash" || p.typ == "zset" {
		return 2
	}
	return 1
}

// next reads the next page into dst (reset first): the items of its elements, or for a string
// one piece of its bytes. It returns dst empty once the key is read to its end.
func (p *pager) next(dst [][]byte) ([][]byte, error) {
	dst = dst[:0]
	for !p.done && len(dst) == 0 {
		var err error
		if dst, err = p.page(dst); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

func (p *pager) page(dst [][]byte) ([][]byte, error) {
	n := int64(bigPageElems)
	var cmd string
	switch p.typ {
	case "list":
		cmd = "LRANGE"
		p.args = append(p.args[:0], []byte(cmd), p.key, strconv.AppendInt(nil, p.start, 10), strconv.AppendInt(nil, p.start+n-1, 10))
	case "zset":
		cmd = "ZRANGE"
		p.args = append(p.args[:0], []byte(cmd), p.key, strconv.AppendInt(nil, p.start, 10), strconv.AppendInt(nil, p.start+n-1, 10),
			[]byte("WITHSCORES"))
	case "string":
		cmd, n = "GETRANGE", bigPageBytes
		p.args = append(p.args[:0], []byte(cmd), p.key, strconv.AppendInt(nil, p.start, 10), strconv.AppendInt(nil, p.start+n-1, 10))
	case "set", "hash":
		cmd = "SSCAN"
		if p.typ == "hash" {
			cmd = "HSCAN"
		}
		if p.cursor == "" {
			p.cursor = "0"
		}
		p.args = append(p.args[:0], []byte(cmd), p.key, []byte(p.cursor), []byte("COUNT"), strconv.AppendInt(nil, n, 10))
	default:
		return dst, fmt.Errorf("source %s: key %s of type %s cannot be read in pages", p.sc.addr, redisfmt.Quote(string(p.key)), p.typ)
	}
	p.sc.add(p.args...)
	if err := p.sc.flush(); err != nil {
		return dst, err
	}
	r, err := p.sc.read()
	if err != nil {
		return dst, err
	}
	if err := r.err(cmd); err != nil {
		p.done = true // WRONGTYPE: it changed meanwhile
		return dst, errKeyChanged
	}
	switch p.typ {
	case "string":
		if r.Kind != '$' || r.Null {
			return dst, p.sc.bad(cmd, r.Str)
		}
		if len(r.Str) > 0 {
			dst = append(dst, r.Str)
		}
		p.start += int64(len(r.Str))
		p.done = int64(len(r.Str)) < n
		return dst, nil
	case "list", "zset":
		if r.Kind != '*' {
			return dst, p.sc.bad(cmd, r.Str)
		}
		for _, e := range r.Elems {
			dst = append(dst, e.Str)
		}
		got := int64(len(r.Elems) / p.stride())
		p.start += got
		p.done = got < n
		return dst, nil
	}
	if r.Kind != '*' || len(r.Elems) != 2 || r.Elems[1].Kind != '*' {
		return dst, p.sc.bad(cmd, r.Str)
	}
	p.cursor = string(r.Elems[0].Str)
	p.done = p.cursor == "0"
	for _, e := range r.Elems[1].Elems {
		dst = append(dst, e.Str)
	}
	if len(dst)%p.stride() != 0 {
		return dst[:0], p.sc.bad(cmd+" (odd number of items)", nil)
	}
	return dst, nil
}

// errKeyChanged says a big key changed type or went away while read in pages.
var errKeyChanged = errors.New("source: the key changed while read")

// rdbTypeOf is the RDB type a big key's pages are encoded as.
func rdbTypeOf(typ string) byte {
	switch typ {
	case "list":
		return rdb.TypeList
	case "set":
		return rdb.TypeSet
	case "zset":
		return rdb.TypeZSet2
	case "hash":
		return rdb.TypeHash
	}
	return rdb.TypeString
}

// bigValue is the RDB encoding of a big key's value, made from its pages as it is read.
type bigValue struct {
	p       *pager
	length  int64 // elements (a string: bytes) the encoding says it has
	made    int64
	last    [][]byte // the last element written, for padding
	items   [][]byte // the page being encoded
	buf     []byte
	off     int
	started bool
	changed bool // the key did not match its length
	err     error
}

// newBigValue starts reading k's pages on sc; it reports false when the key has no element
// any more (gone, emptied, changed type), which a pass then skips.
func newBigValue(sc *scanConn, k *keyRead) (*bigValue, bool, error) {
	v := &bigValue{p: &pager{sc: sc, key: k.key, typ: k.big.typ}, length: k.big.length}
	var err error
	v.items, err = v.p.next(nil)
	if errors.Is(err, errKeyChanged) || err == nil && len(v.items) == 0 {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

func (v *bigValue) Read(b []byte) (int, error) {
	for v.off == len(v.buf) {
		if v.err != nil {
			return 0, v.err
		}
		v.buf, v.off = v.buf[:0], 0
		v.err = v.fill()
	}
	n := copy(b, v.buf[v.off:])
	v.off += n
	return n, nil
}

// fill encodes the next page (the first is read by newBigValue), or the padding after the
// last one; io.EOF once the length is made.
func (v *bigValue) fill() error {
	if !v.started {
		v.started = true
		v.buf = appendRDBLen(v.buf, uint64(v.length))
	} else if v.made < v.length {
		var err error
		if v.items, err = v.p.next(v.items); errors.Is(err, errKeyChanged) {
			v.items, v.changed = v.items[:0], true
		} else if err != nil {
			return err
		}
	}
	if v.p.typ == "string" {
		for _, piece := range v.items {
			take := min(int64(len(piece)), v.length-v.made)
			v.buf = append(v.buf, piece[:take]...)
			v.made += take
			if take < int64(len(piece)) {
				v.changed = true
			}
		}
		if len(v.items) == 0 && v.made < v.length { // shorter now: pad with zeros
			v.changed = true
			n := min(v.length-v.made, bigPageBytes)
			v.buf = append(v.buf, make([]byte, n)...)
			v.made += n
		}
	} else {
		stride := v.p.stride()
		for i := 0; i+stride <= len(v.items); i += stride {
			if v.made == v.length {
				v.changed = true
				break
			}
			el := v.items[i : i+stride]
			if err := v.encode(el); err != nil {
				return err
			}
			v.last = append(v.last[:0], el...)
		}
		if len(v.items) == 0 {
			for v.made < v.length && len(v.buf) < bigPageBytes {
				v.changed = true
				if err := v.encode(v.last); err != nil {
					return err
				}
			}
		}
	}
	v.items = v.items[:0]
	if len(v.buf) == 0 && v.made >= v.length {
		return io.EOF
	}
	return nil
}

// encode appends one element.
func (v *bigValue) encode(el [][]byte) error {
	v.made++
	v.buf = appendRDBString(v.buf, el[0])
	switch v.p.typ {
	case "hash":
		v.buf = appendRDBString(v.buf, el[1])
	case "zset":
		f, err := strconv.ParseFloat(string(el[1]), 64)
		if err != nil {
			return fmt.Errorf("source %s: key %s: score %q: %w", v.p.sc.addr, redisfmt.Quote(string(v.p.key)), el[1], errBadScanReply)
		}
		v.buf = binary.LittleEndian.AppendUint64(v.buf, math.Float64bits(f))
	}
	return nil
}

// appendRDBLen appends an RDB length.
func appendRDBLen(b []byte, n uint64) []byte {
	switch {
	case n < 1<<6:
		return append(b, byte(n))
	case n < 1<<14:
		return append(b, byte(n>>8)|0x40, byte(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0x80), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 0x81), n)
}

// appendRDBString appends a plain (not compressed, not integer-encoded) RDB string.
func appendRDBString(b, s []byte) []byte {
	return append(appendRDBLen(b, uint64(len(s))), s...)
}

// bigCommands sends a big key to the stream as native commands through emit: DEL, then one
// command per page, then PEXPIREAT. It returns the bytes of elements read.
func bigCommands(sc *scanConn, k *keyRead, emit func(args ...[]byte) error) (int64, error) {
	p := &pager{sc: sc, key: k.key, typ: k.big.typ}
	if err := emit([]byte("DEL"), k.key); err != nil {
		return 0, err
	}
	var items, args [][]byte
	var bytes int64
	first := true
	for {
		var err error
		items, err = p.next(items)
		if errors.Is(err, errKeyChanged) {
			break // it changed meanwhile: its notification comes, and a new read
		}
		if err != nil {
			return bytes, err
		}
		if len(items) == 0 {
			break
		}
		for _, it := range items {
			bytes += int64(len(it))
		}
		args = args[:0]
		switch p.typ {
		case "list":
			args = append(append(args, []byte("RPUSH"), k.key), items...)
		case "set":
			args = append(append(args, []byte("SADD"), k.key), items...)
		case "hash":
			args = append(append(args, []byte("HSET"), k.key), items...)
		case "zset":
			args = append(args, []byte("ZADD"), k.key)
			for i := 0; i+1 < len(items); i += 2 {
				args = append(args, items[i+1], items[i])
			}
		case "string":
			name := []byte("APPEND")
			if first {
				name = []byte("SET")
			}
			args = append(append(args, name, k.key), items...)
		}
		first = false
		if err := emit(args...); err != nil {
			return bytes, err
		}
	}
	if k.expireMs > 0 && !first {
		if err := emit([]byte("PEXPIREAT"), k.key, strconv.AppendInt(nil, k.expireMs, 10)); err != nil {
			return bytes, err
		}
	}
	return bytes, nil
}
