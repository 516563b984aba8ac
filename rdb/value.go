package rdb

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// Value is a decoded value. The field that matches TypeName(Type) is set.
type Value struct {
	Type   byte // the RDB type byte it was read from, or is to be written as
	String []byte
	List   [][]byte
	Set    [][]byte
	ZSet   []ZMember // in file order: ascending, but skiplists (type 5) are written highest first
	Hash   []HashField
	Stream *Stream
	Module *Module
}

// ZMember is a sorted-set member with its score.
type ZMember struct {
	Member []byte
	Score  float64
}

// HashField is a hash field, its value, and its absolute expiry in Unix ms (0: none).
type HashField struct {
	Field, Value []byte
	ExpireMs     int64
}

// Module is a module value (type 7): the module type's id and 9-character name, and its bytes as
// the file has them (opaque without the module).
type Module struct {
	ID   uint64
	Name string
	Raw  []byte
}

// StreamID is a stream entry ID.
type StreamID struct{ Ms, Seq uint64 }

func (id StreamID) String() string {
	return strconv.FormatUint(id.Ms, 10) + "-" + strconv.FormatUint(id.Seq, 10)
}

// Stream is a decoded stream: its live entries in ID order, then its metadata.
type Stream struct {
	Entries []StreamEntry
	StreamMeta
}

// StreamEntry is one stream entry: its ID and its field/value pairs, alternating.
type StreamEntry struct {
	ID     StreamID
	Fields [][]byte
}

// StreamMeta is what a stream holds besides its entries.
type StreamMeta struct {
	Length       uint64
	LastID       StreamID
	FirstID      StreamID // from the file (v2+), else the first live entry's
	MaxDeletedID StreamID // zero before stream format v2
	EntriesAdded uint64   // Length before stream format v2
	Groups       []StreamGroup
}

// StreamGroup is a consumer group with its pending entries and consumers.
type StreamGroup struct {
	Name        []byte
	LastID      StreamID
	EntriesRead int64 // -1 when unknown (always before stream format v2)
	PEL         []StreamNACK
	Consumers   []StreamConsumer
}

// StreamNACK is a pending entry of a group.
type StreamNACK struct {
	ID            StreamID
	DeliveryTime  int64 // Unix ms
	DeliveryCount uint64
}

// StreamConsumer is a consumer of a group and the IDs of its pending entries.
type StreamConsumer struct {
	Name       []byte
	SeenTime   int64 // Unix ms
	ActiveTime int64 // Unix ms; SeenTime before stream format v3
	PEL        []StreamID
}

// arena hands out copies from large chunks, so a parsed value costs a few allocations.
type arena struct {
	buf   []byte
	chunk int
}

func (a *arena) copy(p []byte) []byte {
	if len(p) > 4096 {
		return bytes.Clone(p)
	}
	if cap(a.buf)-len(a.buf) < len(p) {
		a.buf = make([]byte, 0, a.chunk)
		a.chunk = min(a.chunk*2, 64<<10)
	}
	n := len(a.buf)
	a.buf = append(a.buf, p...)
	return a.buf[n:len(a.buf):len(a.buf)]
}

// ParseValue decodes a whole value given its type byte and its raw bytes (Entry.Value, or the
// middle of a DUMP payload). The result does not alias raw.
func ParseValue(typ byte, raw []byte) (*Value, error) {
	v := &Value{Type: typ}
	if typ == TypeModule2 {
		return parseModule(v, raw)
	}
	size := min(max(len(raw), 16), 64<<10)
	r := newValueReader(typ, bytes.NewReader(raw), size)
	var el Element
	a := arena{chunk: min(max(len(raw), 256), 64<<10)}
	kind := TypeName(typ)
	if kind == "stream" {
		v.Stream = &Stream{}
	}
	for {
		err := r.Next(&el)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch kind {
		case "string":
			v.String = bytes.Clone(el.Member)
		case "list":
			v.List = append(v.List, a.copy(el.Member))
		case "set":
			v.Set = append(v.Set, a.copy(el.Member))
		case "zset":
			v.ZSet = append(v.ZSet, ZMember{a.copy(el.Member), el.Score})
		case "hash":
			v.Hash = append(v.Hash, HashField{a.copy(el.Member), a.copy(el.Value), el.ExpireMs})
		case "stream":
			f := make([][]byte, len(el.Fields))
			for i, x := range el.Fields {
				f[i] = a.copy(x)
			}
			v.Stream.Entries = append(v.Stream.Entries, StreamEntry{el.ID, f})
		}
	}
	if kind == "stream" {
		v.Stream.StreamMeta = *r.Stream()
	}
	if off := r.in.offset(); off != int64(len(raw)) {
		return nil, fmt.Errorf("rdb: value of type %d: %d trailing bytes at offset %d: %w",
			typ, int64(len(raw))-off, off, ErrCorrupt)
	}
	return v, nil
}

func parseModule(v *Value, raw []byte) (*Value, error) {
	var in input
	in.cr.r = bytes.NewReader(raw)
	in.br = bufio.NewReaderSize(&in.cr, min(max(len(raw), 16), 64<<10))
	id, err := in.readPlainLen()
	if err == nil {
		err = frameModuleOps(&in)
	}
	if err == nil && in.offset() != int64(len(raw)) {
		err = corrupt("trailing bytes")
	}
	if err != nil {
		return nil, fmt.Errorf("rdb: module value at offset %d: %w", in.offset(), err)
	}
	v.Module = &Module{ID: id, Name: string(appendModuleName(nil, id)), Raw: bytes.Clone(raw)}
	return v, nil
}
