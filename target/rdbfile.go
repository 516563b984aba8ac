package target

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/rdb"
)

// ErrNoOplog is returned by the oplog methods of an rdb file target (StartOplog, Apply,
// Reconnect): a file takes the snapshot only. A node job writing into a file ends after its
// snapshot.
var ErrNoOplog = errors.New("target: an rdb file takes the snapshot only, not the replication stream")

// Reasons an rdb file target counts in Stats.Skipped besides the common ones.
const (
	SkipTypeUnsupported = "type_unsupported"   // a value the file's RDB version cannot hold (a stream before v9, ...)
	SkipFieldExpired    = "hash_field_expired" // hash fields whose TTL had passed, dropped on conversion
	SkipDupFunction     = "function_duplicate" // a library another node already wrote
	reasonWrite         = "write"              // Stats.Errors: the file could not be written
	reasonConvert       = "convert"            // Stats.Errors: a value that could not be parsed for conversion
)

// RDBFileOptions configure an rdb file target.
type RDBFileOptions struct {
	Path string // the file to produce; written as Path+".tmp" and renamed when finished
	// Version is the RDB version to write; 0 means the version of the first node's snapshot.
	// Entries of a newer snapshot are decoded and re-encoded for it (what the version cannot
	// hold is counted in Stats.Skipped and logged); others are copied as they are.
	Version int
	// Nodes is how many node writers (Node) will write into the file; it is finished (EOF,
	// checksum, fsync, rename) when that many have closed. 0 means 1.
	Nodes  int
	Logger *zap.Logger
	// Now returns the current time, for skipping expired keys; nil means time.Now.
	Now func() time.Time
}

// RDBFile is an RDB file being written by one or several node jobs: one encoder behind a
// mutex, SELECTDB written whenever the db changes between entries. Each node job writes
// through its own *RDBFileNode, which satisfies the daemon's writer interface:
//
//	f := target.NewRDBFile(target.RDBFileOptions{Path: "out.rdb", Nodes: 2})
//	w, err := f.Node("10.0.0.1:6379", dec.Version())
//	err = w.Restore(&e)      // each entry; expired keys skipped and counted
//	err = w.WaitRDB(ctx)     // nothing failed so far
//	err = w.Close()          // the last node's Close finishes the file
type RDBFile struct {
	opts RDBFileOptions
	log  *zap.Logger
	now  func() time.Time

	mu       sync.Mutex
	f        *os.File
	enc      *rdb.Encoder
	version  int
	db       int
	funcs    map[string]bool // libraries written, by source code
	err      error           // the first write error: the file is lost
	joined   int
	closed   int
	aborted  int
	finished bool
	done     error // the outcome of finishing
}

// NewRDBFile prepares an rdb file target; the file is created by the first Node.
func NewRDBFile(o RDBFileOptions) *RDBFile {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Nodes <= 0 {
		o.Nodes = 1
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &RDBFile{opts: o, log: o.Logger, now: now, db: -1, funcs: map[string]bool{}}
}

// Path returns the file's final path.
func (f *RDBFile) Path() string { return f.opts.Path }

// Version returns the RDB version written (0 before the first Node).
func (f *RDBFile) Version() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.version
}

// Node returns the writer of one node job whose snapshot has RDB version sourceVersion
// (0 when unknown, e.g. an AOF without preamble). The first call creates Path+".tmp".
func (f *RDBFile) Node(name string, sourceVersion int) (*RDBFileNode, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.finished {
		return nil, fmt.Errorf("target: rdb file %s: already finished", f.opts.Path)
	}
	if f.joined >= f.opts.Nodes {
		return nil, fmt.Errorf("target: rdb file %s: %d node writers already joined, %d expected", f.opts.Path, f.joined, f.opts.Nodes)
	}
	if f.f == nil {
		if err := f.create(sourceVersion); err != nil {
			return nil, err
		}
	}
	f.joined++
	n := &RDBFileNode{file: f, name: name, srcVersion: sourceVersion, log: f.log.With(zap.String("node", name)),
		skipped: map[string]uint64{}, errs: map[string]uint64{}}
	// Copy raw values when every Redis that reads the file's version reads the snapshot's.
	n.convert = sourceVersion > 0 && !canRestore(sourceVersion, f.version)
	n.log.Info("writing into rdb file", zap.String("file", f.opts.Path), zap.Int("rdb_version", f.version),
		zap.Int("source_rdb_version", sourceVersion), zap.Bool("convert", n.convert))
	return n, nil
}

// create opens the temporary file and writes the header. Called with f.mu held.
func (f *RDBFile) create(sourceVersion int) error {
	v := f.opts.Version
	if v == 0 {
		v = sourceVersion
	}
	if v <= 0 {
		v = rdb.MaxVersion
	}
	fh, err := os.OpenFile(f.opts.Path+".tmp", os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("target: rdb file: %w", err)
	}
	f.f, f.version = fh, v
	f.enc = rdb.NewEncoder(fh, v)
	if err := f.enc.WriteHeader(); err != nil {
		f.err = fmt.Errorf("target: rdb file %s: %w", f.opts.Path, err)
		return f.err
	}
	return nil
}

// write runs fn on the encoder after selecting db, under the lock, and records its error.
func (f *RDBFile) write(db int, fn func(enc *rdb.Encoder) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if f.finished {
		return fmt.Errorf("target: rdb file %s: already finished", f.opts.Path)
	}
	if db >= 0 && db != f.db {
		if err := f.enc.SelectDB(db); err != nil {
			f.err = fmt.Errorf("target: rdb file %s: %w", f.opts.Path, err)
			return f.err
		}
		f.db = db
	}
	if err := fn(f.enc); err != nil {
		f.err = fmt.Errorf("target: rdb file %s: %w", f.opts.Path, err)
		return f.err
	}
	return nil
}

// function writes a library unless one with the same code is in the file already. It
// returns false for a duplicate.
func (f *RDBFile) function(code []byte) (bool, error) {
	dup := false
	err := f.write(-1, func(enc *rdb.Encoder) error {
		if f.funcs[string(code)] {
			dup = true
			return nil
		}
		f.funcs[string(code)] = true
		return enc.WriteFunction(code)
	})
	return !dup, err
}

func (f *RDBFile) failed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// leave records that one node writer is done, complete or not, and finishes the file when it
// was the last. It returns the outcome of finishing for the last, nil for the others.
func (f *RDBFile) leave(complete bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed++
	if !complete {
		f.aborted++
	}
	if f.closed < f.opts.Nodes || f.finished {
		return nil
	}
	f.finished = true
	f.done = f.finish()
	return f.done
}

// Abandon counts a node job that ended before it could join (its source failed): the file
// will not be renamed into place. Use it instead of Node + Close.
func (f *RDBFile) Abandon() {
	f.mu.Lock()
	f.joined++
	f.mu.Unlock()
	f.leave(false)
}

// finish writes EOF and the checksum, fsyncs and renames; or, when a node failed or a write
// did, removes the temporary file. Called with f.mu held.
func (f *RDBFile) finish() error {
	tmp := f.opts.Path + ".tmp"
	if f.f == nil {
		return fmt.Errorf("target: rdb file %s: not written: no node wrote into it", f.opts.Path)
	}
	fail := func(err error) error {
		f.f.Close()
		os.Remove(tmp)
		f.log.Error("rdb file not written", zap.String("file", f.opts.Path), zap.Error(err))
		return err
	}
	if f.err != nil {
		return fail(f.err)
	}
	if f.aborted > 0 {
		return fail(fmt.Errorf("target: rdb file %s: not written: %d of %d node jobs did not finish", f.opts.Path, f.aborted, f.opts.Nodes))
	}
	if err := f.enc.Close(); err != nil {
		return fail(fmt.Errorf("target: rdb file %s: %w", f.opts.Path, err))
	}
	if err := f.f.Sync(); err != nil {
		return fail(fmt.Errorf("target: rdb file %s: fsync: %w", f.opts.Path, err))
	}
	size := int64(-1)
	if fi, err := f.f.Stat(); err == nil {
		size = fi.Size()
	}
	if err := f.f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("target: rdb file %s: %w", f.opts.Path, err)
	}
	if err := os.Rename(tmp, f.opts.Path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("target: rdb file %s: %w", f.opts.Path, err)
	}
	if d, err := os.Open(filepath.Dir(f.opts.Path)); err == nil {
		d.Sync()
		d.Close()
	}
	f.log.Info("rdb file written", zap.String("file", f.opts.Path), zap.Int("rdb_version", f.version), zap.Int64("bytes", size))
	return nil
}

// RDBFileNode is one node job's writer into an RDBFile.
type RDBFileNode struct {
	file       *RDBFile
	name       string
	srcVersion int
	convert    bool
	log        *zap.Logger

	mu        sync.Mutex
	loaded    bool // WaitRDB succeeded
	closed    bool
	closeErr  error
	written   uint64
	converted uint64
	expired   uint64
	functions uint64
	skipped   map[string]uint64
	errs      map[string]uint64
	lastErr   string
}

// Restore writes one entry: a key (its raw value, or converted for the file's version), a
// function library once per file; aux fields are dropped, module aux data counted. A key
// already expired is skipped and counted. It returns ErrNeedsRewrite (wrapped) when the value
// was not held: call Rewrite with a reader of its bytes.
func (n *RDBFileNode) Restore(e *rdb.Entry) error {
	switch e.Kind {
	case rdb.KindKey:
	case rdb.KindFunction:
		return n.function(e.Value)
	case rdb.KindModuleAux:
		n.skip(SkipModuleAux, 1)
		return nil
	default:
		return nil
	}
	if e.ExpireMs > 0 && e.ExpireMs <= n.file.now().UnixMilli() {
		n.mu.Lock()
		n.expired++
		n.skipped[SkipExpired]++
		n.mu.Unlock()
		if ce := n.log.Check(zap.DebugLevel, "expired key skipped"); ce != nil {
			ce.Write(zap.String("key", keyString(e.Key)), zap.Int("db", e.DB), zap.Int64("expire_ms", e.ExpireMs))
		}
		return nil
	}
	if e.Value == nil {
		return fmt.Errorf("target: rdb file %s: key %s: value of %d bytes not held: %w",
			n.file.opts.Path, keyString(e.Key), e.ValueLen, ErrNeedsRewrite)
	}
	return n.put(e, e.Value)
}

// Rewrite writes a key whose value the decoder did not hold, reading its raw bytes from
// value (nil: e.Value): copied in pieces into the file when the file's version takes the
// value as it is; held whole while it is converted for an older version.
func (n *RDBFileNode) Rewrite(e *rdb.Entry, value io.Reader) error {
	if value == nil {
		return n.Restore(e)
	}
	if e.ExpireMs > 0 && e.ExpireMs <= n.file.now().UnixMilli() {
		return n.Restore(e) // counted there
	}
	if !n.convert {
		err := n.file.write(e.DB, func(enc *rdb.Encoder) error {
			return enc.WriteRawEntryFrom(e.Key, e.Type, value, e.ValueLen, e.ExpireMs)
		})
		n.count(&n.written, err)
		return err
	}
	raw, err := io.ReadAll(io.LimitReader(value, e.ValueLen))
	if err == nil && int64(len(raw)) != e.ValueLen {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fmt.Errorf("target: rdb file %s: key %s: reading its value: %w", n.file.opts.Path, keyString(e.Key), err)
	}
	return n.put(e, raw)
}

// put writes a key with its raw value, converting it when the file's version is older.
func (n *RDBFileNode) put(e *rdb.Entry, raw []byte) error {
	if !n.convert {
		err := n.file.write(e.DB, func(enc *rdb.Encoder) error {
			return enc.WriteRawEntry(e.Key, e.Type, raw, e.ExpireMs)
		})
		n.count(&n.written, err)
		return err
	}
	v, err := rdb.ParseValue(e.Type, raw)
	if err != nil {
		n.mu.Lock()
		n.errs[reasonConvert]++
		n.lastErr = err.Error()
		n.mu.Unlock()
		return fmt.Errorf("target: rdb file %s: key %s: %w", n.file.opts.Path, keyString(e.Key), err)
	}
	if !n.fits(e, v) {
		return nil
	}
	err = n.file.write(e.DB, func(enc *rdb.Encoder) error {
		return enc.WriteEntry(e.Key, v, e.ExpireMs)
	})
	n.count(&n.converted, err)
	return err
}

// fits makes v something the file's version can hold: hash field TTLs are dropped before v12
// (fields already expired go, the others stay without their TTL), and each loss is counted
// and logged. It returns false when the key cannot be written at all.
func (n *RDBFileNode) fits(e *rdb.Entry, v *rdb.Value) bool {
	version := n.file.version
	var why string
	switch {
	case v.Stream != nil && version < 9:
		why = "streams need RDB version 9"
	case v.Module != nil && version < 8:
		why = "modules need RDB version 8"
	}
	if why != "" {
		n.skip(SkipTypeUnsupported, 1)
		n.log.Warn("key skipped: the rdb file's version cannot hold it", zap.String("key", keyString(e.Key)),
			zap.Int("db", e.DB), zap.String("reason", why), zap.Int("rdb_version", version))
		return false
	}
	if v.Hash == nil || version >= 12 {
		return true
	}
	now := n.file.now().UnixMilli()
	kept := v.Hash[:0]
	ttls, gone := 0, 0
	for _, f := range v.Hash {
		if f.ExpireMs != 0 {
			if f.ExpireMs <= now {
				gone++
				continue
			}
			ttls++
			f.ExpireMs = 0
		}
		kept = append(kept, f)
	}
	v.Hash = kept
	if ttls == 0 && gone == 0 {
		return true
	}
	n.skip(SkipFieldTTL, uint64(ttls))
	n.skip(SkipFieldExpired, uint64(gone))
	n.log.Warn("hash field TTLs dropped: the rdb file's version cannot hold them", zap.String("key", keyString(e.Key)),
		zap.Int("db", e.DB), zap.Int("fields_ttl_dropped", ttls), zap.Int("fields_expired_dropped", gone),
		zap.Int("rdb_version", version))
	if len(v.Hash) == 0 {
		n.mu.Lock()
		n.expired++
		n.skipped[SkipExpired]++
		n.mu.Unlock()
		return false
	}
	return true
}

func (n *RDBFileNode) function(code []byte) error {
	if n.file.version < 10 {
		n.skip(SkipFunction, 1)
		n.log.Warn("function library skipped: the rdb file's version has none", zap.Int("rdb_version", n.file.version))
		return nil
	}
	wrote, err := n.file.function(code)
	switch {
	case err != nil:
		n.count(nil, err)
	case wrote:
		n.mu.Lock()
		n.functions++
		n.mu.Unlock()
	default:
		n.skip(SkipDupFunction, 1)
	}
	return err
}

func (n *RDBFileNode) skip(reason string, k uint64) {
	if k == 0 {
		return
	}
	n.mu.Lock()
	n.skipped[reason] += k
	n.mu.Unlock()
}

// count adds one to *c, or records err.
func (n *RDBFileNode) count(c *uint64, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err != nil {
		n.errs[reasonWrite]++
		n.lastErr = err.Error()
		return
	}
	if c != nil {
		*c++
	}
}

// WaitRDB returns the file's write error, if any: entries are written as they come.
func (n *RDBFileNode) WaitRDB(ctx context.Context) error {
	if err := n.file.failed(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	n.mu.Lock()
	n.loaded = true
	n.mu.Unlock()
	return nil
}

// StartOplog returns ErrNoOplog.
func (n *RDBFileNode) StartOplog(ctx context.Context, offset int64, db int) error { return ErrNoOplog }

// Apply returns ErrNoOplog.
func (n *RDBFileNode) Apply(cmd *aof.Command, end int64) error { return ErrNoOplog }

// Reconnect returns ErrNoOplog.
func (n *RDBFileNode) Reconnect(ctx context.Context) (int64, int, error) { return 0, 0, ErrNoOplog }

// Skip does nothing: a file takes no stream, so nothing of it is ever passed either.
func (n *RDBFileNode) Skip(cmd *aof.Command, end int64, reason string) {}

// Flush does nothing: entries are written as they come, nothing is held back.
func (n *RDBFileNode) Flush() error { return nil }

// WaitOplog returns nil at once: no command is ever applied to a file, so none awaits a reply.
func (n *RDBFileNode) WaitOplog(ctx context.Context) error { return nil }

// Applied is always (0, 0): a file has no replication position.
func (n *RDBFileNode) Applied() (int64, int) { return 0, 0 }

// Stats returns this node's counters: Restored counts keys copied raw, Rewritten keys
// converted for the file's version.
func (n *RDBFileNode) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return Stats{
		Addr:       n.file.opts.Path,
		Version:    "rdb file",
		RDBVersion: n.file.Version(),
		Errors:     maps.Clone(n.errs),
		Skipped:    maps.Clone(n.skipped),
		Restored:   n.written,
		Rewritten:  n.converted,
		Expired:    n.expired,
		Functions:  n.functions,
		LastError:  n.lastErr,
	}
}

// Close ends this node's part. The file is finished when the last node closes: renamed into
// place if every node's WaitRDB succeeded, removed otherwise; that node's Close returns the
// outcome. Later calls return the first's result.
func (n *RDBFileNode) Close() error {
	n.mu.Lock()
	if n.closed {
		defer n.mu.Unlock()
		return n.closeErr
	}
	n.closed = true
	loaded := n.loaded
	n.mu.Unlock()
	err := n.file.leave(loaded)
	n.mu.Lock()
	n.closeErr = err
	n.mu.Unlock()
	return err
}

// Abort marks this node's part as failed, whatever WaitRDB said: when the last node closes,
// the file is removed instead of renamed into place.
func (n *RDBFileNode) Abort() {
	n.mu.Lock()
	n.loaded = false
	n.mu.Unlock()
}

// rdbFileTarget is an `rdb file` target: one RDBFile, made when the first source node needs it,
// that every node's Writer writes into.
type rdbFileTarget struct {
	cfg  Config
	path string
	once sync.Once
	f    *RDBFile
}

func newRDBFileTarget(c Config) (Target, error) {
	if len(c.Servers) == 0 || c.Servers[0].Addr == "" {
		return nil, errors.New("target rdb file: no path")
	}
	return &rdbFileTarget{cfg: c, path: c.Servers[0].Addr}, nil
}

// file returns the RDBFile, made the first time with Config.Nodes node writers to wait for.
func (t *rdbFileTarget) file() *RDBFile {
	t.once.Do(func() {
		nodes := 1
		if t.cfg.Nodes != nil {
			nodes = t.cfg.Nodes()
		}
		t.f = NewRDBFile(RDBFileOptions{Path: t.path, Version: t.cfg.RDBVersion, Nodes: nodes,
			Logger: t.cfg.Logger.Named("rdbfile"), Now: t.cfg.Now})
	})
	return t.f
}

// Traits: a file takes the snapshot only, and keeps no checkpoint.
func (t *rdbFileTarget) Traits() Traits { return Traits{} }

// Writer joins the file (see RDBFile.Node).
func (t *rdbFileTarget) Writer(ctx context.Context, o WriterOptions) (Writer, error) {
	if o.CheckpointKey != "" {
		return nil, fmt.Errorf("target: rdb file %s: no checkpoint can be kept in a file (checkpoint key %q)", t.path, o.CheckpointKey)
	}
	return t.file().Node(o.Name, o.SourceRDBVersion)
}

// ReadCheckpoint finds none: a file keeps no checkpoint.
func (t *rdbFileTarget) ReadCheckpoint(context.Context, string) (Checkpoint, bool, error) {
	return Checkpoint{}, false, nil
}

// ClearCheckpoint has nothing to delete.
func (t *rdbFileTarget) ClearCheckpoint(context.Context, string) error { return nil }

// FlushAll does nothing and says so: each job writes a new file.
func (t *rdbFileTarget) FlushAll(context.Context) (bool, error) { return false, nil }

// Abandon counts a node that will not join (RDBFile.Abandon).
func (t *rdbFileTarget) Abandon() { t.file().Abandon() }

// Close does nothing: the file is finished by the last node's Writer (or Abandon).
func (t *rdbFileTarget) Close() error { return nil }

// CheckTarget has nothing to check: a file keeps no checkpoint.
func (n *RDBFileNode) CheckTarget(context.Context) error { return nil }
