package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// ErrTransferFailed wraps the error of a snapshot whose transfer failed (the connection cut, a
// full disk): it will never be whole, and its file is gone. There is nothing to load again: the
// link asks the master for a new snapshot by itself, after its full-sync backoff, and a new
// SnapshotReady brings it.
var ErrTransferFailed = errors.New("snapshot transfer failed")

// Transfer is a snapshot while it arrives. Its bytes go to a file as they come, and a reader can
// follow them, so the daemon loads the RDB into the target while the master is still sending it
// instead of after. Each RDBStarted event carries one; the FullSync event that follows says the
// same snapshot is complete, fsynced and renamed.
type Transfer struct {
	mu      sync.Mutex
	path    string // the .rdb.tmp file, then the final .rdb once complete
	written int64  // bytes in the file
	done    bool   // every byte is in the file
	err     error  // the transfer failed: no more bytes will come
	wake    chan struct{}
}

func newTransfer(path string) *Transfer {
	return &Transfer{path: path, wake: make(chan struct{})}
}

// progress records n more bytes in the file, or the end of the transfer.
func (t *Transfer) progress(n int64, done bool, err error, path string) {
	t.mu.Lock()
	t.written += n
	if done {
		t.done = true
	}
	if err != nil && t.err == nil {
		t.err = err
	}
	if path != "" {
		t.path = path
	}
	close(t.wake)
	t.wake = make(chan struct{})
	t.mu.Unlock()
}

// rename renames the file under the lock Open takes, so that a reader opened at any moment finds
// the file under one of its two names.
func (t *Transfer) rename(from, to string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := os.Rename(from, to); err != nil {
		return err
	}
	t.path = to
	return nil
}

// Path is where the snapshot is: the temporary file while it arrives, the final one after.
func (t *Transfer) Path() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.path
}

// state returns the bytes in the file, whether that is all, a channel closed at the next
// change, and the failure if any.
func (t *Transfer) state() (int64, bool, <-chan struct{}, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.written, t.done, t.wake, t.err
}

// Open returns a reader of the snapshot from its first byte. Its Read blocks until more bytes
// are in the file and returns io.EOF only after the last one; it fails when the transfer fails
// or ctx ends. ReadAt reads bytes already in the file (waiting, like Read, for those not yet).
func (t *Transfer) Open(ctx context.Context) (*TransferReader, error) {
	t.mu.Lock()
	f, err := os.Open(t.path) // under the lock: the rename to the final name cannot come between
	failed := t.err
	t.mu.Unlock()
	if failed != nil { // its file is removed, or about to be
		if err == nil {
			f.Close()
		}
		return nil, fmt.Errorf("%w: %w", ErrTransferFailed, failed)
	}
	if err != nil {
		return nil, err
	}
	return &TransferReader{t: t, f: f, ctx: ctx}, nil
}

// TransferReader follows a Transfer; see Transfer.Open.
type TransferReader struct {
	t   *Transfer
	f   *os.File
	ctx context.Context
	off int64
}

// await blocks until the file holds end bytes (or all there will be). It returns how many
// bytes the file holds.
func (r *TransferReader) await(end int64) (int64, error) {
	for {
		written, done, wake, err := r.t.state()
		switch {
		case written >= end:
			return written, nil
		case err != nil:
			return written, fmt.Errorf("%w: %w", ErrTransferFailed, err)
		case done:
			return written, nil
		}
		select {
		case <-wake:
		case <-r.ctx.Done():
			return written, r.ctx.Err()
		}
	}
}

func (r *TransferReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	avail, err := r.await(r.off + 1)
	if avail <= r.off {
		if err == nil {
			err = io.EOF
		}
		return 0, err
	}
	n, rerr := r.f.ReadAt(p[:min(int64(len(p)), avail-r.off)], r.off)
	r.off += int64(n)
	if rerr == io.EOF && n > 0 {
		rerr = nil
	}
	return n, rerr
}

// ReadAt reads len(p) bytes at off, waiting for them to arrive.
func (r *TransferReader) ReadAt(p []byte, off int64) (int, error) {
	avail, err := r.await(off + int64(len(p)))
	if avail < off+int64(len(p)) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		if avail <= off {
			return 0, err
		}
		n, _ := r.f.ReadAt(p[:avail-off], off)
		return n, err
	}
	return r.f.ReadAt(p, off)
}

// Close closes the reader's file.
func (r *TransferReader) Close() error { return r.f.Close() }

// transferWriter counts the bytes written to the snapshot's file into its Transfer.
type transferWriter struct {
	w io.Writer
	t *Transfer
}

func (tw transferWriter) Write(p []byte) (int, error) {
	n, err := tw.w.Write(p)
	if n > 0 {
		tw.t.progress(int64(n), false, nil, "")
	}
	return n, err
}
