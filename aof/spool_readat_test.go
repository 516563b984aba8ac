package aof

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSpoolReadAt: ReadAt reads any range of the fsynced stream across segment files, by
// replication offset, beside Read and from several goroutines; past the fsynced end it gives
// what there is and io.EOF; a trimmed range is ErrTrimmed, a reset spool ErrSpoolReset.
func TestSpoolReadAt(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, SpoolOptions{SegmentBytes: 1000})
	const start = 5000
	if err := s.Reset(start); err != nil {
		t.Fatal(err)
	}
	data := stream(7, 10_000)
	appendChunks(t, s, data, 700)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append([]byte("not synced")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := s.NewReader(ctx, start+100)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 5))
			for i := 0; i < 300; i++ {
				off := rng.IntN(len(data))
				n := rng.IntN(min(3000, len(data)-off) + 1)
				p := make([]byte, n)
				k, err := r.ReadAt(p, start+int64(off))
				if err != nil || k != n || !bytes.Equal(p, data[off:off+n]) {
					t.Errorf("ReadAt(%d bytes, %d): %d, %v, equal %v", n, start+off, k, err, bytes.Equal(p[:k], data[off:off+k]))
					return
				}
			}
		})
	}
	seq := make([]byte, 2000) // Read goes on beside ReadAt, unaffected by it
	if _, err := io.ReadFull(r, seq); err != nil || !bytes.Equal(seq, data[100:2100]) {
		t.Fatalf("Read beside ReadAt: %v", err)
	}
	wg.Wait()

	p := make([]byte, 100)
	if n, err := r.ReadAt(p, start+int64(len(data))-40); n != 40 || err != io.EOF || !bytes.Equal(p[:40], data[len(data)-40:]) {
		t.Fatalf("ReadAt past the fsynced end: %d, %v", n, err)
	}
	if _, err := r.ReadAt(p, start-1); !errors.Is(err, ErrTrimmed) {
		t.Fatalf("ReadAt before the start: %v", err)
	}
	if _, err := r.ReadAt(p, -1); err == nil {
		t.Fatal("ReadAt at a negative offset")
	}
	if err := s.Trim(start + 3000); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadAt(p, start+10); !errors.Is(err, ErrTrimmed) {
		t.Fatalf("ReadAt of a trimmed range: %v", err)
	}
	if n, err := r.ReadAt(p, start+5000); n != 100 || err != nil || !bytes.Equal(p, data[5000:5100]) {
		t.Fatalf("ReadAt after Trim: %v", err)
	}
	if err := s.Reset(0); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadAt(p, start+5000); !errors.Is(err, ErrSpoolReset) {
		t.Fatalf("ReadAt after Reset: %v", err)
	}
	r.Close()
	if _, err := r.ReadAt(p, 0); err == nil {
		t.Fatal("ReadAt after Close")
	}
}

// TestSpoolBigCommands: big commands spooled across segments come back through a stream reader
// over the spool, their arguments read from the same SpoolReader, from the replication offset
// the reader starts at.
func TestSpoolBigCommands(t *testing.T) {
	s := openSpool(t, t.TempDir(), SpoolOptions{SegmentBytes: 4096})
	const start = 1 << 40
	if err := s.Reset(start); err != nil {
		t.Fatal(err)
	}
	in := bigSample()
	appendChunks(t, s, in, 10_000)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	want, _ := readAllBig(t, NewReader(bytes.NewReader(in)), in, 0)
	skip := want[2].off // read from the third command on
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sr, err := s.NewReader(ctx, start+skip)
	if err != nil {
		t.Fatal(err)
	}
	defer sr.Close()
	r := NewStreamReader(io.LimitReader(sr, int64(len(in))-skip), start+skip)
	r.SetHold(1000)
	var c Command
	for i := 3; i < len(want); i++ {
		if err := r.Next(&c); err != nil {
			t.Fatal(err)
		}
		args, err := readArgs(&c, sr, 4096)
		if err != nil || strings.Join(args, " ") != strings.Join(want[i].args, " ") || c.Start != start+want[i-1].off {
			t.Fatalf("command %d: %v; start %d, want %d", i, err, c.Start, start+want[i-1].off)
		}
		if c.Big() {
			var b bytes.Buffer
			if _, err := WriteCommand(&b, &c, sr, nil); err != nil || !bytes.Equal(b.Bytes(), in[want[i-1].off:want[i].off]) {
				t.Fatalf("command %d: WriteCommand: %v", i, err)
			}
		}
	}
}

// TestFileBigCommands: an AOF file's big commands come back through File.ReaderAt, in every part.
func TestFileBigCommands(t *testing.T) {
	dir := t.TempDir()
	in := bigSample()
	base := AppendCommandString(nil, "SET", "base", strings.Repeat("b", 20_000))
	files := map[string][]byte{"appendonly.aof.1.base.aof": base, "appendonly.aof.1.incr.aof": in}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	manifest := "file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
	if err := os.WriteFile(filepath.Join(dir, "appendonly.aof.manifest"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.SetHold(1000)
	f.SetLimits(StreamMaxArgs, StreamMaxBulk)
	want := append([]bigCmd{{args: []string{"SET", "base", strings.Repeat("b", 20_000)}}}, func() []bigCmd {
		w, _ := readAllBig(t, NewReader(bytes.NewReader(in)), in, 0)
		return w
	}()...)
	var c Command
	bigs := 0
	for i := 0; ; i++ {
		err := f.Next(&c)
		if err == io.EOF {
			if i != len(want) {
				t.Fatalf("%d commands, want %d", i, len(want))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		args, err := readArgs(&c, f.ReaderAt(), 1000)
		if err != nil || strings.Join(args, " ") != strings.Join(want[i].args, " ") {
			t.Fatalf("command %d: %v", i, err)
		}
		if c.Big() {
			bigs++
		}
	}
	if bigs < 5 {
		t.Fatalf("%d big commands", bigs)
	}
}
