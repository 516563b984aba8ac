package source

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// replidLen is the length of a replication id (CONFIG_RUN_ID_SIZE).
const replidLen = 40

// Bounds on what a master may announce. An offset leaves room for 2^62 more bytes of stream
// before any sum of offsets could overflow (a master would need centuries at full speed to go
// past it). An RDB holds a dataset Redis keeps in memory: 256 TiB is far beyond any machine.
const (
	maxOffset   = 1 << 62
	maxRDBBytes = 1 << 48
)

// psyncKind is the master's answer to PSYNC.
type psyncKind int

const (
	psyncFull     psyncKind = iota + 1 // +FULLRESYNC <replid> <offset>
	psyncContinue                      // +CONTINUE [<replid>]
)

// psyncReply is a parsed answer to PSYNC. Replid is empty for a bare +CONTINUE.
type psyncReply struct {
	Kind   psyncKind
	Replid string
	Offset int64 // FULLRESYNC only
}

// errBadReply wraps every malformed reply from the master.
var errBadReply = errors.New("unexpected reply")

// parsePSYNCReply parses the status line answering PSYNC (without its CRLF).
func parsePSYNCReply(line string) (psyncReply, error) {
	if strings.HasPrefix(line, "-") {
		return psyncReply{}, newReplyError("PSYNC", line)
	}
	word, rest, _ := strings.Cut(line, " ")
	switch word {
	case "+FULLRESYNC":
		id, off, ok := strings.Cut(rest, " ")
		if !ok {
			return psyncReply{}, badReply("PSYNC", "+FULLRESYNC without a replid and an offset", line)
		}
		if !validReplid(id) {
			return psyncReply{}, badReply("PSYNC", "+FULLRESYNC replid is not 40 hex digits", line)
		}
		n, ok := parseOffset(off, maxOffset)
		if !ok {
			return psyncReply{}, badReply("PSYNC", "+FULLRESYNC offset is not an integer in [0, 2^62]", line)
		}
		return psyncReply{Kind: psyncFull, Replid: id, Offset: n}, nil
	case "+CONTINUE":
		if rest == "" {
			return psyncReply{Kind: psyncContinue}, nil
		}
		id := strings.TrimRight(rest, " ")
		if !validReplid(id) {
			return psyncReply{}, badReply("PSYNC", "+CONTINUE replid is not 40 hex digits", line)
		}
		return psyncReply{Kind: psyncContinue, Replid: id}, nil
	}
	return psyncReply{}, badReply("PSYNC", "not +FULLRESYNC nor +CONTINUE", line)
}

// badReply is the error of a malformed reply to step: what was wrong, and the line (cut).
func badReply(step, what, line string) error {
	return fmt.Errorf("%s: %w: %s: %q", step, errBadReply, what, truncate(line, 64))
}

// parseOffset parses a decimal integer in [0, limit]: digits only, no sign, no leading zero.
func parseOffset(s string, limit int64) (int64, bool) {
	if s == "" || len(s) > 19 || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	var v int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0') // 19 digits cannot overflow before the check below
	}
	if v < 0 || v > limit {
		return 0, false
	}
	return v, true
}

func validReplid(s string) bool {
	if len(s) != replidLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// bulkHeader is the line that opens the RDB payload: `$<len>` or `$EOF:<mark>`.
type bulkHeader struct {
	Size int64  // -1 for the diskless form
	Mark []byte // the 40-byte end mark of the diskless form
}

// parseBulkHeader parses the line announcing the RDB (without its CRLF).
func parseBulkHeader(line string) (bulkHeader, error) {
	if strings.HasPrefix(line, "-") {
		return bulkHeader{}, newReplyError("SYNC", line)
	}
	if mark, ok := strings.CutPrefix(line, "$EOF:"); ok {
		if len(mark) != replidLen || !printable(mark) {
			return bulkHeader{}, badReply("RDB header", "the $EOF: mark is not 40 printable characters", line)
		}
		return bulkHeader{Size: -1, Mark: []byte(mark)}, nil
	}
	if n, ok := strings.CutPrefix(line, "$"); ok {
		if size, ok := parseOffset(n, maxRDBBytes); ok {
			return bulkHeader{Size: size}, nil
		}
		return bulkHeader{}, badReply("RDB header", "the RDB length is not an integer in [0, 2^48]", line)
	}
	return bulkHeader{}, badReply("RDB header", "not $<length> nor $EOF:<mark>", line)
}

// printable reports whether s is ASCII without controls or spaces (Redis's marks are hex).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// handshake runs AUTH, PING and the REPLCONFs on a fresh connection. PSYNC is sent by the caller.
func (l *Link) handshake(rc *replConn) error {
	o := &l.opts
	if o.Password != "" {
		args := []string{"AUTH", o.Password}
		if o.Username != "" {
			args = []string{"AUTH", o.Username, o.Password}
		}
		if _, err := rc.command("AUTH", args...); err != nil {
			return err
		}
	}
	if _, err := rc.command("PING", "PING"); err != nil {
		return err
	}
	port := strconv.Itoa(o.ListeningPort)
	if _, err := rc.command("REPLCONF", "REPLCONF", "listening-port", port); err != nil {
		if !ignorable(err) {
			return err
		}
		l.log.Warn("master refused REPLCONF listening-port; going on", zapErr(err))
	}
	if _, err := rc.command("REPLCONF", "REPLCONF", "capa", "eof", "capa", "psync2"); err != nil {
		if !ignorable(err) {
			return err
		}
		l.log.Warn("master refused REPLCONF capa; going on", zapErr(err))
	}
	return nil
}

// ignorable says whether an error reply to REPLCONF can be ignored, as a Redis replica does
// (old masters do not know every option); authentication and permission errors cannot.
func ignorable(err error) bool {
	var re *ReplyError
	if !errors.As(err, &re) {
		return false
	}
	switch re.Code {
	case "NOAUTH", "NOPERM", "WRONGPASS":
		return false
	}
	return true
}

// psync sends PSYNC and parses its answer, skipping keep-alives.
func (l *Link) psync(rc *replConn, replid string, offset int64) (psyncReply, error) {
	args := []string{"PSYNC", "?", "-1"}
	if replid != "" {
		args = []string{"PSYNC", replid, strconv.FormatInt(offset+1, 10)}
	}
	if err := rc.writeCommand(args...); err != nil {
		return psyncReply{}, fmt.Errorf("sending PSYNC: %w", err)
	}
	line, err := rc.readLine()
	if err != nil {
		return psyncReply{}, fmt.Errorf("reading the reply to PSYNC: %w", err)
	}
	return parsePSYNCReply(line)
}
