package aof

import (
	"bytes"
	"sort"
	"strings"
	"testing"
)

// FuzzManifest: the manifest parser never panics, and what it accepts has bare names and
// increasing incremental sequence numbers after at most one base.
func FuzzManifest(f *testing.F) {
	f.Add("file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n")
	f.Add("# c\nfile \"a b\\x41\" seq 2 type h\nfile 'x\\'y' seq 3 type i\n")
	f.Add("file a seq 1 type\n")
	f.Fuzz(func(t *testing.T, in string) {
		parts, err := parseManifest("m", strings.NewReader(in))
		if err != nil {
			return
		}
		last := int64(0)
		for i, p := range parts {
			if p.Path == "" || strings.ContainsAny(p.Path, `/\`) {
				t.Fatalf("part %d: path %q", i, p.Path)
			}
			switch {
			case p.Type == partBase && i == 0:
			case p.Type == partIncr && p.Seq > last:
				last = p.Seq
			default:
				t.Fatalf("part %d: %+v", i, p)
			}
		}
	})
}

// FuzzKeys: Keys never panics on any command line, and returns only arguments of the line.
func FuzzKeys(f *testing.F) {
	var names []string
	for n, c := range commands {
		names = append(names, n)
		for s := range c.Subcommands {
			names = append(names, n+" "+s)
		}
	}
	sort.Strings(names)
	f.Add(uint16(0), "2 a b c")
	f.Add(uint16(1), "k STORE d")
	f.Add(uint16(2), "STREAMS a b 0 0")
	f.Fuzz(func(t *testing.T, which uint16, rest string) {
		line := names[int(which)%len(names)] + " " + rest
		var args [][]byte
		for _, a := range strings.Split(line, " ") {
			args = append(args, []byte(a))
		}
		for _, k := range LookupArgs(args).Keys(args, nil) {
			found := false
			for _, a := range args[1:] {
				if len(k) == len(a) && (len(k) == 0 || &k[0] == &a[0]) && bytes.Equal(k, a) {
					found = true
				}
			}
			if !found {
				t.Fatalf("%q: key %q is not an argument", line, k)
			}
		}
	})
}
