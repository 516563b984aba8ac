package source

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/aof"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestParseBounds: offsets and lengths a master announces are bounded before anything uses them.
func TestParseBounds(t *testing.T) {
	for _, tt := range []struct {
		line string
		ok   bool
	}{
		{"+FULLRESYNC " + testReplid + " 4611686018427387904", true}, // 2^62
		{"+FULLRESYNC " + testReplid + " 4611686018427387905", false},
		{"+FULLRESYNC " + testReplid + " 9223372036854775807", false},
		{"+FULLRESYNC " + testReplid + " +5", false},
		{"+FULLRESYNC " + testReplid + " 007", false},
		{"+FULLRESYNC " + testReplid + " 0", true},
		{"+FULLRESYNC " + testReplid + " 5 6", false},
		{"+FULLRESYNC " + testReplid + "  5", false},
	} {
		if _, err := parsePSYNCReply(tt.line); (err == nil) != tt.ok || err != nil && !errors.Is(err, errBadReply) {
			t.Errorf("parsePSYNCReply(%q): %v", tt.line, err)
		}
	}
	for _, tt := range []struct {
		line string
		ok   bool
	}{
		{"$281474976710656", true}, // 2^48
		{"$281474976710657", false},
		{"$+5", false},
		{"$05", false},
		{"$EOF:" + strings.Repeat("a", 39) + " ", false},
		{"$EOF:" + strings.Repeat("a", 39) + "\x00", false},
		{"$EOF:" + strings.Repeat("Z", 40), true},
	} {
		if _, err := parseBulkHeader(tt.line); (err == nil) != tt.ok || err != nil && !errors.Is(err, errBadReply) {
			t.Errorf("parseBulkHeader(%q): %v", tt.line, err)
		}
	}
}

// TestFakeMasterBadReplies: every malformed reply, at every step, and every malformed command in
// the stream, is an error naming what was wrong and quoting the line (cut), counted in
// ProtocolErrors; the link keeps its offset and retries, and never overflows.
func TestFakeMasterBadReplies(t *testing.T) {
	const id = testReplid
	long := "+" + strings.Repeat("x", 2000)
	tests := []struct {
		name  string
		step  string // where the bad reply comes: ping, replconf, psync, rdb, stream
		reply string
		want  string // in the error
	}{
		{"ping integer", "ping", ":1\r\n", "PING: unexpected reply: not a status reply: \":1\""},
		{"ping bulk", "ping", "$4\r\nPONG\r\n", "not a status reply"},
		{"ping line too long", "ping", long + "\r\n", "line too long (max 1024)"},
		{"ping no end of line", "ping", long, "line too long (max 1024)"},
		{"replconf array", "replconf", "*1\r\n", "REPLCONF: unexpected reply: not a status reply"},
		{"offset overflow", "psync", "+FULLRESYNC " + id + " 9223372036854775807\r\n", `offset "9223372036854775807" is not an integer in [0, 2^62]`},
		{"offset past 2^62", "psync", "+FULLRESYNC " + id + " 4611686018427387905\r\n", `offset "4611686018427387905" is not an integer`},
		{"negative offset", "psync", "+FULLRESYNC " + id + " -1\r\n", `offset "-1" is not an integer`},
		{"offset junk", "psync", "+FULLRESYNC " + id + " 12x\r\n", `offset "12x" is not an integer`},
		{"short replid", "psync", "+FULLRESYNC " + id[:39] + " 5\r\n", "replid is not 40 hex digits"},
		{"replid not hex", "psync", "+FULLRESYNC " + strings.Repeat("g", 40) + " 5\r\n", "replid is not 40 hex digits"},
		{"no offset", "psync", "+FULLRESYNC " + id + "\r\n", "without a replid and an offset"},
		{"continue bad replid", "psync", "+CONTINUE xyz\r\n", "+CONTINUE replid is not 40 hex digits"},
		{"continue extra", "psync", "+CONTINUE " + id + " extra\r\n", "+CONTINUE replid"},
		{"psync other", "psync", ":1\r\n", "not +FULLRESYNC nor +CONTINUE"},
		{"psync long", "psync", "+FULLRESYNC " + strings.Repeat("1", 1500) + "\r\n", "line too long"},
		{"rdb negative", "rdb", "$-1\r\n", "the RDB length is not an integer in [0, 2^48]"},
		{"rdb overflow", "rdb", "$99999999999999999999\r\n", "the RDB length is not"},
		{"rdb too big", "rdb", "$281474976710657\r\n", "the RDB length is not"},
		{"rdb short mark", "rdb", "$EOF:abc\r\n", "the $EOF: mark is not 40 printable characters"},
		{"rdb mark with space", "rdb", "$EOF:" + strings.Repeat("a", 39) + " \r\n", "the $EOF: mark"},
		{"rdb status", "rdb", "+OK\r\n", "not $<length> nor $EOF:<mark>"},
		{"stream inline", "stream", "PING\r\n", "expected '*'"},
		{"stream bad bulk", "stream", "*1\r\n$x\r\n", "invalid bulk length"},
		{"stream count over INT_MAX", "stream", "*2147483648\r\n", "too many arguments (max 2147483647)"},
		{"stream bulk over 1 TiB", "stream", "*1\r\n$1099511627777\r\n", "bulk too long (max 1099511627776)"},
		{"stream no CRLF", "stream", "*1\r\n$4\r\nPINGxx", "bulk not followed by CRLF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, fm := newFakeLink(t, LinkOptions{})
			runLink(t, l)
			fc := fm.accept()
			switch tt.step {
			case "ping":
				fc.next(true)
				fc.write(tt.reply)
			case "replconf":
				fc.expect("+PONG\r\n", "PING")
				fc.next(true)
				fc.write(tt.reply)
			default:
				fc.handshake("PSYNC", "?", "-1")
				switch tt.step {
				case "psync":
					fc.write(tt.reply)
				case "rdb":
					fc.write("+FULLRESYNC " + id + " 100\r\n" + tt.reply)
				case "stream":
					fc.write("+FULLRESYNC " + id + " 100\r\n$0\r\n" + cmd("SET", "a", "1") + tt.reply)
				}
			}
			ev := nextDisconnected(t, l)
			if !errors.Is(ev.Err, errBadReply) && !errors.Is(ev.Err, aof.ErrProtocol) || !strings.Contains(ev.Err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", ev.Err, tt.want)
			}
			if len(ev.Err.Error()) > 600 {
				t.Fatalf("error of %d bytes: the line is not cut", len(ev.Err.Error()))
			}
			fm.accept() // it retries
			st := l.Stats()
			wantOff := int64(0)
			if tt.step == "stream" {
				wantOff = 100 + int64(len(cmd("SET", "a", "1")))
			}
			if st.ProtocolErrors != 1 || !strings.Contains(st.LastError, tt.want) || st.ReceivedOffset != wantOff || st.MasterLinkUp {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestFakeMasterBadStreamBacksOff: a master that sends the same bad bytes after every +CONTINUE
// gets reconnections further and further apart (the backoff is not reset by a connection that
// spooled nothing), not hundreds of partial resyncs a second.
func TestFakeMasterBadStreamBacksOff(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	l, fm := newFakeLink(t, LinkOptions{Logger: zap.New(core)})
	l.opts.BackoffMin, l.opts.BackoffMax = 5*time.Millisecond, 40*time.Millisecond
	runLink(t, l)
	fc := fm.accept()
	fc.handshake("PSYNC", "?", "-1")
	fc.write("+FULLRESYNC " + testReplid + " 0\r\n$0\r\n" + cmd("SET", "a", "1") + "*1\r\n$x\r\n")
	for i := 0; i < 5; i++ {
		nextDisconnected(t, l)
		fc = fm.accept()
		fc.handshake("PSYNC", testReplid, "28")
		fc.write("+CONTINUE\r\n*1\r\n$x\r\n")
	}
	nextDisconnected(t, l)
	var backoffs []time.Duration
	for _, e := range logs.FilterMessage("replica link down; retrying").All() {
		backoffs = append(backoffs, e.ContextMap()["backoff"].(time.Duration))
	}
	// The first session spooled a command (and got a snapshot): back off from the start; the
	// others spooled nothing.
	want := []time.Duration{5, 10, 20, 40, 40, 40}
	if len(backoffs) < len(want) {
		t.Fatalf("backoffs %v", backoffs)
	}
	for i, w := range want {
		if backoffs[i] != w*time.Millisecond {
			t.Fatalf("backoffs %v, want %v ms", backoffs, want)
		}
	}
	if st := l.Stats(); st.ProtocolErrors != 6 || st.PartialSyncs != 5 {
		t.Fatalf("stats %+v", st)
	}
}

// nextDisconnected returns the next Disconnected event, skipping the others.
func nextDisconnected(t *testing.T, l *Link) Disconnected {
	t.Helper()
	for {
		if d, ok := nextEvent(t, l).(Disconnected); ok {
			return d
		}
	}
}
