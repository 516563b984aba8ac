package target

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/shard"
	"github.com/rmt-project/rmt/rdb"
)

// TwemproxyOptions configure a writer to a `twemproxy` target: the pool's backends, written to
// directly, never through the proxy.
type TwemproxyOptions struct {
	Servers      []string // the pool's "host:port:weight [name]" lines, as in twemproxy's config
	Hash         string   // twemproxy's hash: "" means fnv1a_64
	HashTag      string   // "" or two bytes, e.g. "{}"
	Distribution string   // ketama or modula ("" means ketama); random is refused
	// Conn is used for every backend: auth, TLS, timeout, window. Addr is set per backend.
	Conn             Options
	Conns            int // RDB-phase connections per backend; 0 means 2
	SourceRDBVersion int // RDB version of the source's snapshot (DUMP payload version)
	BigKeyBytes      int64
	Logger           *zap.Logger
	Now              func() time.Time // nil means time.Now
}

// Reasons counted in Stats.Skipped by a Twemproxy (beside SkipDBNonZero, SkipSelectNonZero,
// SkipNoKey, SkipUnknown and CountMultiSplit, shared with Cluster).
const (
	// SkipCrossNode counts commands over keys of several backends that cannot be split
	// (RENAME, SMOVE, LMOVE, *STORE, MSETNX, ... across backends): not applied, logged with keys.
	SkipCrossNode = "crossnode"
)

// ErrRandomDistribution is returned by NewTwemproxy for a pool with `distribution: random`:
// twemproxy writes each request to a random backend, so a key written there cannot be found
// again, by twemproxy or anyone else.
var ErrRandomDistribution = errors.New("target twemproxy: distribution random cannot be a target: a key written to a random backend cannot be read back")

// Twemproxy writes to a twemproxy pool's backends, each key straight to the backend nutcracker
// would pick for it (its hash, hash_tag and distribution: internal/shard.Ring). It is one
// Single per backend: RESTOREs routed by key, then one ordered oplog connection per backend.
//
// Every command of the stream reaches every backend: sent to the backends that hold its keys,
// passed as a skip by the others, so each backend's applied offset advances over the whole stream
// and Applied (their minimum) reaches the end once every backend has answered. Twemproxy has
// only db 0: keys and commands of other dbs are skipped and counted. Multi-key commands are split
// per backend where that keeps their meaning (MSET, DEL, UNLINK, TOUCH); others over several
// backends are counted (crossnode) and logged. MULTI/EXEC stays a transaction when its keys
// live on one backend, else its commands are applied one by one (multi_split).
//
// There is no target-side checkpoint (one key cannot record a position over several backends,
// so exactly-once across a restart is not possible): the daemon starts a restarted job with a
// full sync, RESTORE ... REPLACE over what the backends hold. Within one run, Reconnect resends
// the stream to each backend only past what that backend acknowledged, so nothing runs twice.
//
// Restore, Rewrite and WaitRDB are called from one goroutine; StartOplog, Apply, Skip, Flush,
// Reconnect and WaitOplog from one goroutine (the same or another, once WaitRDB returned);
// Stats and Applied from any goroutine.
type Twemproxy struct {
	opts     TwemproxyOptions
	ctx      context.Context
	log      *zap.Logger
	ring     *shard.Ring
	addrs    []string  // backend i's host:port, in Servers order (ring indexes)
	backends []*Single // in Servers order

	// Oplog-goroutine state.
	db      int     // source db in force in the stream
	tx      *txBuf  // a source transaction being buffered until its EXEC
	floor   []int64 // per backend: commands ending at or before this were applied already
	suspect []bool  // per backend: its Apply failed; Reconnect redials it
	keyBuf  [][]byte
	idxBuf  []int

	mu      sync.Mutex
	skipped map[string]uint64
}

// NewTwemproxy builds the pool's ring and connects to every backend.
func NewTwemproxy(ctx context.Context, o TwemproxyOptions) (*Twemproxy, error) {
	if len(o.Servers) == 0 {
		return nil, errors.New("target twemproxy: no servers")
	}
	if o.Conns <= 0 {
		o.Conns = 2
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	servers := make([]shard.Server, len(o.Servers))
	for i, line := range o.Servers {
		s, err := shard.ParseServer(line)
		if err != nil {
			return nil, fmt.Errorf("target twemproxy: servers[%d]: %w", i, err)
		}
		servers[i] = s
	}
	ring, err := shard.NewRing(servers, o.Hash, o.Distribution, o.HashTag)
	if err != nil {
		return nil, fmt.Errorf("target twemproxy: %w", err)
	}
	if !ring.Deterministic() {
		return nil, ErrRandomDistribution
	}
	t := &Twemproxy{
		opts:    o,
		ctx:     ctx,
		log:     o.Logger.With(zap.String("target", "twemproxy")),
		ring:    ring,
		floor:   make([]int64, len(servers)),
		suspect: make([]bool, len(servers)),
		skipped: make(map[string]uint64),
	}
	for _, s := range servers {
		so := SingleOptions{Conn: o.Conn, Conns: o.Conns, SourceRDBVersion: o.SourceRDBVersion,
			BigKeyBytes: o.BigKeyBytes, Logger: o.Logger, Now: o.Now}
		so.Conn.Addr, so.Conn.DB = s.Addr, 0
		b, err := NewSingle(ctx, so)
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("target twemproxy: backend %s: %w", s.Addr, err)
		}
		t.addrs = append(t.addrs, s.Addr)
		t.backends = append(t.backends, b)
	}
	return t, nil
}

// Backends returns the backends' addresses, in the order of TwemproxyOptions.Servers.
func (t *Twemproxy) Backends() []string { return append([]string(nil), t.addrs...) }

// Pick returns the index (in Servers order) of the backend that holds key.
func (t *Twemproxy) Pick(key []byte) int { return t.ring.Pick(key) }

// Restore routes one RDB entry to the backend of its key. Keys of a db other than 0 are skipped
// and counted (db_nonzero); function libraries are loaded on every backend.
func (t *Twemproxy) Restore(e *rdb.Entry) error {
	switch e.Kind {
	case rdb.KindKey:
	case rdb.KindFunction:
		for _, b := range t.backends {
			if err := b.Restore(e); err != nil {
				return err
			}
		}
		return nil
	case rdb.KindModuleAux:
		t.countSkip(SkipModuleAux, nil, "")
		return nil
	default:
		return nil
	}
	if e.DB != 0 {
		t.countSkip(SkipDBNonZero, e.Key, "RDB key of a non-zero db skipped: twemproxy has only db 0", zap.Int("db", e.DB))
		return nil
	}
	return t.backends[t.ring.Pick(e.Key)].Restore(e)
}

// Rewrite sends a key as native commands to the backend of its key (see Single.Rewrite).
func (t *Twemproxy) Rewrite(e *rdb.Entry, value io.Reader) error {
	if e.Kind != rdb.KindKey {
		return nil
	}
	if e.DB != 0 {
		t.countSkip(SkipDBNonZero, e.Key, "RDB key of a non-zero db skipped: twemproxy has only db 0", zap.Int("db", e.DB))
		return nil
	}
	return t.backends[t.ring.Pick(e.Key)].Rewrite(e, value)
}

// WaitRDB waits until every backend has answered every RDB-phase request.
func (t *Twemproxy) WaitRDB(ctx context.Context) error {
	for _, b := range t.backends {
		if err := b.WaitRDB(ctx); err != nil {
			return err
		}
	}
	return nil
}

// StartOplog opens every backend's oplog connection at (offset, db).
func (t *Twemproxy) StartOplog(ctx context.Context, offset int64, db int) error {
	for i, b := range t.backends {
		if b.oplog != nil {
			continue // started by an earlier call that failed on a later backend
		}
		if err := b.StartOplog(ctx, offset, db); err != nil {
			return fmt.Errorf("target twemproxy: backend %s: %w", t.addrs[i], err)
		}
		t.floor[i] = offset
	}
	t.db, t.tx = db, nil
	return nil
}

// Apply routes one command of the stream; end is the replication offset just after it. It
// returns an error wrapping ErrBroken or ErrRetry from a backend: Reconnect, then resend from
// the offset Reconnect returns.
func (t *Twemproxy) Apply(cmd *aof.Command, end int64) error {
	if len(cmd.Args) == 0 {
		t.countSkip(SkipEmpty, nil, "")
		return t.skipAll(cmd, end)
	}
	name := cmd.Args[0]
	switch {
	case isCmd(name, "PING"), isCmd(name, "REPLCONF"):
		t.countSkip(SkipControl, nil, "")
		return t.skipAll(cmd, end)
	case isCmd(name, "PUBLISH"), isCmd(name, "SPUBLISH"):
		t.countSkip(SkipPubSub, nil, "")
		return t.skipAll(cmd, end)
	case isCmd(name, "MULTI"):
		if t.tx == nil && t.db == 0 {
			t.tx = &txBuf{}
		}
		return nil // passed with its EXEC
	case isCmd(name, "EXEC"):
		if t.tx == nil {
			return t.skipAll(cmd, end)
		}
		return t.flushTx(cmd, end)
	case isCmd(name, "DISCARD"):
		t.tx = nil
		return t.skipAll(cmd, end)
	}
	if t.tx != nil && isCmd(name, "SELECT") {
		// A db switch inside the transaction: what is buffered goes one by one, the rest
		// follows unbuffered.
		t.countSkip(CountMultiSplit, nil, "SELECT inside a transaction: applied command by command",
			zap.Int64("offset", end))
		tx := t.tx
		t.tx = nil
		if err := t.applyEach(tx); err != nil {
			return err
		}
	}
	if t.tx != nil {
		t.tx.add(cmd, end)
		if t.tx.bytes > txLimit {
			t.countSkip(CountMultiSplit, nil, "transaction too big to buffer: applied command by command",
				zap.Int64("offset", end))
			tx := t.tx
			t.tx = nil
			return t.applyEach(tx)
		}
		return nil
	}
	return t.route(cmd, end)
}

// route applies one command outside a buffered transaction.
func (t *Twemproxy) route(cmd *aof.Command, end int64) error {
	args := cmd.Args
	if isCmd(args[0], "SELECT") {
		if len(args) == 2 {
			if db, ok := parseInt(args[1]); ok && db >= 0 && db < 1<<31 {
				t.db = int(db)
			}
		}
		// Every backend follows the SELECT, so each one's applied db is the source's db.
		return t.applyAll(cmd, end)
	}
	spec := aof.LookupArgs(args)
	if spec == nil {
		t.countSkip(SkipUnknown, argOrNil(args, 1), "unknown command skipped: its keys cannot be routed",
			zap.ByteString("command", bytes.ToUpper(args[0])), zap.Int64("offset", end))
		return t.skipAll(cmd, end)
	}
	keys := spec.Keys(args, t.keyBuf[:0])
	t.keyBuf = keys[:0]
	if isCmd(args[0], "FLUSHALL") {
		return t.applyAll(cmd, end) // every db, db 0 included, whatever db is selected
	}
	if t.db != 0 {
		t.countSkip(SkipSelectNonZero, argOrNil(args, 1), "command of a non-zero db skipped: twemproxy has only db 0",
			zap.Int("db", t.db), zap.Int64("offset", end))
		return t.skipAll(cmd, end)
	}
	if len(keys) == 0 {
		if isBroadcast(args) {
			return t.applyAll(cmd, end)
		}
		t.countSkip(SkipNoKey, nil, "keyless command skipped",
			zap.ByteString("command", bytes.ToUpper(args[0])), zap.Int64("offset", end))
		return t.skipAll(cmd, end)
	}
	home := t.ring.Pick(keys[0])
	same := true
	for _, k := range keys[1:] {
		if t.ring.Pick(k) != home {
			same = false
			break
		}
	}
	if same {
		return t.applyOn(home, cmd, end)
	}
	name := args[0]
	switch {
	case isCmd(name, "MSET") && len(args)%2 == 1:
		return t.split(cmd, end, 2)
	case isCmd(name, "DEL"), isCmd(name, "UNLINK"), isCmd(name, "TOUCH"):
		return t.split(cmd, end, 1)
	}
	ks := make([]string, 0, min(len(keys), 16))
	for _, k := range keys[:min(len(keys), 16)] {
		ks = append(ks, keyString(k))
	}
	t.countSkip(SkipCrossNode, keys[0], "command over keys of several backends not applied",
		zap.ByteString("command", bytes.ToUpper(name)), zap.Strings("keys", ks), zap.Int64("offset", end))
	return t.skipAll(cmd, end)
}

// applyOn sends cmd to backend i and passes it as a skip on every other backend.
func (t *Twemproxy) applyOn(i int, cmd *aof.Command, end int64) error {
	for j := range t.backends {
		if j == i {
			if err := t.apply(j, cmd, end); err != nil {
				return err
			}
			continue
		}
		t.skipOn(j, cmd, end)
	}
	return nil
}

// applyAll sends cmd to every backend.
func (t *Twemproxy) applyAll(cmd *aof.Command, end int64) error {
	for i := range t.backends {
		if err := t.apply(i, cmd, end); err != nil {
			return err
		}
	}
	return nil
}

// skipAll passes cmd as a skip on every backend.
func (t *Twemproxy) skipAll(cmd *aof.Command, end int64) error {
	for i := range t.backends {
		t.skipOn(i, cmd, end)
	}
	return nil
}

// apply sends cmd to backend i unless it acknowledged cmd's offset before a Reconnect.
func (t *Twemproxy) apply(i int, cmd *aof.Command, end int64) error {
	if end <= t.floor[i] {
		return nil
	}
	if err := t.backends[i].Apply(cmd, end); err != nil {
		t.suspect[i] = true
		return fmt.Errorf("target twemproxy: backend %s: %w", t.addrs[i], err)
	}
	return nil
}

// skipOn moves backend i's position past cmd without sending it. The reason is counted by the
// Twemproxy itself, once per command, not per backend.
func (t *Twemproxy) skipOn(i int, cmd *aof.Command, end int64) {
	if end <= t.floor[i] {
		return
	}
	t.backends[i].skip("", cmd, end)
}

// split sends a command whose arguments after the name are groups of width (key first), one
// command per backend, each keeping its groups' order.
func (t *Twemproxy) split(cmd *aof.Command, end int64, width int) error {
	args := cmd.Args
	idx := t.idxBuf[:0]
	for i := 1; i+width-1 < len(args); i += width {
		idx = append(idx, t.ring.Pick(args[i]))
	}
	t.idxBuf = idx[:0]
	for b := range t.backends {
		n := 0
		for _, h := range idx {
			if h == b {
				n++
			}
		}
		if n == 0 {
			t.skipOn(b, cmd, end)
			continue
		}
		part := aof.Command{Args: make([][]byte, 0, 1+n*width)}
		part.Args = append(part.Args, args[0])
		for g, h := range idx {
			if h == b {
				part.Args = append(part.Args, args[1+g*width:1+(g+1)*width]...)
			}
		}
		part.Raw = appendCommand(nil, part.Args...)
		part.N = int64(len(part.Raw))
		if err := t.apply(b, &part, end); err != nil {
			return err
		}
	}
	return nil
}

// applyEach routes the commands of a transaction one by one.
func (t *Twemproxy) applyEach(tx *txBuf) error {
	for _, tc := range tx.cmds {
		c := aof.Command{Args: tc.args, Raw: tc.raw, N: int64(len(tc.raw))}
		if err := t.route(&c, tc.end); err != nil {
			return err
		}
	}
	return nil
}

// flushTx sends a buffered transaction at its EXEC: whole to one backend when its keys all
// live there, else command by command (multi_split).
func (t *Twemproxy) flushTx(exec *aof.Command, end int64) error {
	tx := t.tx
	t.tx = nil
	home := -1
	one := true
	var keys []string
	for _, tc := range tx.cmds {
		spec := aof.LookupArgs(tc.args)
		ks := spec.Keys(tc.args, t.keyBuf[:0])
		t.keyBuf = ks[:0]
		if spec == nil || len(ks) == 0 {
			one = false // unknown, keyless or broadcast: routed on its own
		}
		for _, k := range ks {
			h := t.ring.Pick(k)
			if home < 0 {
				home = h
			} else if h != home {
				one = false
			}
			if len(keys) < 8 {
				keys = append(keys, keyString(k))
			}
		}
	}
	if len(tx.cmds) == 0 {
		return t.skipAll(exec, end)
	}
	if !one || home < 0 {
		t.countSkip(CountMultiSplit, nil, "transaction over several backends applied command by command",
			zap.Strings("keys", keys), zap.Int64("offset", end))
		if err := t.applyEach(tx); err != nil {
			return err
		}
		return t.skipAll(exec, end)
	}
	// Sent whole to its backend: MULTI and the queued commands move nothing, EXEC's reply moves
	// the applied offset to end. A backend that acknowledged end already gets none of it.
	if end > t.floor[home] {
		multi := aof.Command{Args: [][]byte{[]byte("MULTI")}}
		multi.Raw = appendCommand(nil, multi.Args...)
		multi.N = int64(len(multi.Raw))
		if err := t.apply(home, &multi, end); err != nil {
			return err
		}
		for _, tc := range tx.cmds {
			c := aof.Command{Args: tc.args, Raw: tc.raw, N: int64(len(tc.raw))}
			if err := t.apply(home, &c, end); err != nil {
				return err
			}
		}
		if err := t.apply(home, exec, end); err != nil {
			return err
		}
	}
	for j := range t.backends {
		if j != home {
			t.skipOn(j, exec, end)
		}
	}
	return nil
}

// Skip passes a command of the stream without sending it (the daemon's key filter), counted
// under reason; every backend's position moves past it.
func (t *Twemproxy) Skip(cmd *aof.Command, end int64, reason string) {
	if t.tx != nil {
		// Inside a buffered transaction: its EXEC moves the positions.
		t.countSkip(reason, nil, "")
		return
	}
	t.countSkip(reason, nil, "")
	t.skipAll(cmd, end)
}

// Flush closes every backend's open batch (none: backends run without checkpoints).
func (t *Twemproxy) Flush() error {
	for i, b := range t.backends {
		if err := b.Flush(); err != nil {
			return fmt.Errorf("target twemproxy: backend %s: %w", t.addrs[i], err)
		}
	}
	return nil
}

// Reconnect redials the backends whose oplog failed (and any whose replies cannot be drained),
// and returns the offset every backend has acknowledged, with the db in force there: the caller
// resends the stream from there, and each backend gets only what comes after its own position.
func (t *Twemproxy) Reconnect(ctx context.Context) (offset int64, db int, err error) {
	var firstErr error
	for i, b := range t.backends {
		if !t.suspect[i] && b.oplog != nil {
			if derr := b.WaitOplog(ctx); derr == nil && !b.isStalled() {
				t.floor[i], _ = b.Applied()
				continue
			}
		}
		if _, _, rerr := b.Reconnect(ctx); rerr != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("target twemproxy: backend %s: %w", t.addrs[i], rerr)
			}
			continue
		}
		t.suspect[i] = false
		t.floor[i], _ = b.Applied()
	}
	offset, db = t.Applied()
	t.tx = nil
	t.db = db
	return offset, db, firstErr
}

// isStalled reports whether the oplog was refused for now (LOADING, BUSY, TRYAGAIN).
func (s *Single) isStalled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stalled
}

// Applied returns the offset up to which every backend has acknowledged the stream, and the db
// in force there (every backend follows the stream's SELECTs).
func (t *Twemproxy) Applied() (offset int64, db int) {
	for i, b := range t.backends {
		o, d := b.Applied()
		if i == 0 || o < offset {
			offset, db = o, d
		}
	}
	return offset, db
}

// WaitOplog returns when every command applied so far has its reply on every backend.
func (t *Twemproxy) WaitOplog(ctx context.Context) error {
	for i, b := range t.backends {
		if err := b.WaitOplog(ctx); err != nil {
			return fmt.Errorf("target twemproxy: backend %s: %w", t.addrs[i], err)
		}
	}
	return nil
}

func (t *Twemproxy) countSkip(reason string, key []byte, msg string, fields ...zap.Field) {
	if reason == "" {
		return
	}
	t.mu.Lock()
	t.skipped[reason]++
	n := t.skipped[reason]
	t.mu.Unlock()
	if msg != "" && (n <= logEvery || n%logEvery == 0) {
		t.log.Warn(msg, append(fields, zap.String("reason", reason), zap.Uint64("count", n),
			zap.String("key", keyString(key)))...)
	}
}

// Stats returns the counters of every backend added up; Conns lists every backend's
// connections (ConnStats.Addr tells the backend), Addr the backends joined by commas, and
// Applied the minimum over backends.
func (t *Twemproxy) Stats() Stats {
	t.mu.Lock()
	st := Stats{Skipped: maps.Clone(t.skipped), Errors: map[string]uint64{}}
	t.mu.Unlock()
	st.AppliedOffset, st.AppliedDB = t.Applied()
	for i, b := range t.backends {
		ns := b.Stats()
		if i == 0 {
			st.Version, st.RDBVersion = ns.Version, ns.RDBVersion
		}
		st.RDBVersion = min(st.RDBVersion, ns.RDBVersion)
		st.Conns = append(st.Conns, ns.Conns...)
		for k, v := range ns.Errors {
			st.Errors[k] += v
		}
		for k, v := range ns.Skipped {
			if k != "" {
				st.Skipped[k] += v
			}
		}
		st.Restored += ns.Restored
		st.Rewritten += ns.Rewritten
		st.RewriteCmds += ns.RewriteCmds
		st.Expired += ns.Expired
		st.Functions += ns.Functions
		st.Retried += ns.Retried
		if st.LastError == "" {
			st.LastError = ns.LastError
		}
	}
	st.Addr = strings.Join(t.addrs, ",")
	return st
}

// Abort does nothing: what the backends acknowledged is there, and a failed job's next snapshot
// (a full sync) replaces it.
func (t *Twemproxy) Abort() {}

// Close closes every backend's connections; requests still in flight are failed.
func (t *Twemproxy) Close() error {
	for _, b := range t.backends {
		b.Close()
	}
	return nil
}
