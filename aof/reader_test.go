package aof

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// sample is a replication stream with commands of several shapes: empty args, binary bytes,
// CRLF inside a bulk, a zero-arg command, a long argument.
func sample() []byte {
	var b []byte
	b = AppendCommandString(b, "SELECT", "0")
	b = AppendCommandString(b, "SET", "key", "value")
	b = AppendCommandString(b, "SET", "", "")
	b = AppendCommand(b, []byte("HSET"), []byte("h\x00\xff"), []byte("f\r\n"), []byte("\r\n\r\n"))
	b = append(b, "*0\r\n"...)
	b = AppendCommandString(b, "PING")
	b = AppendCommandString(b, "SET", "big", strings.Repeat("x", 70_000))
	b = AppendCommandString(b, "REPLCONF", "GETACK", "*")
	return b
}

type readCmd struct {
	args []string
	raw  string
	off  int64
}

// readAll reads every command of r, copying each, and returns the final error.
func readAll(r *Reader) ([]readCmd, error) {
	var out []readCmd
	var c Command
	for {
		err := r.Next(&c)
		if err != nil {
			return out, err
		}
		rc := readCmd{raw: string(c.Raw), off: r.Offset()}
		for _, a := range c.Args {
			rc.args = append(rc.args, string(a))
		}
		if c.N != int64(len(c.Raw)) {
			return out, fmt.Errorf("N %d != len(Raw) %d", c.N, len(c.Raw))
		}
		out = append(out, rc)
	}
}

func TestReaderSample(t *testing.T) {
	in := sample()
	cmds, err := readAll(NewReader(bytes.NewReader(in)))
	if err != io.EOF {
		t.Fatalf("err = %v, want io.EOF", err)
	}
	want := [][]string{
		{"SELECT", "0"}, {"SET", "key", "value"}, {"SET", "", ""},
		{"HSET", "h\x00\xff", "f\r\n", "\r\n\r\n"}, nil, {"PING"},
		{"SET", "big", strings.Repeat("x", 70_000)}, {"REPLCONF", "GETACK", "*"},
	}
	if len(cmds) != len(want) {
		t.Fatalf("got %d commands, want %d", len(cmds), len(want))
	}
	var joined strings.Builder
	for i, c := range cmds {
		if fmt.Sprint(c.args) != fmt.Sprint(want[i]) {
			t.Errorf("command %d: args %q, want %q", i, c.args, want[i])
		}
		joined.WriteString(c.raw)
		if c.off != int64(joined.Len()) {
			t.Errorf("command %d: offset %d, want %d", i, c.off, joined.Len())
		}
	}
	if joined.String() != string(in) {
		t.Errorf("Raw of all commands differs from the input")
	}
}

// twoChunks returns p in two reads, split at i.
type twoChunks struct {
	p []byte
	i int
}

func (t *twoChunks) Read(b []byte) (int, error) {
	if len(t.p) == 0 {
		return 0, io.EOF
	}
	end := len(t.p)
	if t.i > 0 {
		end = t.i
	}
	n := copy(b, t.p[:end])
	t.p = t.p[n:]
	t.i -= n
	if t.i < 0 {
		t.i = 0
	}
	return n, nil
}

func TestReaderEverySplit(t *testing.T) {
	var in []byte
	in = AppendCommandString(in, "SELECT", "10")
	in = AppendCommand(in, []byte("SET"), []byte("k\r\n"), []byte("v\x00"))
	in = append(in, "*0\r\n"...)
	in = AppendCommandString(in, "DEL", "a", "bb", "ccc")
	want, err := readAll(NewReader(bytes.NewReader(in)))
	if err != io.EOF || len(want) != 4 {
		t.Fatalf("baseline: %d commands, err %v", len(want), err)
	}
	for i := 0; i <= len(in); i++ {
		got, err := readAll(NewReader(&twoChunks{p: in, i: i}))
		if err != io.EOF {
			t.Fatalf("split %d: err = %v", i, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("split %d: got %v, want %v", i, got, want)
		}
	}
}

func TestReaderOneByte(t *testing.T) {
	in := sample()
	want, _ := readAll(NewReader(bytes.NewReader(in)))
	got, err := readAll(NewReader(iotest.OneByteReader(bytes.NewReader(in))))
	if err != io.EOF {
		t.Fatalf("err = %v", err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("one-byte reads give different commands")
	}
	got, err = readAll(NewReader(iotest.DataErrReader(bytes.NewReader(in))))
	if err != io.EOF || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("DataErrReader: err = %v, same = %v", err, fmt.Sprint(got) == fmt.Sprint(want))
	}
}

func TestReaderTruncated(t *testing.T) {
	in := sample()
	full, _ := readAll(NewReader(bytes.NewReader(in)))
	// Cut the input at every point inside the last command: all earlier commands come out,
	// then ErrUnexpectedEOF at the last command's start.
	lastStart := full[len(full)-2].off
	for cut := lastStart + 1; cut < int64(len(in)); cut++ {
		got, err := readAll(NewReader(bytes.NewReader(in[:cut])))
		if len(got) != len(full)-1 {
			t.Fatalf("cut %d: %d commands, want %d", cut, len(got), len(full)-1)
		}
		var e *Error
		if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.As(err, &e) || e.Offset != lastStart {
			t.Fatalf("cut %d: err = %v, want ErrUnexpectedEOF at offset %d", cut, err, lastStart)
		}
	}
	// A truncated big bulk too.
	big := AppendCommandString(nil, "SET", "k", strings.Repeat("y", 200_000))
	_, err := readAll(NewReader(bytes.NewReader(big[:150_000])))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("big: err = %v", err)
	}
	want := `aof: truncated command at offset 0: "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$200000\r\nyyy": unexpected EOF`
	if err.Error() != want {
		t.Fatalf("big: error text\n%s\nwant\n%s", err, want)
	}
}

func TestReaderErrors(t *testing.T) {
	set := "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n" // 27 bytes
	tests := []struct {
		name, in string
		maxArgs  int
		maxBulk  int64
		want     string
		proto    bool
	}{
		{"inline", "PING\r\n", 0, 0, `aof: expected '*' at offset 0: "PING\r\n"`, true},
		{"inline after a command", set + "PING\r\n", 0, 0, `aof: expected '*' at offset 27: "PING\r\n"`, true},
		{"inline without newline", "PING", 0, 0, `aof: expected '*' at offset 0: "PING"`, true},
		{"bad count", "*x\r\n", 0, 0, `aof: invalid multibulk length at offset 0: "*x\r\n"`, true},
		{"empty count", "*\r\n", 0, 0, `aof: invalid multibulk length at offset 0: "*\r\n"`, true},
		{"plus count", "*+1\r\n", 0, 0, `aof: invalid multibulk length at offset 0: "*+1\r\n"`, true},
		{"leading zero", "*01\r\n", 0, 0, `aof: invalid multibulk length at offset 0: "*01\r\n"`, true},
		{"count overflow", "*9223372036854775808\r\n", 0, 0, `aof: invalid multibulk length at offset 0: "*9223372036854775808\r\n"`, true},
		{"no CR", "*1\n$4\r\nPING\r\n", 0, 0, `aof: header line not ending in CRLF at offset 0: "*1\n"`, true},
		{"too many args", "*3\r\n", 2, 0, `aof: too many arguments (max 2) at offset 0: "*3\r\n"`, true},
		{"default max args", "*1048577\r\n", 0, 0, `aof: too many arguments (max 1048576) at offset 0: "*1048577\r\n"`, true},
		{"expected dollar", "*1\r\n:1\r\n", 0, 0, `aof: expected '$' at offset 4: ":1\r\n"`, true},
		{"negative bulk", "*1\r\n$-1\r\n", 0, 0, `aof: invalid bulk length at offset 4: "$-1\r\n"`, true},
		{"bulk overflow", "*1\r\n$99999999999999999999\r\n", 0, 0, `aof: invalid bulk length at offset 4: "$99999999999999999999\r\n"`, true},
		{"bulk over limit", "*1\r\n$11\r\nhello world\r\n", 0, 10, `aof: bulk too long (max 10) at offset 4: "$11\r\n"`, true},
		{"default bulk limit", "*1\r\n$536870913\r\n", 0, 0, `aof: bulk too long (max 536870912) at offset 4: "$536870913\r\n"`, true},
		{"no CRLF after bulk", "*1\r\n$4\r\nPINGxx", 0, 0, `aof: bulk not followed by CRLF at offset 12: "xx"`, true},
		{"long line", "*1" + strings.Repeat("1", 40) + "\r\n", 0, 0, `aof: header line too long at offset 0: "*1111111111111111111111111111111"`, true},
		{"huge line", "*" + strings.Repeat("1", 100_000), 0, 0, `aof: header line too long at offset 0: "*1111111111111111111111111111111"`, true},
		{"truncated header", "*2\r\n$3\r\nGET\r\n$3", 0, 0, `aof: truncated command at offset 0: "*2\r\n$3\r\nGET\r\n$3": unexpected EOF`, false},
		{"truncated second", set + "*1\r\n", 0, 0, `aof: truncated command at offset 27: "*1\r\n": unexpected EOF`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.in))
			r.SetLimits(tt.maxArgs, tt.maxBulk)
			_, err := readAll(r)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v\nwant  %s", err, tt.want)
			}
			if errors.Is(err, ErrProtocol) != tt.proto {
				t.Errorf("errors.Is(err, ErrProtocol) = %v", !tt.proto)
			}
			var c Command
			if err2 := r.Next(&c); err2 != err {
				t.Errorf("error not sticky: %v", err2)
			}
		})
	}
}

func TestReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	in := AppendCommandString(nil, "SET", "k", "v")
	r := NewReader(io.MultiReader(bytes.NewReader(in), bytes.NewReader(in[:10]), iotest.ErrReader(boom)))
	cmds, err := readAll(r)
	if len(cmds) != 1 || !errors.Is(err, boom) {
		t.Fatalf("%d commands, err %v", len(cmds), err)
	}
}

func TestReaderReset(t *testing.T) {
	r := NewReader(strings.NewReader("junk\r\n"))
	if _, err := readAll(r); !errors.Is(err, ErrProtocol) {
		t.Fatalf("err = %v", err)
	}
	r.Reset(bytes.NewReader(AppendCommandString(nil, "PING")))
	cmds, err := readAll(r)
	if err != io.EOF || len(cmds) != 1 || r.Offset() != 14 {
		t.Fatalf("after Reset: %d commands, offset %d, err %v", len(cmds), r.Offset(), err)
	}
}

func TestAppendCommand(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "*0\r\n"},
		{[]string{""}, "*1\r\n$0\r\n\r\n"},
		{[]string{"SET", "k", "hello"}, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n"},
	}
	for _, tt := range tests {
		var bargs [][]byte
		for _, a := range tt.args {
			bargs = append(bargs, []byte(a))
		}
		if got := string(AppendCommand([]byte("x"), bargs...)); got != "x"+tt.want {
			t.Errorf("AppendCommand(%q) = %q", tt.args, got)
		}
		if got := string(AppendCommandString(nil, tt.args...)); got != tt.want {
			t.Errorf("AppendCommandString(%q) = %q", tt.args, got)
		}
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		in string
		v  int64
		ok bool
	}{
		{"0", 0, true}, {"1", 1, true}, {"-1", -1, true}, {"9223372036854775807", 1<<63 - 1, true},
		{"-9223372036854775808", -1 << 63, true}, {"9223372036854775808", 0, false},
		{"-9223372036854775809", 0, false}, {"18446744073709551616", 0, false},
		{"", 0, false}, {"-", 0, false}, {"-0", 0, false}, {"00", 0, false}, {"+1", 0, false},
		{" 1", 0, false}, {"1 ", 0, false}, {"1a", 0, false},
	}
	for _, tt := range tests {
		v, ok := parseInt([]byte(tt.in))
		if v != tt.v || ok != tt.ok {
			t.Errorf("parseInt(%q) = %d, %v; want %d, %v", tt.in, v, ok, tt.v, tt.ok)
		}
	}
}

func FuzzReader(f *testing.F) {
	f.Add(sample())
	f.Add([]byte("*1\r\n$4\r\nPING\r\n*0\r\n*-1\r\n"))
	f.Add([]byte("*2\r\n$3\r\nGET\r\n$3"))
	f.Add([]byte("PING\r\n"))
	f.Add([]byte("*1\r\n$-1\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		// The same input in two chunks, split anywhere, gives the same commands and error.
		whole, werr := readAll(limited(NewReader(bytes.NewReader(in))))
		split, serr := readAll(limited(NewReader(&twoChunks{p: in, i: len(in) / 3})))
		if fmt.Sprint(whole) != fmt.Sprint(split) || fmt.Sprint(werr) != fmt.Sprint(serr) {
			t.Fatalf("split input: %v, %v; whole: %v, %v", split, serr, whole, werr)
		}

		r := limited(NewReader(bytes.NewReader(in)))
		var c Command
		var off int64
		for {
			err := r.Next(&c)
			if err != nil {
				var e *Error
				if err != io.EOF && !errors.As(err, &e) {
					t.Fatalf("error of unexpected type: %v", err)
				}
				if err == io.EOF && off != int64(len(in)) {
					t.Fatalf("io.EOF at offset %d of %d", off, len(in))
				}
				return
			}
			if !bytes.Equal(c.Raw, in[off:off+c.N]) {
				t.Fatalf("Raw is not the input at offset %d", off)
			}
			off += c.N
			if r.Offset() != off {
				t.Fatalf("Offset %d, want %d", r.Offset(), off)
			}
			if len(c.Args) > 0 && !bytes.Equal(AppendCommand(nil, c.Args...), c.Raw) {
				t.Fatalf("re-encoded %q != Raw %q", c.Args, c.Raw)
			}
			if len(c.Args) == 0 && (c.Raw[0] != '*' || bytes.IndexByte(c.Raw, '\n') != len(c.Raw)-1) {
				t.Fatalf("empty command with Raw %q", c.Raw)
			}
		}
	})
}

func limited(r *Reader) *Reader {
	r.SetLimits(1000, 1<<20)
	return r
}

func BenchmarkReader(b *testing.B) {
	// A stream of typical small writes, about 1 MiB.
	var in []byte
	for i := 0; len(in) < 1<<20; i++ {
		in = AppendCommandString(in, "SET", fmt.Sprintf("key:%08d", i), strings.Repeat("v", 64))
		in = AppendCommandString(in, "HSET", fmt.Sprintf("hash:%04d", i%1000), "field", "value", "f2", "v2")
	}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	br := bytes.NewReader(in)
	r := NewReader(br)
	var c Command
	for b.Loop() {
		br.Reset(in)
		r.Reset(br)
		for {
			if err := r.Next(&c); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
	}
}
