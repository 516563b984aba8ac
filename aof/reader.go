package aof

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Default limits of a Reader, as Redis's own: at most DefaultMaxArgs arguments per command and
// DefaultMaxBulk bytes per argument (proto-max-bulk-len). They bound what a Reader holding
// every command whole may be asked to hold.
const (
	DefaultMaxArgs = 1 << 20
	DefaultMaxBulk = 512 << 20
)

// Limits of a replication stream, for readers that never hold a big command whole (a Copier, a
// Reader in big-command mode), so that they pass every command a master can legally send; no
// memory is sized by them.
//
// StreamMaxArgs is Redis 7's own limit on a multibulk count (INT_MAX: a command's argc is a C
// int, and `*<n>` above it is a protocol error for any client). StreamMaxBulk is far above what
// a master can hold: proto-max-bulk-len can legally be set to any value, but an argument lives
// in the master's memory in its query buffer, then as a value, and again in its replication
// buffer, so an argument of 1 TiB would take more than 3 TiB of RAM. A larger length is taken
// for corruption, and it keeps every sum of lengths far from overflowing (a command's length
// is also checked against MaxCommandBytes).
const (
	StreamMaxArgs   = 1<<31 - 1
	StreamMaxBulk   = 1 << 40
	MaxCommandBytes = 1 << 62
)

// Sizes of the big-command mode (see SetHold).
const (
	// DefaultHoldBytes is the hold limit of NewStreamReader: commands up to 2 MiB are held
	// whole (a held command of tiny arguments takes up to about 4 times that with their bounds).
	DefaultHoldBytes = 2 << 20
	// HeadArgBytes is the largest argument a big command keeps in memory (in Args); together
	// its leading arguments held take at most headBytes.
	HeadArgBytes = 64 << 10
	headBytes    = 256 << 10
)

const (
	readBufSize  = 64 << 10 // bufio buffer; also the longest header line accepted
	maxLineBytes = 32       // "*" or "$", a 64-bit integer, "\r\n", with room to spare
	growStep     = 64 << 10 // a bulk's buffer grows with the bytes that arrive, not with its claim
	keepRawBytes = 8 << 20  // a Raw buffer above this is dropped after a big command
	snippetBytes = 32       // bytes of input quoted in an error
)

// ErrProtocol is wrapped by every error about malformed input (as opposed to I/O errors and
// truncation, which wrap the reader's error or io.ErrUnexpectedEOF).
var ErrProtocol = errors.New("protocol error")

// Error is the error of a Reader: what went wrong, at which byte offset of its input (counted
// from the reader's start), and the bytes found there.
type Error struct {
	File    string // the file read, when the reader reads one (see OpenFile)
	What    string
	Offset  int64
	Snippet []byte // the offending input, at most 32 bytes
	Err     error  // ErrProtocol, io.ErrUnexpectedEOF or the underlying reader's error
}

func (e *Error) Error() string {
	s := "aof: "
	if e.File != "" {
		s += e.File + ": "
	}
	s += fmt.Sprintf("%s at offset %d: %q", e.What, e.Offset, e.Snippet)
	if e.Err != nil && e.Err != ErrProtocol {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Reader reads RESP multibulk commands (`*<n>\r\n$<len>\r\n<arg>\r\n...`) from a stream and
// counts the bytes each one took. It does no allocation per command in steady state: the
// command's bytes live in one buffer reused by the next call.
type Reader struct {
	br      *bufio.Reader
	raw     []byte
	bounds  []int // start, end of each argument in raw
	args    [][]byte
	off     int64 // bytes consumed by returned commands
	maxArgs int
	maxBulk int64
	hold    int64       // > 0: big-command mode, commands over hold bytes are not held whole
	input   io.ReaderAt // set as every command's Input
	hdr0    int         // length of the current command's `*<n>` line
	err     error       // sticky

	// Set by File: the file's name and the offset of the reader's first byte in it (for
	// errors), and whether '#' annotation lines between commands are skipped.
	file        string
	base        int64
	annotations bool
}

// NewReader returns a Reader of r with the default limits.
func NewReader(r io.Reader) *Reader {
	return &Reader{
		br:      bufio.NewReaderSize(r, readBufSize),
		maxArgs: DefaultMaxArgs,
		maxBulk: DefaultMaxBulk,
	}
}

// NewStreamReader returns a Reader for a replication stream, whose base is base (for a reader of
// a spool from offset from, base = from makes Start and Rest replication offsets, as a
// SpoolReader's ReadAt takes them), in big-command mode with DefaultHoldBytes and the stream
// limits (StreamMaxArgs, StreamMaxBulk): it passes every command a master can send and holds
// at most a few MiB of any of them.
func NewStreamReader(r io.Reader, base int64) *Reader {
	rd := NewReader(r)
	rd.SetBase(base)
	rd.SetHold(DefaultHoldBytes)
	rd.SetLimits(StreamMaxArgs, StreamMaxBulk)
	return rd
}

// Reset makes the reader read from r, from offset 0, keeping its buffers, limits, hold and base.
func (r *Reader) Reset(rd io.Reader) {
	r.br.Reset(rd)
	r.off = 0
	r.err = nil
}

// SetLimits sets the largest number of arguments of a command and the largest argument, in
// bytes. A value <= 0 restores the default.
func (r *Reader) SetLimits(maxArgs int, maxBulk int64) {
	if maxArgs <= 0 {
		maxArgs = DefaultMaxArgs
	}
	if maxBulk <= 0 {
		maxBulk = DefaultMaxBulk
	}
	r.maxArgs, r.maxBulk = maxArgs, maxBulk
}

// SetHold turns the big-command mode on (hold > 0) or off (hold <= 0, the default). In that mode
// a command of more than hold bytes is returned without being held (Command.Big): Raw is nil,
// Args holds its leading arguments of at most HeadArgBytes each (256 KiB of them at most, and
// only among the first hold bytes: the name and key of any command with a key under 64 KiB),
// and Rest the section of the input holding the others, which are checked and skipped. The
// reader then holds at most hold bytes of any command, however large.
func (r *Reader) SetHold(hold int64) { r.hold = max(hold, 0) }

// SetInput sets the io.ReaderAt every command's Input names: the reader's input, taking the
// offsets of Command.Start and Command.Rest (for a reader of a spool made by NewStreamReader,
// the SpoolReader itself). nil, the default, leaves Input unset.
func (r *Reader) SetInput(ra io.ReaderAt) { r.input = ra }

// SetBase sets the offset of the reader's first byte: Command.Start, Command.Rest and the offsets
// in errors count from it. Offset still counts the bytes read.
func (r *Reader) SetBase(base int64) { r.base = base }

// Offset returns the number of bytes taken by the commands Next has returned (plus, in an AOF
// file read through OpenFile, the annotation lines skipped between them).
func (r *Reader) Offset() int64 { return r.off }

// Buffered returns the number of bytes read from the underlying reader but not yet returned.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// Next reads the next command into c. c.Args slice c.Raw, which holds the command's exact bytes
// and stays valid until the next call; c.N is len(c.Raw). A command with no arguments (`*0`,
// or a negative count, which Redis also skips) is returned with empty Args so that its bytes
// are still counted.
//
// Next returns io.EOF at a clean end between commands. An end inside a command returns an
// *Error at the command's start offset wrapping io.ErrUnexpectedEOF; malformed input an *Error
// wrapping ErrProtocol. After an error every call returns the same error.
func (r *Reader) Next(c *Command) error {
	if r.err != nil {
		return r.err
	}
	if err := r.next(c); err != nil {
		r.err = err
		c.Args, c.Raw, c.N, c.Rest, c.Input = nil, nil, 0, Section{}, nil
		return err
	}
	return nil
}

func (r *Reader) next(c *Command) error {
	if cap(r.raw) > keepRawBytes {
		r.raw = nil
	}
	r.raw = r.raw[:0]
	r.bounds = r.bounds[:0]
	if r.annotations {
		if err := r.skipAnnotations(); err != nil {
			return err
		}
	}
	start := r.off

	line, err := r.line(start, start, '*')
	if err != nil {
		return err
	}
	n, ok := parseInt(line[1 : len(line)-2])
	if !ok {
		return r.protoErr("invalid multibulk length", start, line)
	}
	if n > int64(r.maxArgs) {
		return r.protoErr("too many arguments (max "+strconv.Itoa(r.maxArgs)+")", start, line)
	}
	r.raw = append(r.raw, line...)
	r.hdr0 = len(line)
	size := int64(len(line)) // the command's bytes so far
	head := -1               // once the command is big: how many arguments it holds
	var restOff int64        // and where the others start, from the command's start

	for i := int64(0); i < n; i++ {
		at := start + size
		line, err := r.line(start, at, '$')
		if err != nil {
			return err
		}
		blen, ok := parseInt(line[1 : len(line)-2])
		if !ok || blen < 0 {
			return r.protoErr("invalid bulk length", at, line)
		}
		if blen > r.maxBulk {
			return r.protoErr("bulk too long (max "+strconv.FormatInt(r.maxBulk, 10)+")", at, line)
		}
		if blen > MaxCommandBytes-size-int64(len(line))-2 {
			return r.protoErr("command too long (max "+strconv.FormatInt(MaxCommandBytes, 10)+" bytes)", at, line)
		}
		if head < 0 && r.hold > 0 && size+int64(len(line))+blen+2 > r.hold {
			head = r.headArgs()
			restOff = r.argStart(head)
		}
		if head >= 0 {
			size += int64(len(line))
			if err := r.skip(start, start+size, blen); err != nil {
				return err
			}
			size += blen + 2
			continue
		}
		r.grow(len(line))
		r.raw = append(r.raw, line...)
		b := len(r.raw)
		if err := r.bulk(start, blen+2); err != nil {
			if cr := b + int(blen); len(r.raw) > cr && r.raw[cr] != '\r' {
				// The input ends after the byte that should be a CR: it is not one.
				return r.protoErr("bulk not followed by CRLF", start+int64(cr), r.raw[cr:])
			}
			return err
		}
		if r.raw[len(r.raw)-2] != '\r' || r.raw[len(r.raw)-1] != '\n' {
			return r.protoErr("bulk not followed by CRLF", start+int64(len(r.raw))-2, r.raw[len(r.raw)-2:])
		}
		if len(r.bounds)+2 > cap(r.bounds) {
			r.bounds = append(make([]int, 0, max(2*cap(r.bounds), 64)), r.bounds...) // doubling: less garbage than append's 1.25
		}
		r.bounds = append(r.bounds, b, len(r.raw)-2)
		size = int64(len(r.raw))
	}

	held := len(r.bounds) / 2
	if head >= 0 {
		held = head
	}
	r.args = r.args[:0]
	for i := 0; i < 2*held; i += 2 {
		r.args = append(r.args, r.raw[r.bounds[i]:r.bounds[i+1]:r.bounds[i+1]])
	}
	c.Args = r.args
	c.N = size
	c.Start = r.base + start
	c.NArgs = max(n, 0)
	c.Input = r.input
	if head >= 0 {
		c.Raw = nil
		c.Rest = Section{Off: r.base + start + restOff, Len: size - restOff}
	} else {
		c.Raw = r.raw
		c.Rest = Section{}
	}
	r.off += size
	return nil
}

// headArgs returns how many of the arguments read so far a big command keeps in memory: the
// leading ones of at most HeadArgBytes each, within headBytes of the command.
func (r *Reader) headArgs() int {
	k := 0
	for ; 2*k < len(r.bounds); k++ {
		b, e := r.bounds[2*k], r.bounds[2*k+1]
		if e-b > HeadArgBytes || e+2 > headBytes {
			break
		}
	}
	return k
}

// argStart returns where the header of argument k starts, from the command's start; the
// arguments before it have been read into raw.
func (r *Reader) argStart(k int) int64 {
	if k == 0 {
		return int64(r.hdr0)
	}
	return int64(r.bounds[2*k-1] + 2)
}

// skip reads past n bytes of a bulk that starts at offset at, and its CRLF.
func (r *Reader) skip(start, at, n int64) error {
	for n > 0 {
		d, err := r.br.Discard(int(min(n, 1<<30)))
		n -= int64(d)
		at += int64(d)
		if err != nil {
			return r.readErr(start, at, err)
		}
	}
	crlf, err := r.br.Peek(2)
	if len(crlf) > 0 && crlf[0] != '\r' {
		return r.protoErr("bulk not followed by CRLF", at, crlf)
	}
	if err != nil {
		return r.readErr(start, at, err)
	}
	if crlf[0] != '\r' || crlf[1] != '\n' {
		return r.protoErr("bulk not followed by CRLF", at, crlf)
	}
	_, err = r.br.Discard(2)
	return err // nil: the bytes are buffered
}

// readErr is the error of a read failing at offset at inside the command that began at start.
func (r *Reader) readErr(start, at int64, err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return r.truncated(start, nil)
	}
	return &Error{What: "read error", Offset: r.base + at, Err: err, File: r.file}
}

// skipAnnotations skips the '#' lines Redis 7 writes between the commands of an AOF file
// (aof-timestamp-enabled), counting their bytes in the offset.
func (r *Reader) skipAnnotations() error {
	for {
		b, err := r.br.Peek(1)
		if err != nil || b[0] != '#' {
			return nil // errors come again from the next read
		}
		line, err := r.br.ReadSlice('\n')
		switch {
		case err == bufio.ErrBufferFull:
			return r.protoErr("annotation line too long", r.off, line)
		case err == io.EOF:
			return &Error{What: "truncated annotation", Offset: r.base + r.off, Snippet: snippet(line), Err: io.ErrUnexpectedEOF, File: r.file}
		case err != nil:
			return &Error{What: "read error", Offset: r.base + r.off, Snippet: snippet(line), Err: err, File: r.file}
		}
		r.off += int64(len(line))
	}
}

// line reads one header line, at offset at of the command that began at start, that starts with
// want and ends in CRLF. It returns the bufio slice, valid until the next read. At the command's
// first byte a clean EOF is io.EOF.
func (r *Reader) line(start, at int64, want byte) ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if len(line) > 0 && line[0] != want {
		return nil, r.protoErr("expected '"+string(want)+"'", at, line)
	}
	if err != nil {
		switch {
		case err == io.EOF && at == start && len(line) == 0:
			return nil, io.EOF
		case err == bufio.ErrBufferFull || len(line) >= maxLineBytes:
			// Without its '\n' a line of maxLineBytes is already too long.
			return nil, r.protoErr("header line too long", at, line)
		case err == io.EOF:
			return nil, r.truncated(start, line)
		default:
			return nil, &Error{What: "read error", Offset: r.base + at, Snippet: snippet(line), Err: err, File: r.file}
		}
	}
	if len(line) > maxLineBytes {
		return nil, r.protoErr("header line too long", at, line)
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, r.protoErr("header line not ending in CRLF", at, line)
	}
	return line, nil
}

// bulk appends size bytes to r.raw, growing it only as fast as bytes arrive.
func (r *Reader) bulk(start, size int64) error {
	for size > 0 {
		step := min(size, int64(max(growStep, len(r.raw))))
		have := len(r.raw)
		r.grow(int(step))
		r.raw = r.raw[:have+int(step)]
		n, err := io.ReadFull(r.br, r.raw[have:])
		if err != nil {
			r.raw = r.raw[:have+n]
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return r.truncated(start, nil)
			}
			return &Error{What: "read error", Offset: r.base + start + int64(len(r.raw)), Err: err, File: r.file}
		}
		size -= step
	}
	return nil
}

// grow makes room for n more bytes in raw, doubling its capacity (but not past the hold limit,
// which no held command exceeds).
func (r *Reader) grow(n int) {
	have := len(r.raw)
	if cap(r.raw)-have >= n {
		return
	}
	c := int64(have) + max(int64(n), int64(cap(r.raw)))
	if r.hold > 0 {
		c = max(min(c, r.hold), int64(have+n))
	}
	grown := make([]byte, have, c)
	copy(grown, r.raw)
	r.raw = grown
}

// truncated is the error of an input ending inside the command that began at start. extra is
// what was read past r.raw.
func (r *Reader) truncated(start int64, extra []byte) error {
	s := r.raw
	if len(s) < snippetBytes {
		s = append(s[:len(s):len(s)], extra...)
	}
	return &Error{What: "truncated command", Offset: r.base + start, Snippet: snippet(s), Err: io.ErrUnexpectedEOF, File: r.file}
}

func (r *Reader) protoErr(what string, at int64, b []byte) error {
	return &Error{What: what, Offset: r.base + at, Snippet: snippet(b), Err: ErrProtocol, File: r.file}
}

func snippet(b []byte) []byte {
	return bytes.Clone(b[:min(len(b), snippetBytes)])
}

// parseInt parses a decimal integer as Redis's string2ll does: an optional '-', no '+', no
// leading zeros, no "-0", no spaces, within int64.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	if b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > 1<<63-1 {
		return 0, false
	}
	return int64(v), true
}

// AppendCommand appends args to dst as a RESP multibulk command and returns the extended slice.
func AppendCommand(dst []byte, args ...[]byte) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(len(args)), 10)
	dst = append(dst, '\r', '\n')
	for _, a := range args {
		dst = append(dst, '$')
		dst = strconv.AppendInt(dst, int64(len(a)), 10)
		dst = append(dst, '\r', '\n')
		dst = append(dst, a...)
		dst = append(dst, '\r', '\n')
	}
	return dst
}

// AppendCommandString is AppendCommand for string arguments.
func AppendCommandString(dst []byte, args ...string) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(len(args)), 10)
	dst = append(dst, '\r', '\n')
	for _, a := range args {
		dst = append(dst, '$')
		dst = strconv.AppendInt(dst, int64(len(a)), 10)
		dst = append(dst, '\r', '\n')
		dst = append(dst, a...)
		dst = append(dst, '\r', '\n')
	}
	return dst
}
