package target

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Exactly once on a routed target. What follows is a twemproxy pool's, whose every unit is one
// node (its backends); a cluster's units are slots, several on a node, with a base position
// besides (cluster_checkpoint.go), on the same batches, skips and reply handling.
//
// Each node keeps its own checkpoint of the source node, <CheckpointKey>:<unit>, and the
// stream goes to each node in transactions
//
//	MULTI, <its commands>, SET <CheckpointKey>:<unit> "<replid> <offset> <db>", EXEC
//
// so a node holds its commands up to offset and the position saying so, or neither. The offset
// is the stream's position when the batch closes: every command of the unit before it is in
// that batch or an earlier one. A node with nothing to do gets the position alone (a SET) when
// the stream goes idle, so that no unit's position stays far behind the others.
//
// A restart resumes from the lowest unit position (ReadCheckpoint of the target); the writer
// reads every unit's own at StartOplog and passes over each command of a unit that ends at or
// before that unit's position (already_applied): each unit's commands run once. A command split
// over units (MSET, DEL, a FLUSHALL on every node) is one part per unit, each passed over or
// sent by its own unit's position. Reconnect reads the positions again (after killing the old
// connections on the server, so that no batch of theirs runs after the read), and so does
// CheckTarget every few seconds: a node whose checkpoint is gone or behind what it
// acknowledged lost data (ErrTargetLost: a full sync).
//
// A batch the node refuses (EXECABORT after a command refused while queueing; LOADING, BUSY)
// stops the stream (ErrRetry): its unit's position is held at the batch's start for the resend,
// and the refused command is left out of it (queue_refused). Batches of the node pipelined after
// it that ran are then resent too (counted after_refusal), as on a single target.

// unitCheckpoints is a sharded writer's checkpoint state.
type unitCheckpoints struct {
	prefix string // WriterOptions.CheckpointKey
	replid func() string
	slots  bool // the units are a cluster's slots (cluster_checkpoint.go); else each is one node
	// Writer goroutine (or whoever holds sendMu).
	pos     []int64 // per unit: its commands ending at or before it are on the target
	sent    []int64 // per unit: the position last sent in its checkpoint
	end     int64   // the stream's position: the end of the last command passed outside a transaction
	sentEnd int64   // the furthest position a batch was sent with
	open    []*shardNode
	passes  int      // commands passed since idle nodes' positions were last looked at
	keys    [][]byte // per unit: its key, once made (never written after)
	val     []byte   // scratch for a checkpoint's value
	// Under the writer's mu.
	acked    []Checkpoint // per unit: the last checkpoint its node acknowledged
	ackedOK  []bool
	floor    map[int]int64 // unit → the start of a batch of it that aborted: its resend starts there
	poisoned map[int64]bool
	batches  map[uint64]routedBatch
	nextID   uint64
	freeSeqs [][]uint64 // batches' seqs slices, answered, for new batches
	// A cluster's base (under the writer's mu): the position stored under prefix itself, up to
	// which every slot's commands are on the target.
	baseAcked Checkpoint
	baseOK    bool
	baseSent  int64       // sendMu
	baseAt    time.Time   // sendMu
	barrier   atomic.Bool // a command for every node is between its nodes: checkpoints are being rewritten
}

// routedBatch is a closed batch awaiting its EXEC's reply (or a lone SET's).
type routedBatch struct {
	unit int
	seqs []uint64 // the stream commands it carries (a command split in several parts: once per part)
	cp   Checkpoint
	from int64 // the unit's position before it
}

// Request kinds of a checkpointed routed stream; the reply reader handles them apart.
const (
	kindBatchMulti  uint8 = 96 + iota // MULTI opening a node's batch
	kindBatchQueued                   // a command queued in it; Tag.Offset is the command's end
	kindBatchCP                       // the SET of the checkpoint, queued last
	kindBatchEnd                      // EXEC; Tag.Offset is the batch's id
	kindLoneCP                        // SET of an idle node's checkpoint; Tag.Offset is the batch's id
)

// While the stream flows, idle nodes' positions are looked at every idleCheckEvery commands and
// stored at most every idleCheckpointEvery: the lowest position, where a restart resumes, stays
// close behind the stream.
const (
	idleCheckEvery      = 1000
	idleCheckpointEvery = 100 * time.Millisecond
)

// UnitCheckpointKey is where a node of a routed target keeps the position of unit under the
// source node's key.
func UnitCheckpointKey(key string, unit int) string { return key + ":" + strconv.Itoa(unit) }

func newUnitCheckpoints(prefix string, replid func() string, units int, slots bool) *unitCheckpoints {
	return &unitCheckpoints{prefix: prefix, replid: replid, slots: slots, pos: make([]int64, units),
		sent: make([]int64, units), acked: make([]Checkpoint, units), ackedOK: make([]bool, units),
		keys: make([][]byte, units), floor: map[int]int64{}, poisoned: map[int64]bool{},
		batches: map[uint64]routedBatch{}}
}

// sendKey is key(unit), made once: for the writer goroutine only.
func (c *unitCheckpoints) sendKey(unit int) []byte {
	if c.keys[unit] == nil {
		c.keys[unit] = []byte(c.key(unit))
	}
	return c.keys[unit]
}

// value encodes cp into the scratch buffer, valid until the next call: Conn.Send copies it.
func (c *unitCheckpoints) value(cp Checkpoint) []byte {
	c.val = append(c.val[:0], cp.Replid...)
	c.val = append(c.val, ' ')
	c.val = strconv.AppendInt(c.val, cp.Offset, 10)
	c.val = append(c.val, ' ')
	c.val = strconv.AppendInt(c.val, int64(cp.DB), 10)
	return c.val
}

// Command names of the batches, never written.
var (
	cmdMULTI = []byte("MULTI")
	cmdSET   = []byte("SET")
	cmdEXEC  = []byte("EXEC")
)

func (c *unitCheckpoints) key(unit int) string {
	if c.slots {
		return SlotCheckpointKey(c.prefix, unit)
	}
	return UnitCheckpointKey(c.prefix, unit)
}

func (c *unitCheckpoints) checkpoint(offset int64, db int) Checkpoint {
	cp := Checkpoint{Offset: offset, DB: db}
	if c.replid != nil {
		cp.Replid = c.replid()
	}
	return cp
}

// covered reports whether unit's part of the command ending at end is on the target already:
// it is then passed over.
func (w *sharded) covered(unit int, end int64) bool {
	if w.cp == nil || unit < 0 || end > w.cp.pos[unit] {
		return false
	}
	w.mu.Lock()
	w.skipped[SkipAlreadyApplied]++
	w.mu.Unlock()
	return true
}

// uncovered returns the nodes of nodes whose part of the command ending at end is still to run.
func (w *sharded) uncovered(nodes []*shardNode, end int64) []*shardNode {
	if w.cp == nil {
		return nodes
	}
	out := nodes[:0:0]
	for _, n := range nodes {
		if !w.covered(n.cpUnit, end) {
			out = append(out, n)
		}
	}
	return out
}

// newPart reports whether a request of command seq to n is a new part of it, with a reply of
// its own: always without checkpoints; in a batch, only the first of the command's requests
// (the batch's EXEC answers them all).
func (w *sharded) newPart(n *shardNode, seq uint64) bool {
	return w.cp == nil || !n.batchOpen || len(n.batchSeqs) == 0 || n.batchSeqs[len(n.batchSeqs)-1] != seq
}

// batchTag opens n's batch of unit when it has none (closing one of another unit first: a
// cluster node's transaction keeps to one slot) and returns the tag to send a part of command
// seq (ending at end, size bytes) with: queued in the batch when checkpoints are kept, tag as
// it is otherwise.
func (w *sharded) batchTag(n *shardNode, unit int, tag Tag, seq uint64, end int64, size int64) (Tag, error) {
	c := w.cp
	if c == nil {
		return tag, nil
	}
	if n.batchOpen && n.batchUnit != unit {
		if err := w.closeBatch(n); err != nil {
			return tag, err
		}
	}
	if !n.batchOpen {
		if err := n.oplog.Send(w.ctx, Tag{Kind: kindBatchMulti}, cmdMULTI); err != nil {
			return tag, err
		}
		var seqs []uint64
		w.mu.Lock()
		if k := len(c.freeSeqs); k > 0 {
			seqs, c.freeSeqs = c.freeSeqs[k-1], c.freeSeqs[:k-1]
		}
		w.mu.Unlock()
		n.batchOpen, n.batchUnit, n.batchSeqs, n.batchCmds, n.batchBytes, n.batchEnd = true, unit, seqs, 0, 0, 0
		c.open = append(c.open, n)
	}
	n.batchEnd = max(n.batchEnd, end)
	if len(n.batchSeqs) == 0 || n.batchSeqs[len(n.batchSeqs)-1] != seq { // chunks of one command: once
		n.batchSeqs = append(n.batchSeqs, seq)
	}
	n.batchCmds++
	n.batchBytes += size
	tag.Kind, tag.Offset = kindBatchQueued, end
	return tag, nil
}

// passed moves the checkpointed position over a command (Apply, Skip) once it is routed whole;
// inside a source transaction the position waits for its EXEC. Full batches are closed.
func (w *sharded) passed(end int64) error {
	c := w.cp
	if c == nil || w.tx != nil {
		return nil
	}
	c.end = end
	if c.passes++; c.passes >= idleCheckEvery {
		c.passes = 0
		if err := w.storeIdle(false); err != nil {
			return err
		}
	}
	return w.closeFull()
}

// closeFull closes the batches over their size bounds.
func (w *sharded) closeFull() error {
	c := w.cp
	for i := 0; i < len(c.open); {
		n := c.open[i]
		if n.batchCmds < batchMaxCmds && n.batchBytes < batchMaxBytes {
			i++
			continue
		}
		if err := w.closeBatch(n); err != nil {
			return err
		}
	}
	return nil
}

// closeBatches closes every open batch and stores the position of idle nodes: when the stream
// has nothing more for now. Inside a source transaction nothing closes.
func (w *sharded) closeBatches() error {
	c := w.cp
	if c == nil || w.tx != nil || !w.oplogOn {
		return nil
	}
	for len(c.open) > 0 {
		if err := w.closeBatch(c.open[0]); err != nil {
			return err
		}
	}
	return w.storeIdle(true)
}

// storeIdle stores the stream's position on every node without an open batch that has an
// older one: each node's at most every idleCheckpointEvery, unless all. A cluster stores its
// base instead.
func (w *sharded) storeIdle(all bool) error {
	c := w.cp
	if c.slots {
		return w.storeBase(all)
	}
	now := time.Now()
	for _, n := range w.serving() {
		if n.oplog == nil || n.batchOpen || c.sent[n.cpUnit] >= c.end || (!all && now.Sub(n.cpSentAt) < idleCheckpointEvery) {
			continue
		}
		cp := c.checkpoint(c.end, w.db)
		id := w.addBatch(n.cpUnit, nil, cp)
		if err := n.oplog.Send(w.ctx, Tag{Kind: kindLoneCP, Offset: int64(id)},
			cmdSET, c.sendKey(n.cpUnit), c.value(cp)); err != nil {
			return err
		}
		c.sent[n.cpUnit], n.cpSentAt = cp.Offset, now
		c.sentEnd = max(c.sentEnd, cp.Offset)
	}
	return nil
}

// closeBatch ends n's open batch with its checkpoint and EXEC.
func (w *sharded) closeBatch(n *shardNode) error {
	c := w.cp
	for i, o := range c.open {
		if o == n {
			c.open = append(c.open[:i], c.open[i+1:]...)
			break
		}
	}
	n.batchOpen = false
	// A batch closed in the middle of a command split over slots holds a part of it: its
	// position covers that part.
	cp := c.checkpoint(max(c.end, n.batchEnd), w.db)
	id := w.addBatch(n.batchUnit, n.batchSeqs, cp)
	n.batchSeqs = nil
	if err := n.oplog.Send(w.ctx, Tag{Kind: kindBatchCP}, cmdSET, c.sendKey(n.batchUnit), c.value(cp)); err != nil {
		return err
	}
	if err := n.oplog.Send(w.ctx, Tag{Kind: kindBatchEnd, Offset: int64(id)}, cmdEXEC); err != nil {
		return err
	}
	c.sent[n.batchUnit], n.cpSentAt = cp.Offset, time.Now()
	c.sentEnd = max(c.sentEnd, cp.Offset)
	return nil
}

// addBatch registers a batch of unit (-1: a cluster's base) awaiting its reply.
func (w *sharded) addBatch(unit int, seqs []uint64, cp Checkpoint) uint64 {
	c := w.cp
	var from int64
	if unit >= 0 {
		from = c.sent[unit]
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	id := c.nextID
	c.nextID++
	c.batches[id] = routedBatch{unit: unit, seqs: seqs, cp: cp, from: from}
	return id
}

// onBatchReply takes the replies of a checkpointed stream (node n's reply reader).
func (w *sharded) onBatchReply(n *shardNode, t *Tag, r *Reply, re *ReplyError) {
	c := w.cp
	switch t.Kind {
	case kindBatchMulti, kindBatchCP:
		if re != nil {
			w.stopBatches(n, t, re)
		}
	case kindBatchQueued:
		if re == nil {
			return
		}
		if _, _, moved := re.Redirect(); moved || re.Retryable() || re.Prefix == "CLUSTERDOWN" {
			w.stopBatches(n, t, re)
			return
		}
		// Refused while queueing: the batch aborts, and its resend leaves this command out.
		w.mu.Lock()
		again := c.poisoned[t.Offset] // another chunk of the same command
		c.poisoned[t.Offset] = true
		if !again {
			w.errs[ReasonQueueRefused]++
			w.lastErr = re.Msg
		}
		w.mu.Unlock()
		if !again {
			w.log.Error("target refused a command in a batch; it is left out and the batch resent",
				zap.String("node", n.addr), zap.String("reason", re.Prefix), zap.String("key", keyString(t.Key)),
				zap.Int64("offset", t.Offset), zap.Error(re))
		}
	case kindBatchEnd, kindLoneCP:
		id := uint64(t.Offset)
		w.mu.Lock()
		b, found := c.batches[id]
		delete(c.batches, id)
		w.mu.Unlock()
		if !found {
			return
		}
		if b.unit < 0 { // a cluster's base
			if re != nil {
				w.stopBatches(n, t, re)
				return
			}
			w.mu.Lock()
			w.cp.baseAcked, w.cp.baseOK = b.cp, true
			w.mu.Unlock()
			return
		}
		if re != nil {
			w.mu.Lock()
			if f, ok := c.floor[b.unit]; !ok || b.from < f {
				c.floor[b.unit] = b.from
			}
			w.mu.Unlock()
			w.stopBatches(n, t, re)
			return
		}
		if r.NestedErrs > 0 {
			w.mu.Lock()
			w.errs[r.NestedErr.Prefix] += uint64(r.NestedErrs)
			w.lastErr = r.NestedErr.Msg
			w.mu.Unlock()
			w.log.Warn("target error inside transaction", zap.String("node", n.addr), zap.String("reason", r.NestedErr.Prefix),
				zap.Int("count", r.NestedErrs), zap.Int64("offset", b.cp.Offset), zap.Error(r.NestedErr))
		}
		w.mu.Lock()
		if _, aborted := c.floor[b.unit]; aborted {
			// Ran after an aborted batch of its node: the resend from the floor repeats it.
			w.errs[ReasonAfterRefusal] += uint64(len(b.seqs))
		}
		c.acked[b.unit], c.ackedOK[b.unit] = b.cp, true
		n.checkUnit = b.unit
		for _, seq := range b.seqs {
			w.done(seq)
		}
		if b.seqs != nil && len(c.freeSeqs) < 64 {
			c.freeSeqs = append(c.freeSeqs, b.seqs[:0])
		}
		w.mu.Unlock()
	}
}

// stopBatches stops the stream after node n refused part of a batch: the caller reconnects
// and resends from the positions the nodes stored.
func (w *sharded) stopBatches(n *shardNode, t *Tag, re *ReplyError) {
	_, _, moved := re.Redirect()
	moved = moved || re.Prefix == "TRYAGAIN"
	w.mu.Lock()
	first := w.broken == nil
	switch {
	case !first:
	case moved:
		w.broken = fmt.Errorf("target %s: node %s redirected a batch (%s): %w", w.kind.name, n.addr, re.Msg, ErrRedirected)
		w.redirected++
	default:
		w.broken = fmt.Errorf("target %s: node %s refused a batch (%s): %w", w.kind.name, n.addr, re.Msg, ErrRetry)
		w.errs["retry_"+re.Prefix]++
		w.lastErr = re.Msg
	}
	w.mu.Unlock()
	if first && moved {
		w.log.Info("a batch was redirected (a slot moving): the stream will be resent from the stored positions",
			zap.String("node", n.addr), zap.String("reason", re.Prefix), zap.Int64("offset", t.Offset))
	} else if first {
		w.log.Warn("target refused a batch; the stream will be resent from the stored positions",
			zap.String("node", n.addr), zap.String("reason", re.Prefix), zap.Int64("offset", t.Offset))
	}
}

// takePoisoned reports whether the command ending at end was refused in an earlier try of its
// batch, forgetting it.
func (w *sharded) takePoisoned(end int64) bool {
	if w.cp == nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.cp.poisoned[end] {
		return false
	}
	delete(w.cp.poisoned, end)
	w.skipped[ReasonQueueRefused]++
	return true
}

// nodeConn is the connection options of node n, for reading or writing its checkpoint.
func (w *sharded) nodeConn(n *shardNode) Options {
	o := w.opts.Conn
	o.Addr = n.addr
	return o
}

// startCheckpoints reads each node's checkpoint when the stream starts at offset (a resume:
// where the lowest of them stands; after a snapshot: where it ended) and stores the position
// of every node that has none or an older one. Each unit's commands up to its position are
// passed over.
func (w *sharded) startCheckpoints(ctx context.Context, offset int64, db int) error {
	c := w.cp
	if c == nil {
		return nil
	}
	if c.slots {
		return w.startSlotCheckpoints(ctx, offset, db)
	}
	base := c.checkpoint(offset, db)
	for _, n := range w.serving() {
		u := n.cpUnit
		c.pos[u] = offset
		cp, ok, err := readCheckpoint(ctx, w.nodeConn(n), c.key(u), 0)
		if err != nil && !errors.Is(err, ErrBadCheckpoint) {
			return fmt.Errorf("target %s: node %s: reading the checkpoint %s: %w", w.kind.name, n.addr, c.key(u), err)
		}
		if ok && cp.Offset > offset {
			c.pos[u] = cp.Offset
			w.log.Info("resuming a node past the stream's start", zap.String("node", n.addr),
				zap.Int64("start", offset), zap.Int64("node_checkpoint", cp.Offset))
		} else if base.Replid != "" {
			if _, err := n.oplog.Do(ctx, "SET", c.key(u), base.String()); err != nil {
				return fmt.Errorf("target %s: node %s: storing the checkpoint %s: %w", w.kind.name, n.addr, c.key(u), err)
			}
			cp, ok = base, true
		}
		c.sent[u], n.cpSentAt = c.pos[u], time.Now()
		c.sentEnd = max(c.sentEnd, c.pos[u])
		w.mu.Lock()
		c.acked[u], c.ackedOK[u] = cp, ok
		w.mu.Unlock()
	}
	c.end = offset
	return nil
}

// reloadCheckpoints reads each node's checkpoint on Reconnect, after killing its old oplog
// connection on the server: a batch whose EXEC ran but whose reply was lost counts, and the
// unit's commands up to it are passed over in the resend. A checkpoint gone or behind the one
// acknowledged is a loss.
func (w *sharded) reloadCheckpoints(ctx context.Context, nodes []*shardNode) error {
	c := w.cp
	if c == nil {
		return nil
	}
	w.mu.Lock()
	floor := c.floor
	c.floor = map[int]int64{}
	for u := range floor {
		// Resent from before an aborted batch, its checkpoint goes back: nothing to compare.
		c.ackedOK[u] = false
	}
	w.mu.Unlock()
	if c.slots {
		if err := w.reloadSlotCheckpoints(ctx, nodes, floor); err != nil {
			w.mu.Lock()
			for u, f := range floor { // for the next try
				if g, ok := c.floor[u]; !ok || f < g {
					c.floor[u] = f
				}
			}
			w.mu.Unlock()
			return err
		}
		w.dropBatches()
		return nil
	}
	for _, n := range nodes {
		if n.cpUnit < 0 {
			continue
		}
		u := n.cpUnit
		cp, ok, err := readCheckpoint(ctx, w.nodeConn(n), c.key(u), n.oplogID)
		bad := errors.Is(err, ErrBadCheckpoint)
		if err != nil && !bad {
			return fmt.Errorf("target %s: node %s: reading the checkpoint %s: %w", w.kind.name, n.addr, c.key(u), err)
		}
		if !bad {
			if err := w.lostCheckpoint(n.addr, u, cp, ok); err != nil {
				return err
			}
		}
		if ok && cp.Offset <= c.sentEnd {
			c.pos[u] = max(c.pos[u], cp.Offset)
		}
		if f, aborted := floor[u]; aborted && f < c.pos[u] {
			c.pos[u] = f
		}
		c.sent[u] = c.pos[u]
	}
	w.dropBatches()
	return nil
}

// dropBatches forgets the batches of the connections Reconnect closed.
func (w *sharded) dropBatches() {
	c := w.cp
	for _, n := range c.open {
		n.batchOpen = false
	}
	c.open = nil
	w.mu.Lock()
	c.batches = map[uint64]routedBatch{}
	w.mu.Unlock()
}

// lostCheckpoint says whether the checkpoint of unit read on the node at addr (found: ok)
// shows it lost what it acknowledged: gone, or behind the last acknowledged batch.
func (w *sharded) lostCheckpoint(addr string, unit int, cp Checkpoint, ok bool) error {
	c := w.cp
	w.mu.Lock()
	acked, any := c.acked[unit], c.ackedOK[unit]
	w.mu.Unlock()
	return lostAgainst(w.kind.name, addr, c.key(unit), acked, any, cp, ok)
}

// lostAgainst compares a checkpoint read (found: ok) with the one acknowledged (any: one was).
func lostAgainst(kind, addr, key string, acked Checkpoint, any bool, cp Checkpoint, ok bool) error {
	switch {
	case !any:
		return nil
	case !ok:
		return fmt.Errorf("target %s: node %s: the checkpoint %s is gone (acknowledged at offset %d): %w",
			kind, addr, key, acked.Offset, ErrTargetLost)
	case cp.Offset < acked.Offset:
		return fmt.Errorf("target %s: node %s: the checkpoint %s is at offset %d, behind the %d it acknowledged: %w",
			kind, addr, key, cp.Offset, acked.Offset, ErrTargetLost)
	}
	return nil
}

// CheckTarget reads every node's checkpoint and compares it with the last one the node
// acknowledged: one gone or behind means that node lost data (ErrTargetLost).
func (w *sharded) CheckTarget(ctx context.Context) error {
	if w.cp == nil {
		return nil
	}
	if w.cp.slots {
		return w.checkSlotTarget(ctx)
	}
	w.mu.Lock()
	nodes := append([]*shardNode(nil), w.nodes...)
	w.mu.Unlock()
	for _, n := range nodes {
		if n.cpUnit < 0 {
			continue
		}
		// What was acknowledged before the read: a batch acknowledged during it is no loss.
		acked, any := w.ackedOf(n.cpUnit)
		cp, ok, err := readCheckpoint(ctx, w.nodeConn(n), w.cp.key(n.cpUnit), 0)
		if errors.Is(err, ErrBadCheckpoint) {
			continue // there, but not one to compare: not a loss
		}
		if err != nil {
			return err
		}
		if err := lostAgainst(w.kind.name, n.addr, w.cp.key(n.cpUnit), acked, any, cp, ok); err != nil {
			return err
		}
	}
	return nil
}

// ackedOf returns the checkpoint of unit last acknowledged, if any.
func (w *sharded) ackedOf(unit int) (Checkpoint, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cp.acked[unit], w.cp.ackedOK[unit]
}

// readUnitCheckpoints returns the lowest of the checkpoints the nodes keep under key (each
// node i under UnitCheckpointKey(key, i)): where a restarted stream resumes. It returns false
// when a node has none: that node never had the stream, or lost it; either way a full sync.
func readUnitCheckpoints(ctx context.Context, o Options, addrs []string, key string) (Checkpoint, bool, error) {
	var low Checkpoint
	for i, a := range addrs {
		o.Addr = a
		cp, ok, err := readCheckpoint(ctx, o, UnitCheckpointKey(key, i), 0)
		if err != nil {
			return Checkpoint{}, false, fmt.Errorf("target %s: %w", a, err)
		}
		if !ok {
			return Checkpoint{}, false, nil
		}
		if i == 0 || cp.Offset < low.Offset {
			low = cp
		}
	}
	return low, len(addrs) > 0, nil
}

// clearUnitCheckpoints deletes every node's checkpoint under key.
func clearUnitCheckpoints(ctx context.Context, o Options, addrs []string, key string) error {
	for i, a := range addrs {
		o.Addr = a
		if err := ClearCheckpoint(ctx, o, UnitCheckpointKey(key, i)); err != nil {
			return fmt.Errorf("target %s: %w", a, err)
		}
	}
	return nil
}
