package source

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmt-project/rmt/aof"
)

const (
	readBufSize = 256 << 10 // socket read buffer; also the longest reply line accepted
	maxLineLen  = 1024      // longest status/error/bulk-header line accepted from the master
)

// ReplyError is an error reply (`-ERR ...`, `-NOAUTH ...`, `-WRONGPASS ...`) from the master to a
// handshake step. Code is its first word; Msg the whole text without the '-'.
type ReplyError struct {
	Step string // the command that got it: AUTH, PING, REPLCONF, PSYNC
	Code string
	Msg  string
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("master replied to %s: %s", e.Step, e.Msg)
}

func newReplyError(step, line string) *ReplyError {
	msg := strings.TrimPrefix(line, "-")
	code, _, _ := strings.Cut(msg, " ")
	return &ReplyError{Step: step, Code: code, Msg: msg}
}

// errLineTooLong is returned when the master sends a line over maxLineLen; it wraps errBadReply.
var errLineTooLong = fmt.Errorf("%w: line too long", errBadReply)

// replConn is one connection to the master. Only the session goroutine reads it (through br);
// writes come from it and from the ACK goroutine, serialised by wmu.
type replConn struct {
	c       net.Conn
	br      *bufio.Reader
	timeout time.Duration
	lastIO  *atomic.Int64 // unix ms of the last byte read

	wmu  sync.Mutex
	wbuf []byte
}

func newReplConn(c net.Conn, timeout time.Duration, lastIO *atomic.Int64) *replConn {
	rc := &replConn{c: c, timeout: timeout, lastIO: lastIO}
	rc.br = bufio.NewReaderSize(deadlineReader{rc}, readBufSize)
	return rc
}

// deadlineReader renews the read deadline before every read, so that a master silent for
// longer than the timeout (repl-timeout) is noticed, however long the transfer takes.
type deadlineReader struct{ rc *replConn }

func (d deadlineReader) Read(p []byte) (int, error) {
	// An error here (net.Pipe refuses deadlines once the peer has closed) shows in Read too.
	_ = d.rc.c.SetReadDeadline(time.Now().Add(d.rc.timeout))
	n, err := d.rc.c.Read(p)
	if n > 0 {
		d.rc.lastIO.Store(time.Now().UnixMilli())
	}
	return n, err
}

// writeCommand sends one command, under the write lock and a write deadline.
func (rc *replConn) writeCommand(args ...string) error {
	rc.wmu.Lock()
	defer rc.wmu.Unlock()
	rc.wbuf = aof.AppendCommandString(rc.wbuf[:0], args...)
	if err := rc.c.SetWriteDeadline(time.Now().Add(rc.timeout)); err != nil {
		return err
	}
	_, err := rc.c.Write(rc.wbuf)
	return err
}

// readLine reads one reply line and returns it without its line ending. Bare "\n" keep-alives,
// which a master sends while it prepares a snapshot, are skipped. A line longer than maxLineLen
// is an error as soon as that many bytes have come without a '\n'.
func (rc *replConn) readLine() (string, error) {
	for {
		known := 0 // bytes buffered that hold no '\n'
		for {
			buf, _ := rc.br.Peek(rc.br.Buffered())
			if i := bytes.IndexByte(buf[known:], '\n'); i >= 0 {
				known += i + 1
				break
			}
			known = len(buf)
			if known > maxLineLen {
				return "", fmt.Errorf("%w (max %d): %q (cut)", errLineTooLong, maxLineLen, buf[:32])
			}
			if _, err := rc.br.Peek(known + 1); err != nil {
				return "", err
			}
		}
		raw, _ := rc.br.Peek(known)
		if len(raw) > maxLineLen {
			return "", fmt.Errorf("%w (max %d): %q (cut)", errLineTooLong, maxLineLen, raw[:32])
		}
		line := string(bytes.TrimSuffix(raw[:len(raw)-1], []byte{'\r'}))
		rc.br.Discard(known) // buffered: cannot fail
		if len(line) == 0 {
			continue // keep-alive
		}
		return line, nil
	}
}

// command sends args and reads the one-line reply, which must be a status (`+...`). A `-` reply
// is a *ReplyError; anything else wraps errBadReply.
func (rc *replConn) command(step string, args ...string) (string, error) {
	if err := rc.writeCommand(args...); err != nil {
		return "", fmt.Errorf("sending %s: %w", step, err)
	}
	line, err := rc.readLine()
	if err != nil {
		return "", fmt.Errorf("reading the reply to %s: %w", step, err)
	}
	switch line[0] {
	case '-':
		return "", newReplyError(step, line)
	case '+':
		return line, nil
	}
	return "", badReply(step, "not a status reply", line)
}
