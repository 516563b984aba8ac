package aof

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// ErrCopierLost is wrapped by the errors of a Copier whose writer took only part of a piece: it no
// longer knows where the stream stands. Scan the stream again from a command's start (Pending
// says where the current one began) to find it.
var ErrCopierLost = errors.New("copier lost its place")

// Copier moves a replication stream from a socket to a spool command by command, checking the
// framing of each as a Reader does (multibulk only, integers without overflow, CRLF after every
// bulk, the stream limits), without ever holding a big one: a command of up to hold bytes is
// gathered and returned whole (Command.Raw, Args), so its arguments can be looked at (REPLCONF
// GETACK); a larger one is written to the caller's writer as it arrives, in pieces of at most the
// bufio.Reader's size, and only its size comes back. Its memory is hold bytes and a few words,
// whatever the command.
//
// Its place in the stream survives the connection: after an error (a read error, a truncated
// command, a protocol error), everything it passed on (returned or written) is exactly the
// stream up to some byte, and Continue makes it go on from the byte after that one on a new
// connection (a partial resync at that offset), inside a command if need be: it resumes a big
// command mid-argument, or mid-header, as well as between commands. A command it was holding
// when the connection failed was not passed on at all, and comes again whole.
//
// The writer must take each piece whole or fail having taken nothing (as Spool.Append does);
// one that takes part of a piece and fails leaves the Copier lost (ErrCopierLost).
type Copier struct {
	br       *bufio.Reader
	hold     int64
	maxArgs  int64
	maxBulk  int64
	at       int64 // the stream offset of the last byte passed on
	st       copyState
	lost     bool
	scanning bool  // in Scan: pass on a torn header line at the end
	err      error // sticky until Continue

	held   []byte // the command being gathered, not passed on yet
	bounds []int
	args   [][]byte
}

// minGatherBuf is the smallest read buffer a Copier gathers commands with (it reads their header
// lines whole from it); with a smaller one it writes every command as it comes.
const minGatherBuf = 2 * maxLineBytes

// copyState is where a stream stands after the last byte passed on.
type copyState struct {
	inCmd    bool  // inside a command: its `*<n>` line is passed on
	argsLeft int64 // arguments of the command whose header is not passed on yet
	bulkLeft int64 // bytes of the current bulk, its CRLF included, not passed on yet
	cmdLen   int64 // bytes of the current command passed on
	nargs    int64 // its argument count
	lineLen  int   // bytes of a header line passed on before its '\n'
	line     [maxLineBytes]byte
}

// NewCopier returns a Copier holding commands of up to hold bytes whole (hold <= 0: none, every
// command is written as it comes), between commands, with the stream limits (StreamMaxArgs,
// StreamMaxBulk). Give it a reader with Continue.
func NewCopier(hold int64) *Copier {
	return &Copier{hold: max(hold, 0), maxArgs: StreamMaxArgs, maxBulk: StreamMaxBulk}
}

// SetLimits sets the largest argument count and argument length accepted; a value <= 0
// restores the stream limit.
func (c *Copier) SetLimits(maxArgs, maxBulk int64) {
	if maxArgs <= 0 {
		maxArgs = StreamMaxArgs
	}
	if maxBulk <= 0 {
		maxBulk = StreamMaxBulk
	}
	c.maxArgs, c.maxBulk = maxArgs, maxBulk
}

// Continue makes the Copier read from br, whose first byte is the stream's byte after offset at,
// which must be the last byte the Copier passed on (at only names places in errors). It clears
// an error, unless the Copier is lost.
func (c *Copier) Continue(br *bufio.Reader, at int64) {
	c.br, c.at = br, at
	if !c.lost {
		c.err = nil
	}
}

// Restart puts the Copier between commands, as at the start of a new stream (a full sync), and
// clears its errors.
func (c *Copier) Restart() {
	c.st = copyState{}
	c.lost, c.err = false, nil
}

// Lost reports whether the Copier lost its place (see ErrCopierLost).
func (c *Copier) Lost() bool { return c.lost }

// Pending returns how many bytes of the current command it has passed on: 0 between commands.
// The command began that many bytes before the end of what it passed on.
func (c *Copier) Pending() int64 { return c.st.cmdLen }

// Next copies the stream up to the end of the next command (or of the current one, when it
// stopped inside one). A command of at most hold bytes that it gathered whole is returned in
// cmd as by Reader.Next (Args slicing Raw, valid until the next call; N, Start, NArgs), and
// nothing is written: pass cmd.Raw on. Any other command is written to w as it arrives, and
// cmd gets its size (N), Start and NArgs, with nil Raw and Args. Offsets are stream offsets
// (see Continue).
//
// It returns io.EOF when the reader ends cleanly between commands, and otherwise an *Error
// saying what and where (wrapping ErrProtocol, io.ErrUnexpectedEOF, the reader's or the
// writer's error). The error stays until Continue.
func (c *Copier) Next(cmd *Command, w io.Writer) error {
	if c.err != nil {
		return c.err
	}
	if c.br == nil {
		return errors.New("aof: Copier.Next before Continue")
	}
	var err error
	if !c.st.inCmd && c.st.lineLen == 0 && c.hold > 0 && c.br.Size() >= minGatherBuf {
		err = c.gather(cmd, w)
	} else {
		err = c.stream(cmd, w)
	}
	if err != nil {
		*cmd = Command{}
		c.err = err
	}
	return err
}

// gather reads a command into held, and hands it over to stream once it grows over hold.
func (c *Copier) gather(cmd *Command, w io.Writer) error {
	c.held = c.held[:0]
	c.bounds = c.bounds[:0]
	line, err := c.readLine('*')
	if err != nil {
		return err
	}
	n, ok := parseInt(line[1 : len(line)-2])
	if !ok {
		return c.protoErr("invalid multibulk length", c.at, line)
	}
	if n > c.maxArgs {
		return c.protoErr("too many arguments (max "+strconv.FormatInt(c.maxArgs, 10)+")", c.at, line)
	}
	c.held = append(c.held, line...)
	for i := int64(0); i < n; i++ {
		at := c.at + int64(len(c.held))
		line, err := c.readLine('$')
		if err != nil {
			return err
		}
		size, err := c.bulkLen(line, at, int64(len(c.held)))
		if err != nil {
			return err
		}
		c.held = append(c.held, line...)
		if int64(len(c.held))+size+2 > c.hold {
			// Too big to hold: what is held goes first, then the rest as it comes.
			m, err := w.Write(c.held)
			if m < len(c.held) {
				if m > 0 {
					c.st = copyState{inCmd: true, cmdLen: int64(m), nargs: n}
				}
				return c.writeErr(m, err)
			}
			c.st = copyState{inCmd: true, argsLeft: n - i - 1, bulkLeft: size + 2, cmdLen: int64(len(c.held)), nargs: n}
			c.at += int64(len(c.held))
			if err != nil {
				return c.writeErr(0, err)
			}
			return c.stream(cmd, w)
		}
		b := len(c.held)
		if err := c.readBulk(size + 2); err != nil {
			return err
		}
		if end := c.held[len(c.held)-2:]; end[0] != '\r' || end[1] != '\n' {
			return c.protoErr("bulk not followed by CRLF", c.at+int64(len(c.held))-2, end)
		}
		c.bounds = append(c.bounds, b, len(c.held)-2)
	}
	c.args = c.args[:0]
	for i := 0; i < len(c.bounds); i += 2 {
		c.args = append(c.args, c.held[c.bounds[i]:c.bounds[i+1]:c.bounds[i+1]])
	}
	*cmd = Command{Args: c.args, Raw: c.held, N: int64(len(c.held)), Start: c.at, NArgs: max(n, 0)}
	c.at += cmd.N
	return nil
}

// readLine reads a header line of a command being gathered.
func (c *Copier) readLine(want byte) ([]byte, error) {
	at := c.at + int64(len(c.held))
	line, err := c.br.ReadSlice('\n')
	if len(line) > 0 && line[0] != want {
		return nil, c.protoErr("expected '"+string(want)+"'", at, line)
	}
	switch {
	case err == io.EOF && len(c.held) == 0 && len(line) == 0:
		return nil, io.EOF
	case err == bufio.ErrBufferFull || err == nil && len(line) > maxLineBytes || err != nil && len(line) >= maxLineBytes:
		// Without its '\n' a line of maxLineBytes is already too long.
		return nil, c.protoErr("header line too long", at, line)
	case err != nil:
		return nil, c.readErr(err, c.at, append(c.held[:len(c.held):len(c.held)], line...))
	case len(line) < 3 || line[len(line)-2] != '\r':
		return nil, c.protoErr("header line not ending in CRLF", at, line)
	}
	return line, nil
}

// readBulk appends n bytes to held (n+len(held) <= hold).
func (c *Copier) readBulk(n int64) error {
	have := len(c.held)
	if int64(cap(c.held)-have) < n {
		grown := make([]byte, have, int64(have)+max(n, int64(cap(c.held))))
		copy(grown, c.held)
		c.held = grown
	}
	c.held = c.held[:have+int(n)]
	k, err := io.ReadFull(c.br, c.held[have:])
	if err != nil {
		c.held = c.held[:have+k]
		if cr := have + int(n) - 2; len(c.held) > cr && c.held[cr] != '\r' {
			// The input ends after the byte that should be a CR: it is not one.
			return c.protoErr("bulk not followed by CRLF", c.at+int64(cr), c.held[cr:])
		}
		return c.readErr(err, c.at, c.held)
	}
	return nil
}

// bulkLen checks a `$<len>` line at offset at, in a command of which cmdLen bytes come before
// it, and returns the length.
func (c *Copier) bulkLen(line []byte, at, cmdLen int64) (int64, error) {
	size, ok := parseInt(line[1 : len(line)-2])
	switch {
	case !ok || size < 0:
		return 0, c.protoErr("invalid bulk length", at, line)
	case size > c.maxBulk:
		return 0, c.protoErr("bulk too long (max "+strconv.FormatInt(c.maxBulk, 10)+")", at, line)
	case size > MaxCommandBytes-cmdLen-int64(len(line))-2:
		return 0, c.protoErr("command too long (max "+strconv.FormatInt(MaxCommandBytes, 10)+" bytes)", at, line)
	}
	return size, nil
}

// stream writes the stream to w as it arrives, up to the end of the current command (or of the
// next one, between commands). It walks the tokens in what the reader holds, writes them as one
// piece and only then moves the state past them, so that the state always matches what was
// passed on. A header line is passed on once it is whole (a Scan passes on the torn line a
// stream may end with, and the state keeps it until its '\n').
func (c *Copier) stream(cmd *Command, w io.Writer) error {
	started := c.st.inCmd || c.st.lineLen > 0
	more := false // the reader's bytes end inside a header line
	for {
		if started && !c.st.inCmd && c.st.lineLen == 0 {
			*cmd = Command{N: c.st.cmdLen, Start: c.at - c.st.cmdLen, NArgs: c.st.nargs}
			c.st.cmdLen, c.st.nargs = 0, 0
			return nil
		}
		if n := c.br.Buffered(); n == 0 || more {
			if _, err := c.br.Peek(n + 1); err != nil {
				if err == io.EOF && !started && n == 0 {
					return io.EOF
				}
				if c.scanning && n > 0 {
					c.absorb(w) // the torn line a spool ends with
				}
				return c.readErr(err, c.at-c.st.cmdLen, c.st.line[:c.st.lineLen])
			}
		}
		buf, _ := c.br.Peek(c.br.Buffered())
		st := c.st
		i, err := c.walk(&st, buf, c.br.Buffered() == c.br.Size())
		if err := c.pass(w, buf[:i], st); err != nil {
			return err
		}
		if err != nil {
			return err
		}
		started = started || i > 0
		more = i == 0
	}
}

// pass writes p, the bytes st is the state after, and moves the Copier past them.
func (c *Copier) pass(w io.Writer, p []byte, st copyState) error {
	if len(p) == 0 {
		return nil
	}
	m, err := w.Write(p)
	if m < len(p) {
		c.st.cmdLen += int64(m)
		return c.writeErr(m, err)
	}
	c.br.Discard(len(p)) // buffered: cannot fail
	c.at += int64(len(p))
	c.st = st
	if err != nil {
		return c.writeErr(0, err)
	}
	return nil
}

// absorb passes on the buffered start of a header line at the end of a Scan's input.
func (c *Copier) absorb(w io.Writer) {
	buf, _ := c.br.Peek(c.br.Buffered())
	st := c.st
	if i, err := c.walk(&st, buf, true); err == nil {
		c.pass(w, buf[:i], st) // w is io.Discard
	}
}

// walk moves st over the tokens of buf, up to the end of a command, and returns how many bytes it
// went over. On bad input it stops before the bad token and returns the error too. A header
// line that buf cuts short is gone over only with torn (or when it began before buf), else it
// stops before it.
func (c *Copier) walk(st *copyState, buf []byte, torn bool) (int, error) {
	i := 0
	for i < len(buf) {
		if st.bulkLeft > 0 {
			k := min(st.bulkLeft, int64(len(buf)-i))
			if st.bulkLeft >= 2 && st.bulkLeft-2 < k && buf[i+int(st.bulkLeft)-2] != '\r' ||
				st.bulkLeft-1 < k && buf[i+int(st.bulkLeft)-1] != '\n' {
				at := c.at + int64(i) + st.bulkLeft - 2
				return i, c.protoErr("bulk not followed by CRLF", at, buf[i+max(int(st.bulkLeft)-2, 0):i+int(k)])
			}
			i += int(k)
			st.bulkLeft -= k
			st.cmdLen += k
			if st.bulkLeft == 0 && st.argsLeft == 0 {
				st.inCmd = false
				return i, nil
			}
			continue
		}
		// A header line: `*<n>` between commands, `$<len>` inside one.
		want := byte('$')
		if !st.inCmd {
			want = '*'
		}
		at := c.at + int64(i-st.lineLen)
		room := maxLineBytes - st.lineLen
		end := min(len(buf), i+room)
		if st.lineLen == 0 && buf[i] != want {
			return i, c.protoErr("expected '"+string(want)+"'", at, buf[i:end])
		}
		nl := bytes.IndexByte(buf[i:end], '\n')
		if nl < 0 {
			if end-i >= room {
				return i, c.protoErr("header line too long", at, append(st.line[:st.lineLen:st.lineLen], buf[i:end]...))
			}
			if st.lineLen == 0 && !torn {
				return i, nil // wait for the whole line
			}
			st.lineLen += copy(st.line[st.lineLen:], buf[i:end])
			st.cmdLen += int64(end - i)
			i = end
			continue
		}
		line := append(st.line[:st.lineLen:st.lineLen], buf[i:i+nl+1]...)
		if len(line) < 3 || line[len(line)-2] != '\r' {
			return i, c.protoErr("header line not ending in CRLF", at, line)
		}
		if want == '*' {
			n, ok := parseInt(line[1 : len(line)-2])
			if !ok {
				return i, c.protoErr("invalid multibulk length", at, line)
			}
			if n > c.maxArgs {
				return i, c.protoErr("too many arguments (max "+strconv.FormatInt(c.maxArgs, 10)+")", at, line)
			}
			i += nl + 1
			*st = copyState{inCmd: n > 0, argsLeft: max(n, 0), nargs: max(n, 0), cmdLen: int64(len(line))}
			if n <= 0 {
				return i, nil
			}
			continue
		}
		size, err := c.bulkLen(line, at, st.cmdLen-int64(st.lineLen))
		if err != nil {
			return i, err
		}
		i += nl + 1
		st.cmdLen += int64(nl + 1)
		st.lineLen = 0
		st.argsLeft--
		st.bulkLeft = size + 2
	}
	return i, nil
}

// writeErr is the error of a writer that took m bytes of a piece starting after offset c.at:
// with m > 0 the Copier is lost, and only Pending (which the caller has counted them in) and
// the offset move past them.
func (c *Copier) writeErr(m int, err error) error {
	if err == nil {
		err = io.ErrShortWrite
	}
	at := c.at
	if m > 0 {
		c.lost = true
		c.at += int64(m)
		err = errors.Join(ErrCopierLost, err)
	}
	return &Error{What: "write error", Offset: at, Err: err}
}

// readErr is the error of a read failing inside the command that starts after offset start; b
// is what was read of it.
func (c *Copier) readErr(err error, start int64, b []byte) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return &Error{What: "truncated command", Offset: start, Snippet: snippet(b), Err: io.ErrUnexpectedEOF}
	}
	return &Error{What: "read error", Offset: start, Snippet: snippet(b), Err: err}
}

func (c *Copier) protoErr(what string, at int64, b []byte) error {
	return &Error{What: what, Offset: at, Snippet: snippet(b), Err: ErrProtocol}
}

// Scan moves the Copier over the bytes of r as if it had passed them on, to find where a stream
// stands after them: r holds the stream from a command's start (offset at, where Scan puts the
// Copier between commands) to the end of what was passed on before (say, the end of a spool
// written by a Copier, perhaps cut short by a crash). r may end anywhere, inside a command too;
// Scan returns nil then, and an *Error if the bytes are not a stream of commands.
func (c *Copier) Scan(r io.Reader, at int64) error {
	hold := c.hold
	defer func() { c.hold, c.scanning = hold, false }()
	c.hold, c.scanning = 0, true
	c.Restart()
	c.Continue(bufio.NewReaderSize(r, 64<<10), at)
	var cmd Command
	for {
		err := c.Next(&cmd, io.Discard)
		switch {
		case err == nil:
		case err == io.EOF, errors.Is(err, io.ErrUnexpectedEOF):
			c.err, c.br = nil, nil
			return nil
		default:
			c.br = nil
			return err
		}
	}
}
