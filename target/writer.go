package target

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/rdb"
)

// ErrNeedsRewrite is returned by Restore for a key whose value the decoder did not hold (Value
// nil, over its raw limit): call Rewrite with a reader of the value's bytes.
var ErrNeedsRewrite = errors.New("target: entry needs rewriting into native commands")

// ErrRetry is returned by Apply once the target refused an oplog command for now (LOADING, BUSY,
// TRYAGAIN): the applied position stays before it; Reconnect and resend from Applied().
var ErrRetry = errors.New("target: command refused for now; reconnect and resend from the applied offset")

// ErrRedirected wraps ErrRetry when what the target refused was sent to a node that no longer
// serves it (a cluster's slot moving: MOVED, ASK, TRYAGAIN on a checkpointed batch): the
// target is fine, the stream is resent after Reconnect reads the new slot map. Counted in
// Stats.Retried, not as an error.
var ErrRedirected = fmt.Errorf("target: part of the stream redirected: %w", ErrRetry)

// SingleOptions configure a writer to a single Redis server.
type SingleOptions struct {
	Conn             Options // address, auth, TLS, window; OnReply and Name are set by Single
	Conns            int     // connections for the RDB phase; 0 means 4
	SourceRDBVersion int     // RDB version of the source's snapshot (DUMP payload version)
	BigKeyBytes      int64   // see Config.BigKeyBytes; 0 means no limit
	Logger           *zap.Logger
	// Now returns the current time, for skipping expired keys; nil means time.Now.
	Now func() time.Time
	// CheckpointKey, when set, makes the oplog exactly once: commands go in transactions that
	// also store the position after them under this key (db 0). See checkpoint.go.
	CheckpointKey string
	// Replid returns the source's replication ID, stored with each checkpoint.
	Replid func() string
}

// Request kinds carried in Tag.Kind.
const (
	kindSelect uint8 = iota + 1
	kindRestore
	kindExpire
	kindFunction
	kindOplog   // a data command of the stream: its reply moves the applied offset
	kindOplogTx // MULTI and the commands it queues: only EXEC's reply moves the offset
	kindRewrite // a native command of a rewritten key
	kindMSet    // RDB strings without expiry, several keys in one MSET
)

// Reasons for skipped commands and keys, as counted in Stats.Skipped.
const (
	SkipControl   = "control"         // PING, REPLCONF: replication chatter, never forwarded
	SkipPubSub    = "pubsub"          // PUBLISH, SPUBLISH
	SkipExpired   = "expired_skipped" // RDB keys whose expiry had passed
	SkipEmpty     = "empty"           // a command with no arguments
	SkipFunction  = "function_unsupported"
	SkipFieldTTL  = "hash_field_ttl" // a hash field's expiry the target cannot hold (< 7.4)
	SkipModuleAux = "module_aux"     // module auxiliary data: no command carries it
	ReasonBroken  = "broken"         // requests failed by a broken connection (in Stats.Errors)
	// ReasonAfterRefusal counts oplog commands applied behind a refused one (in Stats.Errors):
	// the resend from Applied() runs them a second time.
	ReasonAfterRefusal = "applied_after_refusal"
)

// Single writes to a `single` target: RESTOREs over several connections for the RDB phase, then
// the oplog in order over one pipelined connection.
//
// Restore, Rewrite, Function and WaitRDB are called from one goroutine; StartOplog, Apply,
// Reconnect and WaitOplog from one goroutine (the same or another, once WaitRDB returned);
// Stats, Applied and Info from any goroutine.

type Single struct {
	opts SingleOptions
	ctx  context.Context
	log  *zap.Logger
	info ServerInfo
	now  func() time.Time

	restorable bool
	rdbConns   []*rdbConn
	next       int

	// RDB strings without expiry wait here to go as one MSET: one command for many keys costs
	// the target far less than a RESTORE each. Not on a cluster node (keys of many slots).
	multiKey bool
	strs     stringBatch

	// oplog sender state, used only by the goroutine calling Apply.
	oplog      *Conn
	oplogDB    int
	inTx       bool // inside the source's own MULTI/EXEC
	batchOpen  bool // our MULTI of a checkpointed batch is sent
	batchCmds  int
	batchBytes int64
	batchEnd   int64 // offset after the last command the open batch covers
	sentEnd    int64 // the furthest batchEnd a sent EXEC stores
	// ackedCP is the checkpoint the target last acknowledged (the stream's start, or the last
	// batch whose EXEC came back), under mu: what it must hold at least; acked says there is one.
	ackedCP Checkpoint
	acked   bool
	oplogID int64 // the oplog connection's CLIENT ID on the target; 0 unknown

	// Big commands of the stream and values not held (bigcmd_single.go, restoreFrom).
	batchOneBig bool   // the open batch is one re-chunked big command (its EXEC's Part is 1)
	errEnd      int64  // the end offset of the last oplog command whose error was counted (reply reader)
	head        []byte // scratch for the heads of big commands' chunks (oplog goroutine)
	rdbHead     []byte // scratch for the heads of RESTOREs of values not held (RDB goroutine)

	restored, rewritten, rewriteReplies, expired, functions, retried atomic.Uint64
	streamedRestores                                                 atomic.Uint64 // RESTOREs of values not held, copied from the snapshot
	bigStreamed, bigChunked, bigChunks                               atomic.Uint64 // big commands of the stream
	retryBig                                                         atomic.Bool   // the retry list holds more than retryLimit bytes
	retryLimit                                                       int64

	mu        sync.Mutex // guards everything below
	errs      map[string]uint64
	skipped   map[string]uint64
	lastErr   string
	retry     []retryReq
	retryLen  int64 // bytes held in retry
	applied   int64
	appliedDB int
	pending   int // oplog requests sent and not yet answered
	skipEnd   int64
	skipDB    int
	hasSkip   bool
	stalled   bool           // an oplog command was refused for now: Apply returns ErrRetry
	failed    bool           // an oplog command failed with its connection: Applied stays before it
	stalls    int            // successive Reconnects after a refusal (oplog goroutine only)
	poisoned  map[int64]bool // end offsets of commands refused while queueing: left out on resend
}

type rdbConn struct {
	c  *Conn
	db int
}

type retryReq struct {
	db     int
	kind   uint8
	key    []byte
	count  int
	cmd    []byte
	body   body // the body of cmd, when it has one (a RESTORE of a value not held)
	reason string
}

// NewSingle asks the target its version (INFO server) and opens the RDB-phase connections.
// ctx bounds the whole life of the writer: cancelling it unblocks every wait for window room.
func NewSingle(ctx context.Context, o SingleOptions) (*Single, error) {
	s, err := newHookedSingle(ctx, o, nil)
	if err != nil {
		return nil, err
	}
	s.multiKey = true
	s.logConnected()
	return s, nil
}

// logConnected logs what the Single learned of its target.
func (s *Single) logConnected() {
	s.log.Info("target connected", zap.String("version", s.info.Version),
		zap.Int("rdb_version", s.info.RDBVersion), zap.Int("source_rdb_version", s.opts.SourceRDBVersion),
		zap.Bool("restore", s.restorable), zap.Bool("absttl", s.info.AbsTTL))
}

// newHookedSingle is NewSingle without its log line, with hook (when not nil) called first on
// every RDB-phase reply: a reply the hook takes (returns true for) is not seen by the Single.
// Cluster uses it for one Single per master, whose MOVED/ASK replies it handles itself.
func newHookedSingle(ctx context.Context, o SingleOptions, hook func(t *Tag, r *Reply) bool) (*Single, error) {
	if o.Conns <= 0 {
		o.Conns = 4
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Single{
		opts:    o,
		ctx:     ctx,
		log:     o.Logger.With(zap.String("target", o.Conn.Addr)),
		now:     o.Now,
		errs:    make(map[string]uint64),
		skipped: make(map[string]uint64),
	}
	s.retryLimit = o.Conn.WindowBytes
	if s.retryLimit <= 0 {
		s.retryLimit = 16 << 20
	}
	onReply := s.onRDBReply
	if hook != nil {
		onReply = func(t *Tag, r *Reply) {
			if !hook(t, r) {
				s.onRDBReply(t, r)
			}
		}
	}
	for i := range o.Conns {
		co := o.Conn
		co.Logger = o.Logger
		co.Name = "rdb-" + strconv.Itoa(i)
		co.OnReply = onReply
		c, err := Dial(ctx, co)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.rdbConns = append(s.rdbConns, &rdbConn{c: c, db: co.DB})
	}
	rep, err := s.rdbConns[0].c.Do(ctx, "INFO", "server")
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("target %s: INFO server: %w", o.Conn.Addr, err)
	}
	if s.info, err = parseServerInfo(rep.Str); err != nil {
		s.Close()
		return nil, fmt.Errorf("target %s: %w", o.Conn.Addr, err)
	}
	s.restorable = canRestore(o.SourceRDBVersion, s.info.RDBVersion)
	return s, nil
}

// Info returns what NewSingle learned about the target.
func (s *Single) Info() ServerInfo { return s.info }

// Restore queues one RDB entry: a key as RESTORE (skipped and counted when already expired), a
// function library as FUNCTION LOAD; aux fields are ignored. The entry's slices are copied
// before Restore returns. Keys RESTORE cannot carry (an RDB version newer than the target's, a
// value over BigKeyBytes) go through Rewrite. It returns ErrNeedsRewrite (wrapped) when the
// value is not held (Rewrite then needs a reader), and an error wrapping ErrBroken when a
// connection broke.
func (s *Single) Restore(e *rdb.Entry) error {
	switch e.Kind {
	case rdb.KindKey:
	case rdb.KindFunction:
		return s.Function(e.Value)
	case rdb.KindModuleAux:
		s.countSkip(SkipModuleAux)
		return nil
	default: // aux fields describe the file, not data
		return nil
	}
	if s.skipExpired(e) {
		return nil
	}
	switch {
	case e.Value == nil:
		return fmt.Errorf("target %s: key %s: value of %d bytes not held: %w",
			s.opts.Conn.Addr, keyString(e.Key), e.ValueLen, ErrNeedsRewrite)
	case !s.restorable, s.opts.BigKeyBytes > 0 && int64(len(e.Value)) > s.opts.BigKeyBytes:
		return s.Rewrite(e, nil)
	}
	if s.retryBig.Load() {
		// Refused requests are held for resending: bound them by resending now.
		if err := s.WaitRDB(s.ctx); err != nil {
			return err
		}
	}
	if s.multiKey && e.Type == rdb.TypeString && e.ExpireMs == 0 {
		if s.strs.n > 0 && s.strs.db != e.DB {
			if err := s.flushStrings(); err != nil {
				return err
			}
		}
		if s.strs.add(e) {
			if s.strs.full() {
				return s.flushStrings()
			}
			return nil
		}
	}
	rc, err := s.rdbConnFor(e.DB)
	if err != nil {
		return err
	}
	buf, err := rc.c.Begin(s.ctx)
	if err != nil {
		return err
	}
	buf = s.appendRestoreHead(buf, e, int64(len(e.Value)))
	buf = rdb.DumpPayload(buf, e.Type, e.Value, s.opts.SourceRDBVersion)
	buf = s.appendRestoreTail(buf)
	rc.c.Commit(buf, Tag{DB: e.DB, Kind: kindRestore, Key: e.Key})
	return s.expireAfterRestore(rc, e)
}

// appendRestoreHead appends `RESTORE key ttl` and the payload's bulk header, for a value of n
// bytes.
func (s *Single) appendRestoreHead(buf []byte, e *rdb.Entry, n int64) []byte {
	ttl, args := int64(0), 4
	if s.info.AbsTTL {
		ttl = e.ExpireMs
		args++
	}
	if s.info.Replace {
		args++
	}
	buf = appendArrayHeader(buf, args)
	buf = appendBulkString(buf, "RESTORE")
	buf = appendBulk(buf, e.Key)
	buf = appendBulkInt(buf, ttl)
	return appendBulkHeader64(buf, 1+n+2+8) // type, value, version, CRC64
}

// appendRestoreTail appends what follows the payload: its CRLF, REPLACE and ABSTTL.
func (s *Single) appendRestoreTail(buf []byte) []byte {
	buf = append(buf, '\r', '\n')
	if s.info.Replace {
		buf = appendBulkString(buf, "REPLACE")
	}
	if s.info.AbsTTL {
		buf = appendBulkString(buf, "ABSTTL")
	}
	return buf
}

// expireAfterRestore sends PEXPIREAT after a RESTORE, on a target without ABSTTL.
func (s *Single) expireAfterRestore(rc *rdbConn, e *rdb.Entry) error {
	if s.info.AbsTTL || e.ExpireMs <= 0 {
		return nil
	}
	buf, err := rc.c.Begin(s.ctx)
	if err != nil {
		return err
	}
	buf = appendArrayHeader(buf, 3)
	buf = appendBulkString(buf, "PEXPIREAT")
	buf = appendBulk(buf, e.Key)
	buf = appendBulkInt(buf, e.ExpireMs)
	rc.c.Commit(buf, Tag{DB: e.DB, Kind: kindExpire, Key: e.Key})
	return nil
}

// restoreFrom sends one RESTORE of a value the decoder did not hold: the head, then the DUMP
// payload copied from value (the value's section of the snapshot) by the connection's writer,
// its CRC64 computed while copying, so that a value of any size goes in bounded memory, and
// read again for a resend.
func (s *Single) restoreFrom(e *rdb.Entry, value io.ReaderAt) error {
	if s.retryBig.Load() {
		if err := s.WaitRDB(s.ctx); err != nil {
			return err
		}
	}
	rc, err := s.rdbConnFor(e.DB)
	if err != nil {
		return err
	}
	s.rdbHead = s.appendRestoreHead(s.rdbHead[:0], e, e.ValueLen)
	b := newRestoreBody(e.Type, value, e.ValueLen, s.opts.SourceRDBVersion, s.appendRestoreTail(nil))
	if err := rc.c.sendBody(s.ctx, Tag{DB: e.DB, Kind: kindRestore, Key: e.Key}, s.rdbHead, b, false); err != nil {
		return err
	}
	s.streamedRestores.Add(1)
	return s.expireAfterRestore(rc, e)
}

// rdbConnFor picks the next RDB-phase connection, round robin, and selects db on it.
func (s *Single) rdbConnFor(db int) (*rdbConn, error) {
	rc := s.rdbConns[s.next]
	s.next++
	if s.next == len(s.rdbConns) {
		s.next = 0
	}
	return rc, rc.selectDB(s.ctx, db)
}

// flushStrings sends the strings batched so far as one MSET.
func (s *Single) flushStrings() error {
	b := &s.strs
	if b.n == 0 {
		return nil
	}
	rc, err := s.rdbConnFor(b.db)
	if err != nil {
		return err
	}
	buf, err := rc.c.Begin(s.ctx)
	if err != nil {
		return err
	}
	buf = appendArrayHeader(buf, 1+2*b.n)
	buf = appendBulkString(buf, "MSET")
	buf = append(buf, b.args...)
	rc.c.Commit(buf, Tag{DB: b.db, Kind: kindMSet, Key: b.first, Count: b.n})
	b.reset()
	return nil
}

// skipExpired counts and skips a key whose expiry has passed.
func (s *Single) skipExpired(e *rdb.Entry) bool {
	if e.ExpireMs <= 0 || e.ExpireMs > s.now().UnixMilli() {
		return false
	}
	s.expired.Add(1)
	if ce := s.log.Check(zap.DebugLevel, "expired key skipped"); ce != nil {
		ce.Write(zap.String("key", keyString(e.Key)), zap.Int("db", e.DB), zap.Int64("expire_ms", e.ExpireMs))
	}
	return true
}

// selectDB sends SELECT when the connection's db is not db.
func (rc *rdbConn) selectDB(ctx context.Context, db int) error {
	if rc.db == db {
		return nil
	}
	buf, err := rc.c.Begin(ctx)
	if err != nil {
		return err
	}
	buf = appendArrayHeader(buf, 2)
	buf = appendBulkString(buf, "SELECT")
	buf = appendBulkInt(buf, int64(db))
	rc.c.Commit(buf, Tag{DB: db, Kind: kindSelect})
	rc.db = db
	return nil
}

// Function queues FUNCTION LOAD REPLACE with a library's source code. A target older than 7.0
// has no functions: the library is counted as skipped and an error returned.
func (s *Single) Function(code []byte) error {
	if !s.info.Functions {
		s.countSkip(SkipFunction)
		return fmt.Errorf("target %s: version %s has no FUNCTION LOAD", s.opts.Conn.Addr, s.info.Version)
	}
	rc := s.rdbConns[0]
	buf, err := rc.c.Begin(s.ctx)
	if err != nil {
		return err
	}
	buf = appendArrayHeader(buf, 4)
	buf = appendBulkString(buf, "FUNCTION")
	buf = appendBulkString(buf, "LOAD")
	buf = appendBulkString(buf, "REPLACE")
	buf = appendBulk(buf, code)
	rc.c.Commit(buf, Tag{DB: rc.db, Kind: kindFunction})
	return nil
}

// onRDBReply runs on the RDB connections' reply readers.
func (s *Single) onRDBReply(t *Tag, r *Reply) {
	switch r.Kind {
	case KindFailed:
		s.countErr(ReasonBroken, t, r.Err)
	case KindError:
		re := r.Err.(*ReplyError)
		if re.Retryable() && (t.Kind == kindRestore || t.Kind == kindMSet || t.Kind == kindExpire || t.Kind == kindFunction) {
			s.retried.Add(1)
			s.mu.Lock()
			s.retry = append(s.retry, retryReq{db: t.DB, kind: t.Kind, key: append([]byte(nil), t.Key...),
				count: t.Count, cmd: append([]byte(nil), t.Cmd...), body: t.body, reason: re.Prefix})
			s.retryLen += int64(len(t.Cmd) + len(t.Key))
			s.retryBig.Store(s.retryLen > s.retryLimit)
			s.mu.Unlock()
			return
		}
		s.countErr(re.Prefix, t, re)
	default:
		switch t.Kind {
		case kindRestore:
			s.restored.Add(1)
		case kindMSet:
			s.restored.Add(uint64(t.Count))
		case kindRewrite:
			s.rewriteReplies.Add(1)
		case kindFunction:
			s.functions.Add(1)
		}
	}
}

// Error replies of one reason are logged one by one up to logEvery, then one in logEvery (with
// the count), so a target refusing everything cannot flood the log; all are counted.
const logEvery = 1000

func (s *Single) countErr(reason string, t *Tag, err error) {
	keys := uint64(max(t.Count, 1))
	s.mu.Lock()
	before := s.errs[reason]
	s.errs[reason] += keys
	n := s.errs[reason]
	s.lastErr = err.Error()
	s.mu.Unlock()
	if n <= logEvery || n/logEvery != before/logEvery {
		fields := []zap.Field{zap.String("reason", reason), zap.Uint64("count", n),
			zap.String("key", keyString(t.Key)), zap.Int("db", t.DB), zap.Int64("offset", t.Offset), zap.Error(err)}
		if keys > 1 {
			fields = append(fields, zap.Uint64("keys_in_request", keys))
		}
		s.log.Warn("target error", fields...)
	}
}

func (s *Single) countSkip(reason string) {
	s.mu.Lock()
	s.skipped[reason]++
	s.mu.Unlock()
}

// Retry policy for LOADING, BUSY and TRYAGAIN replies during the RDB phase (RESTORE ... REPLACE
// is idempotent, so sending it again is safe).
const (
	retryAttempts = 200 // about 6.5 minutes: a big target can stay LOADING that long
	retryFirst    = 50 * time.Millisecond
	retryMax      = 2 * time.Second
)

// WaitRDB returns when every RDB-phase request has its reply, after resending those refused
// with LOADING/BUSY/TRYAGAIN with backoff. Error replies are counted and logged, not returned:
// WaitRDB returns an error only when a connection broke or ctx ended.
func (s *Single) WaitRDB(ctx context.Context) error {
	if err := s.flushStrings(); err != nil {
		return err
	}
	backoff := retryFirst
	for attempt := 0; ; attempt++ {
		for _, rc := range s.rdbConns {
			if err := rc.c.Drain(ctx); err != nil {
				return err
			}
		}
		s.mu.Lock()
		retry := s.retry
		s.retry, s.retryLen = nil, 0
		s.retryBig.Store(false)
		s.mu.Unlock()
		if len(retry) == 0 {
			return nil
		}
		if attempt >= retryAttempts {
			for _, r := range retry {
				s.countErr(r.reason, &Tag{DB: r.db, Key: r.key, Count: r.count}, fmt.Errorf("still %s after %d attempts", r.reason, attempt))
			}
			return nil
		}
		tm := time.NewTimer(backoff)
		select {
		case <-tm.C:
		case <-ctx.Done():
			tm.Stop()
			return ctx.Err()
		}
		backoff = min(2*backoff, retryMax)
		// One connection, in the order the refusals came: a PEXPIREAT must follow its RESTORE.
		rc := s.rdbConns[0]
		for _, r := range retry {
			if err := rc.selectDB(ctx, r.db); err != nil {
				return err
			}
			tag := Tag{DB: r.db, Kind: r.kind, Key: r.key, Count: r.count}
			if r.body != nil {
				if err := rc.c.sendBody(ctx, tag, r.cmd, r.body, false); err != nil {
					return err
				}
				continue
			}
			if err := rc.c.SendRaw(ctx, tag, r.cmd); err != nil {
				return err
			}
		}
	}
}

// Abort does nothing: what a single target acknowledged is there, and a failed job's next
// snapshot (a full sync) replaces it.
func (s *Single) Abort() {}

// Close closes every connection; requests still in flight are failed.
func (s *Single) Close() error {
	for _, rc := range s.rdbConns {
		rc.c.Close()
	}
	if s.oplog != nil {
		s.oplog.Close()
	}
	return nil
}

// singleTarget is a `single` target: one Redis server, with exactly-once checkpoints.
type singleTarget struct {
	cfg  Config
	conn Options // the server's connection settings, Addr set
}

func newSingleTarget(c Config) (Target, error) {
	if len(c.Servers) == 0 || c.Servers[0].Addr == "" {
		return nil, errors.New("target single: no server")
	}
	t := &singleTarget{cfg: c, conn: c.Conn}
	t.conn.Addr = c.Servers[0].Addr
	return t, nil
}

func (t *singleTarget) Traits() Traits { return Traits{Stream: true, Checkpoint: true} }

func (t *singleTarget) Writer(ctx context.Context, o WriterOptions) (Writer, error) {
	w, err := NewSingle(ctx, SingleOptions{
		Conn:             t.conn,
		Conns:            t.cfg.Conns,
		SourceRDBVersion: o.SourceRDBVersion,
		BigKeyBytes:      t.cfg.BigKeyBytes,
		Logger:           t.cfg.nodeLogger(o),
		Now:              t.cfg.Now,
		CheckpointKey:    o.CheckpointKey,
		Replid:           o.Replid,
	})
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", t.conn.Addr, err)
	}
	return w, nil
}

func (t *singleTarget) ReadCheckpoint(ctx context.Context, key string) (Checkpoint, bool, error) {
	return ReadCheckpoint(ctx, t.conn, key)
}

func (t *singleTarget) ClearCheckpoint(ctx context.Context, key string) error {
	return ClearCheckpoint(ctx, t.conn, key)
}

// FlushAll sends FLUSHALL.
func (t *singleTarget) FlushAll(ctx context.Context) (bool, error) {
	o := t.conn
	o.DB, o.OnReply, o.Name = 0, nil, "resync"
	c, err := Dial(ctx, o)
	if err != nil {
		return false, err
	}
	defer c.Close()
	r, err := c.Do(ctx, "FLUSHALL")
	if err != nil {
		return false, err
	}
	if r.Kind == KindError {
		return false, fmt.Errorf("target %s: FLUSHALL: %w", o.Addr, r.Err)
	}
	return true, nil
}

// Abandon does nothing: a single target waits for no source node.
func (t *singleTarget) Abandon() {}

func (t *singleTarget) Close() error { return nil }
