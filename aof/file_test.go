package aof

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/rdb"
)

func TestSplitArgsManifest(t *testing.T) {
	tests := []struct {
		in   string
		want []string // nil: error
	}{
		{`file appendonly.aof.1.base.rdb seq 1 type b`, []string{"file", "appendonly.aof.1.base.rdb", "seq", "1", "type", "b"}},
		{`  a   b  `, []string{"a", "b"}},
		{`file "my file.aof" seq 1`, []string{"file", "my file.aof", "seq", "1"}},
		{`"a\x41\n\"b"`, []string{"aA\n\"b"}},
		{`'it\'s'`, []string{"it's"}},
		{`a"b c"d`, nil}, // closing quote not followed by a space
		{`"abc`, nil},    // unterminated
		{`'abc`, nil},    // unterminated
		{`a"b c"`, []string{"ab c"}},
		{``, nil},
	}
	for _, tt := range tests {
		got, ok := splitArgs([]byte(tt.in))
		if tt.want == nil && tt.in != "" {
			if ok {
				t.Errorf("splitArgs(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if !ok || !slices.Equal(got, tt.want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

func TestParseManifest(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // parts as "path/seq/type ..." or the error's text
	}{
		{"7.0 layout", "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.1.incr.aof seq 1 type h\nfile appendonly.aof.2.incr.aof seq 2 type i\nfile appendonly.aof.3.incr.aof seq 3 type i\n",
			"appendonly.aof.2.base.rdb/2/b appendonly.aof.2.incr.aof/2/i appendonly.aof.3.incr.aof/3/i"},
		{"no base", "file a.incr seq 5 type i\n", "a.incr/5/i"},
		{"comments and quotes", "# hello\nfile \"b a.rdb\" seq 1 type b\n", "b a.rdb/1/b"},
		{"extra keys", "file a seq 1 type b future x\n", "a/1/b"},
		{"empty", "", "aof: manifest m: empty"},
		{"no newline", "file a seq 1 type b", `aof: manifest m:1: line too long or not ending in newline: "file a seq 1 type b"`},
		{"two bases", "file a seq 1 type b\nfile b seq 2 type b\n", `aof: manifest m:2: second base file: "file b seq 2 type b\n"`},
		{"incr order", "file a seq 2 type i\nfile b seq 2 type i\n", `aof: manifest m:2: incr sequence not increasing: "file b seq 2 type i\n"`},
		{"path", "file ../a seq 1 type b\n", `aof: manifest m:1: file must be a bare name: "file ../a seq 1 type b\n"`},
		{"odd", "file a seq 1 type\n", `aof: manifest m:1: invalid line: "file a seq 1 type\n"`},
		{"blank", "\n", `aof: manifest m:1: invalid line: "\n"`},
		{"bad seq", "file a seq x type b\n", `aof: manifest m:1: invalid seq: "file a seq x type b\n"`},
		{"bad type", "file a seq 1 type z\n", `aof: manifest m:1: unknown file type: "file a seq 1 type z\n"`},
		{"missing", "file a seq 1 kind b\n", `aof: manifest m:1: missing file, seq or type: "file a seq 1 kind b\n"`},
	}
	for _, tt := range tests {
		parts, err := parseManifest("m", strings.NewReader(tt.in))
		var got string
		if err != nil {
			got = err.Error()
		} else {
			var s []string
			for _, p := range parts {
				s = append(s, fmt.Sprintf("%s/%d/%c", p.Path, p.Seq, p.Type))
			}
			got = strings.Join(s, " ")
		}
		if got != tt.want {
			t.Errorf("%s: got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}

// readFile reads every entry and command of the AOF at path; commands are joined by spaces.
func readFile(t *testing.T, path string) (keys []string, cmds []string, err error) {
	t.Helper()
	f, err := OpenFile(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var e rdb.Entry
	for {
		err := f.NextEntry(&e)
		if err == io.EOF {
			break
		}
		if err != nil {
			return keys, nil, err
		}
		if e.Kind == rdb.KindKey {
			keys = append(keys, fmt.Sprintf("%d:%s", e.DB, e.Key))
		}
	}
	var c Command
	for {
		err := f.Next(&c)
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return keys, cmds, err
		}
		var args []string
		for _, a := range c.Args {
			args = append(args, string(a))
		}
		cmds = append(cmds, strings.Join(args, " "))
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFilePlain(t *testing.T) {
	dir := t.TempDir()
	var b []byte
	b = AppendCommandString(b, "SELECT", "0")
	b = append(b, "#TS:1700000000\r\n"...)
	b = AppendCommandString(b, "SET", "a", "1")
	b = append(b, "#TS:1700000001\r\n#TS:1700000002\r\n"...)
	b = AppendCommandString(b, "DEL", "a")
	path := filepath.Join(dir, "appendonly.aof")
	writeFile(t, path, b)
	keys, cmds, err := readFile(t, path)
	if err != nil || len(keys) != 0 || strings.Join(cmds, ",") != "SELECT 0,SET a 1,DEL a" {
		t.Fatalf("keys %q, cmds %q, err %v", keys, cmds, err)
	}
	f, _ := OpenFile(path)
	defer f.Close()
	var c Command
	for f.Next(&c) == nil {
	}
	if p, off := f.Position(); p != path || off != int64(len(b)) {
		t.Errorf("Position = %s %d, want %s %d", p, off, path, len(b))
	}

	// Cut inside the last command: the others come out, then the error names the file and the
	// command's start.
	last := int64(len(b) - len(AppendCommandString(nil, "DEL", "a")))
	writeFile(t, path, b[:len(b)-3])
	_, cmds, err = readFile(t, path)
	var e *Error
	if len(cmds) != 2 || !errors.Is(err, io.ErrUnexpectedEOF) || !errors.As(err, &e) || e.Offset != last || e.File != path {
		t.Fatalf("truncated: cmds %q, err %v", cmds, err)
	}
	want := fmt.Sprintf(`aof: %s: truncated command at offset %d: "*2\r\n$3\r\nDEL\r\n$1\r\n": unexpected EOF`, path, last)
	if err.Error() != want {
		t.Errorf("error text\n%s\nwant\n%s", err, want)
	}

	// An empty file has nothing; a missing one is an error.
	writeFile(t, path, nil)
	if keys, cmds, err := readFile(t, path); err != nil || keys != nil || cmds != nil {
		t.Errorf("empty file: %q %q %v", keys, cmds, err)
	}
	if _, err := OpenFile(filepath.Join(dir, "nosuch")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestFilePreamble(t *testing.T) {
	fixture, err := os.ReadFile(redistest.Fixture(t, "redis-7.0.15.rdb"))
	if err != nil {
		t.Fatalf("RDB fixture: %v", err)
	}
	// The keys the decoder finds in the fixture alone.
	d := rdb.NewDecoder(strings.NewReader(string(fixture)))
	var e rdb.Entry
	nkeys := 0
	for {
		err := d.Next(&e)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.Kind == rdb.KindKey {
			nkeys++
		}
	}
	var b []byte
	b = append(b, fixture...)
	b = AppendCommandString(b, "SELECT", "3")
	b = AppendCommandString(b, "SET", "after", "preamble")
	path := filepath.Join(t.TempDir(), "appendonly.aof")
	writeFile(t, path, b)

	keys, cmds, err := readFile(t, path)
	if err != nil || len(keys) != nkeys || nkeys == 0 || strings.Join(cmds, ",") != "SELECT 3,SET after preamble" {
		t.Fatalf("%d keys (want %d), cmds %q, err %v", len(keys), nkeys, cmds, err)
	}

	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Decoder() == nil || f.RDBFile() == nil {
		t.Fatal("no decoder for a preamble")
	}
	var c Command
	if err := f.Next(&c); err == nil || !strings.Contains(err.Error(), "before the end of the RDB preamble") {
		t.Fatalf("Next before the RDB is read: %v", err)
	}
	// A truncated command after the preamble is reported at its offset in the file.
	writeFile(t, path, b[:len(b)-2])
	_, cmds, err = readFile(t, path)
	var ae *Error
	wantOff := int64(len(fixture) + len(AppendCommandString(nil, "SELECT", "3")))
	if len(cmds) != 1 || !errors.As(err, &ae) || ae.Offset != wantOff {
		t.Fatalf("truncated after preamble: cmds %q, err %v, want offset %d", cmds, err, wantOff)
	}
}

func TestFileManifestDir(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "appendonly.aof.manifest"),
		[]byte("file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\nfile appendonly.aof.2.incr.aof seq 2 type i\n"))
	writeFile(t, filepath.Join(dir, "appendonly.aof.1.base.aof"), AppendCommandString(nil, "SET", "a", "1"))
	writeFile(t, filepath.Join(dir, "appendonly.aof.1.incr.aof"), nil)
	writeFile(t, filepath.Join(dir, "appendonly.aof.2.incr.aof"), AppendCommandString(AppendCommandString(nil, "SET", "b", "2"), "INCR", "b"))
	for _, p := range []string{dir, filepath.Join(dir, "appendonly.aof.manifest")} {
		_, cmds, err := readFile(t, p)
		if err != nil || strings.Join(cmds, ",") != "SET a 1,SET b 2,INCR b" {
			t.Fatalf("%s: cmds %q, err %v", p, cmds, err)
		}
	}
	// An RDB in an incremental file is refused; a missing part is an error.
	fixture, err := os.ReadFile(redistest.Fixture(t, "redis-7.0.15.rdb"))
	if err != nil {
		t.Fatalf("RDB fixture: %v", err)
	}
	writeFile(t, filepath.Join(dir, "appendonly.aof.1.incr.aof"), fixture)
	if _, _, err := readFile(t, dir); err == nil || !strings.Contains(err.Error(), "an RDB in an incremental file") {
		t.Errorf("RDB in an incr file: %v", err)
	}
	os.Remove(filepath.Join(dir, "appendonly.aof.1.incr.aof"))
	f, err := OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n := len(f.Parts()); n != 3 {
		t.Errorf("%d parts, want 3", n)
	}
	var c Command
	if err := f.Next(&c); err != nil {
		t.Fatal(err)
	}
	err1 := f.Next(&c)
	if err2 := f.Next(&c); !errors.Is(err1, os.ErrNotExist) || err2 != err1 {
		t.Errorf("missing part: %v, then %v", err1, err2)
	}
}

// TestFileRedis reads the multi-part AOF that a real redis-server 7 writes, with and without
// an RDB preamble and with timestamp annotations: keys written before BGREWRITEAOF come from
// the base file, commands written after from the incremental file, and a truncated last
// command is reported at its offset.
func TestFileRedis(t *testing.T) {
	for _, preamble := range []string{"yes", "no"} {
		t.Run("preamble="+preamble, func(t *testing.T) {
			rc := startRedis(t, "--appendonly", "yes", "--appendfsync", "always",
				"--aof-use-rdb-preamble", preamble, "--aof-timestamp-enabled", "yes")
			v, err := rc.do("CONFIG", "GET", "dir")
			if err != nil {
				t.Fatal(err)
			}
			aofDir := filepath.Join(v.([]any)[1].(string), "appendonlydir")
			for i := 0; i < 50; i++ {
				if _, err := rc.do("SET", fmt.Sprintf("before:%d", i), "v"); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := rc.do("BGREWRITEAOF"); err != nil {
				t.Fatal(err)
			}
			redistest.WaitFor(t, 10*time.Second, func() error {
				info, err := rc.do("INFO", "persistence")
				if err != nil {
					return err
				}
				s := info.(string)
				if !strings.Contains(s, "aof_rewrite_in_progress:0") || !strings.Contains(s, "aof_rewrite_scheduled:0") {
					return errors.New("rewrite in progress")
				}
				m, err := os.ReadFile(filepath.Join(aofDir, "appendonly.aof.manifest"))
				if err != nil || !strings.Contains(string(m), "seq 2 type b") {
					return fmt.Errorf("manifest %q: %v", m, err)
				}
				return nil
			})
			var want []string
			for i := 0; i < 5; i++ {
				args := []string{"RPUSH", "after", fmt.Sprint(i)}
				if _, err := rc.do(args...); err != nil {
					t.Fatal(err)
				}
				want = append(want, strings.Join(args, " "))
			}
			keys, cmds, err := readFile(t, aofDir)
			if err != nil {
				t.Fatal(err)
			}
			if preamble == "no" {
				// The base is commands: its SETs (one per key) come before ours.
				n := 0
				for _, c := range cmds {
					if strings.HasPrefix(c, "SET before:") {
						n++
					}
				}
				if n != 50 || len(keys) != 0 {
					t.Fatalf("%d SETs of the base, %d keys", n, len(keys))
				}
			} else if len(keys) != 50 {
				t.Fatalf("%d keys from the base RDB, want 50", len(keys))
			}
			var ours []string
			for _, c := range cmds {
				if strings.HasPrefix(c, "RPUSH after") {
					ours = append(ours, c)
				}
			}
			if !slices.Equal(ours, want) {
				t.Fatalf("commands after the rewrite: %q", ours)
			}

			// Cut the incremental file inside its last command.
			f, err := OpenFile(aofDir)
			if err != nil {
				t.Fatal(err)
			}
			parts := f.Parts()
			f.Close()
			incr := parts[len(parts)-1].Path
			st, err := os.Stat(incr)
			if err != nil {
				t.Fatal(err)
			}
			lastLen := int64(len(AppendCommandString(nil, "RPUSH", "after", "4")))
			if err := os.Truncate(incr, st.Size()-1); err != nil {
				t.Fatal(err)
			}
			_, cmds2, err := readFile(t, aofDir)
			var ae *Error
			if !errors.As(err, &ae) || !errors.Is(err, io.ErrUnexpectedEOF) || ae.File != incr || ae.Offset != st.Size()-lastLen {
				t.Fatalf("truncated incr: %v (want offset %d)", err, st.Size()-lastLen)
			}
			if len(cmds2) != len(cmds)-1 {
				t.Fatalf("truncated incr: %d commands, want %d", len(cmds2), len(cmds)-1)
			}
		})
	}
}
