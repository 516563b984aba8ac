package aof

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
)

// SpoolReader reads a spool's stream from an offset on. It sees only fsynced bytes, blocks when
// it has caught up until a Sync brings more (or its context ends), and follows the segments
// from one file to the next. It is for one goroutine; many may run beside the spool's writer.
type SpoolReader struct {
	s      *Spool
	ctx    context.Context
	gen    int64
	pos    int64 // offset of the last byte returned
	f      *os.File
	fstart int64 // start of the segment f holds
	err    error

	atMu     sync.Mutex // guards the fields of ReadAt, which may run beside Read
	atF      *os.File
	atStart  int64
	atClosed bool
}

// NewReader returns a reader of the stream bytes after offset from (from+1 first). from must
// lie within [Start(), End()]; an offset already trimmed gives an error wrapping ErrTrimmed.
// Reads return ctx.Err() once ctx is done.
func (s *Spool) NewReader(ctx context.Context, from int64) (*SpoolReader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, fmt.Errorf("aof: spool %s: reader from offset %d: %w", s.dir, from, ErrSpoolClosed)
	case from < s.start:
		return nil, fmt.Errorf("aof: spool %s: reader from offset %d, before the spool's start %d: %w",
			s.dir, from, s.start, ErrTrimmed)
	case from > s.end:
		return nil, fmt.Errorf("aof: spool %s: reader from offset %d, after the spool's end %d", s.dir, from, s.end)
	}
	return &SpoolReader{s: s, ctx: ctx, gen: s.gen, pos: from, fstart: -1}, nil
}

// Offset returns the offset of the last byte read.
func (r *SpoolReader) Offset() int64 { return r.pos }

// Read reads stream bytes into p. It blocks only when no fsynced byte is left to read.
func (r *SpoolReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := r.read(p)
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		r.err = err
	}
	return n, err
}

func (r *SpoolReader) read(p []byte) (int, error) {
	s := r.s
	for {
		if err := r.ctx.Err(); err != nil {
			return 0, err
		}
		s.mu.Lock()
		if r.gen != s.gen {
			s.mu.Unlock()
			return 0, fmt.Errorf("aof: spool %s: reading after offset %d: %w", s.dir, r.pos, ErrSpoolReset)
		}
		avail := s.synced - r.pos
		if avail <= 0 {
			closed := s.closed
			wake, done := s.notify, s.closeCh
			// A segment trimmed while the reader waits at its end must not stay open: on a
			// full disk its room is what the spool needs back.
			trimmed := r.f != nil && r.fstart < s.start
			s.mu.Unlock()
			if trimmed {
				r.f.Close()
				r.f = nil
			}
			if closed {
				return 0, fmt.Errorf("aof: spool %s: reading after offset %d: %w", s.dir, r.pos, ErrSpoolClosed)
			}
			select {
			case <-r.ctx.Done():
				return 0, r.ctx.Err()
			case <-wake:
			case <-done:
			}
			continue
		}
		// The segment holding byte pos+1 is the last one starting at or before pos.
		i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].start > r.pos }) - 1
		if i < 0 {
			start := s.start
			s.mu.Unlock()
			return 0, fmt.Errorf("aof: spool %s: reading after offset %d, before the spool's start %d: %w",
				s.dir, r.pos, start, ErrTrimmed)
		}
		sg := s.segs[i]
		s.mu.Unlock()
		limit := min(avail, sg.start+sg.size-r.pos, int64(len(p)))
		if limit <= 0 {
			return 0, fmt.Errorf("aof: spool %s: no segment holds offset %d", s.dir, r.pos+1)
		}
		if r.f == nil || r.fstart != sg.start {
			if err := r.open(sg.start); err != nil {
				return 0, err
			}
		}
		n, err := r.f.ReadAt(p[:limit], r.pos-r.fstart)
		r.pos += int64(n)
		if n > 0 {
			return n, nil
		}
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, fmt.Errorf("aof: spool %s: segment %s: reading offset %d: %w", s.dir, segName(sg.start), r.pos+1, err)
	}
}

func (r *SpoolReader) open(start int64) error {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	f, err := os.Open(r.s.path(start))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("aof: spool %s: reading after offset %d: segment %s gone: %w",
			r.s.dir, r.pos, segName(start), ErrTrimmed)
	}
	if err != nil {
		return fmt.Errorf("aof: spool %s: %w", r.s.dir, err)
	}
	r.f, r.fstart = f, start
	return nil
}

// Close releases the reader's files. It does not affect the spool.
func (r *SpoolReader) Close() error {
	if r.err == nil {
		r.err = fmt.Errorf("aof: spool %s: reader closed", r.s.dir)
	}
	var err error
	if r.f != nil {
		err = r.f.Close()
		r.f = nil
	}
	r.atMu.Lock()
	if r.atF != nil {
		err = errors.Join(err, r.atF.Close())
		r.atF = nil
	}
	r.atClosed = true
	r.atMu.Unlock()
	return err
}

// ReadAt reads len(p) bytes of the stream the reader reads, wherever Read stands: the bytes after
// replication offset off (off+1 .. off+len(p)), which is how a Reader with base from (see
// NewStreamReader) gives Command.Start and Command.Rest. It reads across segment files, sees
// only fsynced bytes (past them it returns what there is and io.EOF), and fails with
// ErrTrimmed before the spool's start and ErrSpoolReset once the spool was reset under the
// reader. It never blocks on the spool's writer. It is safe to call from any goroutine,
// concurrently with Read and with other ReadAt calls (they are serialised).
func (r *SpoolReader) ReadAt(p []byte, off int64) (int, error) {
	r.atMu.Lock()
	defer r.atMu.Unlock()
	if r.atClosed {
		return 0, fmt.Errorf("aof: spool %s: ReadAt on a closed reader", r.s.dir)
	}
	if off < 0 {
		return 0, fmt.Errorf("aof: spool %s: ReadAt at negative offset %d", r.s.dir, off)
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		sg, avail, err := r.segmentAt(pos)
		if err != nil {
			return n, err
		}
		if avail <= 0 {
			return n, io.EOF
		}
		if r.atF == nil || r.atStart != sg.start {
			if err := r.openAt(sg.start, pos); err != nil {
				return n, err
			}
		}
		want := p[n : n+int(min(int64(len(p)-n), avail))]
		k, err := r.atF.ReadAt(want, pos-sg.start)
		n += k
		if k < len(want) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, fmt.Errorf("aof: spool %s: segment %s: reading offset %d: %w", r.s.dir, segName(sg.start), pos+int64(k)+1, err)
		}
	}
	return n, nil
}

// segmentAt finds the segment holding the byte after offset pos and how many fsynced bytes it
// holds from there (0 at the synced end).
func (r *SpoolReader) segmentAt(pos int64) (segment, int64, error) {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.gen != s.gen:
		return segment{}, 0, fmt.Errorf("aof: spool %s: ReadAt offset %d: %w", s.dir, pos, ErrSpoolReset)
	case pos < s.start:
		return segment{}, 0, fmt.Errorf("aof: spool %s: ReadAt offset %d, before the spool's start %d: %w", s.dir, pos, s.start, ErrTrimmed)
	case pos >= s.synced:
		return segment{}, 0, nil
	}
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].start > pos }) - 1
	if i < 0 {
		return segment{}, 0, fmt.Errorf("aof: spool %s: no segment holds offset %d", s.dir, pos+1)
	}
	sg := s.segs[i]
	return sg, min(s.synced, sg.start+sg.size) - pos, nil
}

func (r *SpoolReader) openAt(start, pos int64) error {
	if r.atF != nil {
		r.atF.Close()
		r.atF = nil
	}
	f, err := os.Open(r.s.path(start))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("aof: spool %s: ReadAt offset %d: segment %s gone: %w", r.s.dir, pos, segName(start), ErrTrimmed)
	}
	if err != nil {
		return fmt.Errorf("aof: spool %s: %w", r.s.dir, err)
	}
	r.atF, r.atStart = f, start
	return nil
}
