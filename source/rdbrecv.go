package source

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

const (
	copyBufSize = 256 << 10
	fileBufSize = 1 << 20
)

// receiveRDB copies the RDB payload announced by h from br to w and returns its size. With a
// size (disk form) it copies exactly that many bytes: no CRLF follows. With a mark (diskless
// form) it copies until the mark, which may straddle reads; it consumes exactly the payload and
// the mark, so whatever follows stays in br for the stream. done counts the bytes written.
func receiveRDB(br *bufio.Reader, w io.Writer, h bulkHeader, done *atomic.Int64) (int64, error) {
	if h.Mark == nil {
		return copySized(br, w, h.Size, done)
	}
	return copyUntilMark(br, w, h.Mark, done)
}

func copySized(br *bufio.Reader, w io.Writer, size int64, done *atomic.Int64) (int64, error) {
	buf := make([]byte, min(size, copyBufSize))
	var n int64
	for n < size {
		k, err := br.Read(buf[:min(int64(len(buf)), size-n)])
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return n, fmt.Errorf("writing the RDB at offset %d: %w", n, werr)
			}
			n += int64(k)
			done.Store(n)
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, fmt.Errorf("reading the RDB at offset %d of %d: %w", n, size, err)
		}
	}
	return n, nil
}

// copyUntilMark looks at what br holds without consuming it (Peek), searches the mark in the
// bytes held back from earlier reads followed by the new ones, and consumes (Discard) only up to
// the end of the mark. The last len(mark)-1 bytes are held back until more arrive, since they
// could be the mark's beginning.
func copyUntilMark(br *bufio.Reader, w io.Writer, mark []byte, done *atomic.Int64) (int64, error) {
	var (
		joined = make([]byte, 0, br.Size()+len(mark))
		held   = make([]byte, 0, len(mark))
		n      int64
	)
	write := func(p []byte) error {
		if len(p) == 0 {
			return nil
		}
		if _, err := w.Write(p); err != nil {
			return fmt.Errorf("writing the RDB at offset %d: %w", n, err)
		}
		n += int64(len(p))
		done.Store(n)
		return nil
	}
	for {
		if _, err := br.Peek(1); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, fmt.Errorf("reading the diskless RDB at offset %d (end mark not seen): %w", n+int64(len(held)), err)
		}
		data, _ := br.Peek(br.Buffered())
		joined = append(append(joined[:0], held...), data...)
		if i := bytes.Index(joined, mark); i >= 0 {
			if err := write(joined[:i]); err != nil {
				return n, err
			}
			if _, err := br.Discard(i + len(mark) - len(held)); err != nil {
				return n, err // cannot happen: those bytes are buffered
			}
			return n, nil
		}
		keep := min(len(joined), len(mark)-1)
		if err := write(joined[:len(joined)-keep]); err != nil {
			return n, err
		}
		held = append(held[:0], joined[len(joined)-keep:]...)
		if _, err := br.Discard(len(data)); err != nil {
			return n, err
		}
	}
}

// rdbName is the file of the snapshot taken at offset under replid.
func rdbName(replid string, offset int64) string {
	return replid + "-" + strconv.FormatInt(offset, 10) + ".rdb"
}

// saveRDB receives the payload into dir/<replid>-<offset>.rdb.tmp, fsyncs it, renames it to
// .rdb and fsyncs the directory. It returns the final path and size.
//
// started, if not nil, is called with a Transfer as soon as the file exists: the Transfer follows
// the bytes written to it and is told the final path, or the failure, at the end.
func saveRDB(dir, replid string, offset int64, br *bufio.Reader, h bulkHeader, done *atomic.Int64,
	started func(*Transfer)) (path string, n int64, err error) {
	final := filepath.Join(dir, rdbName(replid, offset))
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return "", 0, fmt.Errorf("creating the RDB file: %w", err)
	}
	var out io.Writer = f
	rename := os.Rename
	if started != nil {
		tr := newTransfer(tmp)
		rename = tr.rename
		defer func() { tr.progress(0, err == nil, err, path) }()
		out = transferWriter{w: f, t: tr}
		started(tr)
	}
	w := bufio.NewWriterSize(out, fileBufSize) // socket reads can be small; file writes need not be
	n, err = receiveRDB(br, w, h, done)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		if err = f.Sync(); err != nil {
			err = fmt.Errorf("fsync %s: %w", tmp, err)
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("closing %s: %w", tmp, cerr)
	}
	if err != nil {
		os.Remove(tmp)
		return "", n, err
	}
	if err := rename(tmp, final); err != nil {
		os.Remove(tmp)
		return "", n, fmt.Errorf("renaming the RDB file: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return "", n, err
	}
	return final, n, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// removeOldRDBs removes the snapshots of dir other than keep, and unfinished .rdb.tmp files.
// Only names this package writes (<40 hex>-<offset>.rdb[.tmp]) are touched.
func removeOldRDBs(dir, keep string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("listing %s: %w", dir, err)
	}
	var errs []error
	for _, e := range ents {
		name := e.Name()
		if !ourRDBName(name) || name == filepath.Base(keep) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func ourRDBName(name string) bool {
	base, ok := strings.CutSuffix(name, ".rdb")
	if !ok {
		if base, ok = strings.CutSuffix(name, ".rdb.tmp"); !ok {
			return false
		}
	}
	id, off, ok := strings.Cut(base, "-")
	if !ok || !validReplid(id) {
		return false
	}
	_, err := strconv.ParseInt(off, 10, 64)
	return err == nil
}

// roomMargin is the free space kept beyond a snapshot's size, for the stream spooled beside it.
const roomMargin = 16 << 20

// checkRoom fails, naming the figures, when dir's filesystem cannot hold a snapshot of size
// bytes (-1: unknown, a diskless transfer, which fails later if it does not fit).
func checkRoom(dir string, size int64) error {
	if size < 0 {
		return nil
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return nil // cannot tell: the writes will say
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if free < size+roomMargin {
		return fmt.Errorf("not enough disk space in %s for the snapshot: %d MB announced (+%d MB for the stream), %d MB free",
			dir, size>>20, roomMargin>>20, free>>20)
	}
	return nil
}
