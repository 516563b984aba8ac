package target

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Reply kinds: the RESP2 type byte of a reply, or KindFailed for a request whose connection
// broke before its reply came.
const (
	KindSimple  byte = '+'
	KindError   byte = '-'
	KindInteger byte = ':'
	KindBulk    byte = '$'
	KindArray   byte = '*'
	KindFailed  byte = 0
)

// Reply is one reply as the reply reader saw it. Str aliases the reader's buffers: it is valid
// only until the callback that received the Reply returns.
type Reply struct {
	Kind byte
	// Int is an integer reply's value, or a bulk string's or array's length (-1 for null).
	Int int64
	// Str is a simple string, an error's text, or a bulk string (nil when the bulk was longer
	// than the reader keeps; Int still has its length). Arrays are read through, not kept.
	Str []byte
	// Err is a *ReplyError for an error reply, or the connection's error for KindFailed.
	Err error
	// NestedErrs counts error replies inside an array (EXEC's reply); NestedErr is the first.
	NestedErrs int
	NestedErr  *ReplyError
}

// clone returns a copy of r whose Str no longer aliases the reader's buffers.
func (r *Reply) clone() *Reply {
	c := *r
	if r.Str != nil {
		c.Str = bytes.Clone(r.Str)
	}
	return &c
}

// ReplyError is an error reply. The stream it came on is still usable.
type ReplyError struct {
	Prefix string // first word: ERR, WRONGTYPE, BUSYKEY, OOM, NOAUTH, MOVED, LOADING, ...
	Msg    string // the whole text, prefix included
}

func (e *ReplyError) Error() string { return e.Msg }

// Retryable says whether the same command may succeed later unchanged: LOADING, BUSY, TRYAGAIN.
func (e *ReplyError) Retryable() bool {
	switch e.Prefix {
	case "LOADING", "BUSY", "TRYAGAIN":
		return true
	}
	return false
}

// Redirect returns the slot and address of a MOVED or ASK reply; ok is false for others.
func (e *ReplyError) Redirect() (slot int, addr string, ok bool) {
	if e.Prefix != "MOVED" && e.Prefix != "ASK" {
		return 0, "", false
	}
	f := bytes.Fields([]byte(e.Msg))
	if len(f) != 3 {
		return 0, "", false
	}
	n, err := strconv.Atoi(string(f[1]))
	if err != nil || n < 0 || n > 16383 {
		return 0, "", false
	}
	return n, string(f[2]), true
}

// knownPrefixes are the error codes Redis sends, kept as constants so that classifying a reply
// does not allocate.
var knownPrefixes = []string{
	"ERR", "WRONGTYPE", "BUSYKEY", "OOM", "NOAUTH", "NOPERM", "WRONGPASS", "MOVED", "ASK",
	"LOADING", "BUSY", "TRYAGAIN", "CROSSSLOT", "CLUSTERDOWN", "READONLY", "MASTERDOWN",
	"NOSCRIPT", "EXECABORT", "NOREPLICAS", "MISCONF", "NOTBUSY", "UNKILLABLE", "NOPROTO",
}

// errorPrefix returns the first word of an error text, as a known constant where possible.
func errorPrefix(msg []byte) string {
	w := msg
	if i := bytes.IndexByte(w, ' '); i >= 0 {
		w = w[:i]
	}
	for _, p := range knownPrefixes {
		if string(w) == p {
			return p
		}
	}
	if len(w) == 0 || len(w) > 32 {
		return "ERR"
	}
	for _, c := range w {
		if (c < 'A' || c > 'Z') && c != '_' && (c < '0' || c > '9') {
			return "ERR"
		}
	}
	return string(w)
}

func newReplyError(msg []byte) *ReplyError {
	return &ReplyError{Prefix: errorPrefix(msg), Msg: string(msg)}
}

// errProtocol marks a malformed reply stream; the connection is broken after it.
var errProtocol = errors.New("protocol error")

const (
	maxBulkLen  = 512 << 20 // proto-max-bulk-len
	maxArrayLen = 1<<31 - 1
	keepBulkLen = 1 << 20 // bulks up to this length are kept in Reply.Str
)

// replyReader parses RESP2 replies off a bufio.Reader into a reused Reply.
type replyReader struct {
	br      *bufio.Reader
	scratch []byte
}

// line returns the next header line without its CRLF.
func (r *replyReader) line() ([]byte, error) {
	b, err := r.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: reply line longer than %d bytes", errProtocol, r.br.Size())
		}
		if errors.Is(err, io.EOF) && len(b) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if len(b) < 3 || b[len(b)-2] != '\r' {
		return nil, fmt.Errorf("%w: bad reply line %q", errProtocol, truncate(b))
	}
	return b[:len(b)-2], nil
}

// parseInt parses a decimal int64 from b, with overflow checks.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	neg := false
	if b[0] == '-' {
		neg, b = true, b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<63-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	if neg {
		return -int64(n), true
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// read parses one whole reply into rep (arrays are read through to their last element).
func (r *replyReader) read(rep *Reply) error {
	*rep = Reply{}
	b, err := r.line()
	if err != nil {
		return err
	}
	rep.Kind = b[0]
	switch b[0] {
	case KindSimple:
		rep.Str = b[1:]
	case KindError:
		rep.Str = b[1:]
		rep.Err = newReplyError(b[1:])
	case KindInteger:
		n, ok := parseInt(b[1:])
		if !ok {
			return fmt.Errorf("%w: bad integer reply %q", errProtocol, truncate(b))
		}
		rep.Int = n
	case KindBulk:
		n, ok := parseInt(b[1:])
		if !ok || n < -1 || n > maxBulkLen {
			return fmt.Errorf("%w: bad bulk length %q", errProtocol, truncate(b))
		}
		rep.Int = n
		if n >= 0 {
			rep.Str, err = r.bulk(n, n <= keepBulkLen)
			if err != nil {
				return err
			}
		}
	case KindArray:
		n, ok := parseInt(b[1:])
		if !ok || n < -1 || n > maxArrayLen {
			return fmt.Errorf("%w: bad array length %q", errProtocol, truncate(b))
		}
		rep.Int = n
		if n > 0 {
			return r.skipElements(n, rep)
		}
	default:
		return fmt.Errorf("%w: unknown reply type %q", errProtocol, truncate(b))
	}
	return nil
}

// bulk reads n payload bytes and their CRLF; the payload is kept in scratch when keep is set.
func (r *replyReader) bulk(n int64, keep bool) ([]byte, error) {
	var out []byte
	if keep {
		if int64(cap(r.scratch)) < n+2 {
			r.scratch = make([]byte, n+2)
		}
		out = r.scratch[:n+2]
		if _, err := io.ReadFull(r.br, out); err != nil {
			return nil, unexpected(err)
		}
	} else {
		if _, err := r.br.Discard(int(n)); err != nil {
			return nil, unexpected(err)
		}
		var crlf [2]byte
		if _, err := io.ReadFull(r.br, crlf[:]); err != nil {
			return nil, unexpected(err)
		}
		out = crlf[:]
		n = 0
	}
	if out[n] != '\r' || out[n+1] != '\n' {
		return nil, fmt.Errorf("%w: bulk string not terminated by CRLF", errProtocol)
	}
	if !keep {
		return nil, nil
	}
	return out[:n], nil
}

// skipElements reads through n array elements, nested arrays included, counting error replies.
func (r *replyReader) skipElements(n int64, rep *Reply) error {
	for pending := n; pending > 0; pending-- {
		b, err := r.line()
		if err != nil {
			return unexpected(err)
		}
		switch b[0] {
		case KindSimple:
		case KindError:
			rep.NestedErrs++
			if rep.NestedErr == nil {
				rep.NestedErr = newReplyError(b[1:])
			}
		case KindInteger:
			if _, ok := parseInt(b[1:]); !ok {
				return fmt.Errorf("%w: bad integer reply %q", errProtocol, truncate(b))
			}
		case KindBulk:
			m, ok := parseInt(b[1:])
			if !ok || m < -1 || m > maxBulkLen {
				return fmt.Errorf("%w: bad bulk length %q", errProtocol, truncate(b))
			}
			if m >= 0 {
				if _, err := r.bulk(m, false); err != nil {
					return err
				}
			}
		case KindArray:
			m, ok := parseInt(b[1:])
			if !ok || m < -1 || m > maxArrayLen || pending+m < pending {
				return fmt.Errorf("%w: bad array length %q", errProtocol, truncate(b))
			}
			if m > 0 {
				pending += m
			}
		default:
			return fmt.Errorf("%w: unknown reply type %q", errProtocol, truncate(b))
		}
	}
	return nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
