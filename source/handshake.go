package source

import (
	"crypto/rand"
	"encoding/hex"
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
	// Header is the RDB's `$` line when the master answered as to SYNC, without
	// +FULLRESYNC: Redis serves a renamed PSYNC (rename-command) as SYNC, since it tells the two
	// apart by the command's name. Replid is then one of rmtd's own, Offset 0.
	Header string
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
			// The offset is named apart: the line, cut at 64 bytes, would cut it off.
			return psyncReply{}, badReply("PSYNC", fmt.Sprintf("+FULLRESYNC offset %q is not an integer in [0, 2^62]", truncate(off, 24)), line)
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

// syncReplid makes a replication ID for a stream the master gave none (an answer as to SYNC):
// 40 random hex digits, so that no other stream can be taken for it.
func syncReplid() string {
	var b [replidLen / 2]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return hex.EncodeToString(b[:])
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
	if _, err := rc.command("REPLCONF", o.ReplconfCommand, "listening-port", port); err != nil {
		if unknownCommand(err) {
			// Going on would lose the link at the master's repl-timeout: every ACK is refused.
			return fmt.Errorf("%w (the master does not know %s: a managed service may have renamed it; set source.replconf_command)",
				err, o.ReplconfCommand)
		}
		if !ignorable(err) {
			return err
		}
		l.log.Warn("master refused REPLCONF listening-port; going on", zapErr(err))
	}
	if _, err := rc.command("REPLCONF", o.ReplconfCommand, "capa", "eof", "capa", "psync2"); err != nil {
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

// unknownCommand says whether err is the master's refusal of a command it does not know, as
// Redis words it ("ERR unknown command 'PSYNC', with args beginning with: ...").
func unknownCommand(err error) bool {
	var re *ReplyError
	return errors.As(err, &re) && re.Code == "ERR" && strings.HasPrefix(strings.ToLower(re.Msg), "err unknown command")
}

// psync sends PSYNC (by the name the master knows it, LinkOptions.PSyncCommand) and parses its
// answer, skipping keep-alives.
func (l *Link) psync(rc *replConn, replid string, offset int64) (psyncReply, error) {
	args := []string{l.opts.PSyncCommand, "?", "-1"}
	if replid != "" {
		args = []string{l.opts.PSyncCommand, replid, strconv.FormatInt(offset+1, 10)}
	}
	if err := rc.writeCommand(args...); err != nil {
		return psyncReply{}, fmt.Errorf("sending PSYNC: %w", err)
	}
	line, err := rc.readLine()
	if err != nil {
		return psyncReply{}, fmt.Errorf("reading the reply to PSYNC: %w", err)
	}
	if strings.HasPrefix(line, "$") {
		l.log.Warn("the master answered " + l.opts.PSyncCommand + " as SYNC (Redis serves a renamed PSYNC as SYNC): " +
			"a full sync whose stream has no replication ID or offset of the master's; this link cannot resume after a restart")
		return psyncReply{Kind: psyncFull, Replid: syncReplid(), Header: line}, nil
	}
	rep, err := parsePSYNCReply(line)
	if unknownCommand(err) {
		return rep, fmt.Errorf("%w (the master does not know %s: a managed service may have renamed it, see source.psync_command; "+
			"one that refuses replication altogether needs source.mode scan or scan_live)", err, l.opts.PSyncCommand)
	}
	return rep, err
}
