package admin

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The admin port's guard. redcon (v1.6.4) parses client input itself and trusts it: a bulk
// length near 2^63 overflows an index and panics on the connection's goroutine, which nothing
// recovers (rmtd exits); an inline line of N tokens costs N² bytes; its read buffer doubles
// without a ceiling. So redcon never reads the socket: guardConn reads it, parses each command
// with every length checked before it sizes anything, and hands redcon the command re-encoded
// as a canonical multibulk (`*N`, then `$L` + L bytes + CRLF for each argument) whose every
// length it has checked. redcon's parser sees nothing else.
//
// Bounds, per connection: a command of at most guardMaxCommand bytes once authenticated
// (Redis's own unauthenticated limits before: 10 arguments of at most 16 KiB, as Redis 7
// answers them), inline lines of at most 64 KiB (PROTO_INLINE_MAX_SIZE), one command buffered
// at a time. Memory stays within a few MiB per connection, whatever the client sends.

const (
	guardMaxCommand   = 1 << 20   // bytes of one command's arguments, authenticated
	guardMaxArgs      = 4096      // arguments of one command, authenticated
	guardUnauthArgs   = 10        // Redis 7: "unauthenticated multibulk length"
	guardUnauthBulk   = 16 << 10  // Redis 7: "unauthenticated bulk length"
	guardMaxLine      = 64 << 10  // PROTO_INLINE_MAX_SIZE: inline commands and header lines
	guardProtoMaxBulk = 512 << 20 // proto-max-bulk-len: the order of Redis's checks, for its replies
	guardWriteTimeout = 10 * time.Second
)

// guardError is a protocol error: the client is told "-ERR Protocol error: <msg>" and
// dropped, as Redis does.
type guardError struct{ msg string }

func (e *guardError) Error() string { return "Protocol error: " + e.msg }

var errGuardIdle = errors.New("admin: connection idle before authenticating")

// guardConn is one admin connection as redcon sees it: Read yields canonical commands only.
// Read runs on redcon's goroutine for this connection, as does the command handler, so the
// fields below but trusted, evicted and gone need no lock.
type guardConn struct {
	net.Conn
	in      *bufio.Reader
	out     []byte // the command re-encoded, not yet read by redcon
	off     int
	line    []byte // scratch for a line longer than in's buffer
	args    [][]byte
	started time.Time
	sess    *session // set by Server.accept, before redcon's goroutine starts

	// idle bounds how long a connection that is not trusted may take to send a command.
	idle     time.Duration
	deadline bool // a read deadline is set

	// trusted: authenticated (or, without requirepass, it has run a command). Connections
	// not trusted are closed when idle and evicted first when max_clients is reached.
	trusted atomic.Bool
	evicted atomic.Bool
	// gone is closed when the connection is evicted: a reply held back (a failed AUTH's
	// delay) is not waited for, so that the goroutine and buffers of a connection that no
	// longer counts toward max_clients go at once.
	gone     chan struct{}
	goneOnce sync.Once
}

func newGuardConn(c net.Conn, idle time.Duration) *guardConn {
	return &guardConn{Conn: c, in: bufio.NewReaderSize(c, 4096), idle: idle, started: time.Now(),
		gone: make(chan struct{})}
}

// evict closes the connection to make room for another, and ends any wait of its handler.
func (g *guardConn) evict() {
	g.evicted.Store(true)
	g.goneOnce.Do(func() { close(g.gone) })
	_ = g.Conn.Close() // its goroutine ends on the read error
}

func (g *guardConn) authenticated() bool { return g.sess == nil || g.sess.authed }

// Read gives redcon the next command, re-encoded; it blocks until one is whole. A protocol
// error is answered, as Redis words it, and ends the connection.
func (g *guardConn) Read(p []byte) (int, error) {
	for g.off == len(g.out) {
		g.out, g.off = g.out[:0], 0
		if cap(g.out) > 64<<10 {
			g.out = nil // a big command's buffer is not kept
		}
		if err := g.next(); err != nil {
			var pe *guardError
			if errors.As(err, &pe) {
				_ = g.SetWriteDeadline(time.Now().Add(guardWriteTimeout))
				_, _ = io.WriteString(g.Conn, "-ERR "+pe.Error()+"\r\n")
			}
			return 0, err
		}
	}
	n := copy(p, g.out[g.off:])
	g.off += n
	return n, nil
}

// Write bounds the time a reply may wait for a client that does not read.
func (g *guardConn) Write(p []byte) (int, error) {
	_ = g.SetWriteDeadline(time.Now().Add(guardWriteTimeout))
	return g.Conn.Write(p)
}

// next reads one command from the socket into out. Empty commands (`*0`, blank lines) are
// skipped, as Redis does.
func (g *guardConn) next() error {
	for len(g.out) == 0 {
		if err := g.armDeadline(); err != nil {
			return err
		}
		b, err := g.in.Peek(1)
		if err != nil {
			return g.readErr(err)
		}
		if b[0] == '*' {
			err = g.multibulk()
		} else {
			err = g.inline()
		}
		if err != nil {
			return g.readErr(err)
		}
	}
	return nil
}

// armDeadline gives a connection that is not trusted g.idle to send its next command, and
// lifts the deadline once it is.
func (g *guardConn) armDeadline() error {
	switch {
	case !g.trusted.Load() && g.idle > 0:
		g.deadline = true
		return g.SetReadDeadline(time.Now().Add(g.idle))
	case g.deadline:
		g.deadline = false
		return g.SetReadDeadline(time.Time{})
	}
	return nil
}

func (g *guardConn) readErr(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && g.deadline {
		return errGuardIdle
	}
	return err
}

// readLine returns one line without its "\n" (and "\r" before it), at most guardMaxLine
// bytes; tooBig words the error past that. The slice is valid until the next read.
func (g *guardConn) readLine(tooBig string) ([]byte, error) {
	line, err := g.in.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		g.line = append(g.line[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(g.line) > guardMaxLine {
				return nil, &guardError{tooBig}
			}
			line, err = g.in.ReadSlice('\n')
			g.line = append(g.line, line...)
		}
		line = g.line
	}
	if err != nil {
		return nil, err
	}
	if len(line) > guardMaxLine {
		return nil, &guardError{tooBig}
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// multibulk reads `*N` and N bulk strings.
func (g *guardConn) multibulk() error {
	line, err := g.readLine("too big mbulk count string")
	if err != nil {
		return err
	}
	count, ok := parseRESPInt(line[1:])
	if !ok || count > guardMaxArgs {
		return &guardError{"invalid multibulk length"}
	}
	if count <= 0 {
		return nil // an empty command
	}
	authed := g.authenticated()
	if !authed && count > guardUnauthArgs {
		return &guardError{"unauthenticated multibulk length"}
	}
	g.out = appendRESPHeader(g.out, '*', count)
	budget := int64(guardMaxCommand)
	for range count {
		line, err := g.readLine("too big bulk count string")
		if err != nil {
			return err
		}
		if len(line) == 0 || line[0] != '$' {
			got := "\\x00"
			if len(line) > 0 {
				got = string(line[:1])
			}
			return &guardError{"expected '$', got '" + got + "'"}
		}
		size, ok := parseRESPInt(line[1:])
		if !ok || size < 0 || size > guardProtoMaxBulk {
			return &guardError{"invalid bulk length"}
		}
		if !authed && size > guardUnauthBulk {
			return &guardError{"unauthenticated bulk length"}
		}
		if size > budget {
			return &guardError{"invalid bulk length"}
		}
		budget -= size
		g.out = appendRESPHeader(g.out, '$', size)
		start := len(g.out)
		g.out = append(g.out, make([]byte, size)...)
		if _, err := io.ReadFull(g.in, g.out[start:]); err != nil {
			return err
		}
		// Redis skips the two bytes after a bulk string without looking at them.
		if _, err := g.in.Discard(2); err != nil {
			return err
		}
		g.out = append(g.out, '\r', '\n')
	}
	return nil
}

// inline reads a telnet-style line and splits it as Redis's sdssplitargs does.
func (g *guardConn) inline() error {
	line, err := g.readLine("too big inline request")
	if err != nil {
		return err
	}
	args, ok := splitInline(line, g.args[:0])
	g.args = args[:0]
	if !ok {
		return &guardError{"unbalanced quotes in request"}
	}
	if len(args) == 0 {
		return nil
	}
	g.out = appendRESPHeader(g.out, '*', int64(len(args)))
	for _, a := range args {
		g.out = appendRESPHeader(g.out, '$', int64(len(a)))
		g.out = append(g.out, a...)
		g.out = append(g.out, '\r', '\n')
	}
	return nil
}

func appendRESPHeader(dst []byte, kind byte, n int64) []byte {
	dst = append(dst, kind)
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, '\r', '\n')
}

// parseRESPInt parses a length as Redis's string2ll: an optional '-', digits, no leading
// zero, no sign '+', no overflow.
func parseRESPInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	if neg {
		n = -n
	}
	return n, true
}

// splitInline splits an inline command line into arguments by the rules of Redis's
// sdssplitargs: blanks separate arguments; "double quotes" take \n \r \t \b \a \xHH and \c
// escapes; 'single quotes' take \'; a quote may start inside an unquoted argument, but a
// closing quote must be followed by a blank or the end; a NUL byte ends the line. The
// arguments slice line, or own copies when quoted; ok is false for unbalanced quotes.
func splitInline(line []byte, args [][]byte) ([][]byte, bool) {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' }
	p := 0
	for {
		for p < len(line) && isSpace(line[p]) {
			p++
		}
		if p >= len(line) || line[p] == 0 {
			return args, true
		}
		var cur []byte
		inq, insq := false, false
		for done := false; !done; {
			if p >= len(line) || line[p] == 0 {
				if inq || insq {
					return args, false // unterminated quotes
				}
				break
			}
			c := line[p]
			switch {
			case inq:
				switch {
				case c == '\\' && p+3 < len(line) && line[p+1] == 'x' && isHex(line[p+2]) && isHex(line[p+3]):
					cur = append(cur, hexVal(line[p+2])<<4|hexVal(line[p+3]))
					p += 3
				case c == '\\' && p+1 < len(line):
					p++
					switch line[p] {
					case 'n':
						cur = append(cur, '\n')
					case 'r':
						cur = append(cur, '\r')
					case 't':
						cur = append(cur, '\t')
					case 'b':
						cur = append(cur, '\b')
					case 'a':
						cur = append(cur, '\a')
					default:
						cur = append(cur, line[p])
					}
				case c == '"':
					if p+1 < len(line) && !isSpace(line[p+1]) {
						return args, false // a closing quote must be followed by a blank
					}
					done = true
				default:
					cur = append(cur, c)
				}
			case insq:
				switch {
				case c == '\\' && p+1 < len(line) && line[p+1] == '\'':
					p++
					cur = append(cur, '\'')
				case c == '\'':
					if p+1 < len(line) && !isSpace(line[p+1]) {
						return args, false
					}
					done = true
				default:
					cur = append(cur, c)
				}
			default:
				switch c {
				case ' ', '\n', '\r', '\t':
					done = true
				case '"':
					inq = true
				case '\'':
					insq = true
				default:
					cur = append(cur, c)
				}
			}
			if p < len(line) {
				p++
			}
		}
		if cur == nil {
			cur = []byte{}
		}
		args = append(args, cur)
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
