package aof

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Spool errors, wrapped with the spool's place.
var (
	ErrSpoolFull   = errors.New("spool full")
	ErrSpoolClosed = errors.New("spool closed")
	ErrTrimmed     = errors.New("offset trimmed from spool")
	ErrSpoolReset  = errors.New("spool reset under reader")
)

// DefaultSegmentBytes is the size of a spool segment when SpoolOptions leaves it 0.
const DefaultSegmentBytes = 64 << 20

const (
	segSuffix     = ".seg"
	segNameDigits = 20
	writeBufBytes = 256 << 10
)

// SpoolOptions configures a Spool.
type SpoolOptions struct {
	SegmentBytes int64 // bytes per segment file; 0 means DefaultSegmentBytes
	MaxBytes     int64 // most bytes held (End-Start); 0 means unlimited
}

type segment struct {
	start int64 // the offset before its first byte: it holds start+1 .. start+size
	size  int64 // bytes appended, buffered ones included
}

// Spool is the on-disk copy of one master's replication stream: files named
// `<start offset, 20 digits>.seg` in one directory. Offsets are replication offsets; a spool
// starting at S holds the stream's bytes S+1 .. End().
//
// One writer appends (Append, Sync, Trim, Reset, Close may be called from any goroutine and
// are serialised), and any number of SpoolReaders tail it concurrently, seeing only fsynced
// bytes and blocking until Sync makes more of them durable.
type Spool struct {
	dir  string
	opts SpoolOptions

	wmu sync.Mutex // serialises writers; guards f and w
	f   *os.File   // the last segment, open for appending
	w   *bufio.Writer

	mu      sync.Mutex // guards the fields below, shared with readers
	segs    []segment  // in order; the last one is being appended to
	start   int64
	end     int64
	synced  int64
	gen     int64         // incremented by Reset, so readers notice
	notify  chan struct{} // closed and replaced when synced moves or the spool closes
	closed  bool
	closeCh chan struct{}
}

// OpenSpool opens the spool in dir, creating dir if needed, and reopens its segments: the
// spool ends where its last segment ends (a tail cut short by a crash is fine). An empty
// directory gives an empty spool starting at 0; call Reset to start elsewhere.
func OpenSpool(dir string, opts SpoolOptions) (*Spool, error) {
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("aof: spool %s: %w", dir, err)
	}
	s := &Spool{dir: dir, opts: opts, notify: make(chan struct{}), closeCh: make(chan struct{})}
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	for i, sg := range segs {
		if i > 0 {
			prev := segs[i-1]
			if prev.start+prev.size != sg.start {
				return nil, fmt.Errorf("aof: spool %s: segment %s holds %d bytes but the next starts at %d: gap or overlap",
					dir, segName(prev.start), prev.size, sg.start)
			}
		}
	}
	s.segs = segs
	if len(segs) > 0 {
		last := segs[len(segs)-1]
		f, err := os.OpenFile(s.path(last.start), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return nil, fmt.Errorf("aof: spool %s: %w", dir, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("aof: spool %s: sync %s: %w", dir, segName(last.start), err)
		}
		s.f = f
		s.w = bufio.NewWriterSize(f, writeBufBytes)
		s.start = segs[0].start
		s.end = last.start + last.size
		s.synced = s.end
	}
	return s, nil
}

func listSegments(dir string) ([]segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("aof: spool %s: %w", dir, err)
	}
	var segs []segment
	for _, e := range ents {
		start, ok := parseSegName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("aof: spool %s: %w", dir, err)
		}
		segs = append(segs, segment{start: start, size: info.Size()})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].start < segs[j].start })
	return segs, nil
}

func segName(start int64) string {
	return fmt.Sprintf("%0*d%s", segNameDigits, start, segSuffix)
}

func parseSegName(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(digits) != segNameDigits {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(digits, 10, 64)
	return v, err == nil
}

func (s *Spool) path(start int64) string { return filepath.Join(s.dir, segName(start)) }

// Dir returns the spool's directory.
func (s *Spool) Dir() string { return s.dir }

// Start returns the offset before the first byte held.
func (s *Spool) Start() int64 { s.mu.Lock(); defer s.mu.Unlock(); return s.start }

// End returns the offset of the last byte appended, buffered or not.
func (s *Spool) End() int64 { s.mu.Lock(); defer s.mu.Unlock(); return s.end }

// Synced returns the offset of the last byte known to be on disk.
func (s *Spool) Synced() int64 { s.mu.Lock(); defer s.mu.Unlock(); return s.synced }

// Size returns the number of bytes held, End() - Start().
func (s *Spool) Size() int64 { s.mu.Lock(); defer s.mu.Unlock(); return s.end - s.start }

// Reset deletes every segment; the next Append begins at offset start. Open readers fail with
// ErrSpoolReset.
func (s *Spool) Reset(start int64) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.checkOpen(); err != nil {
		return err
	}
	if start < 0 {
		return fmt.Errorf("aof: spool %s: reset to negative offset %d", s.dir, start)
	}
	if s.f != nil {
		s.f.Close() // its buffered bytes are discarded with it
		s.f = nil
	}
	s.mu.Lock()
	segs := s.segs
	s.segs = nil
	s.start, s.end, s.synced = start, start, start
	s.gen++
	s.wakeLocked()
	s.mu.Unlock()
	for _, sg := range segs {
		if err := os.Remove(s.path(sg.start)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("aof: spool %s: reset: %w", s.dir, err)
		}
	}
	// The empty first segment records the start offset for a reopen.
	return s.newSegment(start)
}

// newSegment creates the segment starting at start and makes it the one appended to. The
// caller holds wmu and has closed the previous one.
func (s *Spool) newSegment(start int64) error {
	f, err := os.OpenFile(s.path(start), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("aof: spool %s: %w", s.dir, err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return fmt.Errorf("aof: spool %s: %w", s.dir, err)
	}
	s.f = f
	if s.w == nil {
		s.w = bufio.NewWriterSize(f, writeBufBytes)
	} else {
		s.w.Reset(f)
	}
	s.mu.Lock()
	s.segs = append(s.segs, segment{start: start})
	s.mu.Unlock()
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Append adds p to the end of the spool. The bytes are buffered: readers see them after Sync.
// It fails with ErrSpoolFull, wrapped, when the spool would hold more than MaxBytes, and then
// appends nothing.
func (s *Spool) Append(p []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.checkOpen(); err != nil {
		return err
	}
	s.mu.Lock()
	start, end := s.start, s.end
	s.mu.Unlock()
	if s.opts.MaxBytes > 0 && end-start+int64(len(p)) > s.opts.MaxBytes {
		return fmt.Errorf("aof: spool %s: appending %d bytes at offset %d: %d bytes held, max %d: %w",
			s.dir, len(p), end, end-start, s.opts.MaxBytes, ErrSpoolFull)
	}
	if s.f == nil {
		if err := s.newSegment(end); err != nil {
			return err
		}
	}
	for len(p) > 0 {
		s.mu.Lock()
		room := s.opts.SegmentBytes - s.segs[len(s.segs)-1].size
		s.mu.Unlock()
		if room <= 0 {
			if err := s.rotate(); err != nil {
				return err
			}
			continue
		}
		chunk := p[:min(int64(len(p)), room)]
		n, err := s.w.Write(chunk)
		s.mu.Lock()
		s.segs[len(s.segs)-1].size += int64(n)
		s.end += int64(n)
		s.mu.Unlock()
		if err != nil {
			return fmt.Errorf("aof: spool %s: write at offset %d: %w", s.dir, end, err)
		}
		p = p[n:]
	}
	return nil
}

// rotate syncs and closes the full segment and opens the next one.
func (s *Spool) rotate() error {
	if err := s.syncLocked(); err != nil {
		return err
	}
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("aof: spool %s: close: %w", s.dir, err)
	}
	s.f = nil
	s.mu.Lock()
	end := s.end
	s.mu.Unlock()
	return s.newSegment(end)
}

// Rewind drops what was appended after the last fsync, after a write or fsync that failed (the
// disk full): End() is Synced() again, so the next PSYNC asks for the first byte not on disk,
// and nothing counts as received that is not there. Readers never saw those bytes (they read
// fsynced bytes only).
func (s *Spool) Rewind() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.checkOpen(); err != nil {
		return err
	}
	s.mu.Lock()
	end, synced := s.end, s.synced
	s.mu.Unlock()
	if end == synced || s.f == nil {
		return nil
	}
	s.mu.Lock()
	last := &s.segs[len(s.segs)-1]
	if synced < last.start {
		s.mu.Unlock()
		return fmt.Errorf("aof: spool %s: rewind to %d: before the segment at %d", s.dir, synced, last.start)
	}
	last.size = synced - last.start
	s.end = synced
	size := last.size
	s.mu.Unlock()
	s.w.Reset(s.f) // the buffered bytes, and the write error the buffer keeps, go
	if err := s.f.Truncate(size); err != nil {
		return fmt.Errorf("aof: spool %s: rewind to %d: %w", s.dir, synced, err)
	}
	return nil
}

// Sync writes the buffered bytes and fsyncs them; then Synced() == End() and blocked readers
// wake up.
func (s *Spool) Sync() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.checkOpen(); err != nil {
		return err
	}
	return s.syncLocked()
}

func (s *Spool) syncLocked() error {
	if s.f == nil {
		return nil
	}
	s.mu.Lock()
	end, synced := s.end, s.synced
	s.mu.Unlock()
	if end == synced && s.w.Buffered() == 0 {
		return nil // nothing new: no fsync
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("aof: spool %s: flush at offset %d: %w", s.dir, end, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("aof: spool %s: fsync at offset %d: %w", s.dir, end, err)
	}
	s.mu.Lock()
	if s.synced != end {
		s.synced = end
		s.wakeLocked()
	}
	s.mu.Unlock()
	return nil
}

// wakeLocked wakes every blocked reader. The caller holds mu.
func (s *Spool) wakeLocked() {
	close(s.notify)
	s.notify = make(chan struct{})
}

// Trim deletes the segments whose bytes all lie at or before offset upTo. The one being
// appended to goes too when everything it holds is fsynced and applied: a new, empty one takes
// its place (a spool that filled its disk, with the target caught up, must give the room back).
// Start() moves to the first segment kept.
func (s *Spool) Trim(upTo int64) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.checkOpen(); err != nil {
		return err
	}
	s.mu.Lock()
	last := s.segs[len(s.segs)-1]
	whole := s.f != nil && last.size > 0 && s.end == s.synced && upTo >= s.end
	s.mu.Unlock()
	if whole {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	var drop []segment
	for len(s.segs) > 1 && s.segs[0].start+s.segs[0].size <= upTo {
		drop = append(drop, s.segs[0])
		s.segs = s.segs[1:]
	}
	if len(drop) > 0 {
		s.start = s.segs[0].start
		s.wakeLocked() // a reader waiting at the end of a dropped segment lets go of it
	}
	s.mu.Unlock()
	for _, sg := range drop {
		if err := os.Remove(s.path(sg.start)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("aof: spool %s: trim: %w", s.dir, err)
		}
	}
	return nil
}

// Close syncs the spool and closes it. Blocked readers return ErrSpoolClosed.
func (s *Spool) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.checkOpen(); err != nil {
		return err
	}
	err := s.syncLocked()
	if s.f != nil {
		if cerr := s.f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("aof: spool %s: close: %w", s.dir, cerr)
		}
		s.f = nil
	}
	s.mu.Lock()
	s.closed = true
	close(s.closeCh)
	s.mu.Unlock()
	return err
}

func (s *Spool) checkOpen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("aof: spool %s: %w", s.dir, ErrSpoolClosed)
	}
	return nil
}
