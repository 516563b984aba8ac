package target

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/rdb"
)

// fileKeys is what an RDB file holds, as the decoder sees it: "db/key" → type name, and the
// function libraries.
type fileKeys struct {
	version int
	keys    map[string]string
	funcs   int
	ttls    int // hash fields with a TTL
}

func readRDB(t *testing.T, path string) fileKeys {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := rdb.NewDecoder(f)
	fk := fileKeys{keys: map[string]string{}}
	var e rdb.Entry
	for {
		err := dec.Next(&e)
		fk.version = dec.Version()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		switch e.Kind {
		case rdb.KindFunction:
			fk.funcs++
		case rdb.KindKey:
			fk.keys[string(rune('0'+e.DB))+"/"+string(e.Key)] = rdb.TypeName(e.Type)
			if e.Value != nil {
				v, err := rdb.ParseValue(e.Type, e.Value)
				if err != nil {
					t.Fatalf("%s: key %q: %v", path, e.Key, err)
				}
				for _, h := range v.Hash {
					if h.ExpireMs != 0 {
						fk.ttls++
					}
				}
			}
		}
	}
	return fk
}

// copyInto writes every entry of the RDB at src through node n, as the daemon does.
func copyInto(t *testing.T, src string, maxRaw int64, node func(version int) *RDBFileNode) *RDBFileNode {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := rdb.NewDecoder(f)
	dec.SetMaxRaw(maxRaw)
	var n *RDBFileNode
	var e rdb.Entry
	for {
		err := dec.Next(&e)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == nil {
			n = node(dec.Version())
		}
		err = n.Restore(&e)
		if errors.Is(err, ErrNeedsRewrite) {
			err = n.Rewrite(&e, io.NewSectionReader(f, e.ValueOffset, e.ValueLen))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n == nil { // no entry at all
		n = node(dec.Version())
	}
	if err := n.WaitRDB(context.Background()); err != nil {
		t.Fatal(err)
	}
	return n
}

// checkRDB runs redis-check-rdb (7.0) on path when the version is one it reads.
func checkRDB(t *testing.T, path string, version int) {
	t.Helper()
	bin := redistest.NeedBinary(t, "redis-check-rdb")
	if version > 10 {
		return
	}
	out, err := exec.Command(bin, path).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("RDB looks OK")) {
		t.Fatalf("redis-check-rdb %s: %v\n%s", path, err, out)
	}
}

// TestRDBFileFixtures copies every fixture into an rdb file, at the snapshot's own version
// (raw values) and at version 10 (Redis 7.0: newer values converted), with values both held
// and streamed, and reads the result back.
func TestRDBFileFixtures(t *testing.T) {
	files, _ := filepath.Glob(redistest.Fixture(t, "*.rdb"))
	cases, _ := filepath.Glob(redistest.Fixture(t, "cases/*.rdb"))
	files = append(files, cases...)
	if len(files) == 0 {
		t.Fatalf("no fixtures under %s", redistest.Fixture(t, ""))
	}
	for _, src := range files {
		in := readRDB(t, src)
		for _, tc := range []struct {
			name    string
			version int
			maxRaw  int64
		}{{"raw", 0, rdb.DefaultMaxRaw}, {"raw-streamed", 0, 64}, {"v10", 10, rdb.DefaultMaxRaw}, {"v10-streamed", 10, 64}} {
			t.Run(filepath.Base(src)+"/"+tc.name, func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "out.rdb")
				file := NewRDBFile(RDBFileOptions{Path: out, Version: tc.version})
				n := copyInto(t, src, tc.maxRaw, func(v int) *RDBFileNode {
					n, err := file.Node("n0", v)
					if err != nil {
						t.Fatal(err)
					}
					return n
				})
				if _, err := os.Stat(out); err == nil {
					t.Fatal("file in place before Close")
				}
				if err := n.Close(); err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(out + ".tmp"); err == nil {
					t.Fatal("temporary file left behind")
				}
				got := readRDB(t, out)
				want := tc.version
				if want == 0 {
					want = in.version
				}
				if got.version != want {
					t.Errorf("version %d, want %d", got.version, want)
				}
				st := n.Stats()
				skipped := int(st.Expired) + int(st.Skipped[SkipTypeUnsupported])
				if len(got.keys)+skipped != len(in.keys) {
					t.Errorf("%d keys + %d skipped, the source has %d (stats %+v)", len(got.keys), skipped, len(in.keys), st)
				}
				for k, typ := range got.keys {
					if in.keys[k] != typ {
						t.Errorf("key %q: type %s, source's %s", k, typ, in.keys[k])
					}
				}
				if want >= 10 && got.funcs != in.funcs {
					t.Errorf("%d functions, source has %d", got.funcs, in.funcs)
				}
				// Field TTLs survive a v12 file, and are counted as lost in an older one.
				lost := int(st.Skipped[SkipFieldTTL] + st.Skipped[SkipFieldExpired])
				if want >= 12 && got.ttls != in.ttls || want < 12 && (got.ttls != 0 || lost != in.ttls) {
					t.Errorf("field TTLs: %d in the file, %d counted lost, %d in the source", got.ttls, lost, in.ttls)
				}
				if tc.version == 0 && st.Rewritten != 0 || tc.version == 0 && st.Restored != uint64(len(got.keys)) {
					t.Errorf("same version: %d copied raw, %d converted; want all %d raw", st.Restored, st.Rewritten, len(got.keys))
				}
				checkRDB(t, out, got.version)
			})
		}
	}
}

// TestRDBFileNodes writes two snapshots into one file from two goroutines: the file appears
// at the last Close, with every key in its db and the shared library once.
func TestRDBFileNodes(t *testing.T) {
	src := redistest.Fixture(t, "redis-7.0.15.rdb")
	src2 := redistest.Fixture(t, "cases/multiple_databases.rdb")
	out := filepath.Join(t.TempDir(), "out.rdb")
	// The version is fixed: by default it would be that of whichever node joins first, and v3
	// (multiple_databases.rdb) holds neither streams nor functions.
	file := NewRDBFile(RDBFileOptions{Path: out, Nodes: 3, Version: 10})
	var wg sync.WaitGroup
	nodes := make([]*RDBFileNode, 3)
	for i, s := range []string{src, src2, src} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i] = copyInto(t, s, rdb.DefaultMaxRaw, func(v int) *RDBFileNode {
				n, err := file.Node(s, v)
				if err != nil {
					t.Error(err)
				}
				return n
			})
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, n := range nodes {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(out); (err == nil) != (i == 2) {
			t.Fatalf("after %d closes: file present %v", i+1, err == nil)
		}
	}
	got, a, b := readRDB(t, out), readRDB(t, src), readRDB(t, src2)
	for k := range b.keys {
		a.keys[k] = b.keys[k]
	}
	if len(got.keys) != len(a.keys) || got.funcs != a.funcs {
		t.Errorf("%d keys and %d functions, want %d and %d", len(got.keys), got.funcs, len(a.keys), a.funcs)
	}
	if nodes[0].Stats().Functions+nodes[2].Stats().Functions != uint64(a.funcs) {
		t.Errorf("functions written: %d + %d", nodes[0].Stats().Functions, nodes[2].Stats().Functions)
	}
	checkRDB(t, out, got.version)
}

// TestRDBFileFailed: a node that did not finish (Abort, or Close before WaitRDB), or one that
// never joined (Abandon), leaves no file behind.
func TestRDBFileFailed(t *testing.T) {
	src := redistest.Fixture(t, "redis-7.0.15.rdb")
	for _, how := range []string{"abort", "abandon", "no-wait"} {
		t.Run(how, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.rdb")
			file := NewRDBFile(RDBFileOptions{Path: out, Nodes: 2})
			n := copyInto(t, src, rdb.DefaultMaxRaw, func(v int) *RDBFileNode {
				n, err := file.Node("a", v)
				if err != nil {
					t.Fatal(err)
				}
				return n
			})
			var err error
			switch how {
			case "abort":
				n2, _ := file.Node("b", 10)
				n2.WaitRDB(context.Background())
				n2.Abort()
				n.Close()
				err = n2.Close()
			case "abandon":
				file.Abandon()
				err = n.Close()
			case "no-wait":
				n2, _ := file.Node("b", 10)
				n.Close()
				err = n2.Close()
			}
			if err == nil || !strings.Contains(err.Error(), "did not finish") {
				t.Errorf("last Close: %v", err)
			}
			for _, p := range []string{out, out + ".tmp"} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("%s exists", p)
				}
			}
		})
	}
}

// TestRDBFileNoOplog: the oplog methods refuse with ErrNoOplog.
func TestRDBFileNoOplog(t *testing.T) {
	file := NewRDBFile(RDBFileOptions{Path: filepath.Join(t.TempDir(), "x.rdb")})
	n, err := file.Node("n", 10)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.StartOplog(context.Background(), 0, 0); !errors.Is(err, ErrNoOplog) {
		t.Errorf("StartOplog: %v", err)
	}
	if err := n.Apply(&aof.Command{}, 1); !errors.Is(err, ErrNoOplog) {
		t.Errorf("Apply: %v", err)
	}
	if _, _, err := n.Reconnect(context.Background()); !errors.Is(err, ErrNoOplog) {
		t.Errorf("Reconnect: %v", err)
	}
	if _, err := file.Node("again", 10); err == nil {
		t.Error("a second node joined a one-node file")
	}
}
