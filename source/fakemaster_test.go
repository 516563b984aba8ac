package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/redistest"
)

// fakeMaster plays the master's side of connections made by a Link through net.Pipe, where each
// Write arrives as its own read, so tests control exactly how bytes are split.
type fakeMaster struct {
	t     *testing.T
	conns chan *fakeConn
}

type fakeConn struct {
	t    testing.TB
	c    net.Conn
	cmds chan []string // commands sent by the link, in order
}

func newFakeLink(t *testing.T, opts LinkOptions) (*Link, *fakeMaster) {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.AckInterval == 0 {
		opts.AckInterval = 20 * time.Millisecond
	}
	opts.BackoffMin, opts.BackoffMax = 5*time.Millisecond, 20*time.Millisecond
	fm := &fakeMaster{t: t, conns: make(chan *fakeConn, 8)}
	l := NewLink(opts)
	l.dial = func(ctx context.Context) (net.Conn, error) {
		a, b := net.Pipe()
		fc := &fakeConn{t: t, c: b, cmds: make(chan []string, 1024)}
		go fc.readLoop()
		fm.conns <- fc
		return a, nil
	}
	return l, fm
}

func (fc *fakeConn) readLoop() {
	defer close(fc.cmds)
	r := aof.NewReader(fc.c)
	var c aof.Command
	for r.Next(&c) == nil {
		args := make([]string, len(c.Args))
		for i, a := range c.Args {
			args[i] = string(a)
		}
		fc.cmds <- args
	}
}

func (fm *fakeMaster) accept() *fakeConn {
	fm.t.Helper()
	select {
	case fc := <-fm.conns:
		return fc
	case <-time.After(10 * time.Second):
		fm.t.Fatal("the link did not connect")
		return nil
	}
}

// noConnectionFor fails if the link connects within d.
func (fm *fakeMaster) noConnectionFor(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-fm.conns:
		t.Fatalf("the link connected within %v", d)
	case <-time.After(d):
	}
}

// next returns the next command from the link that is not a periodic `REPLCONF ACK`.
func (fc *fakeConn) next(skipAcks bool) []string {
	fc.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case args, ok := <-fc.cmds:
			if !ok {
				fc.t.Fatal("the link closed the connection")
			}
			if skipAcks && len(args) == 3 && args[0] == "REPLCONF" && args[1] == "ACK" {
				continue
			}
			return args
		case <-deadline:
			fc.t.Fatal("no command from the link")
			return nil
		}
	}
}

func (fc *fakeConn) expect(reply string, want ...string) {
	fc.t.Helper()
	got := fc.next(true)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		fc.t.Fatalf("link sent %q, want %q", got, want)
	}
	fc.write(reply)
}

func (fc *fakeConn) write(s string) {
	fc.t.Helper()
	if _, err := fc.c.Write([]byte(s)); err != nil {
		fc.t.Fatalf("fake master write: %v", err)
	}
}

// waitAck waits for `REPLCONF ACK <off>` and fails on an ACK beyond it.
func (fc *fakeConn) waitAck(off int64) {
	fc.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case args, ok := <-fc.cmds:
			if !ok {
				fc.t.Fatal("the link closed the connection")
			}
			if len(args) != 3 || args[0] != "REPLCONF" || args[1] != "ACK" {
				fc.t.Fatalf("link sent %q while waiting for ACK %d", args, off)
			}
			n, _ := strconv.ParseInt(args[2], 10, 64)
			if n == off {
				return
			}
			if n > off {
				fc.t.Fatalf("ACK %d beyond %d", n, off)
			}
		case <-deadline:
			fc.t.Fatalf("no ACK %d", off)
		}
	}
}

func (fc *fakeConn) handshake(psyncArgs ...string) {
	fc.t.Helper()
	fc.expect("+PONG\r\n", "PING")
	fc.expect("+OK\r\n", "REPLCONF", "listening-port", "0")
	fc.expect("+OK\r\n", "REPLCONF", "capa", "eof", "capa", "psync2")
	got := fc.next(true)
	if strings.Join(got, " ") != strings.Join(psyncArgs, " ") {
		fc.t.Fatalf("link sent %q, want %q", got, psyncArgs)
	}
}

func runLink(t *testing.T, l *Link) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
		l.Close()
	})
}

// nextEvent returns the next event other than RDBStarted, checking that a FullSync comes after
// the RDBStarted of the same snapshot.
func nextEvent(t *testing.T, l *Link) Event {
	t.Helper()
	var started *RDBStarted
	for {
		select {
		case ev := <-l.Events():
			if rs, ok := ev.(RDBStarted); ok {
				started = &rs
				continue
			}
			if fs, ok := ev.(FullSync); ok && (started == nil || started.Replid != fs.Replid || started.Offset != fs.Offset) {
				t.Fatalf("FullSync %+v without its RDBStarted (%+v)", fs, started)
			}
			return ev
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
			return nil
		}
	}
}

// spooled reads n bytes of the spool after offset from.
func spooled(t *testing.T, sp *aof.Spool, from int64, n int) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := sp.NewReader(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatalf("reading %d spooled bytes after %d: %v", n, from, err)
	}
	return b
}

func cmd(args ...string) string { return string(aof.AppendCommandString(nil, args...)) }

// TestFakeMasterDiskless runs a whole diskless full sync with the end mark split at every
// position, stream bytes glued after the mark, keep-alives before +FULLRESYNC and the `$` line,
// then GETACK, and checks the RDB file, the FullSync event, the spool and the ACKs.
func TestFakeMasterDiskless(t *testing.T) {
	mark := strings.Repeat("ab", 20)
	payload := randomBytes(42, 100<<10)
	const offset = 1000
	for split := 0; split <= len(mark); split++ {
		t.Run("split"+strconv.Itoa(split), func(t *testing.T) {
			l, fm := newFakeLink(t, LinkOptions{})
			runLink(t, l)
			fc := fm.accept()
			fc.handshake("PSYNC", "?", "-1")
			fc.write("\n\n+FULLRESYNC " + testReplid + " " + strconv.Itoa(offset) + "\r\n\n\n")
			fc.write("$EOF:" + mark + "\r\n")
			fc.write(string(payload) + mark[:split])
			redistest.WaitFor(t, 10*time.Second, func() error {
				if split == len(mark) {
					return nil // the whole mark is in: the transfer may be over already
				}
				// Up to len(mark)-1 bytes are held back: they could be the mark's start.
				if st := l.Stats(); st.State != StateRDBTransfer || st.RDBTotal != -1 || st.RDBBytes < int64(len(payload)-len(mark)+1) {
					return fmt.Errorf("stats during the transfer %+v", st)
				}
				return nil
			})
			sel := cmd("SELECT", "3")
			fc.write(mark[split:] + sel)
			ev := nextEvent(t, l)
			fs, ok := ev.(FullSync)
			if !ok || fs.Replid != testReplid || fs.Offset != offset || fs.RDBSize != int64(len(payload)) ||
				fs.RDBPath != filepath.Join(l.opts.Dir, testReplid+"-1000.rdb") {
				t.Fatalf("event %#v", ev)
			}
			if got, err := os.ReadFile(fs.RDBPath); err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("RDB file: %v, equal %v", err, bytes.Equal(got, payload))
			}
			// The first ACK comes before any further byte from the master.
			select {
			case args := <-fc.cmds:
				if len(args) != 3 || args[0] != "REPLCONF" || args[1] != "ACK" {
					t.Fatalf("first command after the RDB: %q", args)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no ACK after the diskless RDB")
			}
			set, getack := cmd("SET", "k", "v"), cmd("REPLCONF", "GETACK", "*")
			fc.write(set + getack)
			end := int64(offset + len(sel) + len(set) + len(getack))
			fc.waitAck(end)
			if got := spooled(t, l.Spool(), offset, int(end-offset)); string(got) != sel+set+getack {
				t.Fatalf("spool holds %q", got)
			}
			st := l.Stats()
			if st.ReceivedOffset != end || st.FullSyncs != 1 || st.RDBBytes != int64(len(payload)) || st.RDBTotal != int64(len(payload)) ||
				st.State != StateStreaming || !st.MasterLinkUp || st.Replid != testReplid {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestFakeMasterDiskAndContinue: disk form with keep-alives before the `$` line and the stream
// glued to the last RDB bytes; then the connection drops, the link asks PSYNC <replid>
// <end+1>, gets +CONTINUE with a new replid and appends to the same spool.
func TestFakeMasterDiskAndContinue(t *testing.T) {
	payload := randomBytes(9, 5000)
	l, fm := newFakeLink(t, LinkOptions{ListeningPort: 8888})
	runLink(t, l)
	fc := fm.accept()
	fc.expect("+PONG\r\n", "PING")
	fc.expect("+OK\r\n", "REPLCONF", "listening-port", "8888")
	fc.expect("-ERR unknown option\r\n", "REPLCONF", "capa", "eof", "capa", "psync2") // ignored, as Redis does
	fc.expect("+FULLRESYNC "+testReplid+" 7\r\n\n\n$"+strconv.Itoa(len(payload))+"\r\n", "PSYNC", "?", "-1")
	c1 := cmd("SELECT", "0") + cmd("SET", "a", "1")
	fc.write(string(payload[:1000]))
	redistest.WaitFor(t, 10*time.Second, func() error {
		if st := l.Stats(); st.State != StateRDBTransfer || st.RDBTotal != 5000 || st.RDBBytes != 1000 {
			return fmt.Errorf("stats during the transfer %+v", st)
		}
		return nil
	})
	fc.write(string(payload[1000:]) + c1)
	if fs, ok := nextEvent(t, l).(FullSync); !ok || fs.Offset != 7 || fs.RDBSize != 5000 {
		t.Fatalf("event %#v", fs)
	}
	end := int64(7 + len(c1))
	fc.waitAck(end)
	fc.c.Close()
	if ev, ok := nextEvent(t, l).(Disconnected); !ok || ev.Err == nil {
		t.Fatalf("event %#v", ev)
	}

	fc = fm.accept()
	fc.expect("+PONG\r\n", "PING")
	fc.expect("+OK\r\n", "REPLCONF", "listening-port", "8888")
	fc.expect("+OK\r\n", "REPLCONF", "capa", "eof", "capa", "psync2")
	newID := strings.Repeat("c", 40)
	c2 := cmd("INCR", "a")
	fc.expect("+CONTINUE "+newID+"\r\n"+c2, "PSYNC", testReplid, strconv.FormatInt(end+1, 10))
	if ev, ok := nextEvent(t, l).(Continue); !ok || ev.Replid != newID || ev.Offset != end {
		t.Fatalf("event %#v", ev)
	}
	fc.waitAck(end + int64(len(c2)))
	if got := spooled(t, l.Spool(), 7, len(c1)+len(c2)); string(got) != c1+c2 {
		t.Fatalf("spool holds %q", got)
	}
	st := l.Stats()
	if st.PartialSyncs != 1 || st.FullSyncs != 1 || st.Reconnects != 1 || st.Replid != newID {
		t.Fatalf("stats %+v", st)
	}
}

// TestFakeMasterErrors: an error reply or a broken RDB makes the link retry, keep its old
// replid and spool, and report the error in Stats.
func TestFakeMasterErrors(t *testing.T) {
	l, fm := newFakeLink(t, LinkOptions{Password: "s3cr3t-pw", Resume: &ResumePoint{Replid: testReplid, Offset: 50}})
	runLink(t, l)
	fc := fm.accept()
	fc.expect("-WRONGPASS invalid username-password pair or user is disabled.\r\n", "AUTH", "s3cr3t-pw")
	ev, ok := nextEvent(t, l).(Disconnected)
	var re *ReplyError
	if !ok || !errors.As(ev.Err, &re) || re.Code != "WRONGPASS" || strings.Contains(ev.Err.Error(), "s3cr3t") {
		t.Fatalf("event %#v", ev)
	}
	if st := l.Stats(); !strings.Contains(st.LastError, "WRONGPASS") || st.MasterLinkUp {
		t.Fatalf("stats %+v", st)
	}

	// Resume: the empty spool is restarted at the resume offset, and PSYNC asks for the next byte.
	fc = fm.accept()
	fc.expect("+OK\r\n", "AUTH", "s3cr3t-pw")
	fc.handshake("PSYNC", testReplid, "51")
	fc.write("+FULLRESYNC " + strings.Repeat("d", 40) + " 900\r\n$100\r\n" + string(make([]byte, 50)))
	fc.c.Close()
	if ev, ok := nextEvent(t, l).(Disconnected); !ok || !errors.Is(ev.Err, io.ErrUnexpectedEOF) {
		t.Fatalf("event %#v (%v)", ev, ev.Err)
	}
	// The master would not continue the old stream: its spool was given up for the new
	// snapshot's room, and with that snapshot failed there is nothing to resume: a full sync.
	fc = fm.accept()
	fc.expect("+OK\r\n", "AUTH", "s3cr3t-pw")
	fc.handshake("PSYNC", "?", "-1")
	newID := strings.Repeat("e", 40)
	fc.write("+FULLRESYNC " + newID + " 900\r\n$100\r\n" + string(make([]byte, 100)))
	for {
		ev := nextEvent(t, l)
		if fs, ok := ev.(FullSync); ok {
			if fs.Replid != newID || fs.Offset != 900 {
				t.Fatalf("event %#v", fs)
			}
			break
		}
		if _, ok := ev.(RDBStarted); !ok {
			t.Fatalf("event %#v", ev)
		}
	}
	if st := l.Stats(); st.Reconnects != 2 || st.FullSyncs != 1 || st.ReceivedOffset != 900 || st.Replid != newID {
		t.Fatalf("stats %+v", st)
	}
	var tmp []string
	filepath.WalkDir(l.opts.Dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".tmp") {
			tmp = append(tmp, p)
		}
		return nil
	})
	if len(tmp) != 0 {
		t.Fatalf("left %v", tmp)
	}
}

// TestFakeMasterSpoolFull: when the spool reaches MaxSpoolBytes the link drops the connection
// without losing a byte: the command that did not fit is asked for again by PSYNC.
func TestFakeMasterSpoolFull(t *testing.T) {
	l, fm := newFakeLink(t, LinkOptions{MaxSpoolBytes: 100})
	runLink(t, l)
	fc := fm.accept()
	fc.handshake("PSYNC", "?", "-1")
	c1, c2 := cmd("SET", "a", strings.Repeat("x", 40)), cmd("SET", "b", strings.Repeat("y", 40))
	fc.write("+FULLRESYNC " + testReplid + " 0\r\n$0\r\n" + c1 + c2)
	waitEvent[FullSync](t, l, 10*time.Second)
	ev := waitEvent[Disconnected](t, l, 10*time.Second)
	if !errors.Is(ev.Err, aof.ErrSpoolFull) || !strings.Contains(l.Stats().LastError, "spool full") {
		t.Fatalf("event %v, stats %+v", ev.Err, l.Stats())
	}
	// The link waits for room: only once the daemon has applied (trimmed) what the spool holds
	// does it reconnect.
	fm.noConnectionFor(t, 700*time.Millisecond)
	if err := l.Spool().Trim(int64(len(c1))); err != nil {
		t.Fatal(err)
	}
	fc = fm.accept()
	fc.handshake("PSYNC", testReplid, strconv.Itoa(len(c1)+1))
	if got := l.Spool().Start(); got != int64(len(c1)) {
		t.Fatalf("the trimmed spool starts at %d, want %d", got, len(c1))
	}
}

// TestFakeMasterGetAck: with periodic ACKs out of the way, REPLCONF GETACK alone gets an ACK
// whose offset includes the GETACK itself, and only once the bytes are in the spool.
func TestFakeMasterGetAck(t *testing.T) {
	l, fm := newFakeLink(t, LinkOptions{AckInterval: time.Hour})
	runLink(t, l)
	fc := fm.accept()
	fc.handshake("PSYNC", "?", "-1")
	fc.write("+FULLRESYNC " + testReplid + " 10\r\n$0\r\n")
	fc.waitAck(10) // the first ACK, at once
	off := int64(10)
	for i := 0; i < 3; i++ {
		stream := cmd("SET", "k", strconv.Itoa(i)) + cmd("REPLCONF", "GETACK", "*")
		fc.write(stream)
		off += int64(len(stream))
		fc.waitAck(off)
		if got := l.Stats().ReceivedOffset; got < off {
			t.Fatalf("ACK %d sent with %d fsynced", off, got)
		}
	}
}

// TestFakeMasterRetryAndTimeout: a -LOADING answer to PSYNC is retried; a master silent for
// longer than Timeout is dropped (read deadline) and asked for a partial resync.
func TestFakeMasterRetryAndTimeout(t *testing.T) {
	l, fm := newFakeLink(t, LinkOptions{Timeout: time.Second})
	runLink(t, l)
	fc := fm.accept()
	fc.handshake("PSYNC", "?", "-1")
	fc.write("-LOADING Redis is loading the dataset in memory\r\n")
	var re *ReplyError
	if ev := waitEvent[Disconnected](t, l, 10*time.Second); !errors.As(ev.Err, &re) || re.Code != "LOADING" {
		t.Fatalf("event %v", ev.Err)
	}
	fc = fm.accept()
	fc.handshake("PSYNC", "?", "-1")
	fc.write("+FULLRESYNC " + testReplid + " 0\r\n$0\r\n")
	waitEvent[FullSync](t, l, 10*time.Second)
	if ev := waitEvent[Disconnected](t, l, 10*time.Second); !errors.Is(ev.Err, os.ErrDeadlineExceeded) {
		t.Fatalf("event %v", ev.Err)
	}
	fc = fm.accept()
	fc.handshake("PSYNC", testReplid, "1")
	if st := l.Stats(); st.Reconnects != 2 || st.FullSyncs != 1 || st.MasterLinkUp {
		t.Fatalf("stats %+v", st)
	}
}
