package aof

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func openSpool(t *testing.T, dir string, opts SpoolOptions) *Spool {
	t.Helper()
	s, err := OpenSpool(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// stream returns n deterministic pseudo-random bytes.
func stream(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// appendChunks appends p in chunks of 1..max bytes.
func appendChunks(t *testing.T, s *Spool, p []byte, maxChunk int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(len(p)), 2))
	for len(p) > 0 {
		n := min(len(p), 1+rng.IntN(maxChunk))
		if err := s.Append(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
}

// readN reads exactly n bytes of s after offset from.
func readN(t *testing.T, s *Spool, from int64, n int) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := s.NewReader(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatalf("reading %d bytes after %d: %v", n, from, err)
	}
	if r.Offset() != from+int64(n) {
		t.Fatalf("reader offset %d, want %d", r.Offset(), from+int64(n))
	}
	return b
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

func TestSpoolRotation(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, SpoolOptions{SegmentBytes: 100})
	if err := s.Reset(1000); err != nil {
		t.Fatal(err)
	}
	data := stream(1, 5050)
	appendChunks(t, s, data, 37)
	if s.End() != 1000+5050 || s.Synced() == s.End() {
		t.Fatalf("End %d Synced %d before Sync", s.End(), s.Synced())
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if s.Synced() != s.End() || s.Size() != 5050 || s.Start() != 1000 {
		t.Fatalf("Start %d End %d Synced %d Size %d", s.Start(), s.End(), s.Synced(), s.Size())
	}
	files := segFiles(t, dir)
	if len(files) != 51 || files[0] != "00000000000000001000.seg" || files[50] != "00000000000000006000.seg" {
		t.Fatalf("segments: %d, first %s, last %s", len(files), files[0], files[len(files)-1])
	}
	for i, f := range files {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		want := int64(100)
		if i == 50 {
			want = 50
		}
		if st.Size() != want {
			t.Errorf("%s: %d bytes, want %d", f, st.Size(), want)
		}
	}
	if got := readN(t, s, 1000, 5050); !bytes.Equal(got, data) {
		t.Fatal("bytes read differ from bytes appended")
	}
	// From the middle, at a segment boundary and inside a segment.
	for _, from := range []int64{1100, 1234, 5999, 6000} {
		if got := readN(t, s, from, int(6050-from)); !bytes.Equal(got, data[from-1000:]) {
			t.Fatalf("from %d: bytes differ", from)
		}
	}
	if _, err := s.NewReader(context.Background(), 6051); err == nil {
		t.Fatal("reader after the end: no error")
	}
}

func TestSpoolReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir, SpoolOptions{SegmentBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	if s.Start() != 0 || s.End() != 0 {
		t.Fatalf("empty spool: Start %d End %d", s.Start(), s.End())
	}
	data := stream(2, 1000)
	appendChunks(t, s, data[:700], 50)
	if err := s.Close(); err != nil { // Close syncs
		t.Fatal(err)
	}
	if err := s.Append([]byte("x")); !errors.Is(err, ErrSpoolClosed) {
		t.Fatalf("Append after Close: %v", err)
	}

	s = openSpool(t, dir, SpoolOptions{SegmentBytes: 64})
	if s.Start() != 0 || s.End() != 700 || s.Synced() != 700 {
		t.Fatalf("reopened: Start %d End %d Synced %d", s.Start(), s.End(), s.Synced())
	}
	appendChunks(t, s, data[700:], 50)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, s, 0, 1000); !bytes.Equal(got, data) {
		t.Fatal("bytes differ after reopen")
	}
	s.Close()

	// A crash cut the last segment short: the spool ends there.
	files := segFiles(t, dir)
	last := filepath.Join(dir, files[len(files)-1])
	if err := os.Truncate(last, 10); err != nil {
		t.Fatal(err)
	}
	s = openSpool(t, dir, SpoolOptions{SegmentBytes: 64})
	wantEnd := int64(64*(len(files)-1) + 10)
	if s.End() != wantEnd {
		t.Fatalf("after truncation: End %d, want %d", s.End(), wantEnd)
	}
	if got := readN(t, s, 0, int(wantEnd)); !bytes.Equal(got, data[:wantEnd]) {
		t.Fatal("bytes differ after truncation")
	}
	s.Close()

	// A segment missing in the middle is an error, not a silent gap.
	if err := os.Remove(filepath.Join(dir, files[3])); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSpool(dir, SpoolOptions{SegmentBytes: 64}); err == nil {
		t.Fatal("spool with a gap opened without error")
	}
}

func TestSpoolReaderBlocks(t *testing.T) {
	s := openSpool(t, t.TempDir(), SpoolOptions{})
	if err := s.Append([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	// Unsynced bytes are not readable: the read times out empty-handed.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	r, err := s.NewReader(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.Read(make([]byte, 10))
	cancel()
	if n != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read of unsynced bytes: n %d, err %v", n, err)
	}

	// A blocked reader wakes on Sync.
	r, err = s.NewReader(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 10)
		n, err := r.Read(b)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(b[:n])
	}()
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if g := <-got; g != "hello" {
		t.Fatalf("woken reader got %q", g)
	}

	// Cancelling the context wakes it with ctx.Err().
	ctx, cancel = context.WithCancel(context.Background())
	r, _ = s.NewReader(ctx, 5)
	errc := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 10))
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled reader: %v", err)
	}

	// Close wakes it with ErrSpoolClosed.
	r, _ = s.NewReader(context.Background(), 5)
	go func() {
		_, err := r.Read(make([]byte, 10))
		errc <- err
	}()
	s.Close()
	if err := <-errc; !errors.Is(err, ErrSpoolClosed) {
		t.Fatalf("reader of closed spool: %v", err)
	}
}

func TestSpoolTrim(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, SpoolOptions{SegmentBytes: 100})
	data := stream(3, 450)
	appendChunks(t, s, data, 30)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		upTo      int64
		wantStart int64
		wantFiles int
	}{
		{99, 0, 5},    // segment 0 ends at 100: kept
		{100, 100, 4}, // now it goes
		{250, 200, 3},
		{10_000, 450, 1}, // the segment being written too, all applied: a new empty one
	}
	for _, tt := range tests {
		if err := s.Trim(tt.upTo); err != nil {
			t.Fatal(err)
		}
		if s.Start() != tt.wantStart || len(segFiles(t, dir)) != tt.wantFiles || s.Size() != 450-tt.wantStart {
			t.Fatalf("Trim(%d): Start %d, %d files, Size %d", tt.upTo, s.Start(), len(segFiles(t, dir)), s.Size())
		}
		if got := readN(t, s, tt.wantStart, int(450-tt.wantStart)); !bytes.Equal(got, data[tt.wantStart:]) {
			t.Fatalf("Trim(%d): bytes differ", tt.upTo)
		}
		if tt.wantStart > 0 {
			if _, err := s.NewReader(context.Background(), tt.wantStart-1); !errors.Is(err, ErrTrimmed) {
				t.Fatalf("reader before start: %v", err)
			}
		}
	}
	// A reader whose next segment was trimmed under it says so.
	s2 := openSpool(t, t.TempDir(), SpoolOptions{SegmentBytes: 10})
	appendChunks(t, s2, data[:50], 5)
	s2.Sync()
	r, _ := s2.NewReader(context.Background(), 0)
	if _, err := io.ReadFull(r, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	if err := s2.Trim(30); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, 10)); !errors.Is(err, ErrTrimmed) {
		t.Fatalf("reader behind the trim: %v", err)
	}
}

func TestSpoolReset(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, SpoolOptions{SegmentBytes: 100})
	appendChunks(t, s, stream(4, 350), 40)
	s.Sync()
	r, _ := s.NewReader(context.Background(), 0)
	if err := s.Reset(1_000_000); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, ErrSpoolReset) {
		t.Fatalf("reader across Reset: %v", err)
	}
	if s.Start() != 1_000_000 || s.End() != 1_000_000 || s.Synced() != 1_000_000 {
		t.Fatalf("after Reset: Start %d End %d Synced %d", s.Start(), s.End(), s.Synced())
	}
	if f := segFiles(t, dir); !slices.Equal(f, []string{"00000000000001000000.seg"}) {
		t.Fatalf("files after Reset: %v", f)
	}
	s.Close()
	s = openSpool(t, dir, SpoolOptions{SegmentBytes: 100})
	if s.Start() != 1_000_000 || s.End() != 1_000_000 {
		t.Fatalf("reopened after Reset: Start %d End %d", s.Start(), s.End())
	}
	data := stream(5, 120)
	appendChunks(t, s, data, 40)
	s.Sync()
	if got := readN(t, s, 1_000_000, 120); !bytes.Equal(got, data) {
		t.Fatal("bytes differ after Reset")
	}
	if err := s.Reset(-1); err == nil {
		t.Fatal("Reset(-1): no error")
	}
}

func TestSpoolMaxBytes(t *testing.T) {
	s := openSpool(t, t.TempDir(), SpoolOptions{SegmentBytes: 50, MaxBytes: 120})
	if err := s.Append(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	err := s.Append(make([]byte, 21))
	if !errors.Is(err, ErrSpoolFull) || s.End() != 100 {
		t.Fatalf("Append over MaxBytes: %v, End %d", err, s.End())
	}
	if err := s.Append(make([]byte, 20)); err != nil {
		t.Fatalf("Append up to MaxBytes: %v", err)
	}
	s.Sync()
	if err := s.Trim(50); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(make([]byte, 50)); err != nil {
		t.Fatalf("Append after Trim: %v", err)
	}
	if s.Size() != 120 {
		t.Fatalf("Size %d", s.Size())
	}
}

// TestSpoolConcurrent runs one writer and several readers at once (run it with -race): every
// reader must see exactly the bytes written.
func TestSpoolConcurrent(t *testing.T) {
	s := openSpool(t, t.TempDir(), SpoolOptions{SegmentBytes: 4096})
	const total = 1 << 20
	data := stream(6, total)
	froms := []int64{0, 0, 1000, 4096}
	results := make([][]byte, len(froms))
	errs := make([]error, len(froms))
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i, from := range froms {
		r, err := s.NewReader(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			// Skip to from, then read the rest in odd-sized reads.
			if _, err := io.CopyN(io.Discard, r, from); err != nil {
				errs[i] = err
				return
			}
			buf := make([]byte, 777)
			for len(results[i]) < total-int(from) {
				n, err := r.Read(buf[:min(len(buf), total-int(from)-len(results[i]))])
				results[i] = append(results[i], buf[:n]...)
				if err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for p := data; len(p) > 0; {
		n := min(len(p), 1+rng.IntN(3000))
		if err := s.Append(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
		if rng.IntN(4) == 0 {
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		_ = s.End() // read shared state from the writer side too
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, from := range froms {
		if errs[i] != nil {
			t.Fatalf("reader %d: %v", i, errs[i])
		}
		if !bytes.Equal(results[i], data[from:]) {
			t.Fatalf("reader %d from %d: bytes differ", i, from)
		}
	}
}

func TestSegName(t *testing.T) {
	if got := segName(12345); got != "00000000000000012345.seg" {
		t.Fatalf("segName = %s", got)
	}
	for _, name := range []string{"00000000000000012345.seg", "1.seg", "0000000000000001234x.seg", "00000000000000012345.tmp", "99999999999999999999.seg"} {
		v, ok := parseSegName(name)
		want := name == "00000000000000012345.seg"
		if ok != want || (ok && v != 12345) {
			t.Errorf("parseSegName(%q) = %d, %v", name, v, ok)
		}
	}
}

// BenchmarkSpoolAppend appends 100-byte commands, syncing every 4 MiB as the replica link does.
func BenchmarkSpoolAppend(b *testing.B) {
	s, err := OpenSpool(b.TempDir(), SpoolOptions{SegmentBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	cmd := AppendCommandString(nil, "SET", "key:00000000", strings.Repeat("v", 64))
	b.SetBytes(int64(len(cmd)))
	b.ReportAllocs()
	unsynced := 0
	for b.Loop() {
		if err := s.Append(cmd); err != nil {
			b.Fatal(err)
		}
		if unsynced += len(cmd); unsynced >= 4<<20 {
			if err := s.Sync(); err != nil {
				b.Fatal(err)
			}
			unsynced = 0
		}
	}
}

// BenchmarkSpoolReplay reads commands back from a synced spool through a SpoolReader and a
// Reader, as the daemon replays the oplog.
func BenchmarkSpoolReplay(b *testing.B) {
	s, err := OpenSpool(b.TempDir(), SpoolOptions{SegmentBytes: 8 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	cmd := AppendCommandString(nil, "SET", "key:00000000", strings.Repeat("v", 64))
	var chunk []byte
	for len(chunk) < 1<<20 {
		chunk = append(chunk, cmd...)
	}
	for i := 0; i < 32; i++ {
		if err := s.Append(chunk); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Sync(); err != nil {
		b.Fatal(err)
	}
	total := s.End()
	b.SetBytes(total)
	b.ReportAllocs()
	r := NewReader(nil)
	var c Command
	for b.Loop() {
		sr, err := s.NewReader(context.Background(), 0)
		if err != nil {
			b.Fatal(err)
		}
		r.Reset(sr)
		for r.Offset() < total {
			if err := r.Next(&c); err != nil {
				b.Fatal(err)
			}
		}
		sr.Close()
	}
}

// TestSpoolRewind: bytes appended and not fsynced (a write or fsync that failed) are dropped by
// Rewind, from the file too, so that End is Synced and the next append goes on from there.
func TestSpoolRewind(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, SpoolOptions{})
	data := stream(5, 300)
	if err := s.Append(data[:200]); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(data[200:]); err != nil { // buffered, never synced
		t.Fatal(err)
	}
	if err := s.Rewind(); err != nil {
		t.Fatal(err)
	}
	if s.End() != 200 || s.Synced() != 200 || s.Size() != 200 {
		t.Fatalf("after Rewind: end %d synced %d size %d", s.End(), s.Synced(), s.Size())
	}
	if err := s.Append(data[200:]); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, s, 0, 300); !bytes.Equal(got, data) {
		t.Fatalf("bytes differ after a rewind and the resend")
	}
}

// TestSpoolTrimReleasesWaitingReader: a reader waiting at the end of a segment that Trim drops
// closes it, so that its room on the disk comes back (a full disk needs it).
func TestSpoolTrimReleasesWaitingReader(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, SpoolOptions{})
	data := stream(7, 500)
	if err := s.Append(data); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := s.NewReader(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadFull(r, make([]byte, 500)); err != nil {
		t.Fatal(err)
	}
	blocked := make(chan error, 1)
	go func() { _, err := r.Read(make([]byte, 10)); blocked <- err }()
	first := filepath.Join(dir, segName(0))
	openOn := func() bool {
		fds, _ := os.ReadDir("/proc/self/fd")
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(l, first) {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(5 * time.Second)
	for !openOn() && time.Now().Before(deadline) { // the reader has the segment open
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Trim(500); err != nil {
		t.Fatal(err)
	}
	for openOn() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if openOn() {
		t.Fatal("the trimmed segment is still open by the waiting reader")
	}
	if err := s.Append(data[:10]); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := <-blocked; err != nil {
		t.Fatalf("the waiting reader goes on in the next segment: %v", err)
	}
}
