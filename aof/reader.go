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
// DefaultMaxBulk bytes per argument (proto-max-bulk-len).
const (
	DefaultMaxArgs = 1 << 20
	DefaultMaxBulk = 512 << 20
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
	err     error // sticky

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

// Reset makes the reader read from r, from offset 0, keeping its buffers and limits.
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
		c.Args, c.Raw, c.N = nil, nil, 0
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

	line, err := r.line(start, '*')
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

	for i := int64(0); i < n; i++ {
		at := start + int64(len(r.raw))
		line, err := r.line(start, '$')
		if err != nil {
			return err
		}
		size, ok := parseInt(line[1 : len(line)-2])
		if !ok || size < 0 {
			return r.protoErr("invalid bulk length", at, line)
		}
		if size > r.maxBulk {
			return r.protoErr("bulk too long (max "+strconv.FormatInt(r.maxBulk, 10)+")", at, line)
		}
		r.raw = append(r.raw, line...)
		b := len(r.raw)
		if err := r.bulk(start, size+2); err != nil {
			return err
		}
		if r.raw[len(r.raw)-2] != '\r' || r.raw[len(r.raw)-1] != '\n' {
			return r.protoErr("bulk not followed by CRLF", start+int64(len(r.raw))-2, r.raw[len(r.raw)-2:])
		}
		r.bounds = append(r.bounds, b, len(r.raw)-2)
	}

	r.args = r.args[:0]
	for i := 0; i < len(r.bounds); i += 2 {
		r.args = append(r.args, r.raw[r.bounds[i]:r.bounds[i+1]:r.bounds[i+1]])
	}
	c.Args = r.args
	c.Raw = r.raw
	c.N = int64(len(r.raw))
	r.off += c.N
	return nil
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

// line reads one header line that starts with want and ends in CRLF. It returns the bufio slice,
// valid until the next read. At the command's first byte a clean EOF is io.EOF.
func (r *Reader) line(start int64, want byte) ([]byte, error) {
	at := start + int64(len(r.raw))
	line, err := r.br.ReadSlice('\n')
	if len(line) > 0 && line[0] != want {
		return nil, r.protoErr("expected '"+string(want)+"'", at, line)
	}
	if err != nil {
		switch {
		case err == io.EOF && len(r.raw) == 0 && len(line) == 0:
			return nil, io.EOF
		case err == io.EOF:
			return nil, r.truncated(start, line)
		case err == bufio.ErrBufferFull:
			return nil, r.protoErr("header line too long", at, line)
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
		if int64(cap(r.raw)-have) < step {
			grown := make([]byte, have, int64(have)+max(step, int64(cap(r.raw))))
			copy(grown, r.raw)
			r.raw = grown
		}
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
