package source

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// replidLen is the length of a replication id (CONFIG_RUN_ID_SIZE).
const replidLen = 40

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
		if !ok || !validReplid(id) {
			break
		}
		n, err := strconv.ParseInt(off, 10, 64)
		if err != nil || n < 0 {
			break
		}
		return psyncReply{Kind: psyncFull, Replid: id, Offset: n}, nil
	case "+CONTINUE":
		if rest == "" {
			return psyncReply{Kind: psyncContinue}, nil
		}
		id := strings.TrimRight(rest, " ")
		if !validReplid(id) {
			break
		}
		return psyncReply{Kind: psyncContinue, Replid: id}, nil
	}
	return psyncReply{}, fmt.Errorf("PSYNC: %w %q", errBadReply, truncate(line, 64))
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
		if len(mark) != replidLen {
			return bulkHeader{}, fmt.Errorf("RDB header: %w: EOF mark of %d bytes %q", errBadReply, len(mark), truncate(line, 64))
		}
		return bulkHeader{Size: -1, Mark: []byte(mark)}, nil
	}
	if n, ok := strings.CutPrefix(line, "$"); ok {
		size, err := strconv.ParseInt(n, 10, 64)
		if err == nil && size >= 0 {
			return bulkHeader{Size: size}, nil
		}
	}
	return bulkHeader{}, fmt.Errorf("RDB header: %w %q", errBadReply, truncate(line, 64))
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
