package aof

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// argBufBytes is the read buffer of an ArgReader over a big command: the most it holds.
const argBufBytes = 64 << 10

// ArgReader reads the arguments of a command one after the other, each in pieces of the caller's
// size: a command held whole from its Args, a big one from an io.ReaderAt over the reader's input
// (all of it, from Start: so it depends on nothing the reader reuses, and may run after the
// reader has moved on, in another goroutine), through a fixed 64 KiB buffer, so an argument of
// any size and a command of any number of arguments pass in bounded memory. Whatever is read
// from the ReaderAt is checked again (the `*<n>` and `$<len>` headers, the CRLFs, the lengths
// within the command's N bytes).
//
//	a := c.Arguments(sr)     // sr: the SpoolReader (or File.ReaderAt) the command came from
//	for {
//		size, err := a.Next() // io.EOF after the last argument
//		...
//		io.CopyN(w, a, size)  // or a.Read in pieces, or a.Append(buf[:0], max) for a small one
//	}
//
// An ArgReader is for one goroutine; the input must stay as it is while it runs (for a spool:
// until the command is applied, so that its segments are not trimmed).
type ArgReader struct {
	c       Command
	ra      io.ReaderAt
	i       int64  // index of the current argument; -1 before the first Next
	left    int64  // bytes of the current argument not read yet
	mem     []byte // the unread bytes of the current argument of a held command
	br      *bufio.Reader
	started bool    // a big command's `*<n>` line is read
	pos     int64   // input offset of br's next byte
	arg     Section // the current argument of a big command, header to CRLF
	end     int64   // the command's end
	err     error   // sticky
}

// Arguments returns an ArgReader of c's arguments; ra is the input c was read from, as an
// io.ReaderAt taking the same offsets as c.Start (nil: c.Input; nil will also do for a command
// that is not big).
func (c *Command) Arguments(ra io.ReaderAt) *ArgReader {
	a := &ArgReader{}
	a.Reset(c, ra)
	return a
}

// Reset makes a read c's arguments from ra, keeping its buffer. It keeps a copy of c: c may be
// reused at once, but the Args of a command held whole must stay valid while a reads them.
func (a *ArgReader) Reset(c *Command, ra io.ReaderAt) {
	if ra == nil {
		ra = c.Input
	}
	a.c, a.ra, a.i, a.left, a.mem, a.started, a.err = *c, ra, -1, 0, nil, false, nil
	a.pos, a.end, a.arg = c.Start, c.Start+c.N, Section{}
	if c.Big() {
		src := io.NewSectionReader(readerAtOrNil{ra}, c.Start, c.N)
		if a.br == nil {
			a.br = bufio.NewReaderSize(src, argBufBytes)
		} else {
			a.br.Reset(src)
		}
	}
}

// readerAtOrNil fails instead of panicking when a big command is read without a ReaderAt.
type readerAtOrNil struct{ ra io.ReaderAt }

func (r readerAtOrNil) ReadAt(p []byte, off int64) (int, error) {
	if r.ra == nil {
		return 0, errors.New("no io.ReaderAt for a big command")
	}
	return r.ra.ReadAt(p, off)
}

// Index returns the index of the current argument (0 for the command's name), -1 before Next.
func (a *ArgReader) Index() int64 { return a.i }

// Next moves to the next argument, skipping what is left of the current one, and returns its
// length. It returns io.EOF after the last argument.
func (a *ArgReader) Next() (int64, error) {
	if a.err != nil {
		return 0, a.err
	}
	if err := a.discard(); err != nil {
		return 0, a.fail(err)
	}
	big := a.c.Big()
	if big && !a.started {
		if err := a.count(); err != nil {
			return 0, a.fail(err)
		}
		a.started = true
	}
	if n := a.c.NArgs; !big {
		n = max(n, int64(len(a.c.Args))) // NArgs may be unset in a command made by hand
		if a.i+1 >= n {
			a.err = io.EOF
			return 0, io.EOF
		}
		a.i++
		a.mem = a.c.Args[a.i]
		a.left = int64(len(a.mem))
		return a.left, nil
	}
	if a.i+1 >= a.c.NArgs {
		if a.pos != a.end {
			return 0, a.fail(a.protoErr("bytes after the last argument", a.pos, nil))
		}
		a.err = io.EOF
		return 0, io.EOF
	}
	a.i++
	at := a.pos
	size, err := a.header('$')
	if err != nil {
		return 0, a.fail(err)
	}
	a.arg = Section{Off: at, Len: a.pos - at + size + 2}
	a.left = size
	if size == 0 {
		if err := a.crlf(); err != nil {
			return 0, a.fail(err)
		}
	}
	return size, nil
}

// count reads a big command's `*<n>` line, which must say NArgs.
func (a *ArgReader) count() error {
	at := a.pos
	n, err := a.header('*')
	if err == nil && n != a.c.NArgs {
		return a.protoErr("argument count "+strconv.FormatInt(n, 10)+", not the command's "+strconv.FormatInt(a.c.NArgs, 10), at, nil)
	}
	return err
}

// header reads a `$<len>\r\n` line (or `*<n>`, want), and checks the length against the
// command's end.
func (a *ArgReader) header(want byte) (int64, error) {
	at := a.pos
	line, err := a.br.ReadSlice('\n')
	a.pos += int64(len(line))
	switch {
	case err == bufio.ErrBufferFull || err == nil && len(line) > maxLineBytes:
		return 0, a.protoErr("header line too long", at, line)
	case err != nil:
		return 0, a.readErr(at, line, err)
	case len(line) < 4 || line[0] != want || line[len(line)-2] != '\r':
		return 0, a.protoErr("invalid header", at, line)
	}
	size, ok := parseInt(line[1 : len(line)-2])
	if !ok || size < 0 || want == '$' && size > a.end-a.pos-2 {
		return 0, a.protoErr("invalid length", at, line)
	}
	return size, nil
}

// Section returns where the current argument of a big command lies in the input, exactly as on
// the wire (`$<len>\r\n<bytes>\r\n`), once Next has returned its length: a run of arguments
// is the sum of their sections, and may be copied from the input as it is (see
// WriteSections). It is empty for a command held whole, and before the first Next.
func (a *ArgReader) Section() Section {
	if !a.c.Big() || a.i < 0 || a.err != nil {
		return Section{}
	}
	return a.arg
}

// Read reads bytes of the current argument; it returns io.EOF at its end.
func (a *ArgReader) Read(p []byte) (int, error) {
	if a.err != nil {
		return 0, a.err
	}
	if a.i < 0 || a.left == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p = p[:min(int64(len(p)), a.left)]
	if !a.c.Big() {
		n := copy(p, a.mem)
		a.mem = a.mem[n:]
		a.left -= int64(n)
		return n, nil
	}
	n, err := a.br.Read(p)
	a.pos += int64(n)
	a.left -= int64(n)
	if err != nil {
		return n, a.fail(a.readErr(a.pos, nil, err))
	}
	if a.left == 0 {
		if err := a.crlf(); err != nil {
			return n, a.fail(err)
		}
	}
	return n, nil
}

// Append appends what is left of the current argument to dst, or fails with an error if that is
// more than max bytes (max <= 0: no limit): for arguments the caller means to hold.
func (a *ArgReader) Append(dst []byte, max int) ([]byte, error) {
	if max > 0 && a.left > int64(max) {
		return dst, fmt.Errorf("aof: argument %d: %d bytes, more than %d", a.i, a.left, max)
	}
	for a.left > 0 {
		if cap(dst)-len(dst) < 1 {
			dst = append(dst, 0)[:len(dst)]
		}
		room := dst[len(dst):cap(dst)]
		n, err := a.Read(room)
		dst = dst[:len(dst)+n]
		if err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// discard skips what is left of the current argument.
func (a *ArgReader) discard() error {
	if a.left == 0 {
		return nil
	}
	if !a.c.Big() {
		a.mem, a.left = nil, 0
		return nil
	}
	for a.left > 0 {
		n, err := a.br.Discard(int(min(a.left, 1<<30)))
		a.pos += int64(n)
		a.left -= int64(n)
		if err != nil {
			return a.readErr(a.pos, nil, err)
		}
	}
	return a.crlf()
}

func (a *ArgReader) crlf() error {
	b, err := a.br.Peek(2)
	if err != nil {
		return a.readErr(a.pos, b, err)
	}
	if b[0] != '\r' || b[1] != '\n' {
		return a.protoErr("bulk not followed by CRLF", a.pos, b)
	}
	a.br.Discard(2) // buffered: cannot fail
	a.pos += 2
	return nil
}

func (a *ArgReader) fail(err error) error {
	a.err = err
	return err
}

func (a *ArgReader) protoErr(what string, at int64, b []byte) error {
	return &Error{What: what + " (argument " + strconv.FormatInt(a.i, 10) + ")", Offset: at, Snippet: snippet(b), Err: ErrProtocol}
}

// readErr is the error of a read of Rest failing at offset at: an end of input there is a
// truncated argument (Rest said there was more).
func (a *ArgReader) readErr(at int64, b []byte, err error) error {
	what := "read error"
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		what, err = "truncated argument", io.ErrUnexpectedEOF
	}
	return &Error{What: what + " (argument " + strconv.FormatInt(a.i, 10) + ")", Offset: at, Snippet: snippet(b), Err: err}
}

// WriteCommand writes c to w exactly as it was on the wire: Raw for a command held whole, and
// for a big one its bytes copied from ra (the reader's input, see Command.Arguments) in pieces
// of len(buf) bytes (64 KiB if buf is empty), so that the command goes whole to a socket in
// bounded memory (ra nil: c.Input). It returns the bytes written.
func WriteCommand(w io.Writer, c *Command, ra io.ReaderAt, buf []byte) (int64, error) {
	if !c.Big() {
		n, err := w.Write(c.Raw)
		return int64(n), err
	}
	if ra == nil {
		ra = c.Input
	}
	if ra == nil {
		return 0, fmt.Errorf("aof: big command at offset %d: no io.ReaderAt", c.Start)
	}
	if len(buf) == 0 {
		buf = make([]byte, argBufBytes)
	}
	var done int64
	for done < c.N {
		p := buf[:min(int64(len(buf)), c.N-done)]
		n, err := ra.ReadAt(p, c.Start+done)
		if n < len(p) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return done, fmt.Errorf("aof: big command at offset %d: reading offset %d: %w", c.Start, c.Start+done+int64(n), err)
		}
		if done == 0 && p[0] != '*' {
			return 0, fmt.Errorf("aof: big command at offset %d: the input there is not the command (%q)", c.Start, snippet(p))
		}
		m, err := w.Write(p)
		done += int64(m)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// CopySection copies section s of the input ra (a run of a big command's arguments, see
// ArgReader.Section, or the whole command, Command.Wire) to w in pieces of len(buf) bytes
// (64 KiB if buf is empty), and returns the bytes written. The section must begin a header
// (`$` or `*`): a first byte that is not one means ra is not the input the section came from.
func CopySection(w io.Writer, ra io.ReaderAt, s Section, buf []byte) (int64, error) {
	if ra == nil {
		return 0, fmt.Errorf("aof: section at offset %d: no io.ReaderAt", s.Off)
	}
	if len(buf) == 0 {
		buf = make([]byte, argBufBytes)
	}
	var done int64
	for done < s.Len {
		p := buf[:min(int64(len(buf)), s.Len-done)]
		n, err := ra.ReadAt(p, s.Off+done)
		if n < len(p) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return done, fmt.Errorf("aof: section of %d bytes at offset %d: reading offset %d: %w", s.Len, s.Off, s.Off+done+int64(n), err)
		}
		if done == 0 && p[0] != '$' && p[0] != '*' {
			return 0, fmt.Errorf("aof: section at offset %d: the input there is not a command's (%q)", s.Off, snippet(p))
		}
		m, err := w.Write(p)
		done += int64(m)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}
