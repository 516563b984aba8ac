package aof

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

// sink is what a Copier passes on: the commands it returns (their Raw) and the pieces it writes,
// in order, as a link appends them to its spool. refuseAfter > 0 makes a write that would go past
// that many bytes fail, taking nothing (as a full spool does); partial makes it take part.
type sink struct {
	buf         bytes.Buffer
	writes      int
	refuseAfter int
	partial     bool
}

var errRefused = errors.New("refused")

func (s *sink) Write(p []byte) (int, error) {
	s.writes++
	if s.refuseAfter > 0 && s.buf.Len()+len(p) > s.refuseAfter {
		if s.partial {
			n := s.refuseAfter - s.buf.Len()
			s.buf.Write(p[:n])
			return n, errRefused
		}
		return 0, errRefused
	}
	return s.buf.Write(p)
}

type copied struct {
	n, start, nargs int64
	held            bool
	args            string
}

// copyAll runs c over br until an error, passing everything on to s. It returns the commands
// and the error.
func copyAll(c *Copier, s *sink) ([]copied, error) {
	var out []copied
	var cmd Command
	for {
		err := c.Next(&cmd, s)
		if err != nil {
			return out, err
		}
		cp := copied{n: cmd.N, start: cmd.Start, nargs: cmd.NArgs, held: cmd.Raw != nil}
		if cmd.Raw != nil {
			s.buf.Write(cmd.Raw)
			cp.args = fmt.Sprintf("%q", cmd.Args)
		}
		out = append(out, cp)
	}
}

// referenceCommands reads in with a plain Reader: the sizes of its commands.
func referenceCommands(t testing.TB, in []byte) []copied {
	t.Helper()
	r := NewReader(bytes.NewReader(in))
	r.SetLimits(StreamMaxArgs, StreamMaxBulk)
	var out []copied
	var c Command
	for {
		err := r.Next(&c)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reference: %v", err)
		}
		out = append(out, copied{n: c.N, start: c.Start, nargs: c.NArgs, args: fmt.Sprintf("%q", c.Args)})
	}
}

// sameCommands compares what a Copier returned with the reference; held commands must have the
// reference's arguments, and be held exactly when they fit in hold.
func sameCommands(t testing.TB, got, want []copied, hold int64, base int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d commands, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		held := w.n <= hold || hold > 0 && w.nargs == 0 // `*0` has no argument to be streamed
		if g.n != w.n || g.start != w.start+base || g.nargs != w.nargs || g.held != held || g.held && g.args != w.args {
			t.Fatalf("command %d: %+v, want %+v (hold %d)", i, g, w, hold)
		}
	}
}

func newTestCopier(r io.Reader, hold, at int64) *Copier {
	c := NewCopier(hold)
	c.Continue(bufio.NewReaderSize(r, 4096), at)
	return c
}

// TestCopierSample: whatever the hold limit and the chunking of the input, a Copier passes on
// exactly the input, returns the commands a Reader finds, holds those that fit, and writes the
// others in pieces no larger than its read buffer.
func TestCopierSample(t *testing.T) {
	in := bigSample()
	want := referenceCommands(t, in)
	for _, hold := range []int64{0, 1, 30, 1000, 64 << 10, 1 << 20} {
		for name, chunk := range map[string]func() io.Reader{
			"whole":    func() io.Reader { return bytes.NewReader(in) },
			"one_byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(in)) },
			"random": func() io.Reader {
				return &randomChunks{r: bytes.NewReader(in), rng: rand.New(rand.NewPCG(uint64(hold), 9)), max: 3000}
			},
		} {
			t.Run(fmt.Sprintf("hold=%d/%s", hold, name), func(t *testing.T) {
				var s sink
				got, err := copyAll(newTestCopier(chunk(), hold, 500), &s)
				if err != io.EOF {
					t.Fatalf("err = %v", err)
				}
				if !bytes.Equal(s.buf.Bytes(), in) {
					t.Fatal("passed on something else than the input")
				}
				sameCommands(t, got, want, hold, 500)
			})
		}
	}
}

// TestCopierResume: the input ends at any byte (a connection drops); what the Copier passed on is
// then a prefix of the stream, and Continue on the rest of it (a partial resync at that offset)
// passes on the remainder and the same commands, whether it stopped between commands, inside a
// held command (which comes again whole), inside a big one, a header line or a CRLF. Scan over
// any prefix finds the same place.
func TestCopierResume(t *testing.T) {
	var in []byte
	in = AppendCommandString(in, "SELECT", "0")
	in = AppendCommandString(in, "SET", "k", strings.Repeat("v", 200))
	in = append(in, "*0\r\n"...)
	in = AppendCommandString(in, "DEL", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j")
	in = AppendCommandString(in, "SET", "big", strings.Repeat("\r\n", 100))
	want := referenceCommands(t, in)
	for _, hold := range []int64{0, 40, 1 << 10} {
		for cut := 0; cut <= len(in); cut++ {
			var s sink
			c := newTestCopier(bytes.NewReader(in[:cut]), hold, 0)
			first, err := copyAll(c, &s)
			if cut < len(in) && !errors.Is(err, io.ErrUnexpectedEOF) && err != io.EOF {
				t.Fatalf("hold %d, cut %d: err = %v", hold, cut, err)
			}
			passed := s.buf.Len()
			if !bytes.HasPrefix(in, s.buf.Bytes()) || passed > cut {
				t.Fatalf("hold %d, cut %d: passed on %d bytes that are not the input's", hold, cut, passed)
			}
			c.Continue(bufio.NewReaderSize(bytes.NewReader(in[passed:]), 4096), int64(passed))
			rest, err := copyAll(c, &s)
			if err != io.EOF || !bytes.Equal(s.buf.Bytes(), in) {
				t.Fatalf("hold %d, cut %d (resumed at %d): err = %v, same bytes %v", hold, cut, passed, err, bytes.Equal(s.buf.Bytes(), in))
			}
			// The command that was cut comes out on the new connection, with its whole size;
			// only an unheld one is resumed in the middle.
			all := append(first, rest...)
			for i := range all {
				if !all[i].held {
					all[i].args = ""
				}
			}
			sameCommands(t, all, want, hold, 0)

			// Scan over the prefix that was passed on finds the same place.
			sc := NewCopier(hold)
			if err := sc.Scan(bytes.NewReader(in[:cut]), 0); err != nil {
				t.Fatalf("hold %d: Scan of %d bytes: %v", hold, cut, err)
			}
			var s2 sink
			s2.buf.Write(in[:cut])
			sc.Continue(bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(in[cut:])), minGatherBuf), int64(cut))
			if _, err := copyAll(sc, &s2); err != io.EOF || !bytes.Equal(s2.buf.Bytes(), in) {
				t.Fatalf("hold %d: after a Scan of %d bytes: err = %v, same bytes %v", hold, cut, err, bytes.Equal(s2.buf.Bytes(), in))
			}
		}
	}
}

// TestCopierWriterRefuses: a writer that refuses a piece (a full spool) leaves the Copier where
// the bytes it took end, ready to go on from there; one that takes part of a piece makes it lost.
func TestCopierWriterRefuses(t *testing.T) {
	in := AppendCommandString(nil, "PING")
	in = AppendCommandString(in, "SET", "k", strings.Repeat("v", 5000))
	in = AppendCommandString(in, "PING")
	for _, refuse := range []int{20, 100, 3000, 5000} {
		s := sink{refuseAfter: refuse}
		c := newTestCopier(bytes.NewReader(in), 100, 0)
		_, err := copyAll(c, &s)
		if !errors.Is(err, errRefused) || c.Lost() {
			t.Fatalf("refuse after %d: err %v, lost %v", refuse, err, c.Lost())
		}
		passed := s.buf.Len()
		s.refuseAfter = 0
		c.Continue(bufio.NewReader(bytes.NewReader(in[passed:])), int64(passed))
		if _, err := copyAll(c, &s); err != io.EOF || !bytes.Equal(s.buf.Bytes(), in) {
			t.Fatalf("refuse after %d: resumed at %d: %v", refuse, passed, err)
		}
	}
	s := sink{refuseAfter: 3000, partial: true}
	c := newTestCopier(bytes.NewReader(in), 100, 0)
	if _, err := copyAll(c, &s); !errors.Is(err, ErrCopierLost) || !c.Lost() {
		t.Fatalf("partial write: err %v, lost %v", err, c.Lost())
	}
	c.Continue(bufio.NewReader(bytes.NewReader(in[s.buf.Len():])), int64(s.buf.Len()))
	if err := c.Next(&Command{}, &s); !errors.Is(err, ErrCopierLost) {
		t.Fatalf("lost copier after Continue: %v", err)
	}
	// Where the cut command began: the end of what was passed on, less Pending.
	begin := int64(s.buf.Len()) - c.Pending()
	if begin != int64(len(AppendCommandString(nil, "PING"))) {
		t.Fatalf("pending %d of %d passed on", c.Pending(), s.buf.Len())
	}
	s.refuseAfter = 0
	if err := c.Scan(bytes.NewReader(in[begin:s.buf.Len()]), begin); err != nil || c.Lost() {
		t.Fatalf("Scan: %v, lost %v", err, c.Lost())
	}
	c.Continue(bufio.NewReader(bytes.NewReader(in[s.buf.Len():])), int64(s.buf.Len()))
	if _, err := copyAll(c, &s); err != io.EOF || !bytes.Equal(s.buf.Bytes(), in) {
		t.Fatalf("after the Scan: %v", err)
	}
}

// TestCopierErrors: the Copier refuses what a Reader refuses, at the same offset, whether it holds
// the command or streams it; the stream limits are Redis's own.
func TestCopierErrors(t *testing.T) {
	set := "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
	tests := []struct{ name, in string }{
		{"inline", "PING\r\n"},
		{"inline after a command", set + "PING\r\n"},
		{"bad count", "*x\r\n"},
		{"empty count", "*\r\n"},
		{"leading zero", "*01\r\n"},
		{"count overflow", "*9223372036854775808\r\n"},
		{"count over INT_MAX", "*2147483648\r\n"},
		{"no CR", "*1\n$4\r\nPING\r\n"},
		{"expected dollar", "*1\r\n:1\r\n"},
		{"negative bulk", "*1\r\n$-1\r\n"},
		{"bulk overflow", "*1\r\n$99999999999999999999\r\n"},
		{"bulk over the stream limit", "*1\r\n$1099511627777\r\n"},
		{"no CRLF after bulk", "*1\r\n$4\r\nPINGxx"},
		{"CR only after bulk", "*1\r\n$4\r\nPING\rx"},
		{"long line", "*1" + strings.Repeat("1", 40) + "\r\n"},
		{"huge line", "*" + strings.Repeat("1", 100_000)},
		{"long bulk line", "*1\r\n$" + strings.Repeat("1", 40) + "\r\n"},
	}
	for _, tt := range tests {
		r := NewReader(strings.NewReader(tt.in))
		r.SetLimits(StreamMaxArgs, StreamMaxBulk)
		r.SetBase(10)
		_, rerr := readAll(r)
		var re *Error
		if !errors.As(rerr, &re) || !errors.Is(rerr, ErrProtocol) {
			t.Fatalf("%s: reader error %v", tt.name, rerr)
		}
		for _, hold := range []int64{0, 1 << 10} {
			for _, oneByte := range []bool{false, true} {
				var src io.Reader = strings.NewReader(tt.in)
				if oneByte {
					src = iotest.OneByteReader(src)
				}
				var s sink
				_, err := copyAll(newTestCopier(src, hold, 10), &s)
				var ce *Error
				if !errors.As(err, &ce) || !errors.Is(err, ErrProtocol) || ce.What != re.What || ce.Offset != re.Offset {
					t.Errorf("%s (hold %d, one byte %v): copier error %v, reader error %v", tt.name, hold, oneByte, err, rerr)
				}
				if !strings.HasPrefix(tt.in, s.buf.String()) {
					t.Errorf("%s: passed on %q", tt.name, s.buf.String())
				}
			}
		}
	}
	// Counts up to Redis's own limit pass; nothing is sized by them. Held, the cut command is
	// not passed on; streamed, it is.
	in := "*2147483647\r\n$4\r\nSADD\r\n"
	for hold, want := range map[int64]string{64 << 10: "", 0: in} {
		var s sink
		_, err := copyAll(newTestCopier(strings.NewReader(in), hold, 0), &s)
		if !errors.Is(err, io.ErrUnexpectedEOF) || s.buf.String() != want {
			t.Fatalf("INT_MAX arguments, hold %d: %v, passed on %q", hold, err, s.buf.String())
		}
	}
}

// TestCopierTruncatedError: an input ending inside a command is a truncated command at its start.
func TestCopierTruncatedError(t *testing.T) {
	in := AppendCommandString(nil, "PING")
	in = AppendCommandString(in, "SET", "k", strings.Repeat("v", 5000))
	for _, hold := range []int64{0, 100, 1 << 20} {
		var s sink
		_, err := copyAll(newTestCopier(bytes.NewReader(in[:len(in)-1]), hold, 1000), &s)
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, io.ErrUnexpectedEOF) || e.Offset != 1014 || e.What != "truncated command" {
			t.Fatalf("hold %d: %v", hold, err)
		}
	}
}
