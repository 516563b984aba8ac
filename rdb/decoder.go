package rdb

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// DefaultMaxRaw is the default size above which a value is framed without being held.
const DefaultMaxRaw = 64 << 20

// Decoder reads an RDB file entry by entry. It holds no goroutine: the caller pulls with Next.
type Decoder struct {
	in      input
	version int
	state   int // 0 before the header, 1 in the body, 2 after EOF
	err     error
	db      int
	key     []byte // current key (also used for error context)
	val     []byte // decoded strings for aux and function entries
	inKey   bool   // errors name the key
}

// NewDecoder returns a decoder reading r through a buffer of its own.
func NewDecoder(r io.Reader) *Decoder {
	d := &Decoder{}
	d.in.cr.r = r
	d.in.br = bufio.NewReaderSize(&d.in.cr, 64<<10)
	d.in.tab = crcTables()
	d.in.maxRaw = DefaultMaxRaw
	return d
}

// SetMaxRaw sets the size above which a value's bytes are not held: its Entry has a nil Value and
// only ValueOffset/ValueLen. n <= 0 means every value is framed without being held.
func (d *Decoder) SetMaxRaw(n int64) {
	if n < 0 {
		n = 0
	}
	d.in.maxRaw = n
}

// Version returns the file's RDB version; valid after the first call to Next.
func (d *Decoder) Version() int { return d.version }

// Offset returns the number of bytes consumed so far.
func (d *Decoder) Offset() int64 { return d.in.offset() }

// fail builds the decoder's sticky error: `rdb: <what> at offset N (key "..."): err`.
func (d *Decoder) fail(what string, err error) error {
	if err == nil {
		err = ErrCorrupt
	}
	if d.inKey {
		d.err = fmt.Errorf("rdb: %s at offset %d (key %s): %w", what, d.in.offset(), quoteKey(d.key), err)
	} else {
		d.err = fmt.Errorf("rdb: %s at offset %d: %w", what, d.in.offset(), err)
	}
	return d.err
}

// Next fills e with the next entry. It returns io.EOF after the EOF opcode and a verified
// checksum. The slices in e belong to the decoder and stay valid until the next call.
func (d *Decoder) Next(e *Entry) error {
	if d.err != nil {
		return d.err
	}
	if d.state == 2 {
		return io.EOF
	}
	if d.state == 0 {
		if err := d.readHeader(); err != nil {
			return err
		}
		d.state = 1
	}
	expire, idle, freq := int64(0), int64(-1), -1
	for {
		d.inKey = false
		op, err := d.in.readByte()
		if err != nil {
			return d.fail("reading opcode", err)
		}
		switch op {
		case opExpireTime:
			if err := d.in.readFull(d.in.num[:4]); err != nil {
				return d.fail("reading expire time", err)
			}
			s := int32(uint32(d.in.num[0]) | uint32(d.in.num[1])<<8 | uint32(d.in.num[2])<<16 | uint32(d.in.num[3])<<24)
			expire = int64(s) * 1000
		case opExpireTimeMs:
			ms, err := d.in.readUint64LE()
			if err != nil {
				return d.fail("reading expire time", err)
			}
			expire = int64(ms)
		case opFreq:
			b, err := d.in.readByte()
			if err != nil {
				return d.fail("reading LFU frequency", err)
			}
			freq = int(b)
		case opIdle:
			n, err := d.in.readPlainLen()
			if err != nil {
				return d.fail("reading LRU idle time", err)
			}
			idle = int64(n)
		case opSelectDB:
			n, err := d.in.readPlainLen()
			if err == nil && n > 1<<31-1 {
				err = corrupt("db number %d", n)
			}
			if err != nil {
				return d.fail("reading SELECTDB", err)
			}
			d.db = int(n)
		case opResizeDB:
			if err := d.skipLens(2); err != nil {
				return d.fail("reading RESIZEDB", err)
			}
		case opSlotInfo:
			if err := d.skipLens(3); err != nil {
				return d.fail("reading SLOT_INFO", err)
			}
		case opAux:
			return d.readAux(e)
		case opModuleAux:
			return d.readModuleAux(e)
		case opFunction2, opFunctionPreGA:
			return d.readFunction(e, op)
		case opEOF:
			return d.readEOF()
		default:
			return d.readKey(e, op, expire, idle, freq)
		}
	}
}

func (d *Decoder) readHeader() error {
	var h [9]byte
	if err := d.in.readFull(h[:]); err != nil {
		return d.fail("reading header", err)
	}
	var digits []byte
	switch {
	case bytes.HasPrefix(h[:], []byte("REDIS")):
		digits = h[5:]
	case bytes.HasPrefix(h[:], []byte("VALKEY")):
		digits = h[6:]
	default:
		return d.fail(fmt.Sprintf("bad magic %q", h[:]), ErrCorrupt)
	}
	v, err := strconv.Atoi(string(digits))
	if err != nil || v < 1 || (v > MaxVersion && v != ValkeyVersion) {
		return d.fail(fmt.Sprintf("RDB version %q", digits), ErrUnsupported)
	}
	d.version = v
	return nil
}

func (d *Decoder) skipLens(n int) error {
	for range n {
		if _, err := d.in.readPlainLen(); err != nil {
			return err
		}
	}
	return nil
}

func (d *Decoder) fill(e *Entry, k Kind) {
	*e = Entry{Kind: k, DB: d.db, Idle: -1, Freq: -1}
}

func (d *Decoder) readAux(e *Entry) error {
	var err error
	if d.key, err = d.in.readString(d.key[:0], maxHeld); err != nil {
		return d.fail("reading aux field name", err)
	}
	off := d.in.offset()
	if d.val, err = d.in.readString(d.val[:0], maxHeld); err != nil {
		return d.fail("reading aux field "+quoteKey(d.key), err)
	}
	d.fill(e, KindAux)
	e.Key, e.Value, e.ValueOffset, e.ValueLen = d.key, d.val, off, int64(len(d.val))
	return nil
}

func (d *Decoder) readFunction(e *Entry, op byte) error {
	off := d.in.offset()
	var err error
	d.val = d.val[:0]
	if op == opFunctionPreGA { // 7.0 rc1/rc2: name, engine, [description], code
		var name, engine []byte
		if name, err = d.in.readString(nil, maxHeld); err == nil {
			engine, err = d.in.readString(nil, maxHeld)
		}
		var hasDesc uint64
		if err == nil {
			hasDesc, err = d.in.readPlainLen()
		}
		if err == nil && hasDesc != 0 {
			err = d.in.skipString()
		}
		if err == nil {
			d.val = fmt.Appendf(d.val, "#!%s name=%s\n", engine, name)
			d.val, err = d.in.readString(d.val, maxHeld)
		}
	} else {
		d.val, err = d.in.readString(d.val, maxHeld)
	}
	if err != nil {
		return d.fail("reading function library", err)
	}
	d.fill(e, KindFunction)
	e.Value, e.ValueOffset, e.ValueLen = d.val, off, d.in.offset()-off
	return nil
}

func (d *Decoder) readModuleAux(e *Entry) error {
	off := d.in.offset()
	d.in.startCapture()
	id, err := d.in.readPlainLen()
	if err == nil {
		var when uint64
		when, err = d.in.readPlainLen()
		if err == nil && when != moduleOpUInt {
			err = corrupt("module aux when-opcode %d", when)
		}
	}
	if err == nil {
		_, err = d.in.readPlainLen()
	}
	if err == nil {
		err = frameModuleOps(&d.in)
	}
	d.in.stopCapture()
	if err != nil {
		return d.fail("reading module aux data", err)
	}
	d.key = appendModuleName(d.key[:0], id)
	d.fill(e, KindModuleAux)
	e.Key, e.ValueOffset, e.ValueLen = d.key, off, d.in.rawLen
	if d.in.held {
		e.Value = d.in.raw
	}
	return nil
}

func (d *Decoder) readEOF() error {
	sum := d.in.crc
	d.state = 2
	if d.version < 5 {
		return io.EOF
	}
	want, err := d.in.readUint64LE()
	if err != nil {
		d.state = 1
		return d.fail("reading checksum", err)
	}
	if want != 0 && want != sum {
		return d.fail(fmt.Sprintf("checksum %#x, computed %#x", want, sum), ErrChecksum)
	}
	return io.EOF
}

func (d *Decoder) readKey(e *Entry, typ byte, expire, idle int64, freq int) error {
	if TypeName(typ) == "" {
		return d.fail(fmt.Sprintf("unknown value type or opcode %d", typ), ErrUnsupported)
	}
	if d.version == ValkeyVersion && typ >= TypeHashMetadataPreGA {
		// Valkey 9 numbers its own hash-with-field-TTL type 22 (RDB_TYPE_HASH_2), in a layout
		// that is not Redis's: refuse rather than misread it.
		return d.fail(fmt.Sprintf("value type %d of a Valkey file", typ), ErrUnsupported)
	}
	var err error
	if d.key, err = d.in.readString(d.key[:0], maxHeld); err != nil {
		return d.fail("reading key", err)
	}
	d.inKey = true
	off := d.in.offset()
	d.in.startCapture()
	err = frameValue(&d.in, typ)
	d.in.stopCapture()
	if err != nil {
		return d.fail(fmt.Sprintf("reading value of type %d", typ), err)
	}
	*e = Entry{Kind: KindKey, DB: d.db, Key: d.key, Type: typ, ExpireMs: expire, Idle: idle,
		Freq: freq, ValueOffset: off, ValueLen: d.in.rawLen}
	if d.in.held {
		e.Value = d.in.raw
	}
	return nil
}

// moduleNameChars is Redis's ModuleTypeNameCharSet.
const moduleNameChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// appendModuleName appends the 9-character module type name encoded in a module id.
func appendModuleName(dst []byte, id uint64) []byte {
	var name [9]byte
	id >>= 10
	for j := 8; j >= 0; j-- {
		name[j] = moduleNameChars[id&63]
		id >>= 6
	}
	return append(dst, name[:]...)
}

// Rest returns a reader of what follows the bytes the decoder consumed: what it buffered ahead,
// then the rest of its input. After io.EOF from Next, that is whatever follows the RDB file (the
// AOF commands after an RDB preamble, the replication stream after a full sync). The decoder
// must not be used after calling Rest.
func (d *Decoder) Rest() io.Reader {
	n := d.in.br.Buffered()
	b, _ := d.in.br.Peek(n)
	return io.MultiReader(bytes.NewReader(bytes.Clone(b)), d.in.cr.r)
}
