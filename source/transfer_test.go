package source

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// slowReader hands out its data in pieces, each after a signal, so a follower must wait.
type slowReader struct {
	data []byte
	step int
	tick <-chan time.Time
}

func (s *slowReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	<-s.tick
	n := copy(p[:min(len(p), s.step)], s.data)
	s.data = s.data[n:]
	return n, nil
}

func TestTransferFollowsTheFile(t *testing.T) {
	payload := make([]byte, 5<<20)
	rand.New(rand.NewSource(1)).Read(payload)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	src := &slowReader{data: payload, step: 256 << 10, tick: tick.C}
	dir := t.TempDir()
	started := make(chan *Transfer, 1)
	type result struct {
		path string
		err  error
	}
	saved := make(chan result, 1)
	var done atomic.Int64
	go func() {
		path, _, err := saveRDB(dir, testReplid, 7, bufio.NewReaderSize(src, 64<<10),
			bulkHeader{Size: int64(len(payload))}, &done, func(tr *Transfer) { started <- tr })
		saved <- result{path, err}
	}()
	tr := <-started
	r, err := tr.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading the transfer: %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("read %d bytes, not the %d sent", len(got), len(payload))
	}
	res := <-saved
	if res.err != nil || tr.Path() != res.path {
		t.Fatalf("saveRDB: %v; transfer path %q, final %q", res.err, tr.Path(), res.path)
	}
	// ReadAt of bytes already in the file.
	buf := make([]byte, 100)
	if _, err := r.ReadAt(buf, 1<<20); err != nil || !bytes.Equal(buf, payload[1<<20:1<<20+100]) {
		t.Fatalf("ReadAt: %v", err)
	}
}

func TestTransferFailureReachesTheReader(t *testing.T) {
	dir := t.TempDir()
	var done atomic.Int64
	var tr *Transfer
	_, _, err := saveRDB(dir, testReplid, 8, bufio.NewReader(bytes.NewReader(make([]byte, 10))),
		bulkHeader{Size: 1000}, &done, func(x *Transfer) { tr = x })
	if err == nil {
		t.Fatal("a short transfer saved")
	}
	// The file is gone, so Open fails, saying the transfer failed and why (not only that the
	// file is missing); a reader opened before the failure gets the error too.
	if _, err := tr.Open(context.Background()); !errors.Is(err, ErrTransferFailed) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Open after a failed transfer: %v, want ErrTransferFailed and the cause", err)
	}
	tr2 := newTransfer(dir + "/x")
	tr2.progress(0, false, errors.New("master went away"), "")
	r := &TransferReader{t: tr2, ctx: context.Background()}
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, ErrTransferFailed) || !bytes.Contains([]byte(err.Error()), []byte("master went away")) {
		t.Fatalf("Read after a failed transfer: %v", err)
	}
}

func TestTransferReaderStopsWithContext(t *testing.T) {
	tr := newTransfer("unused")
	ctx, cancel := context.WithCancel(context.Background())
	r := &TransferReader{t: tr, ctx: ctx}
	errc := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 1))
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Read after cancel: %v", err)
	}
}

// A Read returns all that is there (up to len(p)), not one byte at a time.
func TestTransferReadReturnsAllThatIsThere(t *testing.T) {
	dir := t.TempDir()
	tr := newTransfer(dir + "/f")
	data := bytes.Repeat([]byte("x"), 1<<20)
	if err := os.WriteFile(dir+"/f", data, 0o644); err != nil {
		t.Fatal(err)
	}
	tr.progress(int64(len(data)), true, nil, "")
	r, err := tr.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n, err := r.Read(make([]byte, 64<<10))
	if err != nil || n != 64<<10 {
		t.Fatalf("Read of a 64 KiB buffer with 1 MiB there: %d, %v", n, err)
	}
}

// A reader opened at any moment of the transfer finds the file, even right after the rename.
func TestTransferOpenAfterRename(t *testing.T) {
	for i := 0; i < 50; i++ {
		dir := t.TempDir()
		var done atomic.Int64
		opened := make(chan error, 1)
		_, _, err := saveRDB(dir, testReplid, int64(i), bufio.NewReader(bytes.NewReader(make([]byte, 10))),
			bulkHeader{Size: 10}, &done, func(tr *Transfer) {
				go func() {
					r, err := tr.Open(context.Background())
					if err == nil {
						r.Close()
					}
					opened <- err
				}()
			})
		if err != nil {
			t.Fatal(err)
		}
		if err := <-opened; err != nil {
			t.Fatalf("run %d: Open during a transfer: %v", i, err)
		}
	}
}
