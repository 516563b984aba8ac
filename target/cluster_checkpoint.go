package target

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mediocregopher/radix/v4"
	"go.uber.org/zap"

	"github.com/rmt-project/rmt/internal/redisctl"
	"github.com/rmt-project/rmt/internal/shard"
)

// Exactly once on a Redis Cluster target. A transaction on a cluster node must keep to one
// slot, so the checkpoints are per slot: the source node's position for slot s is kept under
// SlotCheckpointKey(key, s) = key:{<tag of s>}, in slot s itself, and the stream goes to each
// node in transactions of one slot each,
//
//	MULTI, <consecutive commands of slot s on that node>, SET key:{<tag of s>} <position>, EXEC
//
// (commands of different slots touch different keys: they may go in any order between slots;
// within a slot the order holds). Beside them the base, under key itself (on the node of its
// slot), is the stream's position up to which every slot's commands are on the target: the
// acknowledged prefix, stored every 100 ms or so while it moves. A restart resumes the PSYNC
// from the base; the writer reads every slot checkpoint (SCAN on every master) and passes over
// each slot's commands up to its own position; a slot without one uses the base. A slot that
// moves (MIGRATE) takes its checkpoint with it. Each node also keeps the checkpoint of its
// first slot from the stream's start, so that every node holds one to be checked.
//
// A batch the cluster redirects (MOVED, ASK, TRYAGAIN, CLUSTERDOWN: the whole transaction is
// refused, EXECABORT) stops the stream: Reconnect re-reads the slot map and the checkpoints of
// the slots it had batches in flight for, and the stream is resent from the base of what was
// acknowledged; during a slot's migration that repeats until the migration ends.
//
// A command for every node (FLUSHALL, FLUSHDB, FUNCTION LOAD/DELETE/FLUSH/RESTORE, SCRIPT
// LOAD/FLUSH) is a barrier: every batch before it is acknowledged first, it is sent to every
// node, and once every node answered, the base and the nodes' first-slot checkpoints are
// stored at its position (a FLUSHALL wiped them). A crash while it is between the nodes
// resumes before it, with each slot on a node it already ran on back at the base (its
// checkpoint gone with the flush), so everything of those slots before it runs again and is
// flushed again, as on the source; FUNCTION LOAD run again fails where it ran (counted), with
// the same functions in the end. If the base's own node was flushed and the crash came before
// the base was stored again, the base is gone and the restart is a full sync.

// SlotCheckpointKey is where a cluster target keeps the position of slot under the source
// node's key: key:{tag}, whose hash tag puts it in slot.
func SlotCheckpointKey(key string, slot int) string { return key + ":{" + shard.SlotTag(slot) + "}" }

// globEscape escapes the bytes a SCAN MATCH pattern treats apart.
func globEscape(s string) string {
	var b strings.Builder
	for i := range len(s) {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// isRedirect reports whether err is a reply sending the request to another node.
func isRedirect(err error) bool {
	var re *ReplyError
	if !errors.As(err, &re) {
		return false
	}
	_, _, ok := re.Redirect()
	return ok
}

// baseSlot is the slot of the base key.
func (c *unitCheckpoints) baseSlot() int { return shard.Slot([]byte(c.prefix)) }

// storeBase stores the acknowledged prefix as the base when it moved (at most every
// idleCheckpointEvery, unless all). The base's node has its open batch closed first: a plain
// SET must not fall into a transaction of another slot.
func (w *sharded) storeBase(all bool) error {
	c := w.cp
	w.mu.Lock()
	applied, db := w.applied, w.appliedDB
	w.mu.Unlock()
	now := time.Now()
	if applied <= c.baseSent || (!all && now.Sub(c.baseAt) < idleCheckpointEvery) || c.barrier.Load() {
		return nil
	}
	n := w.shards[c.baseSlot()]
	if n == nil || n.oplog == nil {
		return nil
	}
	if n.batchOpen {
		if err := w.closeBatch(n); err != nil {
			return err
		}
	}
	cp := c.checkpoint(applied, db)
	if cp.Replid == "" {
		return nil // a stream without replication ID: nothing to resume
	}
	id := w.addBatch(-1, nil, cp)
	if err := n.oplog.Send(w.ctx, Tag{Kind: kindLoneCP, Offset: int64(id)}, cmdSET, []byte(c.prefix), c.value(cp)); err != nil {
		return err
	}
	c.baseSent, c.baseAt = applied, now
	return nil
}

// firstSlots returns, for each serving node, the first slot it serves.
func (w *sharded) firstSlots() map[*shardNode]int {
	out := map[*shardNode]int{}
	for s, n := range w.shards {
		if _, ok := out[n]; n != nil && !ok {
			out[n] = s
		}
	}
	return out
}

// radixDo runs one command on the node at addr over a new connection.
func (w *sharded) radixDo(ctx context.Context, addr string, fn func(radix.Conn) error) error {
	return dataNodesOf(w.opts.Conn, []string{addr})[0].do(ctx, fn)
}

// startSlotCheckpoints is startCheckpoints of a cluster: every slot starts at offset, or at its
// own checkpoint when a master holds a later one; then the base and each node's first slot
// are stored at offset.
func (w *sharded) startSlotCheckpoints(ctx context.Context, offset int64, db int) error {
	c := w.cp
	for u := range c.pos {
		c.pos[u], c.sent[u] = offset, offset
	}
	w.mu.Lock()
	clear(c.ackedOK)
	c.baseOK = false
	w.mu.Unlock()
	pattern := globEscape(c.prefix) + ":{*"
	resumed := 0
	for _, n := range w.serving() {
		err := w.radixDo(ctx, n.addr, func(rc radix.Conn) error {
			cursor := "0"
			for {
				next, keys, err := redisctl.ScanKeys(func(a radix.Action) error { return rc.Do(ctx, a) }, cursor, pattern)
				if err != nil {
					return err
				}
				for _, k := range keys {
					s := shard.Slot([]byte(k))
					if k != c.key(s) {
						continue
					}
					var v string
					if err := rc.Do(ctx, radix.Cmd(&v, "GET", k)); err != nil {
						return fmt.Errorf("GET %s: %w", k, err)
					}
					cp, err := ParseCheckpoint(v)
					if err != nil || cp.Offset <= offset {
						continue
					}
					c.pos[s], c.sent[s] = cp.Offset, cp.Offset
					c.sentEnd = max(c.sentEnd, cp.Offset)
					w.mu.Lock()
					c.acked[s], c.ackedOK[s] = cp, true
					w.mu.Unlock()
					resumed++
				}
				if cursor = next; cursor == "0" {
					return nil
				}
			}
		})
		if err != nil {
			return fmt.Errorf("target %s: node %s: reading the slot checkpoints %s: %w", w.kind.name, n.addr, pattern, err)
		}
	}
	if resumed > 0 {
		w.log.Info("slots resuming past the stream's start", zap.Int("slots", resumed), zap.Int64("start", offset))
	}
	c.end = offset
	c.sentEnd = max(c.sentEnd, offset)
	base := c.checkpoint(offset, db)
	if base.Replid == "" {
		return nil // a file's stream, or a source without replication ID: nothing to resume
	}
	return w.storeBaseAndMarkers(ctx, base)
}

// storeBaseAndMarkers stores cp as the base and as the checkpoint of each node's first slot
// (where that slot has none acknowledged), waiting for each.
func (w *sharded) storeBaseAndMarkers(ctx context.Context, cp Checkpoint) error {
	c := w.cp
	set := func(addr, key string) error {
		err := w.radixDo(ctx, addr, func(rc radix.Conn) error { return rc.Do(ctx, radix.Cmd(nil, "SET", key, cp.String())) })
		if err != nil {
			return fmt.Errorf("target %s: node %s: storing the checkpoint %s: %w", w.kind.name, addr, key, err)
		}
		return nil
	}
	if n := w.shards[c.baseSlot()]; n != nil {
		if err := set(n.addr, c.prefix); err != nil {
			return err
		}
		w.mu.Lock()
		c.baseAcked, c.baseOK = cp, true
		w.mu.Unlock()
		c.baseSent, c.baseAt = max(c.baseSent, cp.Offset), time.Now()
	}
	for n, s := range w.firstSlots() {
		w.mu.Lock()
		has := c.ackedOK[s]
		w.mu.Unlock()
		if !has {
			if err := set(n.addr, c.key(s)); err != nil {
				return err
			}
			c.sent[s] = max(c.sent[s], cp.Offset)
		}
		w.mu.Lock()
		if !has {
			c.acked[s], c.ackedOK[s] = cp, true
		}
		n.checkUnit = s
		w.mu.Unlock()
	}
	return nil
}

// readSlotCheckpoint reads slot's checkpoint on the node at addr, following one MOVED.
func (w *sharded) readSlotCheckpoint(ctx context.Context, addr string, slot int) (Checkpoint, bool, error) {
	o := w.opts.Conn
	o.Addr = addr
	cp, ok, err := readCheckpoint(ctx, o, w.cp.key(slot), 0)
	var re *ReplyError
	if errors.As(err, &re) {
		if _, to, moved := re.Redirect(); moved {
			o.Addr = to
			cp, ok, err = readCheckpoint(ctx, o, w.cp.key(slot), 0)
		}
	}
	return cp, ok, err
}

// reloadSlotCheckpoints is reloadCheckpoints of a cluster: the old oplog connections are
// killed on the servers, then the slots with batches in flight have their checkpoints read
// (an EXEC may have run, its reply lost); the slots acknowledged since the stream started are
// passed over up to what they acknowledged; a slot with an aborted batch starts again before
// it.
func (w *sharded) reloadSlotCheckpoints(ctx context.Context, nodes []*shardNode, floor map[int]int64) error {
	c := w.cp
	for _, n := range nodes {
		if n.oplogID == 0 {
			continue
		}
		err := w.radixDo(ctx, n.addr, func(rc radix.Conn) error {
			return rc.Do(ctx, radix.Cmd(nil, "CLIENT", "KILL", "ID", strconv.FormatInt(n.oplogID, 10)))
		})
		if err != nil && !isRadixReplyError(err) { // "No such client": gone, its input all run
			return fmt.Errorf("target %s: node %s: killing the old oplog connection: %w", w.kind.name, n.addr, err)
		}
		n.oplogID = 0
	}
	if err := w.lostSlots(ctx); err != nil {
		return err
	}
	w.mu.Lock()
	inFlight := map[int]bool{}
	for _, b := range c.batches {
		if b.unit >= 0 {
			inFlight[b.unit] = true
		}
	}
	for u := range floor {
		inFlight[u] = true
	}
	for u, ok := range c.ackedOK {
		if ok {
			c.pos[u] = max(c.pos[u], c.acked[u].Offset)
		}
	}
	w.mu.Unlock()
	for u := range inFlight {
		n := w.shards[u]
		if n == nil {
			continue
		}
		cp, ok, err := w.readSlotCheckpoint(ctx, n.addr, u)
		if errors.Is(err, ErrBadCheckpoint) {
			continue
		}
		if err != nil {
			return fmt.Errorf("target %s: node %s: reading the checkpoint %s: %w", w.kind.name, n.addr, c.key(u), err)
		}
		if ok && cp.Offset <= c.sentEnd {
			c.pos[u] = max(c.pos[u], cp.Offset)
		}
	}
	for u, f := range floor {
		c.pos[u] = min(c.pos[u], f)
	}
	for u := range inFlight {
		c.sent[u] = c.pos[u]
	}
	return nil
}

// lostSlots reads the base and each node's checked slot checkpoint and compares them with what
// was acknowledged: ErrTargetLost when one is gone or behind. A key found moved (its slot
// migrated meanwhile) is not compared.
func (w *sharded) lostSlots(ctx context.Context) error {
	c := w.cp
	// What was acknowledged before the reads: a batch acknowledged during them is no loss.
	w.mu.Lock()
	nodes := append([]*shardNode(nil), w.nodes...)
	checks := make([]int, len(nodes))
	acked := make([]Checkpoint, len(nodes))
	for i, n := range nodes {
		checks[i] = n.checkUnit
		if n.checkUnit >= 0 && c.ackedOK[n.checkUnit] {
			acked[i] = c.acked[n.checkUnit]
		} else {
			checks[i] = -1
		}
	}
	base, baseOK := c.baseAcked, c.baseOK
	w.mu.Unlock()
	if baseOK {
		for _, n := range nodes {
			o := w.nodeConn(n)
			cp, ok, err := readCheckpoint(ctx, o, c.prefix, 0)
			if isRedirect(err) || errors.Is(err, ErrBadCheckpoint) {
				continue
			}
			if err != nil {
				return err
			}
			if err := lostAgainst(w.kind.name, n.addr, c.prefix, base, true, cp, ok); err != nil {
				return err
			}
			break // the node of the base's slot answered
		}
	}
	for i, n := range nodes {
		if checks[i] < 0 {
			continue
		}
		cp, ok, err := readCheckpoint(ctx, w.nodeConn(n), c.key(checks[i]), 0)
		if isRedirect(err) || errors.Is(err, ErrBadCheckpoint) {
			continue
		}
		if err != nil {
			return err
		}
		if err := lostAgainst(w.kind.name, n.addr, c.key(checks[i]), acked[i], true, cp, ok); err != nil {
			return err
		}
	}
	return nil
}

// checkSlotTarget is CheckTarget of a cluster; nothing is compared while a command for every
// node is between them (a FLUSHALL wipes the checkpoints until they are stored again).
func (w *sharded) checkSlotTarget(ctx context.Context) error {
	if w.cp.barrier.Load() {
		return nil
	}
	err := w.lostSlots(ctx)
	if errors.Is(err, ErrTargetLost) && w.cp.barrier.Load() {
		return nil
	}
	return err
}

// broadcastExact sends a command for every node of a cluster as a barrier (see above): send
// sends it to one node with its tag.
func (w *sharded) broadcastExact(end int64, send func(n *shardNode, tag Tag) error) error {
	c := w.cp
	c.barrier.Store(true)
	defer c.barrier.Store(false)
	if err := w.settle(); err != nil {
		return err
	}
	nodes := w.serving()
	seq := w.push(end, len(nodes))
	for _, n := range nodes {
		if err := send(n, Tag{Offset: int64(seq), DB: -1, Kind: kindRoutedOp}); err != nil {
			return err
		}
	}
	if err := w.settle(); err != nil {
		return err
	}
	w.mu.Lock()
	clear(c.ackedOK)
	for _, n := range w.nodes {
		n.checkUnit = -1
	}
	applied := w.applied
	w.mu.Unlock()
	if applied != end {
		return fmt.Errorf("target %s: a command for every node at offset %d: acknowledged up to %d only: %w",
			w.kind.name, end, applied, ErrRetry)
	}
	c.end = end
	return w.storeBaseAndMarkers(w.ctx, c.checkpoint(end, w.db))
}

// settle closes every open batch and waits until everything sent has its reply, redirected
// requests resent.
func (w *sharded) settle() error {
	for len(w.cp.open) > 0 {
		if err := w.closeBatch(w.cp.open[0]); err != nil {
			return err
		}
	}
	for {
		for _, n := range w.oplogNodes() {
			if err := n.oplog.Drain(w.ctx); err != nil {
				return err
			}
		}
		if !w.opRedir.Load() {
			return w.brokenErr()
		}
		if err := w.resolve(w.ctx); err != nil {
			return err
		}
	}
}

// ReadCheckpoint returns the base the masters keep under key, and false when none has it.
func (t *clusterTarget) ReadCheckpoint(ctx context.Context, key string) (Checkpoint, bool, error) {
	nodes, err := t.masters(ctx)
	if err != nil {
		return Checkpoint{}, false, err
	}
	for _, n := range nodes {
		o := t.cfg.Conn
		o.Addr = n.addr
		cp, ok, err := readCheckpoint(ctx, o, key, 0)
		if isRedirect(err) {
			continue
		}
		if err != nil {
			return Checkpoint{}, false, fmt.Errorf("target cluster %s: %w", n.addr, err)
		}
		return cp, ok, nil
	}
	return Checkpoint{}, false, nil
}

// ClearCheckpoint deletes the base under key and every slot checkpoint under it, on every
// master.
func (t *clusterTarget) ClearCheckpoint(ctx context.Context, key string) error {
	nodes, err := t.masters(ctx)
	if err != nil {
		return err
	}
	pattern := globEscape(key) + ":{*"
	for _, n := range nodes {
		err := n.do(ctx, func(rc radix.Conn) error {
			if err := rc.Do(ctx, radix.Cmd(nil, "DEL", key)); err != nil && !isRadixReplyError(err) {
				return err
			}
			cursor := "0"
			for {
				next, keys, err := redisctl.ScanKeys(func(a radix.Action) error { return rc.Do(ctx, a) }, cursor, pattern)
				if err != nil {
					return err
				}
				for _, k := range keys {
					if err := rc.Do(ctx, radix.Cmd(nil, "DEL", k)); err != nil && !isRadixReplyError(err) {
						return err
					}
				}
				if cursor = next; cursor == "0" {
					return nil
				}
			}
		})
		if err != nil {
			return fmt.Errorf("target cluster %s: clearing the checkpoints %s: %w", n.addr, key, err)
		}
	}
	return nil
}
