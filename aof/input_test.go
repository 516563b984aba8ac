package aof

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestCommandInput: a reader given an input sets it on every command, so a command copied by
// value writes itself out, and its arguments read back, after the reader has moved on.
func TestCommandInput(t *testing.T) {
	in := bigSample()
	ra := bytes.NewReader(in)
	r := NewStreamReader(bytes.NewReader(in), 0)
	r.SetHold(1000)
	r.SetInput(ra)
	var kept []Command
	var c Command
	for {
		err := r.Next(&c)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if c.Input != io.ReaderAt(ra) {
			t.Fatalf("command at %d: Input not set", c.Start)
		}
		if c.Big() {
			kept = append(kept, c) // a copy: the reader reuses what c's Args point to
		}
	}
	if len(kept) < 4 {
		t.Fatalf("%d big commands", len(kept))
	}
	for _, k := range kept {
		var w bytes.Buffer
		if _, err := WriteCommand(&w, &k, nil, nil); err != nil || !bytes.Equal(w.Bytes(), in[k.Start:k.Start+k.N]) {
			t.Fatalf("command at %d written from its Input: %v", k.Start, err)
		}
		if _, err := readArgs(&k, nil, 100); err != nil {
			t.Fatalf("command at %d: arguments from its Input: %v", k.Start, err)
		}
	}
}

// TestArgSections: the sections of a big command's arguments are exactly their wire bytes, and
// CopySection copies a run of them as it is.
func TestArgSections(t *testing.T) {
	args := []string{"HSET", "h"}
	for i := range 300 {
		args = append(args, "f"+strconv.Itoa(i), strings.Repeat("v", i))
	}
	in := AppendCommandString(AppendCommandString(nil, "PING"), args...)
	r := newBigReader(bytes.NewReader(in), 100, 0)
	var c Command
	r.Next(&c)
	if err := r.Next(&c); err != nil || !c.Big() {
		t.Fatalf("big %v, %v", c.Big(), err)
	}
	a := c.Arguments(bytes.NewReader(in))
	if s := a.Section(); s != (Section{}) {
		t.Fatalf("section before Next: %+v", s)
	}
	var first, last Section
	for i := 0; ; i++ {
		size, err := a.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		s := a.Section()
		want := AppendCommandString(nil, args[i])[len("*1\r\n"):]
		if got := in[s.Off : s.Off+s.Len]; !bytes.Equal(got, want) || s.Len != int64(len(want)) || size != int64(len(args[i])) {
			t.Fatalf("argument %d: section %q, want %q", i, got, want)
		}
		if i == 2 {
			first = s
		}
		last = s
	}
	var w bytes.Buffer
	run := Section{Off: first.Off, Len: last.End() - first.Off}
	if n, err := CopySection(&w, bytes.NewReader(in), run, make([]byte, 7)); err != nil || n != run.Len ||
		!bytes.Equal(w.Bytes(), in[run.Off:run.End()]) {
		t.Fatalf("CopySection: %d, %v", n, err)
	}
	if _, err := CopySection(io.Discard, bytes.NewReader(in), Section{Off: first.Off + 1, Len: 10}, nil); err == nil {
		t.Fatal("CopySection from the middle of an argument: no error")
	}
	if _, err := CopySection(io.Discard, bytes.NewReader(in[:run.Off+5]), run, nil); err == nil {
		t.Fatal("CopySection of a cut input: no error")
	}
}

// TestFileInputAfterNext: the Input of a big command at the end of one part of a multi-part AOF
// stays readable once Next has moved to the next part, until Close.
func TestFileInputAfterNext(t *testing.T) {
	dir := t.TempDir()
	big := AppendCommandString(nil, "SET", "k", strings.Repeat("v", 10_000))
	os.WriteFile(filepath.Join(dir, "a.1.base.aof"), append(AppendCommandString(nil, "SET", "a", "1"), big...), 0o644)
	os.WriteFile(filepath.Join(dir, "a.1.incr.aof"), AppendCommandString(nil, "SET", "b", "2"), 0o644)
	os.WriteFile(filepath.Join(dir, "a.manifest"), []byte("file a.1.base.aof seq 1 type b\nfile a.1.incr.aof seq 1 type i\n"), 0o644)
	f, err := OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	f.SetHold(1000)
	f.SetLimits(StreamMaxArgs, StreamMaxBulk)
	var c, kept Command
	var names []string
	for {
		err := f.Next(&c)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if c.Big() {
			kept = c
		}
		names = append(names, fmt.Sprintf("%s/%v", c.Args[1], c.Big()))
	}
	if !slices.Equal(names, []string{"a/false", "k/true", "b/false"}) {
		t.Fatalf("commands %v", names)
	}
	var w bytes.Buffer
	if _, err := WriteCommand(&w, &kept, nil, nil); err != nil || !bytes.Equal(w.Bytes(), big) {
		t.Fatalf("the big command of the first part, after the second: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteCommand(io.Discard, &kept, nil, nil); err == nil {
		t.Fatal("read after Close")
	}
}

// TestKeyIndexes: the key positions of a command of which only the first arguments are at
// hand are those of Keys on the whole line, or unknown.
func TestKeyIndexes(t *testing.T) {
	tests := []struct {
		line  string
		held  int
		want  []int // nil with ok false
		known bool
	}{
		{"SADD k a b c d", 3, []int{1}, true},
		{"SET k v", 2, []int{1}, true},
		{"DEL a b c d", 2, []int{1, 2, 3, 4}, true},
		{"MSET a 1 b 2 c 3", 1, []int{1, 3, 5}, true},
		{"SUNIONSTORE d a b", 2, []int{1, 2, 3}, true},
		{"EVAL s 2 a b c", 5, []int{3, 4}, true},
		{"EVAL s 2 a b c", 2, nil, false},
		{"SORT k STORE d", 2, nil, false},
		{"SORT k STORE d", 4, []int{1, 3}, true},
		{"XADD s * f v", 2, []int{1}, true},
		{"MSET a 1 b", 1, []int{1, 3}, true}, // as Keys, which Redis's arity check stops first
		{"EVAL s 0", 3, []int{}, true},
		{"ZUNIONSTORE d 2 a b WEIGHTS 1 2", 3, []int{1, 3, 4}, true},
	}
	for _, tt := range tests {
		args := bytes.Fields([]byte(tt.line))
		spec := LookupArgs(args)
		got, ok := spec.KeyIndexes(args[:tt.held], len(args), nil)
		if ok != tt.known || (ok && !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0)) {
			t.Errorf("%q, %d held: %v, %v; want %v, %v", tt.line, tt.held, got, ok, tt.want, tt.known)
		}
		if ok && tt.held == len(args) {
			keys := spec.Keys(args, nil)
			if len(keys) != len(got) {
				t.Errorf("%q: Keys %q, positions %v", tt.line, keys, got)
			}
		}
	}
}
