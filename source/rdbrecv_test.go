package source

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/iotest"
)

// chunkReader returns its chunks one per Read, as a socket would deliver separate segments.
type chunkReader struct{ chunks [][]byte }

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.chunks) > 0 && len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	return n, nil
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

// TestCopyUntilMarkSplits splits the diskless end mark at every position between two reads,
// with and without stream bytes after the mark in the same read, and checks that the payload is
// exact and that every byte after the mark is left for the stream.
func TestCopyUntilMarkSplits(t *testing.T) {
	mark := []byte(testReplid)
	const tail = "*1\r\n$4\r\nPING\r\n"
	for _, size := range []int{0, 1, 39, 40, 1000, 300 << 10} {
		payload := randomBytes(uint64(size), size)
		for split := 0; split <= len(mark); split++ {
			for _, after := range []string{"", tail} {
				first := append(bytes.Clone(payload), mark[:split]...)
				second := append(bytes.Clone(mark[split:]), after...)
				br := bufio.NewReaderSize(&chunkReader{chunks: [][]byte{first, second, []byte("*0\r\n")}}, 64<<10)
				var out bytes.Buffer
				var done atomic.Int64
				n, err := receiveRDB(br, &out, bulkHeader{Size: -1, Mark: mark}, &done)
				if err != nil {
					t.Fatalf("size %d split %d: %v", size, split, err)
				}
				if n != int64(size) || done.Load() != n || !bytes.Equal(out.Bytes(), payload) {
					t.Fatalf("size %d split %d: got %d bytes (done %d), payload equal %v", size, split, n, done.Load(), bytes.Equal(out.Bytes(), payload))
				}
				rest, _ := io.ReadAll(br)
				if want := after + "*0\r\n"; string(rest) != want {
					t.Fatalf("size %d split %d: left %q for the stream, want %q", size, split, rest, want)
				}
			}
		}
	}
}

func TestCopyUntilMarkOneByte(t *testing.T) {
	mark := []byte(testReplid)
	payload := randomBytes(7, 5000)
	in := append(append(bytes.Clone(payload), mark...), "rest"...)
	br := bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(in)), 4096)
	var out bytes.Buffer
	var done atomic.Int64
	if _, err := receiveRDB(br, &out, bulkHeader{Size: -1, Mark: mark}, &done); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(br)
	if !bytes.Equal(out.Bytes(), payload) || string(rest) != "rest" {
		t.Fatalf("payload equal %v, rest %q", bytes.Equal(out.Bytes(), payload), rest)
	}
}

func TestCopyUntilMarkTruncated(t *testing.T) {
	mark := []byte(testReplid)
	in := append(randomBytes(3, 100), mark[:20]...)
	br := bufio.NewReader(bytes.NewReader(in))
	var done atomic.Int64
	_, err := receiveRDB(br, io.Discard, bulkHeader{Size: -1, Mark: mark}, &done)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestCopySized(t *testing.T) {
	for _, size := range []int{0, 1, 9, 256 << 10, 700 << 10} {
		payload := randomBytes(uint64(size), size)
		in := append(bytes.Clone(payload), "*1\r\n$4\r\nPING\r\n"...)
		br := bufio.NewReaderSize(iotest.HalfReader(bytes.NewReader(in)), 64<<10)
		var out bytes.Buffer
		var done atomic.Int64
		n, err := receiveRDB(br, &out, bulkHeader{Size: int64(size)}, &done)
		if err != nil || n != int64(size) || !bytes.Equal(out.Bytes(), payload) {
			t.Fatalf("size %d: n %d err %v equal %v", size, n, err, bytes.Equal(out.Bytes(), payload))
		}
		rest, _ := io.ReadAll(br)
		if string(rest) != "*1\r\n$4\r\nPING\r\n" {
			t.Fatalf("size %d: rest %q", size, rest)
		}
	}
	br := bufio.NewReader(bytes.NewReader(make([]byte, 10)))
	var done atomic.Int64
	if _, err := receiveRDB(br, io.Discard, bulkHeader{Size: 11}, &done); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short payload: got %v", err)
	}
}

func TestSaveRDBAndCleanup(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, rdbName(testReplid, 5))
	stale := filepath.Join(dir, rdbName(testReplid, 7)+".tmp")
	other := filepath.Join(dir, "checkpoint")
	for _, p := range []string{old, stale, other} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	payload := randomBytes(1, 1000)
	var done atomic.Int64
	path, n, err := saveRDB(dir, testReplid, 10, bufio.NewReader(bytes.NewReader(payload)), bulkHeader{Size: 1000}, &done, nil)
	if err != nil || n != 1000 || path != filepath.Join(dir, testReplid+"-10.rdb") {
		t.Fatalf("saveRDB = %q, %d, %v", path, n, err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, payload) {
		t.Fatal("file differs from the payload")
	}
	if err := removeOldRDBs(dir, path); err != nil {
		t.Fatal(err)
	}
	var names []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 2 || names[0] != filepath.Base(path) || names[1] != "checkpoint" {
		t.Fatalf("left %v", names)
	}
	// A failed transfer leaves no file behind.
	if _, _, err := saveRDB(dir, testReplid, 20, bufio.NewReader(bytes.NewReader(payload[:10])), bulkHeader{Size: 1000}, &done, nil); err == nil {
		t.Fatal("short transfer succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, rdbName(testReplid, 20)+".tmp")); !os.IsNotExist(err) {
		t.Fatalf("tmp file left: %v", err)
	}
}

// FuzzCopyUntilMark: whatever the payload and however the input is cut, the payload comes out
// whole and the bytes after the mark stay in the reader.
func FuzzCopyUntilMark(f *testing.F) {
	f.Add([]byte("REDIS0010\xff12345678"), []byte("*0\r\n"), uint16(3), uint16(45))
	f.Add([]byte{}, []byte{}, uint16(0), uint16(0))
	f.Add(bytes.Repeat([]byte("ab"), 100), []byte("rest"), uint16(199), uint16(220))
	mark := []byte(testReplid)
	f.Fuzz(func(t *testing.T, payload, rest []byte, cut1, cut2 uint16) {
		if bytes.Contains(append(bytes.Clone(payload), mark[:len(mark)-1]...), mark) {
			return // a payload holding the mark is indistinguishable from its end
		}
		in := append(append(bytes.Clone(payload), mark...), rest...)
		a, b := min(int(cut1), len(in)), min(int(cut2), len(in))
		if a > b {
			a, b = b, a
		}
		br := bufio.NewReaderSize(&chunkReader{chunks: [][]byte{in[:a], in[a:b], in[b:]}}, 16)
		var out bytes.Buffer
		var done atomic.Int64
		if _, err := receiveRDB(br, &out, bulkHeader{Size: -1, Mark: mark}, &done); err != nil {
			t.Fatal(err)
		}
		left, _ := io.ReadAll(br)
		if !bytes.Equal(out.Bytes(), payload) || !bytes.Equal(left, rest) {
			t.Fatalf("payload %q -> %q, rest %q -> %q", payload, out.Bytes(), rest, left)
		}
	})
}
