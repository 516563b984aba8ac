package target

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/internal/shard"
	"github.com/rmt-project/rmt/internal/topology"
	"github.com/rmt-project/rmt/rdb"
)

// ClusterOptions configure a writer to a `redis cluster` target.
type ClusterOptions struct {
	Servers []string // seed nodes: the first that answers CLUSTER NODES gives the slot map
	// Conn is used for every node: auth, TLS, timeout, window. Addr, OnReply, Name and DB are
	// set per node (everything goes to db 0).
	Conn             Options
	Conns            int // RDB-phase connections per master; 0 means 2
	SourceRDBVersion int // RDB version of the source's snapshot (DUMP payload version)
	BigKeyBytes      int64
	Logger           *zap.Logger
	Now              func() time.Time // nil means time.Now
}

// Reasons counted in Stats.Skipped by a Cluster.
const (
	SkipDBNonZero     = "db_nonzero"      // RDB keys of a db other than 0: a cluster has only db 0
	SkipSelectNonZero = "select_nonzero"  // oplog commands run in a db other than 0
	SkipCrossSlot     = "crossslot"       // a command over keys of several slots that cannot be split
	SkipNoKey         = "no_key"          // a keyless command with no meaning on every master (EVAL 0 ...)
	SkipUnknown       = "unknown_command" // not in the command table: its keys are unknown
	SkipUnowned       = "slot_unowned"    // no master serves the key's slot
	// SkipAlreadyApplied counts commands of a stream resent after Reconnect that every master
	// concerned had acknowledged before: not run twice.
	SkipAlreadyApplied = "already_applied"
	// CountMultiSplit counts transactions whose keys span several slots: their commands are
	// applied one by one (routed each to its slot's master), not atomically. Counted in Skipped
	// although their commands are applied, so that INFO shows them by reason.
	CountMultiSplit = "multi_split"
	// ReasonRedirect counts commands still redirected (MOVED, ASK, TRYAGAIN) after every
	// attempt (in Stats.Errors); they are lost, and logged with their keys.
	ReasonRedirect = "redirect_failed"
)

// Request kinds of a Cluster, beside Single's.
const (
	kindAsking      uint8 = 64 + iota // ASKING before a command sent to an ASK's node
	kindClusterOp                     // one oplog command (or one slot's part of a split one)
	kindClusterTx                     // MULTI and the commands it queues
	kindClusterExec                   // EXEC of a kept transaction
)

// Redirect rounds before a command is given up (counted ReasonRedirect): a slot normally
// settles in one or two; rounds after the first wait (redirectWait), about 90 s in all.
const redirectRounds = 50

// Cluster writes to a Redis Cluster: one Single-like set of RDB connections per master
// (RESTORE routed by the key's slot), then one ordered oplog connection per master. MOVED and
// ASK replies are followed without reordering a key's commands: every connection is drained,
// the slot map refreshed, and the redirected commands resent in their original order before any
// later command is sent.
//
// Restore, Rewrite and WaitRDB are called from one goroutine; StartOplog, Apply, Reconnect and
// WaitOplog from one goroutine (the same or another, once WaitRDB returned); Stats and Applied
// from any goroutine.
type Cluster struct {
	opts ClusterOptions
	ctx  context.Context
	log  *zap.Logger

	// Writer-goroutine state.
	slots    [shard.SlotCount]*clusterNode
	ctl      *Conn // control connection for CLUSTER NODES
	oplogOn  bool
	db       int // source db in force in the stream
	tx       *txBuf
	keyBuf   [][]byte
	rdbMoved atomic.Bool // an RDB request was MOVED: refresh the map before the next key
	opRedir  atomic.Bool // an oplog request was redirected: resolve before the next command
	// sendMu is held by Apply, StartOplog, Reconnect and WaitOplog, and by the resolver
	// goroutine while it resends redirected commands: nothing is sent meanwhile.
	sendMu    sync.Mutex
	kick      chan struct{} // reply readers → resolver: a redirect is waiting
	stop      chan struct{}
	p         proc
	closeOnce sync.Once

	mu       sync.Mutex // guards everything below
	nodes    []*clusterNode
	byAddr   map[string]*clusterNode
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
	broken              error
	applied             int64
	appliedDB           int
	redirected, retried uint64
}

// clusterNode is one master: its RDB-phase writer and its oplog connection.
type clusterNode struct {
	addr   string
	single *Single
	oplog  *Conn
	// Transaction reply state, touched only by the oplog connection's reply reader.
	txRedir *redirect
}

// redirect is a request to send again: to a MOVED's or ASK's node, or to the same node after a
// TRYAGAIN/LOADING/BUSY.
type redirect struct {
	seq    uint64
	kind   uint8
	key    []byte
	slot   int
	addr   string
	ask    bool
	retry  bool
	from   *clusterNode
	cmds   [][]byte
	reason string
}

// NewCluster asks the seed nodes for the slot map (CLUSTER NODES) and connects to every master.
// ctx bounds the whole life of the writer.
func NewCluster(ctx context.Context, o ClusterOptions) (*Cluster, error) {
	if len(o.Servers) == 0 {
		return nil, errors.New("target cluster: no servers")
	}
	if o.Conns <= 0 {
		o.Conns = 2
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Cluster{
		opts:    o,
		ctx:     ctx,
		log:     o.Logger.With(zap.String("target", "cluster")),
		byAddr:  make(map[string]*clusterNode),
		errs:    make(map[string]uint64),
		skipped: make(map[string]uint64),
		txs:     make(map[uint64][][]byte),
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	c.p.Go(c.resolver)
	if err := c.refresh(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// resolver resends redirected oplog commands when the stream is idle (Apply does it otherwise
// before its next command), so the applied position does not wait for more traffic.
func (c *Cluster) resolver() {
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
		}
		c.sendMu.Lock()
		if c.oplogOn && c.opRedir.Load() {
			if err := c.resolve(c.ctx); err != nil && c.ctx.Err() == nil {
				c.mu.Lock()
				if c.broken == nil {
					c.broken = err
				}
				c.mu.Unlock()
			}
		}
		c.sendMu.Unlock()
	}
}

// node returns the node at addr, connecting to it (and its oplog when the oplog has started)
// the first time.
func (c *Cluster) node(ctx context.Context, addr string) (*clusterNode, error) {
	c.mu.Lock()
	n := c.byAddr[addr]
	c.mu.Unlock()
	if n == nil {
		so := SingleOptions{
			Conn: c.opts.Conn, Conns: c.opts.Conns, SourceRDBVersion: c.opts.SourceRDBVersion,
			BigKeyBytes: c.opts.BigKeyBytes, Logger: c.opts.Logger, Now: c.opts.Now,
		}
		so.Conn.Addr, so.Conn.DB = addr, 0
		n = &clusterNode{addr: addr}
		s, err := newHookedSingle(ctx, so, func(t *Tag, r *Reply) bool { return c.onRDBRedirect(t, r) })
		if err != nil {
			return nil, err
		}
		n.single = s
		c.mu.Lock()
		c.byAddr[addr] = n
		c.nodes = append(c.nodes, n)
		c.mu.Unlock()
	}
	if c.oplogOn && n.oplog == nil {
		co := c.opts.Conn
		co.Addr, co.DB, co.Name, co.Logger = addr, 0, "oplog", c.opts.Logger
		co.OnReply = func(t *Tag, r *Reply) { c.onOplogReply(n, t, r) }
		oc, err := Dial(ctx, co)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		n.oplog = oc
		c.mu.Unlock()
	}
	return n, nil
}

// owner returns the master of slot, refreshing the map once when none is known.
func (c *Cluster) owner(slot int) (*clusterNode, error) {
	if n := c.slots[slot]; n != nil {
		return n, nil
	}
	if err := c.refresh(c.ctx); err != nil {
		return nil, err
	}
	return c.slots[slot], nil
}

// Restore routes one RDB entry to the master of its key's slot. Keys of a db other than 0 are
// skipped and counted (db_nonzero); function libraries are loaded on every master.
func (c *Cluster) Restore(e *rdb.Entry) error {
	switch e.Kind {
	case rdb.KindKey:
	case rdb.KindFunction:
		return c.eachNode(func(n *clusterNode) error { return n.single.Function(e.Value) })
	default:
		c.mu.Lock()
		n := c.nodes[0]
		c.mu.Unlock()
		return n.single.Restore(e)
	}
	n, err := c.rdbNode(e)
	if n == nil || err != nil {
		return err
	}
	return n.single.Restore(e)
}

// Rewrite sends one key as native commands to the master of its slot (see Single.Rewrite).
func (c *Cluster) Rewrite(e *rdb.Entry, value io.Reader) error {
	if e.Kind != rdb.KindKey {
		return nil
	}
	n, err := c.rdbNode(e)
	if n == nil || err != nil {
		return err
	}
	return n.single.Rewrite(e, value)
}

// rdbNode picks the master of an RDB key, or nil (and counts why) when the key is not sent.
func (c *Cluster) rdbNode(e *rdb.Entry) (*clusterNode, error) {
	if e.DB != 0 {
		c.countSkip(SkipDBNonZero, e.Key, "RDB key of a non-zero db skipped: a cluster has only db 0",
			zap.Int("db", e.DB))
		return nil, nil
	}
	if c.rdbMoved.Swap(false) {
		if err := c.refresh(c.ctx); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	big := c.rdbBytes > 16<<20
	c.mu.Unlock()
	if big { // redirected requests are held for resending: bound them by resending now
		if err := c.WaitRDB(c.ctx); err != nil {
			return nil, err
		}
	}
	slot := shard.Slot(e.Key)
	n, err := c.owner(slot)
	if err != nil {
		return nil, err
	}
	if n == nil {
		c.countSkip(SkipUnowned, e.Key, "no master serves the key's slot", zap.Int("slot", slot))
	}
	return n, nil
}

func (c *Cluster) eachNode(fn func(n *clusterNode) error) error {
	c.mu.Lock()
	nodes := append([]*clusterNode(nil), c.nodes...)
	c.mu.Unlock()
	var first error
	for _, n := range nodes {
		if c.isMaster(n) {
			if err := fn(n); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// isMaster says whether n serves a slot in the current map.
func (c *Cluster) isMaster(n *clusterNode) bool {
	for _, m := range c.slots {
		if m == n {
			return true
		}
	}
	return false
}

// onRDBRedirect takes the MOVED and ASK replies of the RDB phase, to resend in WaitRDB.
func (c *Cluster) onRDBRedirect(t *Tag, r *Reply) bool {
	if r.Kind != KindError {
		return false
	}
	re, _ := r.Err.(*ReplyError)
	if re == nil {
		return false
	}
	slot, addr, ok := re.Redirect()
	if !ok {
		return false
	}
	rd := redirect{kind: t.Kind, key: append([]byte(nil), t.Key...), slot: slot, addr: addr,
		ask: re.Prefix == "ASK", cmds: [][]byte{append([]byte(nil), t.Cmd...)}, reason: re.Prefix}
	c.mu.Lock()
	c.rdbRedir = append(c.rdbRedir, rd)
	c.rdbBytes += int64(len(rd.key) + len(rd.cmds[0]))
	c.redirected++
	c.mu.Unlock()
	if !rd.ask {
		c.rdbMoved.Store(true)
	}
	return true
}

// WaitRDB returns when every RDB-phase request has its reply, following MOVED and ASK: the
// redirected requests are resent, in the order their replies came, to the node named.
func (c *Cluster) WaitRDB(ctx context.Context) error {
	for round := 0; ; round++ {
		c.mu.Lock()
		nodes := append([]*clusterNode(nil), c.nodes...)
		c.mu.Unlock()
		for _, n := range nodes {
			if err := n.single.WaitRDB(ctx); err != nil {
				return err
			}
		}
		c.mu.Lock()
		list := c.rdbRedir
		c.rdbRedir, c.rdbBytes = nil, 0
		c.mu.Unlock()
		if len(list) == 0 {
			return nil
		}
		if round >= redirectRounds {
			c.giveUp(list)
			return nil
		}
		if round > 0 {
			if err := redirectWait(ctx, round); err != nil {
				return err
			}
		}
		if err := c.refreshIfMoved(ctx, list); err != nil {
			return err
		}
		for _, rd := range list {
			n, err := c.node(ctx, rd.addr)
			if err != nil {
				return err
			}
			if !rd.ask {
				c.slots[rd.slot] = n
			}
			rc := n.single.rdbConns[0]
			if rd.ask {
				if err := rc.c.Send(ctx, Tag{Kind: kindAsking, Key: rd.key}, []byte("ASKING")); err != nil {
					return err
				}
			}
			if err := rc.c.SendRaw(ctx, Tag{Kind: rd.kind, Key: rd.key}, rd.cmds[0]); err != nil {
				return err
			}
		}
	}
}

// refreshIfMoved refreshes the slot map when a MOVED is among the redirects.
func (c *Cluster) refreshIfMoved(ctx context.Context, list []redirect) error {
	for _, rd := range list {
		if !rd.ask && !rd.retry {
			return c.refresh(ctx)
		}
	}
	return nil
}

// giveUp counts and logs requests still redirected after every round.
func (c *Cluster) giveUp(list []redirect) {
	for _, rd := range list {
		c.mu.Lock()
		c.errs[ReasonRedirect]++
		c.lastErr = fmt.Sprintf("key %s still %s after %d rounds", keyString(rd.key), rd.reason, redirectRounds)
		c.mu.Unlock()
		c.log.Error("command still redirected; given up", zap.String("key", keyString(rd.key)),
			zap.String("reason", rd.reason), zap.String("addr", rd.addr), zap.Int("slot", rd.slot))
	}
}

// Skipped commands and keys are logged one by one up to logEvery per reason, then one in
// logEvery.
func (c *Cluster) countSkip(reason string, key []byte, msg string, fields ...zap.Field) {
	c.mu.Lock()
	c.skipped[reason]++
	n := c.skipped[reason]
	c.mu.Unlock()
	if n <= logEvery || n%logEvery == 0 {
		c.log.Warn(msg, append(fields, zap.String("reason", reason), zap.Uint64("count", n),
			zap.String("key", keyString(key)))...)
	}
}

func (c *Cluster) countErr(reason string, t *Tag, err error) {
	c.mu.Lock()
	c.errs[reason]++
	n := c.errs[reason]
	c.lastErr = err.Error()
	c.mu.Unlock()
	if n <= logEvery || n%logEvery == 0 {
		c.log.Warn("target error", zap.String("reason", reason), zap.Uint64("count", n),
			zap.String("key", keyString(t.Key)), zap.Error(err))
	}
}

// Masters returns the addresses of the masters in the current slot map, in slot order. It reads
// the writer goroutine's map: call it from that goroutine (or when no call is running).
func (c *Cluster) Masters() []string {
	var out []string
	seen := map[*clusterNode]bool{}
	for _, n := range c.slots {
		if n != nil && !seen[n] {
			seen[n] = true
			out = append(out, n.addr)
		}
	}
	return out
}

// Stats returns the counters of every node added up; Conns lists every node's connections
// (ConnStats.Addr tells the node), Addr every node's address joined by commas. Retried counts
// requests resent after MOVED, ASK, LOADING, BUSY or TRYAGAIN.
func (c *Cluster) Stats() Stats {
	c.mu.Lock()
	nodes := append([]*clusterNode(nil), c.nodes...)
	oplogs := make([]*Conn, len(nodes))
	for i, n := range nodes {
		oplogs[i] = n.oplog
	}
	st := Stats{Errors: maps.Clone(c.errs), Skipped: maps.Clone(c.skipped), LastError: c.lastErr,
		AppliedOffset: c.applied, AppliedDB: c.appliedDB, Retried: c.retried + c.redirected}
	c.mu.Unlock()
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
	st.Addr = strings.Join(addrs, ",")
	return st
}

// NodeStats returns one Stats per node, in the order the nodes were met: its address, its
// RDB-phase counters and connections, and its oplog connection. Oplog skips, errors and the
// applied position belong to the whole stream and are only in Stats. For INFO's per-node lines.
func (c *Cluster) NodeStats() []Stats {
	c.mu.Lock()
	nodes := append([]*clusterNode(nil), c.nodes...)
	oplogs := make([]*Conn, len(nodes))
	for i, n := range nodes {
		oplogs[i] = n.oplog
	}
	c.mu.Unlock()
	out := make([]Stats, len(nodes))
	for i, n := range nodes {
		out[i] = n.single.Stats()
		if oplogs[i] != nil {
			out[i].Conns = append(out[i].Conns, oplogs[i].Stats())
		}
	}
	return out
}

// Close closes every connection; requests still in flight are failed.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() { close(c.stop) })
	c.mu.Lock()
	nodes := append([]*clusterNode(nil), c.nodes...)
	c.mu.Unlock()
	for _, n := range nodes {
		n.single.Close()
		if n.oplog != nil {
			n.oplog.Close()
		}
	}
	c.p.Wait()
	c.sendMu.Lock()
	if c.ctl != nil {
		c.ctl.Close()
	}
	c.sendMu.Unlock()
	return nil
}

// refresh reads the slot map with CLUSTER NODES from the control connection (dialing a seed or
// a known node when there is none) and connects to any new master.
func (c *Cluster) refresh(ctx context.Context) error {
	var text []byte
	var lastErr error
	if c.ctl != nil {
		if text, lastErr = c.clusterNodes(ctx, c.ctl); text == nil {
			c.ctl.Close()
			c.ctl = nil
		}
	}
	if text == nil {
		addrs := append([]string(nil), c.opts.Servers...)
		c.mu.Lock()
		for _, n := range c.nodes {
			addrs = append(addrs, n.addr)
		}
		c.mu.Unlock()
		for _, a := range addrs {
			co := c.opts.Conn
			co.Addr, co.DB, co.Name, co.Logger, co.OnReply = a, 0, "control", c.opts.Logger, nil
			ctl, err := Dial(ctx, co)
			if err != nil {
				lastErr = err
				continue
			}
			if text, lastErr = c.clusterNodes(ctx, ctl); text != nil {
				c.ctl = ctl
				break
			}
			ctl.Close()
		}
	}
	if text == nil {
		return fmt.Errorf("target cluster: no node gave the slot map: %w", lastErr)
	}
	owners, err := parseClusterNodes(text, c.ctl.Addr())
	if err != nil {
		return fmt.Errorf("target %s: %w", c.ctl.Addr(), err)
	}
	var slots [shard.SlotCount]*clusterNode
	for slot, addr := range owners {
		if addr == "" {
			continue
		}
		if slot > 0 && owners[slot-1] == addr {
			slots[slot] = slots[slot-1]
			continue
		}
		n, err := c.node(ctx, addr)
		if err != nil {
			return err
		}
		slots[slot] = n
	}
	c.slots = slots
	c.log.Debug("slot map read", zap.String("from", c.ctl.Addr()), zap.Strings("masters", c.Masters()))
	return nil
}

// clusterNodes asks ctl for CLUSTER NODES; it returns nil text on failure.
func (c *Cluster) clusterNodes(ctx context.Context, ctl *Conn) ([]byte, error) {
	rep, err := ctl.Do(ctx, "CLUSTER", "NODES")
	if err != nil {
		return nil, fmt.Errorf("target %s: CLUSTER NODES: %w", ctl.Addr(), err)
	}
	if rep.Kind != KindBulk || rep.Str == nil {
		return nil, fmt.Errorf("target %s: CLUSTER NODES: unexpected reply", ctl.Addr())
	}
	return rep.Str, nil
}

// parseClusterNodes reads CLUSTER NODES text, asked of dialed, into the address of each slot's
// master ("" for a slot no reachable master serves): see topology.ParseNodes. A node shown
// without its IP (one that never learned it) is on dialed's host.
func parseClusterNodes(text []byte, dialed string) ([]string, error) {
	host, _, _ := net.SplitHostPort(dialed)
	m, err := topology.ParseNodes(text, topology.Options{DefaultHost: host})
	if err != nil {
		return nil, err
	}
	return m.Table(), nil
}
