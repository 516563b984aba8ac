package source

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/rmt-project/rmt/aof"
)

// Bounds on what a reply to a scan connection may hold: the largest string Redis keeps
// (proto-max-bulk-len), the most elements an array may announce, and the bytes held by one
// reply altogether (a DUMP payload is not counted: it goes through readBulk).
const (
	maxReplyBulk  = 512 << 20
	maxReplyElems = 1 << 24
	maxReplyBytes = 1 << 30
	maxReplyDepth = 8
)

// scanConn is one plain RESP2 connection to a source server, for the scan modes: commands are
// queued with add and sent by flush (pipelining), replies read in order with read. No HELLO,
// no CLIENT, no COMMAND: only what every managed service allows. Not safe for concurrent use.
// After any error but an error reply the connection is out of step: close it.
type scanConn struct {
	addr    string
	c       net.Conn
	br      *bufio.Reader
	wbuf    []byte
	timeout time.Duration
	lastIO  *atomic.Int64 // unix ms of the last byte read; may be nil
	db      int           // the db selected
}

// dialScanConn connects to addr and authenticates with o's credentials.
func dialScanConn(ctx context.Context, addr string, o *LinkOptions, lastIO *atomic.Int64) (*scanConn, error) {
	c, err := dialNode(ctx, addr, o)
	if err != nil {
		return nil, fmt.Errorf("source %s: connecting: %w", addr, err)
	}
	sc := &scanConn{addr: addr, c: c, timeout: o.Timeout, lastIO: lastIO}
	sc.br = bufio.NewReaderSize(scanDeadlineReader{sc}, readBufSize)
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if o.Password != "" {
		args := []string{"AUTH", o.Password}
		if o.Username != "" {
			args = []string{"AUTH", o.Username, o.Password}
		}
		if _, err := sc.do(args...); err != nil {
			c.Close()
			return nil, fmt.Errorf("source %s: AUTH: %w", addr, err)
		}
	}
	return sc, nil
}

// scanDeadlineReader renews the read deadline before every read.
type scanDeadlineReader struct{ sc *scanConn }

func (d scanDeadlineReader) Read(p []byte) (int, error) {
	_ = d.sc.c.SetReadDeadline(time.Now().Add(d.sc.timeout))
	n, err := d.sc.c.Read(p)
	if n > 0 && d.sc.lastIO != nil {
		d.sc.lastIO.Store(time.Now().UnixMilli())
	}
	return n, err
}

func (sc *scanConn) Close() error { return sc.c.Close() }

// add queues a command.
func (sc *scanConn) add(args ...[]byte) {
	sc.wbuf = aof.AppendCommand(sc.wbuf, args...)
}

// addStr queues a command of strings.
func (sc *scanConn) addStr(args ...string) {
	sc.wbuf = aof.AppendCommandString(sc.wbuf, args...)
}

// flush sends the queued commands.
func (sc *scanConn) flush() error {
	if len(sc.wbuf) == 0 {
		return nil
	}
	if err := sc.c.SetWriteDeadline(time.Now().Add(sc.timeout)); err != nil {
		return err
	}
	_, err := sc.c.Write(sc.wbuf)
	if len(sc.wbuf) > 1<<20 {
		sc.wbuf = nil // do not keep a big page of commands
	} else {
		sc.wbuf = sc.wbuf[:0]
	}
	if err != nil {
		return fmt.Errorf("source %s: sending: %w", sc.addr, err)
	}
	return nil
}

// do sends one command and reads its reply; an error reply is returned as a *ReplyError.
func (sc *scanConn) do(args ...string) (reply, error) {
	sc.addStr(args...)
	if err := sc.flush(); err != nil {
		return reply{}, err
	}
	r, err := sc.read()
	if err != nil {
		return r, err
	}
	if err := r.err(args[0]); err != nil {
		return r, err
	}
	return r, nil
}

// selectDB makes db the connection's db.
func (sc *scanConn) selectDB(db int) error {
	if sc.db == db {
		return nil
	}
	if _, err := sc.do("SELECT", strconv.Itoa(db)); err != nil {
		return fmt.Errorf("source %s: SELECT %d: %w", sc.addr, db, err)
	}
	sc.db = db
	return nil
}

// reply is one RESP2 reply, holding its own bytes.
type reply struct {
	Kind  byte // '+' status, '-' error, ':' integer, '$' bulk string, '*' array
	Null  bool // $-1 or *-1
	Str   []byte
	Int   int64
	Elems []reply
}

// err returns an error reply as a *ReplyError of the command cmd, nil for any other reply.
func (r reply) err(cmd string) error {
	if r.Kind != '-' {
		return nil
	}
	return newReplyError(cmd, "-"+string(r.Str))
}

// errBadScanReply wraps every reply that breaks RESP or the limits above.
var errBadScanReply = errors.New("source: bad reply")

// read reads one reply, whole.
func (sc *scanConn) read() (reply, error) {
	budget := int64(maxReplyBytes)
	return sc.readValue(0, &budget)
}

func (sc *scanConn) readValue(depth int, budget *int64) (reply, error) {
	line, err := sc.line()
	if err != nil {
		return reply{}, err
	}
	r := reply{Kind: line[0]}
	body := line[1:]
	switch r.Kind {
	case '+', '-':
		r.Str = bytes.Clone(body)
		*budget -= int64(len(body))
	case ':':
		n, ok := parseInt(body)
		if !ok {
			return r, sc.bad("integer", line)
		}
		r.Int = n
	case '$':
		n, ok := parseInt(body)
		switch {
		case !ok || n < -1 || n > maxReplyBulk || n > *budget:
			return r, sc.bad("bulk length", line)
		case n == -1:
			r.Null = true
			return r, nil
		}
		*budget -= n
		r.Str = make([]byte, n)
		if err := sc.readFull(r.Str); err != nil {
			return r, err
		}
		if err := sc.crlf(); err != nil {
			return r, err
		}
	case '*':
		n, ok := parseInt(body)
		switch {
		case !ok || n < -1 || n > maxReplyElems || depth >= maxReplyDepth:
			return r, sc.bad("array length", line)
		case n == -1:
			r.Null = true
			return r, nil
		}
		r.Int = n
		r.Elems = make([]reply, 0, min(n, 1024))
		for range n {
			e, err := sc.readValue(depth+1, budget)
			if err != nil {
				return r, err
			}
			r.Elems = append(r.Elems, e)
		}
	default:
		return r, sc.bad("reply type", line)
	}
	if *budget < 0 {
		return r, fmt.Errorf("%w from %s: a reply over %d bytes", errBadScanReply, sc.addr, maxReplyBytes)
	}
	return r, nil
}

// maxDumpBulk bounds a DUMP reply, which goes to disk past the big-key limit, never into memory.
const maxDumpBulk = 1 << 40

// readBulkHeader reads the header of a DUMP's bulk reply: its size, -1 for a nil bulk. An error
// reply comes back as reply (Kind '-') with size -2.
func (sc *scanConn) readBulkHeader() (int64, reply, error) {
	line, err := sc.line()
	if err != nil {
		return 0, reply{}, err
	}
	switch line[0] {
	case '-':
		return -2, reply{Kind: '-', Str: bytes.Clone(line[1:])}, nil
	case '$':
		n, ok := parseInt(line[1:])
		if !ok || n < -1 || n > maxDumpBulk {
			return 0, reply{}, sc.bad("bulk length", line)
		}
		return n, reply{}, nil
	}
	return 0, reply{}, sc.bad("bulk reply", line)
}

// readBulkBody reads the n bytes of a bulk whose header was read, and its CRLF, into w.
func (sc *scanConn) readBulkBody(w io.Writer, n int64) error {
	if _, err := io.CopyN(w, sc.br, n); err != nil {
		return sc.ioErr(err)
	}
	return sc.crlf()
}

func (sc *scanConn) line() ([]byte, error) {
	line, err := sc.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("%w from %s: a line over %d bytes", errBadScanReply, sc.addr, readBufSize)
	}
	if err != nil {
		return nil, sc.ioErr(err)
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, sc.bad("line", line)
	}
	return line[:len(line)-2], nil
}

func (sc *scanConn) readFull(p []byte) error {
	if _, err := io.ReadFull(sc.br, p); err != nil {
		return sc.ioErr(err)
	}
	return nil
}

func (sc *scanConn) crlf() error {
	var b [2]byte
	if err := sc.readFull(b[:]); err != nil {
		return err
	}
	if b != [2]byte{'\r', '\n'} {
		return sc.bad("bulk end", b[:])
	}
	return nil
}

func (sc *scanConn) ioErr(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("source %s: reading a reply: %w", sc.addr, err)
}

func (sc *scanConn) bad(what string, b []byte) error {
	return fmt.Errorf("%w from %s: %s: %q", errBadScanReply, sc.addr, what, truncate(string(b), 64))
}

// parseInt parses a RESP integer: an optional '-', digits, no overflow.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if v > (math.MaxInt64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	if neg {
		v = -v
	}
	return v, true
}
