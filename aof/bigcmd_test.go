package aof

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// bigSample is a stream with small commands around big ones: a value over the hold limit, a
// command of many small arguments, a big key, big arguments in the middle.
func bigSample() []byte {
	in := sample()
	in = AppendCommandString(in, "SET", "k", strings.Repeat("v", 300_000))
	members := []string{"SADD", "set"}
	for i := 0; i < 20_000; i++ {
		members = append(members, "m"+strconv.Itoa(i))
	}
	in = AppendCommandString(in, members...)
	in = AppendCommandString(in, "SET", strings.Repeat("K", 100_000), "v")
	in = AppendCommandString(in, "RESTORE", "k", "0", strings.Repeat("\r\n", 90_000), "REPLACE", "ABSTTL")
	in = AppendCommandString(in, "PING")
	return in
}

// randomChunks returns reads of 1 .. max bytes, sizes drawn from seed.
type randomChunks struct {
	r   io.Reader
	rng *rand.Rand
	max int
}

func (c *randomChunks) Read(p []byte) (int, error) {
	n := 1 + c.rng.IntN(c.max)
	return c.r.Read(p[:min(len(p), n)])
}

// bigCmd is a command read in big-command mode, its arguments read back whole.
type bigCmd struct {
	args  []string
	n     int64
	start int64
	big   bool
	off   int64
}

func (b bigCmd) String() string {
	var args []string
	for _, a := range b.args {
		if len(a) > 40 {
			a = fmt.Sprintf("<%d bytes %x>", len(a), crc(a))
		}
		args = append(args, a)
	}
	return fmt.Sprintf("%q n=%d start=%d big=%v off=%d", args, b.n, b.start, b.big, b.off)
}

func crc(s string) uint32 {
	var h uint32 = 2166136261
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// readArgs reads every argument of c through an ArgReader, in pieces of piece bytes.
func readArgs(c *Command, ra io.ReaderAt, piece int) ([]string, error) {
	a := c.Arguments(ra)
	var out []string
	buf := make([]byte, piece)
	for {
		size, err := a.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		var b strings.Builder
		for {
			n, err := a.Read(buf)
			b.Write(buf[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				return out, err
			}
		}
		if int64(b.Len()) != size {
			return out, fmt.Errorf("argument %d: read %d bytes of %d", a.Index(), b.Len(), size)
		}
		out = append(out, b.String())
	}
}

// readAllBig reads every command of r (in big-command mode or not), checking what every command
// must satisfy against the input in, and returns them with the final error.
func readAllBig(t testing.TB, r *Reader, in []byte, base int64) ([]bigCmd, error) {
	t.Helper()
	ra := bytes.NewReader(in)
	var out []bigCmd
	var c Command
	var off int64
	for {
		err := r.Next(&c)
		if err != nil {
			return out, err
		}
		if c.Start != base+off || c.N <= 0 || off+c.N > int64(len(in)) {
			t.Fatalf("command at %d: Start %d, N %d, input of %d bytes", off, c.Start, c.N, len(in))
		}
		wire := in[off : off+c.N]
		var w bytes.Buffer
		if n, err := WriteCommand(&w, &c, readerAtBase{ra, base}, make([]byte, 1000)); err != nil || n != c.N || !bytes.Equal(w.Bytes(), wire) {
			t.Fatalf("command at %d: WriteCommand %d, %v; same bytes %v", off, n, err, bytes.Equal(w.Bytes(), wire))
		}
		if c.Big() {
			if c.Raw != nil || c.Rest.End() != c.Start+c.N || c.Rest.Off <= c.Start || int64(len(c.Args)) >= c.NArgs {
				t.Fatalf("big command at %d: Raw %v, Rest %+v, Start %d, N %d, %d args held of %d", off, c.Raw != nil, c.Rest, c.Start, c.N, len(c.Args), c.NArgs)
			}
			for _, a := range c.Args {
				if len(a) > HeadArgBytes {
					t.Fatalf("big command at %d holds an argument of %d bytes", off, len(a))
				}
			}
		} else if !bytes.Equal(c.Raw, wire) || int64(len(c.Args)) != c.NArgs {
			t.Fatalf("command at %d: Raw is not the input, or %d args of %d", off, len(c.Args), c.NArgs)
		}
		args, err := readArgs(&c, readerAtBase{ra, base}, 777)
		if err != nil {
			t.Fatalf("command at %d: arguments: %v", off, err)
		}
		if int64(len(args)) != c.NArgs {
			t.Fatalf("command at %d: %d arguments read, NArgs %d", off, len(args), c.NArgs)
		}
		for i, a := range c.Args {
			if args[i] != string(a) {
				t.Fatalf("command at %d: argument %d held as %q, read as %q", off, i, a, args[i])
			}
		}
		off += c.N
		out = append(out, bigCmd{args: args, n: c.N, start: c.Start, big: c.Big(), off: r.Offset()})
		if r.Offset() != off {
			t.Fatalf("Offset %d, want %d", r.Offset(), off)
		}
	}
}

// readerAtBase reads in as if its first byte were at offset base.
type readerAtBase struct {
	r    io.ReaderAt
	base int64
}

func (r readerAtBase) ReadAt(p []byte, off int64) (int, error) { return r.r.ReadAt(p, off-r.base) }

func newBigReader(r io.Reader, hold, base int64) *Reader {
	rd := NewReader(r)
	rd.SetHold(hold)
	rd.SetBase(base)
	return rd
}

// TestBigReaderSample: for several hold limits and ways of chunking the input, the big-command
// mode gives the commands the plain mode gives, at the same offsets, a command being big exactly
// when it is over the limit; their arguments read back through an ArgReader are the same, and
// WriteCommand gives back the input.
func TestBigReaderSample(t *testing.T) {
	in := bigSample()
	want, err := readAllBig(t, NewReader(bytes.NewReader(in)), in, 0)
	if err != io.EOF {
		t.Fatalf("plain: %v", err)
	}
	for _, hold := range []int64{1, 50, 1000, 70_000, 200_000, DefaultHoldBytes} {
		for name, chunk := range map[string]func() io.Reader{
			"whole":    func() io.Reader { return bytes.NewReader(in) },
			"one_byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(in)) },
			"random": func() io.Reader {
				return &randomChunks{r: bytes.NewReader(in), rng: rand.New(rand.NewPCG(uint64(hold), 3)), max: 5000}
			},
		} {
			t.Run(fmt.Sprintf("hold=%d/%s", hold, name), func(t *testing.T) {
				const base = 1_000_000
				got, err := readAllBig(t, newBigReader(chunk(), hold, base), in, base)
				if err != io.EOF {
					t.Fatalf("err = %v", err)
				}
				if len(got) != len(want) {
					t.Fatalf("%d commands, want %d", len(got), len(want))
				}
				bigs := 0
				for i := range got {
					w := want[i]
					w.start += base
					w.big = w.n > hold && len(w.args) > 0
					if got[i].String() != w.String() || fmt.Sprint(got[i].args) != fmt.Sprint(w.args) {
						t.Fatalf("command %d:\n got %v\nwant %v", i, got[i], w)
					}
					if got[i].big {
						bigs++
					}
				}
				if hold == DefaultHoldBytes && bigs != 0 || hold <= 70_000 && bigs < 4 {
					t.Fatalf("%d big commands", bigs)
				}
			})
		}
	}
}

// TestBigReaderHead: a big command holds its name and key, and the leading arguments of up to
// HeadArgBytes within 256 KiB; a big key is not held.
func TestBigReaderHead(t *testing.T) {
	var in []byte
	in = AppendCommandString(in, "SET", "key", strings.Repeat("x", 5<<20))
	in = AppendCommandString(in, "SET", strings.Repeat("K", HeadArgBytes+1), strings.Repeat("x", 5<<20))
	in = AppendCommandString(in, "HSET", "h", "f", strings.Repeat("x", HeadArgBytes), "g", strings.Repeat("y", 5<<20))
	r := NewStreamReader(bytes.NewReader(in), 0)
	want := [][]string{{"SET", "key"}, {"SET"}, {"HSET", "h", "f", strings.Repeat("x", HeadArgBytes), "g"}}
	var c Command
	for i, w := range want {
		if err := r.Next(&c); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range c.Args {
			got = append(got, string(a))
		}
		if !c.Big() || fmt.Sprint(got) != fmt.Sprint(w) {
			t.Fatalf("command %d: big %v, held %d args, want %d", i, c.Big(), len(got), len(w))
		}
	}
}

// TestBigReaderTruncated: a big command cut anywhere is a truncated command at its start, with
// every command before it returned; an error inside a skipped part is found too.
func TestBigReaderTruncated(t *testing.T) {
	head := AppendCommandString(nil, "PING")
	big := AppendCommandString(nil, "SET", "k", strings.Repeat("v", 3000))
	in := append(append([]byte{}, head...), big...)
	for _, cut := range []int{len(head) + 1, len(head) + 20, len(head) + 100, len(in) - 2, len(in) - 1} {
		got, err := readAllBig(t, newBigReader(bytes.NewReader(in[:cut]), 100, 0), in[:cut], 0)
		var e *Error
		if len(got) != 1 || !errors.Is(err, io.ErrUnexpectedEOF) || !errors.As(err, &e) || e.Offset != int64(len(head)) {
			t.Fatalf("cut %d: %d commands, err %v", cut, len(got), err)
		}
	}
	bad := append([]byte{}, in...)
	bad[len(bad)-2] = 'x'
	_, err := readAllBig(t, newBigReader(bytes.NewReader(bad), 100, 7), bad, 7)
	if want := fmt.Sprintf(`aof: bulk not followed by CRLF at offset %d: "x\n"`, 7+len(bad)-2); err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("err %v is not a protocol error", err)
	}
}

// TestArgReaderChecksInput: an ArgReader over input that is not the command's (the spool was
// reset, a wrong ReaderAt) fails with an error, never a panic or a wrong argument.
func TestArgReaderChecksInput(t *testing.T) {
	in := AppendCommandString(nil, "SET", "k", strings.Repeat("v", 3000))
	r := newBigReader(bytes.NewReader(in), 100, 0)
	var c Command
	if err := r.Next(&c); err != nil || !c.Big() {
		t.Fatalf("big %v, err %v", c.Big(), err)
	}
	for name, ra := range map[string]io.ReaderAt{
		"nil":       nil,
		"zeros":     bytes.NewReader(make([]byte, len(in))),
		"short":     bytes.NewReader(in[:len(in)-10]),
		"shifted":   bytes.NewReader(append([]byte("x"), in...)),
		"bad_crlf":  bytes.NewReader(append(append([]byte{}, in[:len(in)-2]...), 'x', 'y')),
		"bigger":    bytes.NewReader(bytes.Replace(in, []byte("$3000"), []byte("$3001"), 1)),
		"more_args": bytes.NewReader(append(append([]byte{}, in...), "$1\r\nx\r\n"...)),
	} {
		if _, err := readArgs(&c, ra, 100); err == nil && name != "more_args" {
			t.Errorf("%s: no error", name)
		}
	}
	// A command made by hand, with Args only, reads as its Args.
	hand := Command{Args: [][]byte{[]byte("MULTI")}}
	if args, err := readArgs(&hand, nil, 3); err != nil || fmt.Sprint(args) != "[MULTI]" {
		t.Fatalf("hand-made command: %q, %v", args, err)
	}
}

// TestArgReaderAppend: Append holds an argument when asked, refuses one over the caller's limit.
func TestArgReaderAppend(t *testing.T) {
	in := AppendCommandString(nil, "SADD", "s", "a", strings.Repeat("b", 5000), "c")
	r := newBigReader(bytes.NewReader(in), 100, 0)
	var c Command
	if err := r.Next(&c); err != nil || !c.Big() {
		t.Fatalf("big %v, err %v", c.Big(), err)
	}
	a := c.Arguments(bytes.NewReader(in))
	var got []string
	var buf []byte
	for {
		size, err := a.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if size > 1000 {
			if _, err := a.Append(buf[:0], 1000); err == nil {
				t.Fatal("Append took an argument over its limit")
			}
			got = append(got, "<big>")
			continue
		}
		if buf, err = a.Append(buf[:0], 1000); err != nil {
			t.Fatal(err)
		}
		got = append(got, string(buf))
	}
	if fmt.Sprint(got) != "[SADD s a <big> c]" {
		t.Fatalf("got %q", got)
	}
}

// hugeReader generates a command too big to build in a test's memory: `SET k <size bytes>`, or
// SADD k with n members, in the RESP encoding, without holding it.
type hugeReader struct {
	head, tail []byte
	size       int64 // value bytes left (SET)
	members    int   // members left (SADD)
	next       int
	pending    []byte
	pendBuf    []byte
	scratch    []byte
}

func hugeSet(size int64) *hugeReader {
	head := []byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + strconv.FormatInt(size, 10) + "\r\n")
	return &hugeReader{head: head, tail: []byte("\r\n"), size: size}
}

func hugeSadd(n int) *hugeReader {
	head := []byte("*" + strconv.Itoa(n+2) + "\r\n$4\r\nSADD\r\n$1\r\nk\r\n")
	return &hugeReader{head: head, members: n}
}

func (h *hugeReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		switch {
		case len(h.head) > 0:
			k := copy(p[n:], h.head)
			h.head = h.head[k:]
			n += k
		case h.size > 0:
			k := int(min(int64(len(p)-n), h.size))
			for i := range p[n : n+k] {
				p[n+i] = 'a' + byte((h.size-int64(i))%26)
			}
			h.size -= int64(k)
			n += k
		case len(h.pending) > 0:
			k := copy(p[n:], h.pending)
			h.pending = h.pending[k:]
			n += k
		case h.members > 0:
			// `$<len>\r\nmember:<i>\r\n`, without allocating
			h.scratch = strconv.AppendInt(append(h.scratch[:0], "member:"...), int64(h.next), 10)
			h.pendBuf = strconv.AppendInt(append(h.pendBuf[:0], '$'), int64(len(h.scratch)), 10)
			h.pendBuf = append(append(append(h.pendBuf, '\r', '\n'), h.scratch...), '\r', '\n')
			h.pending = h.pendBuf
			h.next++
			h.members--
		case len(h.tail) > 0:
			k := copy(p[n:], h.tail)
			h.tail = h.tail[k:]
			n += k
		default:
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		}
	}
	return n, nil
}

// TestBigReaderMemory: reading a 200 MB SET and a SADD of 1.1 million members in big-command
// mode allocates a few MB in all (the plain mode would hold each whole).
func TestBigReaderMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 215 MB")
	}
	r := NewStreamReader(io.MultiReader(hugeSet(200<<20), hugeSadd(1_100_000), bytes.NewReader(AppendCommandString(nil, "PING"))), 0)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var c Command
	var sizes []int64
	for {
		err := r.Next(&c)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, c.N, c.NArgs)
	}
	runtime.ReadMemStats(&after)
	if len(sizes) != 6 || sizes[1] != 3 || sizes[3] != 1_100_002 || sizes[0] < 200<<20 {
		t.Fatalf("commands (size, args): %v", sizes)
	}
	t.Logf("allocated %.1f MB reading %d MB", float64(after.TotalAlloc-before.TotalAlloc)/(1<<20), (sizes[0]+sizes[2])>>20)
	// What it holds: up to DefaultHoldBytes of the SADD and the bounds of those arguments,
	// allocated as they grow (doubling).
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 24<<20 {
		t.Fatalf("reading allocated %d MB", alloc>>20)
	}
	if cap(r.raw) > DefaultHoldBytes {
		t.Fatalf("the reader holds a buffer of %d bytes", cap(r.raw))
	}
}

// TestArgReaderAfterNext: an ArgReader of a big command reads it from the input alone, so it
// works after the reader has moved on and reused its buffers (a target writer in another
// goroutine), and its Command may be reused at once.
func TestArgReaderAfterNext(t *testing.T) {
	in := AppendCommandString(nil, "HSET", "h", "f", strings.Repeat("v", 5000))
	in = AppendCommandString(in, "SET", "other", strings.Repeat("w", 5000))
	r := newBigReader(bytes.NewReader(in), 100, 0)
	var c Command
	if err := r.Next(&c); err != nil || !c.Big() || len(c.Args) != 3 {
		t.Fatalf("big %v, %d held, err %v", c.Big(), len(c.Args), err)
	}
	a := c.Arguments(bytes.NewReader(in))
	if err := r.Next(&c); err != nil || !c.Big() {
		t.Fatal(err)
	}
	var got []string
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
		got = append(got, string(b))
	}
	if fmt.Sprint(got) != fmt.Sprint([]string{"HSET", "h", "f", strings.Repeat("v", 5000)}) {
		t.Fatalf("arguments after Next: %.40q", got)
	}
}
