package target

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/shard"
)

// seqQueue holds the oplog commands (by sequence number) whose replies are not all in: the
// applied position moves over its acknowledged prefix only.
type seqQueue struct {
	q    []seqEntry
	head int
}

type seqEntry struct {
	seq       uint64
	end       int64
	db        int
	parts     int // requests sent for it (0: a skip)
	remaining int // replies still awaited
}

// StartOplog connects the ordered oplog connection of every master and sets the applied
// position to (offset, db): where the stream resumes. Apply calls it with (0, 0) if it was not.
func (c *Cluster) StartOplog(ctx context.Context, offset int64, db int) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	return c.startOplog(ctx, offset, db)
}

func (c *Cluster) startOplog(ctx context.Context, offset int64, db int) error {
	if c.oplogOn {
		return errors.New("target cluster: oplog already started")
	}
	c.oplogOn = true
	c.db = db
	c.tx = nil
	c.mu.Lock()
	c.applied, c.appliedDB = offset, db
	c.seqs = seqQueue{}
	c.broken = nil
	c.mu.Unlock()
	if err := c.refresh(ctx); err != nil {
		// Some master may have no oplog connection: Apply refuses until Reconnect.
		c.mu.Lock()
		c.broken = fmt.Errorf("%w: %w", ErrBroken, err)
		c.mu.Unlock()
		return err
	}
	return nil
}

// Apply routes one command of the replication stream to the master of its keys' slot, on that
// master's ordered connection; end is the replication offset just after it.
//
//   - SELECT is tracked; commands of a db other than 0 are skipped (select_nonzero).
//   - PING/REPLCONF (control) and PUBLISH/SPUBLISH (pubsub) are skipped.
//   - A command over several slots: MSET, DEL, UNLINK and TOUCH are split per slot; any other
//     is skipped and logged with its keys (crossslot).
//   - MULTI ... EXEC is buffered and sent as a transaction when its keys share one slot; else its
//     commands are applied one by one (multi_split).
//   - FLUSHALL, FLUSHDB, FUNCTION LOAD/DELETE/FLUSH/RESTORE and SCRIPT LOAD/FLUSH go to every
//     master; other keyless commands are skipped (no_key), unknown ones too (unknown_command).
//
// A MOVED or ASK reply makes the next Apply drain every connection, refresh the slot map and
// resend the redirected commands in their original order first. It returns an error wrapping
// ErrBroken when a connection broke: Reconnect, then resend from the offset it returns.
func (c *Cluster) Apply(cmd *aof.Command, end int64) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if !c.oplogOn {
		if err := c.startOplog(c.ctx, 0, 0); err != nil {
			return err
		}
	}
	if err := c.brokenErr(); err != nil {
		return fmt.Errorf("target cluster: apply at offset %d: %w", end, err)
	}
	if c.opRedir.Load() {
		if err := c.resolve(c.ctx); err != nil {
			return fmt.Errorf("target cluster: apply at offset %d: %w", end, err)
		}
	}
	if len(cmd.Args) == 0 {
		c.skip(SkipEmpty, end)
		return nil
	}
	name := cmd.Args[0]
	switch {
	case isCmd(name, "PING"), isCmd(name, "REPLCONF"):
		c.skip(SkipControl, end)
		return nil
	case isCmd(name, "PUBLISH"), isCmd(name, "SPUBLISH"):
		c.skip(SkipPubSub, end)
		return nil
	case isCmd(name, "SELECT"):
		if len(cmd.Args) == 2 {
			if db, ok := parseInt(cmd.Args[1]); ok && db >= 0 && db < 1<<31 {
				c.db = int(db)
			}
		}
		c.skip("", end)
		return nil
	case isCmd(name, "MULTI"):
		if c.tx == nil && c.db == 0 {
			c.tx = &txBuf{}
		}
		return nil // the applied position passes MULTI with its EXEC
	case isCmd(name, "EXEC"):
		if c.tx == nil {
			c.skip("", end)
			return nil
		}
		return c.flushTx(end)
	case isCmd(name, "DISCARD"):
		c.tx = nil
		c.skip("", end)
		return nil
	}
	if c.db != 0 {
		var key []byte
		if len(cmd.Args) > 1 {
			key = cmd.Args[1]
		}
		c.countSkip(SkipSelectNonZero, key, "command of a non-zero db skipped: a cluster has only db 0",
			zap.Int("db", c.db), zap.Int64("offset", end))
		c.skip("", end)
		return nil
	}
	if c.tx != nil {
		c.tx.add(cmd, end)
		if c.tx.bytes > txLimit {
			// Too big to hold: apply what it has one by one and go on without buffering.
			c.countSkip(CountMultiSplit, nil, "transaction too big to buffer: applied command by command",
				zap.Int64("offset", end))
			tx := c.tx
			c.tx = nil
			return c.applyEach(tx)
		}
		return nil
	}
	return c.route(cmd.Args, cmd.Raw, end)
}

// txLimit bounds the bytes of one buffered transaction.
const txLimit = 16 << 20

// txBuf is a transaction being buffered until its EXEC.
type txBuf struct {
	cmds  []txCmd
	bytes int
}

type txCmd struct {
	args [][]byte
	raw  []byte
	end  int64
}

func (tx *txBuf) add(cmd *aof.Command, end int64) {
	raw := append([]byte(nil), cmd.Raw...)
	args := make([][]byte, len(cmd.Args))
	for i, a := range cmd.Args {
		args[i] = append([]byte(nil), a...)
	}
	tx.cmds = append(tx.cmds, txCmd{args: args, raw: raw, end: end})
	tx.bytes += 2 * len(raw)
}

// applyEach routes the commands of a transaction one by one.
func (c *Cluster) applyEach(tx *txBuf) error {
	for _, tc := range tx.cmds {
		if err := c.route(tc.args, tc.raw, tc.end); err != nil {
			return err
		}
	}
	return nil
}

// flushTx sends a buffered transaction at its EXEC: whole to one master when its keys share a
// slot, else command by command.
func (c *Cluster) flushTx(end int64) error {
	tx := c.tx
	c.tx = nil
	if c.alreadyApplied(end) {
		return nil
	}
	slot := -1
	one := true
	var keys [][]byte
	for _, tc := range tx.cmds {
		spec := aof.LookupArgs(tc.args)
		ks := spec.Keys(tc.args, c.keyBuf[:0])
		c.keyBuf = ks[:0]
		if spec == nil || (len(ks) == 0 && isBroadcast(tc.args)) {
			one = false
		}
		for _, k := range ks {
			s := shard.Slot(k)
			if slot < 0 {
				slot = s
			} else if s != slot {
				one = false
			}
			if len(keys) < 8 {
				keys = append(keys, append([]byte(nil), k...))
			}
		}
	}
	if len(tx.cmds) == 0 {
		c.skip("", end)
		return nil
	}
	if !one || slot < 0 {
		if slot >= 0 {
			var ks []string
			for _, k := range keys {
				ks = append(ks, keyString(k))
			}
			c.countSkip(CountMultiSplit, nil, "transaction over several slots applied command by command",
				zap.Strings("keys", ks), zap.Int64("offset", end))
		}
		if err := c.applyEach(tx); err != nil {
			return err
		}
		c.skip("", end)
		return nil
	}
	n, err := c.owner(slot)
	if err != nil {
		return err
	}
	if n == nil {
		c.countSkip(SkipUnowned, keys[0], "no master serves the transaction's slot", zap.Int("slot", slot))
		c.skip("", end)
		return nil
	}
	cmds := make([][]byte, 0, len(tx.cmds)+2)
	cmds = append(cmds, appendCommandStrings(nil, "MULTI"))
	for _, tc := range tx.cmds {
		cmds = append(cmds, tc.raw)
	}
	cmds = append(cmds, appendCommandStrings(nil, "EXEC"))
	seq := c.push(end, 1)
	c.mu.Lock()
	c.txs[seq] = cmds
	c.mu.Unlock()
	return c.sendTx(n, seq, slot, keys[0], cmds, false)
}

func (c *Cluster) sendTx(n *clusterNode, seq uint64, slot int, key []byte, cmds [][]byte, ask bool) error {
	if ask {
		if err := n.oplog.Send(c.ctx, Tag{Offset: int64(seq), Kind: kindAsking, Key: key}, []byte("ASKING")); err != nil {
			return err
		}
	}
	for i, raw := range cmds {
		kind := kindClusterTx
		if i == len(cmds)-1 {
			kind = kindClusterExec
		}
		if err := n.oplog.SendRaw(c.ctx, Tag{Offset: int64(seq), DB: slot, Kind: kind, Key: key}, raw); err != nil {
			return err
		}
	}
	return nil
}

// isBroadcast reports whether a keyless command belongs on every master.
func isBroadcast(args [][]byte) bool {
	name := args[0]
	switch {
	case isCmd(name, "FLUSHALL"), isCmd(name, "FLUSHDB"):
		return true
	case isCmd(name, "FUNCTION") && len(args) > 1:
		sub := args[1]
		return isCmd(sub, "LOAD") || isCmd(sub, "DELETE") || isCmd(sub, "FLUSH") || isCmd(sub, "RESTORE")
	case isCmd(name, "SCRIPT") && len(args) > 1:
		return isCmd(args[1], "LOAD") || isCmd(args[1], "FLUSH")
	}
	return false
}

// route sends one command (outside a transaction) to the master(s) of its keys.
func (c *Cluster) route(args [][]byte, raw []byte, end int64) error {
	if c.alreadyApplied(end) {
		return nil
	}
	spec := aof.LookupArgs(args)
	if spec == nil {
		c.countSkip(SkipUnknown, argOrNil(args, 1), "unknown command skipped: its keys cannot be routed",
			zap.ByteString("command", bytes.ToUpper(args[0])), zap.Int64("offset", end))
		c.skip("", end)
		return nil
	}
	keys := spec.Keys(args, c.keyBuf[:0])
	c.keyBuf = keys[:0]
	if len(keys) == 0 {
		if !isBroadcast(args) {
			c.countSkip(SkipNoKey, nil, "keyless command skipped",
				zap.ByteString("command", bytes.ToUpper(args[0])), zap.Int64("offset", end))
			c.skip("", end)
			return nil
		}
		masters := c.masterNodes()
		seq := c.push(end, len(masters))
		for _, n := range masters {
			if err := n.oplog.SendRaw(c.ctx, Tag{Offset: int64(seq), DB: -1, Kind: kindClusterOp}, raw); err != nil {
				return err
			}
		}
		return nil
	}
	slot := shard.Slot(keys[0])
	same := true
	for _, k := range keys[1:] {
		if shard.Slot(k) != slot {
			same = false
			break
		}
	}
	if same {
		n, err := c.owner(slot)
		if err != nil {
			return err
		}
		if n == nil {
			c.countSkip(SkipUnowned, keys[0], "no master serves the key's slot", zap.Int("slot", slot))
			c.skip("", end)
			return nil
		}
		seq := c.push(end, 1)
		return n.oplog.SendRaw(c.ctx, Tag{Offset: int64(seq), DB: slot, Kind: kindClusterOp, Key: keys[0]}, raw)
	}
	name := args[0]
	switch {
	case isCmd(name, "MSET") && len(args)%2 == 1:
		return c.split(args, end, 2)
	case isCmd(name, "DEL"), isCmd(name, "UNLINK"), isCmd(name, "TOUCH"):
		return c.split(args, end, 1)
	}
	ks := make([]string, 0, min(len(keys), 16))
	for _, k := range keys[:min(len(keys), 16)] {
		ks = append(ks, keyString(k))
	}
	c.countSkip(SkipCrossSlot, keys[0], "command over several slots not applied",
		zap.ByteString("command", bytes.ToUpper(name)), zap.Strings("keys", ks), zap.Int64("offset", end))
	c.skip("", end)
	return nil
}

func argOrNil(args [][]byte, i int) []byte {
	if i < len(args) {
		return args[i]
	}
	return nil
}

// split sends a command whose arguments after the name are groups of width (key first), one
// command per slot, each keeping its groups' order.
func (c *Cluster) split(args [][]byte, end int64, width int) error {
	var order []int
	groups := map[int][]int{} // slot → indexes of its groups' keys
	for i := 1; i+width-1 < len(args); i += width {
		s := shard.Slot(args[i])
		if _, ok := groups[s]; !ok {
			order = append(order, s)
		}
		groups[s] = append(groups[s], i)
	}
	nodes := make([]*clusterNode, len(order))
	parts := 0
	for j, s := range order {
		n, err := c.owner(s)
		if err != nil {
			return err
		}
		if n == nil {
			c.countSkip(SkipUnowned, args[groups[s][0]], "no master serves the key's slot", zap.Int("slot", s))
			continue
		}
		nodes[j] = n
		parts++
	}
	seq := c.push(end, parts)
	for j, s := range order {
		n := nodes[j]
		if n == nil {
			continue
		}
		idx := groups[s]
		buf, err := n.oplog.Begin(c.ctx)
		if err != nil {
			return err
		}
		buf = appendArrayHeader(buf, 1+len(idx)*width)
		buf = appendBulk(buf, args[0])
		for _, i := range idx {
			for w := range width {
				buf = appendBulk(buf, args[i+w])
			}
		}
		n.oplog.Commit(buf, Tag{Offset: int64(seq), DB: s, Kind: kindClusterOp, Key: args[idx[0]]})
	}
	return nil
}

// masterNodes returns the nodes serving slots, in slot order.
func (c *Cluster) masterNodes() []*clusterNode {
	var out []*clusterNode
	for i, n := range c.slots {
		if n != nil && (i == 0 || c.slots[i-1] != n) && !containsNode(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func containsNode(ns []*clusterNode, n *clusterNode) bool {
	for _, m := range ns {
		if m == n {
			return true
		}
	}
	return false
}

// push records a command of the stream awaiting remaining replies and returns its sequence
// number. With none awaited it is a skip: the applied position passes it once everything before
// it is acknowledged.
func (c *Cluster) push(end int64, remaining int) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := &c.seqs
	if remaining == 0 {
		if q.head == len(q.q) {
			c.applied, c.appliedDB = end, c.db
			return 0
		}
		if last := &q.q[len(q.q)-1]; last.parts == 0 {
			last.end, last.db = end, c.db // merge into the skip before
			return last.seq
		}
	}
	seq := c.nextSeq
	c.nextSeq++
	q.q = append(q.q, seqEntry{seq: seq, end: end, db: c.db, parts: remaining, remaining: remaining})
	return seq
}

// keepAcked remembers, before Reconnect drops the queue, the commands after the applied
// position that every master already acknowledged, so that the stream resent from there does
// not run them twice (an INCR would count twice). It stops at the first command acknowledged by
// some of its masters only (a split MSET, a FLUSHALL): that one is resent whole, so what follows
// it is resent too, in order. c.mu is held.
func (c *Cluster) keepAcked() {
	q := &c.seqs
	for i := q.head; i < len(q.q); i++ {
		e := &q.q[i]
		switch {
		case e.parts == 0:
		case e.remaining == 0:
			if c.acked == nil {
				c.acked = make(map[int64]bool)
			}
			c.acked[e.end] = true
			c.ackedMax = max(c.ackedMax, e.end)
		case e.remaining < e.parts:
			return
		}
	}
}

// alreadyApplied reports whether the command ending at end was acknowledged before a
// Reconnect (see keepAcked); it is then passed over, counted as already_applied.
func (c *Cluster) alreadyApplied(end int64) bool {
	if len(c.acked) == 0 {
		return false
	}
	if end > c.ackedMax {
		c.acked = nil
		return false
	}
	if !c.acked[end] {
		return false
	}
	delete(c.acked, end)
	c.mu.Lock()
	c.skipped[SkipAlreadyApplied]++
	c.mu.Unlock()
	c.push(end, 0)
	return true
}

// skip passes a command that is not forwarded (counted under reason unless empty).
func (c *Cluster) skip(reason string, end int64) {
	if reason != "" {
		c.mu.Lock()
		c.skipped[reason]++
		c.mu.Unlock()
	}
	c.push(end, 0)
}

// done records one reply of command seq; c.mu is held.
func (c *Cluster) done(seq uint64) {
	q := &c.seqs
	if q.head >= len(q.q) {
		return
	}
	i := q.head + int(seq-q.q[q.head].seq)
	if seq < q.q[q.head].seq || i >= len(q.q) {
		return
	}
	q.q[i].remaining--
	for q.head < len(q.q) && q.q[q.head].remaining <= 0 {
		c.applied, c.appliedDB = q.q[q.head].end, q.q[q.head].db
		q.head++
	}
	if q.head == len(q.q) {
		q.q, q.head = q.q[:0], 0
	} else if q.head > 4096 && q.head > len(q.q)/2 {
		n := copy(q.q, q.q[q.head:])
		q.q, q.head = q.q[:n], 0
	}
}

// onOplogReply runs on node n's oplog reply reader, in that connection's order.
func (c *Cluster) onOplogReply(n *clusterNode, t *Tag, r *Reply) {
	seq := uint64(t.Offset)
	var re *ReplyError
	if r.Kind == KindError {
		re, _ = r.Err.(*ReplyError)
	}
	if r.Kind == KindFailed {
		c.mu.Lock()
		c.errs[ReasonBroken]++
		c.lastErr = r.Err.Error()
		if c.broken == nil {
			c.broken = r.Err
		}
		c.mu.Unlock()
		return
	}
	switch t.Kind {
	case kindAsking:
		if re != nil {
			c.countErr(re.Prefix, t, re)
		}
		return
	case kindClusterTx:
		if re != nil {
			if rd, ok := c.redirectOf(n, t, re); ok {
				if n.txRedir == nil {
					n.txRedir = &rd
				}
				return
			}
			c.countErr(re.Prefix, t, re)
		}
		return
	case kindClusterExec:
		rd := n.txRedir
		n.txRedir = nil
		if rd == nil && re != nil {
			// EXEC itself redirected: a key left the slot between queueing and EXEC.
			if r, ok := c.redirectOf(n, t, re); ok {
				rd = &r
			}
		}
		c.mu.Lock()
		cmds := c.txs[seq]
		if rd == nil {
			delete(c.txs, seq)
		}
		c.mu.Unlock()
		if rd != nil {
			rd.cmds = cmds
			rd.kind = kindClusterExec
			c.addRedirect(*rd)
			return
		}
	default:
		if re != nil {
			if rd, ok := c.redirectOf(n, t, re); ok {
				rd.cmds = [][]byte{append([]byte(nil), t.Cmd...)}
				c.addRedirect(rd)
				return
			}
		}
	}
	if re != nil {
		c.countErr(re.Prefix, t, re)
	}
	if r.NestedErrs > 0 {
		c.mu.Lock()
		c.errs[r.NestedErr.Prefix] += uint64(r.NestedErrs)
		c.lastErr = r.NestedErr.Msg
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.done(seq)
	c.mu.Unlock()
}

// redirectOf classifies an error reply that calls for a resend: MOVED, ASK, or refused for now.
func (c *Cluster) redirectOf(n *clusterNode, t *Tag, re *ReplyError) (redirect, bool) {
	rd := redirect{seq: uint64(t.Offset), kind: t.Kind, key: append([]byte(nil), t.Key...), from: n,
		slot: t.DB, reason: re.Prefix}
	if slot, addr, ok := re.Redirect(); ok {
		rd.slot, rd.addr, rd.ask = slot, addr, re.Prefix == "ASK"
		return rd, true
	}
	if re.Retryable() {
		rd.retry, rd.addr = true, n.addr
		return rd, true
	}
	return rd, false
}

func (c *Cluster) addRedirect(rd redirect) {
	c.mu.Lock()
	c.opRedirs = append(c.opRedirs, rd)
	if rd.retry {
		c.retried++
	} else {
		c.redirected++
	}
	c.mu.Unlock()
	c.opRedir.Store(true)
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// resolve waits for every reply in flight, then resends the redirected commands in stream
// order: to the MOVED's node (after refreshing the slot map), to the ASK's node after ASKING,
// or to the same node after a backoff for TRYAGAIN/LOADING/BUSY. It repeats until no reply
// asks for a resend.
func (c *Cluster) resolve(ctx context.Context) error {
	for round := 0; ; round++ {
		for _, n := range c.masterNodesAll() {
			if err := n.oplog.Drain(ctx); err != nil {
				return err
			}
		}
		c.opRedir.Store(false)
		c.mu.Lock()
		list := c.opRedirs
		c.opRedirs = nil
		c.mu.Unlock()
		if len(list) == 0 {
			return nil
		}
		sort.SliceStable(list, func(i, j int) bool { return list[i].seq < list[j].seq })
		if round >= redirectRounds {
			c.giveUp(list)
			c.mu.Lock()
			for _, rd := range list {
				delete(c.txs, rd.seq)
				c.done(rd.seq)
			}
			c.mu.Unlock()
			return nil
		}
		retry := round > 0 // the cluster has not settled yet (nodes disagree during a move)
		for _, rd := range list {
			retry = retry || rd.retry
		}
		if retry {
			if err := redirectWait(ctx, round); err != nil {
				return err
			}
		}
		if err := c.refreshIfMoved(ctx, list); err != nil {
			return err
		}
		c.log.Info("resending redirected commands", zap.Int("count", len(list)), zap.Int("round", round),
			zap.String("first_reason", list[0].reason), zap.String("first_addr", list[0].addr))
		for _, rd := range list {
			n, err := c.node(ctx, rd.addr)
			if err != nil {
				return err
			}
			if !rd.ask && !rd.retry {
				c.slots[rd.slot] = n
			}
			if rd.kind == kindClusterExec {
				if err := c.sendTx(n, rd.seq, rd.slot, rd.key, rd.cmds, rd.ask); err != nil {
					return err
				}
				continue
			}
			if rd.ask {
				if err := n.oplog.Send(ctx, Tag{Offset: int64(rd.seq), Kind: kindAsking, Key: rd.key}, []byte("ASKING")); err != nil {
					return err
				}
			}
			if err := n.oplog.SendRaw(ctx, Tag{Offset: int64(rd.seq), DB: rd.slot, Kind: kindClusterOp, Key: rd.key}, rd.cmds[0]); err != nil {
				return err
			}
		}
	}
}

// masterNodesAll returns every node with an oplog connection.
func (c *Cluster) masterNodesAll() []*clusterNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*clusterNode
	for _, n := range c.nodes {
		if n.oplog != nil {
			out = append(out, n)
		}
	}
	return out
}

func (c *Cluster) brokenErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return c.broken
	}
	for _, n := range c.nodes {
		if n.oplog != nil {
			if err := n.oplog.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Reconnect replaces every oplog connection (after a broken one), re-reads the slot map and
// returns the applied position: the caller resends the stream from offset. Commands after it
// that every master concerned had already acknowledged are passed over when they come again
// (already_applied), up to the first one acknowledged by only some of its masters.
func (c *Cluster) Reconnect(ctx context.Context) (offset int64, db int, err error) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	c.mu.Lock()
	nodes := append([]*clusterNode(nil), c.nodes...)
	c.mu.Unlock()
	// Replies still coming on the connections that work tell what need not run again.
	for _, n := range nodes {
		if n.oplog != nil && n.oplog.Err() == nil {
			n.oplog.Drain(ctx)
		}
	}
	for _, n := range nodes {
		if n.oplog != nil {
			n.oplog.Close()
		}
		n.txRedir = nil
	}
	c.mu.Lock()
	for _, n := range nodes {
		n.oplog = nil
	}
	offset, db = c.applied, c.appliedDB
	c.keepAcked()
	c.opRedirs = nil
	c.txs = make(map[uint64][][]byte)
	c.mu.Unlock()
	c.opRedir.Store(false)
	c.oplogOn = false
	if err := c.startOplog(ctx, offset, db); err != nil {
		return offset, db, err
	}
	c.log.Info("oplog reconnected", zap.Int64("offset", offset), zap.Int("db", db))
	return offset, db, nil
}

// Applied returns the replication offset up to which every command has its reply from every
// master (or was skipped), and the db in force there.
func (c *Cluster) Applied() (offset int64, db int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.applied, c.appliedDB
}

// WaitOplog returns when every command applied so far has its reply, redirected ones resent
// and answered included.
func (c *Cluster) WaitOplog(ctx context.Context) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	for {
		for _, n := range c.masterNodesAll() {
			if err := n.oplog.Drain(ctx); err != nil {
				return err
			}
		}
		if !c.opRedir.Load() {
			return nil
		}
		if err := c.resolve(ctx); err != nil {
			return err
		}
	}
}

// Skip passes a command of the stream without sending it (the daemon's key filter), counted
// under reason.
// Inside a buffered transaction it is only counted: the position passes it with the EXEC.
func (c *Cluster) Skip(cmd *aof.Command, end int64, reason string) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.tx != nil {
		c.mu.Lock()
		c.skipped[reason]++
		c.mu.Unlock()
		return
	}
	c.skip(reason, end)
}

// Flush does nothing: a cluster's oplog goes to each master as it comes, with no batch held back.
func (c *Cluster) Flush() error { return nil }

// Abort does nothing: what the masters acknowledged is there, and a failed job's next snapshot
// (a full sync) replaces it.
func (c *Cluster) Abort() {}

// redirectWait waits before resending round: 50 ms doubling up to 2 s, so that a slot move
// has time to settle (about 90 s over every round).
func redirectWait(ctx context.Context, round int) error {
	tm := time.NewTimer(min(retryFirst<<min(round, 6), retryMax))
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
