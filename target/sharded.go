package target

import (
	"context"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/rdb"
)

// A sharded writer is the Writer of a target whose keys live on several nodes: a Redis Cluster
// (Cluster) or a twemproxy pool's backends (Twemproxy). The kinds differ only in their router:
// which unit a key belongs to (a slot, a backend), which node serves a unit, and whether MOVED
// and ASK redirect. Everything else is here, once:
//
//   - the RDB phase: one Single's RDB connections per node, each key to the node of its unit;
//   - the oplog: one ordered connection per node; each command to the node(s) of its keys (split
//     per unit where that keeps its meaning, in every node for FLUSHALL and the like); the
//     applied position moves over the prefix of the stream that every node concerned answered
//     (a sequence queue);
//   - replies that ask for a resend (MOVED, ASK, TRYAGAIN, LOADING, BUSY): every connection is
//     drained and the commands resent in stream order before any later one is sent;
//   - Reconnect, Stats, Close.
//
// Such a target has only db 0: keys and commands of other dbs are skipped and counted. With
// NodeOptions.CheckpointKey the stream is exactly once across restarts: a twemproxy pool keeps
// a checkpoint per backend (sharded_checkpoint.go), a cluster one per slot and a base
// (cluster_checkpoint.go), each in the transactions of the commands it covers. Without one, a
// restarted job begins with a full sync, RESTORE ... REPLACE over what the nodes hold. Within
// one run, Reconnect passes over the commands every node concerned had answered
// (already_applied), up to the first one only some of its nodes answered.

// router is what a sharded writer asks of its kind.
type router interface {
	// unit returns the routing unit of key: its slot on a cluster, its backend's index on a ring.
	unit(key []byte) int
	// table returns, for every unit, the address of the node that serves it now ("" for none):
	// a cluster reads its slot map from a seed or one of the known nodes, a ring's never moves.
	table(ctx context.Context, known []string) ([]string, error)
	// redirects reports whether MOVED and ASK replies are followed (a cluster's); elsewhere
	// they are error replies like any other.
	redirects() bool
	// close releases what the router holds (a control connection).
	close()
	// checkpointUnits returns how many units keep checkpoints (0: the kind keeps none), and
	// whether they are a cluster's slots (several on a node, a base position besides) rather
	// than nodes (a pool's backends).
	checkpointUnits() (units int, slots bool)
}

// shardKind describes a routed kind to its sharded writer.
type shardKind struct {
	name        string // "cluster", "twemproxy": in logs and errors
	unit, units string // what its units are, in messages and logs: "slot", "slots"
	crossReason string // Stats.Skipped reason of a command over several units that cannot be split
	// multiKey: a node takes multi-key commands over any of its keys, so RDB strings go many to
	// one MSET (a cluster node refuses keys of several slots).
	multiKey bool
}

// NodeOptions configure the node writers of a routed target (Cluster, Twemproxy).
type NodeOptions struct {
	// Conn is used for every node: auth, TLS, timeout, window. Addr, OnReply, Name and DB are
	// set per node (everything goes to db 0).
	Conn             Options
	Conns            int // RDB-phase connections per node; 0 means 2
	SourceRDBVersion int // RDB version of the source's snapshot (DUMP payload version)
	BigKeyBytes      int64
	Logger           *zap.Logger
	Now              func() time.Time // nil means time.Now
	// CheckpointKey makes the stream exactly once: each backend of a twemproxy pool keeps the
	// source node's position under UnitCheckpointKey(CheckpointKey, unit)
	// (sharded_checkpoint.go), each slot of a cluster under SlotCheckpointKey(CheckpointKey,
	// slot), beside a base under CheckpointKey (cluster_checkpoint.go). On a cluster it must
	// hold no brace.
	CheckpointKey string
	Replid        func() string // the source's replication ID, stored with each checkpoint
}

// Reasons counted in Stats.Skipped by a routed target (Cluster, Twemproxy).
const (
	SkipDBNonZero     = "db_nonzero"      // RDB keys of a db other than 0: the target has only db 0
	SkipSelectNonZero = "select_nonzero"  // oplog commands run in a db other than 0
	SkipNoKey         = "no_key"          // a keyless command with no meaning on every node (EVAL 0 ...)
	SkipUnknown       = "unknown_command" // not in the command table: its keys are unknown
	SkipUnowned       = "slot_unowned"    // no node serves the key's unit (a cluster's slot)
	// SkipAlreadyApplied counts commands of a stream resent after Reconnect that every node
	// concerned had acknowledged before: not run twice.
	SkipAlreadyApplied = "already_applied"
	// CountMultiSplit counts transactions whose keys span several units: their commands are
	// applied one by one (routed each to its node), not atomically. Counted in Skipped although
	// their commands are applied, so that INFO shows them by reason.
	CountMultiSplit = "multi_split"
	// ReasonRedirect counts commands still redirected (MOVED, ASK) after every attempt (in
	// Stats.Errors); they are lost, and logged with their keys. A command refused for now
	// (TRYAGAIN, LOADING, BUSY) is sent again until the node takes it.
	ReasonRedirect = "redirect_failed"
)

// Request kinds of a sharded writer, beside Single's.
const (
	kindAsking     uint8 = 64 + iota // ASKING before a command sent to an ASK's node
	kindRoutedOp                     // one oplog command (or one unit's part of a split one)
	kindRoutedTx                     // MULTI and the commands it queues
	kindRoutedExec                   // EXEC of a kept transaction
)

// Resend rounds before a redirected command is given up (counted ReasonRedirect): a slot
// normally settles in one or two; rounds after the first wait (redirectWait), about 90 s in all.
const redirectRounds = 50

// sharded is the writer every routed kind is made of (see above).
//
// Restore, Rewrite and WaitRDB are called from one goroutine; StartOplog, Apply, Skip, Flush,
// Reconnect and WaitOplog from one goroutine (the same or another, once WaitRDB returned); Stats
// and Applied from any goroutine.
type sharded struct {
	kind   shardKind
	router router
	opts   NodeOptions
	ctx    context.Context
	log    *zap.Logger
	cp     *unitCheckpoints // nil: no checkpoints (sharded_checkpoint.go)

	// Writer-goroutine state.
	shards   []*shardNode // unit → its node, nil for a unit none serves
	oplogOn  bool
	db       int // source db in force in the stream
	tx       *txBuf
	keyBuf   [][]byte
	rdbMoved atomic.Bool // an RDB request was MOVED: refresh the map before the next key
	opRedir  atomic.Bool // an oplog request was redirected: resolve before the next command
	// sendMu is held by Apply, Skip, StartOplog, Reconnect and WaitOplog, and by the resolver
	// goroutine while it resends redirected commands: nothing is sent meanwhile.
	sendMu    sync.Mutex
	kick      chan struct{} // reply readers → resolver: a redirect is waiting
	stop      chan struct{}
	p         proc
	closeOnce sync.Once

	mu       sync.Mutex // guards everything below
	nodes    []*shardNode
	byAddr   map[string]*shardNode
	errs     map[string]uint64
	skipped  map[string]uint64
	lastErr  string
	rdbRedir []redirect
	rdbBytes int64
	opRedirs []redirect
	seqs     seqQueue
	txs      map[uint64][][]byte // kept transactions in flight, by seq: resent whole on a redirect
	nextSeq  uint64
	// acked holds the end offsets of commands acknowledged after the applied position when
	// Reconnect dropped the queue (writer goroutine only).
	acked               map[int64]bool
	ackedMax            int64
	keyIdx              []int // scratch of routeBig (writer goroutine)
	head                []byte
	bigStreamed         atomic.Uint64
	bigChunked          atomic.Uint64
	bigChunks           atomic.Uint64
	broken              error
	applied             int64
	appliedDB           int
	redirected, retried uint64
}

// shardNode is one node: its RDB-phase writer and its oplog connection.
type shardNode struct {
	addr   string
	single *Single
	oplog  *Conn
	// Transaction reply state, touched only by the oplog connection's reply reader.
	txRedir *redirect
	// The last command whose error reply was counted (its chunks are counted once), reply
	// reader only.
	errSeq     uint64
	errCounted bool
	// With checkpoints: the unit whose checkpoint the node keeps (-1: none), its oplog
	// connection's client id (killed on the server before its checkpoint is read again), and
	// its batch (writer goroutine).
	cpUnit     int
	checkUnit  int // a unit whose checkpoint the node acknowledged, for CheckTarget (-1: none; under mu)
	oplogID    int64
	batchOpen  bool
	batchUnit  int
	batchEnd   int64 // the end of the last command with a part in the batch
	batchSeqs  []uint64
	batchCmds  int
	batchBytes int64
	cpSentAt   time.Time // when its checkpoint was last sent
}

// redirect is a request to send again: to a MOVED's or ASK's node, or to the same node after a
// TRYAGAIN/LOADING/BUSY.
type redirect struct {
	seq    uint64
	kind   uint8
	key    []byte
	unit   int
	addr   string
	ask    bool
	retry  bool
	cmds   [][]byte
	body   body // the body of cmds[0], when it has one (see Conn.sendBody)
	reason string
}

// newSharded reads where the units live (router.table) and connects to every node. ctx bounds
// the whole life of the writer.
func newSharded(ctx context.Context, k shardKind, r router, o NodeOptions) (*sharded, error) {
	if o.Conns <= 0 {
		o.Conns = 2
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	w := &sharded{
		kind:    k,
		router:  r,
		opts:    o,
		ctx:     ctx,
		log:     o.Logger.With(zap.String("target", k.name)),
		byAddr:  make(map[string]*shardNode),
		errs:    make(map[string]uint64),
		skipped: make(map[string]uint64),
		txs:     make(map[uint64][][]byte),
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	if o.CheckpointKey != "" {
		units, slots := r.checkpointUnits()
		if units == 0 {
			return nil, fmt.Errorf("target %s: no checkpoint can be kept here (checkpoint key %q)", k.name, o.CheckpointKey)
		}
		if slots && strings.ContainsAny(o.CheckpointKey, "{}") {
			return nil, fmt.Errorf("target %s: the checkpoint key %q holds a brace: its slot checkpoints could not carry their slot's hash tag",
				k.name, o.CheckpointKey)
		}
		w.cp = newUnitCheckpoints(o.CheckpointKey, o.Replid, units, slots)
	}
	w.p.Go(w.resolver)
	if err := w.refresh(ctx); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// resolver resends redirected oplog commands when the stream is idle (Apply does it otherwise
// before its next command), so the applied position does not wait for more traffic.
func (w *sharded) resolver() {
	var tick <-chan time.Time // a cluster's base is stored as the stream is acknowledged
	if w.cp != nil && w.cp.slots {
		t := time.NewTicker(idleCheckpointEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-w.stop:
			return
		case <-w.kick:
		case <-tick:
			w.sendMu.Lock()
			if w.oplogOn && w.brokenErr() == nil {
				if err := w.storeBase(true); err != nil {
					w.breakOn(err)
				}
			}
			w.sendMu.Unlock()
			continue
		}
		w.sendMu.Lock()
		if w.oplogOn && w.opRedir.Load() {
			if err := w.resolve(w.ctx); err != nil && w.ctx.Err() == nil {
				w.mu.Lock()
				if w.broken == nil {
					w.broken = err
				}
				w.mu.Unlock()
			}
		}
		w.sendMu.Unlock()
	}
}

// node returns the node at addr, connecting to it (and its oplog when the oplog has started)
// the first time.
func (w *sharded) node(ctx context.Context, addr string) (*shardNode, error) {
	w.mu.Lock()
	n := w.byAddr[addr]
	w.mu.Unlock()
	if n == nil {
		so := SingleOptions{
			Conn: w.opts.Conn, Conns: w.opts.Conns, SourceRDBVersion: w.opts.SourceRDBVersion,
			BigKeyBytes: w.opts.BigKeyBytes, Logger: w.opts.Logger, Now: w.opts.Now,
		}
		so.Conn.Addr, so.Conn.DB = addr, 0
		n = &shardNode{addr: addr, cpUnit: -1, checkUnit: -1}
		s, err := newHookedSingle(ctx, so, func(t *Tag, r *Reply) bool { return w.onRDBRedirect(t, r) })
		if err != nil {
			return nil, fmt.Errorf("target %s: node %s: %w", w.kind.name, addr, err)
		}
		s.multiKey = w.kind.multiKey
		s.logConnected()
		n.single = s
		w.mu.Lock()
		w.byAddr[addr] = n
		w.nodes = append(w.nodes, n)
		w.mu.Unlock()
	}
	if w.oplogOn && n.oplog == nil {
		co := w.opts.Conn
		co.Addr, co.DB, co.Name, co.Logger = addr, 0, "oplog", w.opts.Logger
		co.OnReply = func(t *Tag, r *Reply) { w.onOplogReply(n, t, r) }
		oc, err := Dial(ctx, co)
		if err != nil {
			return nil, err
		}
		n.oplogID = 0
		if w.cp != nil {
			// Its id lets Reconnect kill it on the server before reading the checkpoint.
			if r, err := oc.Do(ctx, "CLIENT", "ID"); err == nil && r.Kind == KindInteger {
				n.oplogID = r.Int
			} else if refused(err) {
				w.log.Warn("the target refuses CLIENT ID: after a broken connection, a batch still in flight may be applied twice",
					zap.String("node", addr), zap.Error(err))
			}
		}
		w.mu.Lock()
		n.oplog = oc
		w.mu.Unlock()
	}
	return n, nil
}

// owner returns the node of unit, refreshing the map once when none is known.
func (w *sharded) owner(unit int) (*shardNode, error) {
	if n := w.shards[unit]; n != nil {
		return n, nil
	}
	if err := w.refresh(w.ctx); err != nil {
		return nil, err
	}
	return w.shards[unit], nil
}

// refresh asks the router where every unit lives now and connects to any new node.
func (w *sharded) refresh(ctx context.Context) error {
	w.mu.Lock()
	known := make([]string, len(w.nodes))
	for i, n := range w.nodes {
		known[i] = n.addr
	}
	w.mu.Unlock()
	table, err := w.router.table(ctx, known)
	if err != nil {
		return err
	}
	shards := make([]*shardNode, len(table))
	for u, addr := range table {
		switch {
		case addr == "":
		case u > 0 && table[u-1] == addr:
			shards[u] = shards[u-1]
		default:
			n, err := w.node(ctx, addr)
			if err != nil {
				return err
			}
			shards[u] = n
			if w.cp != nil && !w.cp.slots && n.cpUnit < 0 {
				n.cpUnit = u
			}
		}
	}
	w.shards = shards
	return nil
}

// Restore routes one RDB entry to the node of its key's unit. Keys of a db other than 0 are
// skipped and counted (db_nonzero); function libraries are loaded on every node.
func (w *sharded) Restore(e *rdb.Entry) error {
	switch e.Kind {
	case rdb.KindKey:
	case rdb.KindFunction:
		return w.eachNode(func(n *shardNode) error { return n.single.Function(e.Value) })
	case rdb.KindModuleAux:
		w.countSkip(SkipModuleAux, nil, "")
		return nil
	default: // aux fields describe the file, not data
		return nil
	}
	n, err := w.rdbNode(e)
	if n == nil || err != nil {
		return err
	}
	return n.single.Restore(e)
}

// Rewrite sends one key as native commands to the node of its unit (see Single.Rewrite).
func (w *sharded) Rewrite(e *rdb.Entry, value io.Reader) error {
	if e.Kind != rdb.KindKey {
		return nil
	}
	n, err := w.rdbNode(e)
	if n == nil || err != nil {
		return err
	}
	return n.single.Rewrite(e, value)
}

// rdbNode picks the node of an RDB key, or nil (and counts why) when the key is not sent.
func (w *sharded) rdbNode(e *rdb.Entry) (*shardNode, error) {
	if e.DB != 0 {
		w.countSkip(SkipDBNonZero, e.Key, "RDB key of a non-zero db skipped: a "+w.kind.name+" target has only db 0",
			zap.Int("db", e.DB))
		return nil, nil
	}
	if w.rdbMoved.Swap(false) {
		if err := w.refresh(w.ctx); err != nil {
			return nil, err
		}
	}
	w.mu.Lock()
	big := w.rdbBytes > 16<<20
	w.mu.Unlock()
	if big { // redirected requests are held for resending: bound them by resending now
		if err := w.WaitRDB(w.ctx); err != nil {
			return nil, err
		}
	}
	unit := w.router.unit(e.Key)
	n, err := w.owner(unit)
	if err != nil {
		return nil, err
	}
	if n == nil {
		w.countSkip(SkipUnowned, e.Key, "no node serves the key's "+w.kind.unit, zap.Int(w.kind.unit, unit))
	}
	return n, nil
}

// eachNode runs fn on every node that serves a unit, and returns the first error.
func (w *sharded) eachNode(fn func(n *shardNode) error) error {
	var first error
	for _, n := range w.serving() {
		if err := fn(n); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// serving returns the nodes that serve units, in unit order.
func (w *sharded) serving() []*shardNode {
	var out []*shardNode
	seen := map[*shardNode]bool{}
	for _, n := range w.shards {
		if n != nil && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// onRDBRedirect takes the MOVED and ASK replies of the RDB phase, to resend in WaitRDB.
func (w *sharded) onRDBRedirect(t *Tag, r *Reply) bool {
	if r.Kind != KindError || !w.router.redirects() {
		return false
	}
	re, _ := r.Err.(*ReplyError)
	if re == nil {
		return false
	}
	unit, addr, ok := re.Redirect()
	if !ok {
		return false
	}
	rd := redirect{kind: t.Kind, key: append([]byte(nil), t.Key...), unit: unit, addr: addr,
		ask: re.Prefix == "ASK", cmds: [][]byte{append([]byte(nil), t.Cmd...)}, body: t.body, reason: re.Prefix}
	w.mu.Lock()
	w.rdbRedir = append(w.rdbRedir, rd)
	w.rdbBytes += int64(len(rd.key) + len(rd.cmds[0]))
	w.redirected++
	w.mu.Unlock()
	if !rd.ask {
		w.rdbMoved.Store(true)
	}
	return true
}

// WaitRDB returns when every RDB-phase request has its reply, following MOVED and ASK: the
// redirected requests are resent, in the order their replies came, to the node named.
func (w *sharded) WaitRDB(ctx context.Context) error {
	for round := 0; ; round++ {
		w.mu.Lock()
		nodes := append([]*shardNode(nil), w.nodes...)
		w.mu.Unlock()
		for _, n := range nodes {
			if err := n.single.WaitRDB(ctx); err != nil {
				return err
			}
		}
		w.mu.Lock()
		list := w.rdbRedir
		w.rdbRedir, w.rdbBytes = nil, 0
		w.mu.Unlock()
		if len(list) == 0 {
			return nil
		}
		if round >= redirectRounds {
			w.giveUp(list)
			return nil
		}
		if round > 0 {
			if err := redirectWait(ctx, round); err != nil {
				return err
			}
		}
		if err := w.refreshIfMoved(ctx, list); err != nil {
			return err
		}
		for _, rd := range list {
			n, err := w.node(ctx, rd.addr)
			if err != nil {
				return err
			}
			if !rd.ask {
				w.shards[rd.unit] = n
			}
			rc := n.single.rdbConns[0]
			if rd.ask {
				if err := rc.c.Send(ctx, Tag{Kind: kindAsking, Key: rd.key}, []byte("ASKING")); err != nil {
					return err
				}
			}
			tag := Tag{Kind: rd.kind, Key: rd.key}
			if rd.body != nil {
				if err := rc.c.sendBody(ctx, tag, rd.cmds[0], rd.body, false); err != nil {
					return err
				}
				continue
			}
			if err := rc.c.SendRaw(ctx, tag, rd.cmds[0]); err != nil {
				return err
			}
		}
	}
}

// refreshIfMoved refreshes the map when a MOVED is among the redirects.
func (w *sharded) refreshIfMoved(ctx context.Context, list []redirect) error {
	for _, rd := range list {
		if !rd.ask && !rd.retry {
			return w.refresh(ctx)
		}
	}
	return nil
}

// giveUp counts and logs requests still redirected after every round.
func (w *sharded) giveUp(list []redirect) {
	for _, rd := range list {
		w.mu.Lock()
		w.errs[ReasonRedirect]++
		w.lastErr = fmt.Sprintf("key %s still %s after %d rounds", keyString(rd.key), rd.reason, redirectRounds)
		w.mu.Unlock()
		w.log.Error("command still redirected; given up", zap.String("key", keyString(rd.key)),
			zap.String("reason", rd.reason), zap.String("addr", rd.addr), zap.Int(w.kind.unit, rd.unit))
	}
}

// countSkip counts a skipped command or key under reason; with msg, it is logged too, one by
// one up to logEvery per reason, then one in logEvery.
func (w *sharded) countSkip(reason string, key []byte, msg string, fields ...zap.Field) {
	w.mu.Lock()
	w.skipped[reason]++
	n := w.skipped[reason]
	w.mu.Unlock()
	if msg != "" && (n <= logEvery || n%logEvery == 0) {
		w.log.Warn(msg, append(fields, zap.String("reason", reason), zap.Uint64("count", n),
			zap.String("key", keyString(key)))...)
	}
}

func (w *sharded) countErr(reason string, t *Tag, err error) {
	w.mu.Lock()
	w.errs[reason]++
	n := w.errs[reason]
	w.lastErr = err.Error()
	w.mu.Unlock()
	if n <= logEvery || n%logEvery == 0 {
		w.log.Warn("target error", zap.String("reason", reason), zap.Uint64("count", n),
			zap.String("key", keyString(t.Key)), zap.Error(err))
	}
}

// Stats returns the counters of every node added up; Conns lists every node's connections
// (ConnStats.Addr tells the node), Addr every node's address joined by commas. Retried counts
// requests resent after MOVED, ASK, LOADING, BUSY or TRYAGAIN.
func (w *sharded) Stats() Stats {
	w.mu.Lock()
	nodes := append([]*shardNode(nil), w.nodes...)
	oplogs := make([]*Conn, len(nodes))
	for i, n := range nodes {
		oplogs[i] = n.oplog
	}
	st := Stats{Errors: maps.Clone(w.errs), Skipped: maps.Clone(w.skipped), LastError: w.lastErr,
		AppliedOffset: w.applied, AppliedDB: w.appliedDB, Retried: w.retried + w.redirected,
		BigStreamed: w.bigStreamed.Load(), BigChunked: w.bigChunked.Load(), BigChunks: w.bigChunks.Load()}
	w.mu.Unlock()
	var addrs []string
	for i, n := range nodes {
		ns := n.single.Stats()
		addrs = append(addrs, n.addr)
		if st.Version == "" {
			st.Version, st.RDBVersion = ns.Version, ns.RDBVersion
		}
		st.RDBVersion = min(st.RDBVersion, ns.RDBVersion)
		st.Conns = append(st.Conns, ns.Conns...)
		if oplogs[i] != nil {
			st.Conns = append(st.Conns, oplogs[i].Stats())
		}
		for k, v := range ns.Errors {
			st.Errors[k] += v
		}
		for k, v := range ns.Skipped {
			st.Skipped[k] += v
		}
		st.addCounts(ns) // the stream's big commands are the sharded writer's: its nodes' Singles load snapshots only
		if st.LastError == "" {
			st.LastError = ns.LastError
		}
	}
	st.Addr = strings.Join(addrs, ",")
	return st
}

// NodeStats returns one Stats per node, in the order the nodes were met: its address, its
// RDB-phase counters and connections, and its oplog connection. Oplog skips, errors and the
// applied position belong to the whole stream and are only in Stats. For INFO's per-node lines.
func (w *sharded) NodeStats() []Stats {
	w.mu.Lock()
	nodes := append([]*shardNode(nil), w.nodes...)
	oplogs := make([]*Conn, len(nodes))
	for i, n := range nodes {
		oplogs[i] = n.oplog
	}
	w.mu.Unlock()
	out := make([]Stats, len(nodes))
	for i, n := range nodes {
		out[i] = n.single.Stats()
		if oplogs[i] != nil {
			out[i].Conns = append(out[i].Conns, oplogs[i].Stats())
		}
	}
	return out
}

// Abort does nothing: what the nodes acknowledged is there, and a failed job's next snapshot
// (a full sync) replaces it.
func (w *sharded) Abort() {}

// Close closes every connection; requests still in flight are failed.
func (w *sharded) Close() error {
	w.closeOnce.Do(func() { close(w.stop) })
	w.mu.Lock()
	nodes := append([]*shardNode(nil), w.nodes...)
	w.mu.Unlock()
	for _, n := range nodes {
		n.single.Close()
		if n.oplog != nil {
			n.oplog.Close()
		}
	}
	w.p.Wait()
	w.sendMu.Lock()
	w.router.close()
	w.sendMu.Unlock()
	return nil
}

// routedTarget is what the Targets of the routed kinds share: no FLUSHALL, no source node to
// wait for, and checkpoints kept one per node (sharded_checkpoint.go) where the kind keeps
// them (checkpoints: a twemproxy pool, whose nodes are units).
type routedTarget struct {
	cfg         Config
	name        string // the kind, for errors
	checkpoints bool
	units       []string // with checkpoints: the address of each unit's node
}

func (t *routedTarget) Traits() Traits {
	// (A cluster's checkpoints are per slot, a pool's per backend: none under the key alone.)
	return Traits{Stream: true, Checkpoint: t.checkpoints, CheckpointUnits: t.checkpoints}
}

// nodeOptions are the node writers' options of a Writer for o; a kind that keeps no
// checkpoint refuses one.
func (t *routedTarget) nodeOptions(o WriterOptions) (NodeOptions, error) {
	if o.CheckpointKey != "" && !t.checkpoints {
		return NodeOptions{}, fmt.Errorf("target %s: no checkpoint can be kept here (checkpoint key %q)", t.name, o.CheckpointKey)
	}
	return NodeOptions{Conn: t.cfg.Conn, Conns: t.cfg.Conns, SourceRDBVersion: o.SourceRDBVersion,
		BigKeyBytes: t.cfg.BigKeyBytes, Logger: t.cfg.nodeLogger(o), Now: t.cfg.Now,
		CheckpointKey: o.CheckpointKey, Replid: o.Replid}, nil
}

// ReadCheckpoint returns the lowest of the nodes' checkpoints under key, and false when a node
// has none (or the kind keeps none).
func (t *routedTarget) ReadCheckpoint(ctx context.Context, key string) (Checkpoint, bool, error) {
	if !t.checkpoints {
		return Checkpoint{}, false, nil
	}
	return readUnitCheckpoints(ctx, t.cfg.Conn, t.units, key)
}

// ClearCheckpoint deletes every node's checkpoint under key.
func (t *routedTarget) ClearCheckpoint(ctx context.Context, key string) error {
	if !t.checkpoints {
		return nil
	}
	return clearUnitCheckpoints(ctx, t.cfg.Conn, t.units, key)
}

// FlushAll does nothing and says so: the nodes are not emptied before a resync.
func (t *routedTarget) FlushAll(context.Context) (bool, error) { return false, nil }

// Abandon does nothing: the kind waits for no source node.
func (t *routedTarget) Abandon() {}

func (t *routedTarget) Close() error { return nil }
