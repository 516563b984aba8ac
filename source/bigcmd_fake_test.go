package source

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/aof"
)

// bigStream is a replication stream with big commands among small ones: a value of 300 KB (over
// the drain's hold limit, under the replay's), a command of 100,000 arguments, a GETACK.
func bigStream() string {
	var b strings.Builder
	b.WriteString(cmd("SELECT", "0"))
	b.WriteString(cmd("SET", "small", "v"))
	b.WriteString(cmd("SET", "big", strings.Repeat("\r\nx", 100_000)))
	args := []string{"SADD", "s"}
	for i := 0; i < 100_000; i++ {
		args = append(args, strconv.Itoa(i))
	}
	b.WriteString(cmd(args...))
	b.WriteString(cmd("PING"))
	b.WriteString(cmd("SET", "after", "1"))
	return b.String()
}

// writeSplit writes s to the fake master's connection in writes of 1..maxChunk bytes (each
// arrives as its own read on the link's side).
func writeSplit(t *testing.T, fc *fakeConn, s string, maxChunk int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 11))
	for len(s) > 0 {
		n := min(len(s), 1+rng.IntN(maxChunk))
		fc.write(s[:n])
		s = s[n:]
	}
}

// spooledStream reads the spool after from up to to through a stream reader in big-command mode,
// and returns each command re-encoded from its arguments (read from the spool in pieces), with
// the reader's offset at the end.
func spooledStream(t *testing.T, sp *aof.Spool, from, to int64) (string, []bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sr, err := sp.NewReader(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	defer sr.Close()
	r := aof.NewStreamReader(io.LimitReader(sr, to-from), from)
	r.SetHold(100 << 10)
	var out strings.Builder
	var bigs []bool
	var c aof.Command
	for {
		err := r.Next(&c)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading the spool: %v", err)
		}
		var args [][]byte
		a := c.Arguments(sr)
		for {
			if _, err := a.Next(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			b, err := a.Append(nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			args = append(args, b)
		}
		out.Write(aof.AppendCommand(nil, args...))
		bigs = append(bigs, c.Big())
	}
	if r.Offset() != to-from {
		t.Fatalf("read %d bytes of %d", r.Offset(), to-from)
	}
	return out.String(), bigs
}

// TestFakeMasterStreamSplits: a stream with big commands arrives in reads of 1 byte, of random
// sizes, or whole; the spool holds exactly its bytes, the ACK covers them all, and the replay
// reader gives its commands back (the big ones without holding them).
func TestFakeMasterStreamSplits(t *testing.T) {
	stream := bigStream()
	tests := []struct {
		name     string
		maxChunk int
	}{
		{"whole", len(stream)},
		{"random", 70_000},
		{"small", 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, fm := newFakeLink(t, LinkOptions{AckInterval: time.Hour})
			runLink(t, l)
			fc := fm.accept()
			fc.handshake("PSYNC", "?", "-1")
			fc.write("+FULLRESYNC " + testReplid + " 100\r\n$0\r\n")
			fc.waitAck(100)
			getack := cmd("REPLCONF", "GETACK", "*")
			writeSplit(t, fc, stream+getack, tt.maxChunk, 1)
			end := int64(100 + len(stream) + len(getack))
			fc.waitAck(end)
			if got := spooled(t, l.Spool(), 100, int(end-100)); string(got) != stream+getack {
				t.Fatal("the spool differs from the stream")
			}
			got, bigs := spooledStream(t, l.Spool(), 100, end)
			if got != stream+getack || fmt.Sprint(bigs) != "[false false true true false false false]" {
				t.Fatalf("replayed commands differ from the stream (big: %v)", bigs)
			}
		})
	}
	// One byte per read, over a smaller stream with a command bigger than the drain holds.
	t.Run("one_byte", func(t *testing.T) {
		small := cmd("SET", "k", strings.Repeat("v", 70_000)) + cmd("DEL", "a", "b") + cmd("REPLCONF", "GETACK", "*")
		l, fm := newFakeLink(t, LinkOptions{AckInterval: time.Hour})
		runLink(t, l)
		fc := fm.accept()
		fc.handshake("PSYNC", "?", "-1")
		fc.write("+FULLRESYNC " + testReplid + " 0\r\n$0\r\n")
		fc.waitAck(0)
		writeSplit(t, fc, small, 1, 2)
		fc.waitAck(int64(len(small)))
		if got := spooled(t, l.Spool(), 0, len(small)); string(got) != small {
			t.Fatal("the spool differs from the stream")
		}
	})
}

// TestFakeMasterBigCommandResume: the connection drops in the middle of a big command, at many
// places (inside a value, a header, a CRLF, between arguments); the spool keeps every byte that
// came, PSYNC asks for the next one, and after +CONTINUE the link goes on inside the command:
// the spool then holds the stream exactly. A small command cut short comes again whole.
func TestFakeMasterBigCommandResume(t *testing.T) {
	big := cmd("SET", "big", strings.Repeat("\r\nx", 40_000))
	args := []string{"DEL"}
	for i := 0; i < 20_000; i++ {
		args = append(args, "k"+strconv.Itoa(i))
	}
	many := cmd(args...)
	stream := cmd("SELECT", "0") + big + many + cmd("SET", "small", "1")
	cuts := []int{len(cmd("SELECT", "0")) + 5, len(cmd("SELECT", "0")) + 20, 50_000, len(stream) - len(many) - 30, len(stream) - len(many) - 1,
		len(stream) - len(many) + 7, len(stream) - 1000, len(stream) - 5}
	l, fm := newFakeLink(t, LinkOptions{})
	runLink(t, l)
	fc := fm.accept()
	fc.handshake("PSYNC", "?", "-1")
	fc.write("+FULLRESYNC " + testReplid + " 0\r\n$0\r\n")
	waitEvent[FullSync](t, l, 10*time.Second)
	sent := 0
	for _, cut := range cuts {
		fc.write(stream[sent:cut])
		fc.c.Close()
		waitEvent[Disconnected](t, l, 10*time.Second)
		end := l.Stats().ReceivedOffset
		// What the link kept: every byte up to the cut, but a small command cut short.
		if end > int64(cut) || end < int64(cut-40) || string(spooled(t, l.Spool(), 0, int(end))) != stream[:end] {
			t.Fatalf("cut at %d: the spool holds %d bytes, not the stream's first ones", cut, end)
		}
		fc = fm.accept()
		fc.handshake("PSYNC", testReplid, strconv.FormatInt(end+1, 10))
		fc.write("+CONTINUE\r\n")
		if c := waitEvent[Continue](t, l, 10*time.Second); c.Offset != end {
			t.Fatalf("continue %+v, want offset %d", c, end)
		}
		sent = int(end)
	}
	fc.write(stream[sent:] + cmd("REPLCONF", "GETACK", "*"))
	total := int64(len(stream) + len(cmd("REPLCONF", "GETACK", "*")))
	fc.waitAck(total)
	got, bigs := spooledStream(t, l.Spool(), 0, total)
	if got != stream+cmd("REPLCONF", "GETACK", "*") || fmt.Sprint(bigs) != "[false true true false false]" {
		t.Fatalf("the spool differs from the stream after %d cuts (big: %v)", len(cuts), bigs)
	}
	if st := l.Stats(); st.PartialSyncs != int64(len(cuts)) || st.FullSyncs != 1 || st.ProtocolErrors != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestLinkResumeInsideCommand: rmtd stops while the spool ends inside a big command (and inside
// a header line, as a crash may leave it); a new link on the same directory finds where the
// stream stands by scanning the spool from the resume offset, and goes on there after +CONTINUE.
func TestLinkResumeInsideCommand(t *testing.T) {
	big := cmd("SET", "big", strings.Repeat("v", 200_000))
	stream := cmd("SET", "a", "1") + big + cmd("SET", "b", "2")
	for _, cut := range []int{len(cmd("SET", "a", "1")) + 20, len(cmd("SET", "a", "1")) + 25, 100_000, len(cmd("SET", "a", "1")) + len(big) - 1} {
		t.Run(strconv.Itoa(cut), func(t *testing.T) {
			dir := t.TempDir()
			sp, err := aof.OpenSpool(dir+"/oplog", aof.SpoolOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := sp.Reset(500); err != nil {
				t.Fatal(err)
			}
			if err := sp.Append([]byte(stream[:cut])); err != nil {
				t.Fatal(err)
			}
			if err := sp.Close(); err != nil {
				t.Fatal(err)
			}
			l, fm := newFakeLink(t, LinkOptions{Dir: dir, Resume: &ResumePoint{Replid: testReplid, Offset: 500}})
			runLink(t, l)
			fc := fm.accept()
			fc.handshake("PSYNC", testReplid, strconv.Itoa(500+cut+1))
			fc.write("+CONTINUE\r\n" + stream[cut:] + cmd("REPLCONF", "GETACK", "*"))
			total := int64(len(stream) + len(cmd("REPLCONF", "GETACK", "*")))
			fc.waitAck(500 + total)
			if got, _ := spooledStream(t, l.Spool(), 500, 500+total); got != stream+cmd("REPLCONF", "GETACK", "*") {
				t.Fatal("the spool differs from the stream")
			}
		})
	}
	// A spool that is not a stream of commands after the resume offset is dropped, and the link
	// asks the master for what follows the resume offset.
	dir := t.TempDir()
	sp, err := aof.OpenSpool(dir+"/oplog", aof.SpoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Reset(500); err != nil {
		t.Fatal(err)
	}
	if err := sp.Append([]byte(cmd("SET", "a", "1") + "garbage\r\n")); err != nil {
		t.Fatal(err)
	}
	sp.Close()
	l, fm := newFakeLink(t, LinkOptions{Dir: dir, Resume: &ResumePoint{Replid: testReplid, Offset: 500}})
	runLink(t, l)
	fc := fm.accept()
	fc.handshake("PSYNC", testReplid, "501")
	fc.write("+CONTINUE\r\n" + cmd("SET", "c", "3"))
	fc.waitAck(500 + int64(len(cmd("SET", "c", "3"))))
	if got := spooled(t, l.Spool(), 500, len(cmd("SET", "c", "3"))); !bytes.Equal(got, []byte(cmd("SET", "c", "3"))) {
		t.Fatalf("spool %q", got)
	}
}
