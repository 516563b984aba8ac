package target

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/aof"
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

// StartOplog connects the ordered oplog connection of every node and sets the applied position
// to (offset, db): where the stream resumes. Apply calls it with (0, 0) if it was not.
func (w *sharded) StartOplog(ctx context.Context, offset int64, db int) error {
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	return w.startStream(ctx, offset, db)
}

// startStream is startOplog, then, with checkpoints, each node's read and stored: on failure
// the oplog is closed again, for StartOplog to be called again once the target answers.
func (w *sharded) startStream(ctx context.Context, offset int64, db int) error {
	if w.oplogOn {
		return fmt.Errorf("target %s: oplog already started", w.kind.name)
	}
	if err := w.startOplog(ctx, offset, db); err != nil {
		// A node that did not answer: nothing stays started, or every later call would fail.
		w.closeOplogs()
		w.oplogOn = false
		return err
	}
	if err := w.startCheckpoints(ctx, offset, db); err != nil {
		w.closeOplogs()
		w.oplogOn = false
		return err
	}
	return nil
}

// closeOplogs closes every node's oplog connection.
func (w *sharded) closeOplogs() {
	w.mu.Lock()
	nodes := append([]*shardNode(nil), w.nodes...)
	w.mu.Unlock()
	for _, n := range nodes {
		if n.oplog != nil {
			n.oplog.Close()
		}
		n.txRedir = nil
	}
	w.mu.Lock()
	for _, n := range nodes {
		n.oplog = nil
	}
	w.mu.Unlock()
}

func (w *sharded) startOplog(ctx context.Context, offset int64, db int) error {
	if w.oplogOn {
		return fmt.Errorf("target %s: oplog already started", w.kind.name)
	}
	w.oplogOn = true
	w.db = db
	w.tx = nil
	w.mu.Lock()
	w.applied, w.appliedDB = offset, db
	w.seqs = seqQueue{}
	w.broken = nil
	w.mu.Unlock()
	if err := w.refresh(ctx); err != nil {
		// Some node may have no oplog connection: Apply refuses until Reconnect.
		w.mu.Lock()
		w.broken = fmt.Errorf("%w: %w", ErrBroken, err)
		w.mu.Unlock()
		return err
	}
	return nil
}

// Apply routes one command of the replication stream to the node of its keys' unit, on that
// node's ordered connection; end is the replication offset just after it.
//
//   - SELECT is tracked; commands of a db other than 0 are skipped (select_nonzero), but
//     FLUSHALL, which empties db 0 too.
//   - PING/REPLCONF (control) and PUBLISH/SPUBLISH (pubsub) are skipped.
//   - A command over several units: MSET, DEL, UNLINK and TOUCH are split per unit; any other
//     is skipped and logged with its keys (the kind's crossReason: crossslot, crossnode).
//   - MULTI ... EXEC is buffered and sent as a transaction when its keys share one unit; else
//     its commands are applied one by one (multi_split), as when a SELECT comes inside it.
//   - FLUSHALL, FLUSHDB, FUNCTION LOAD/DELETE/FLUSH/RESTORE and SCRIPT LOAD/FLUSH go to every
//     node; other keyless commands are skipped (no_key), unknown ones too (unknown_command).
//
// A reply that asks for a resend (MOVED, ASK, TRYAGAIN, LOADING, BUSY) makes the next Apply
// drain every connection, refresh the map and resend those commands in their original order
// first. It returns an error wrapping ErrBroken when a connection broke: Reconnect, then resend
// from the offset it returns.
func (w *sharded) Apply(cmd *aof.Command, end int64) error {
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	if err := w.apply(cmd, end); err != nil {
		return err
	}
	return w.passed(end)
}

func (w *sharded) apply(cmd *aof.Command, end int64) error {
	if !w.oplogOn {
		if err := w.startStream(w.ctx, 0, 0); err != nil {
			return err
		}
	}
	if err := w.brokenErr(); err != nil {
		return fmt.Errorf("target %s: apply at offset %d: %w", w.kind.name, end, err)
	}
	if w.opRedir.Load() {
		if err := w.resolve(w.ctx); err != nil {
			return fmt.Errorf("target %s: apply at offset %d: %w", w.kind.name, end, err)
		}
	}
	if len(cmd.Args) == 0 && !cmd.Big() {
		w.skip(SkipEmpty, end)
		return nil
	}
	if w.takePoisoned(end) {
		if w.tx == nil { // inside a transaction it is left out of it
			w.skip("", end)
		}
		return nil
	}
	name := argOrNil(cmd.Args, 0) // nil: a big command whose name was too long to hold
	switch {
	case isCmd(name, "PING"), isCmd(name, "REPLCONF"):
		w.skip(SkipControl, end)
		return nil
	case isCmd(name, "PUBLISH"), isCmd(name, "SPUBLISH"):
		w.skip(SkipPubSub, end)
		return nil
	case isCmd(name, "SELECT"):
		if w.tx != nil {
			// A db switch inside the transaction: what is buffered goes one by one, the rest
			// follows unbuffered.
			w.countSkip(CountMultiSplit, nil, "SELECT inside a transaction: applied command by command",
				zap.Int64("offset", end))
			tx := w.tx
			w.tx = nil
			if err := w.applyEach(tx); err != nil {
				return err
			}
		}
		if len(cmd.Args) == 2 {
			if db, ok := parseInt(cmd.Args[1]); ok && db >= 0 && db < 1<<31 {
				w.db = int(db)
			}
		}
		w.skip("", end)
		return nil
	case isCmd(name, "MULTI"):
		if w.tx == nil && w.db == 0 {
			w.tx = &txBuf{}
		}
		return nil // the applied position passes MULTI with its EXEC
	case isCmd(name, "EXEC"):
		if w.tx == nil {
			w.skip("", end)
			return nil
		}
		return w.flushTx(end)
	case isCmd(name, "DISCARD"):
		w.tx = nil
		w.skip("", end)
		return nil
	}
	if w.db != 0 && !isCmd(name, "FLUSHALL") {
		w.countSkip(SkipSelectNonZero, argOrNil(cmd.Args, 1), "command of a non-zero db skipped: a "+w.kind.name+" target has only db 0",
			zap.Int("db", w.db), zap.Int64("offset", end))
		w.skip("", end)
		return nil
	}
	if w.tx != nil && cmd.Big() {
		// A big command is not held: what the transaction has goes one by one, then it.
		w.countSkip(CountMultiSplit, nil, "big command inside a transaction: applied command by command",
			zap.Int64("offset", end))
		tx := w.tx
		w.tx = nil
		if err := w.applyEach(tx); err != nil {
			return err
		}
	}
	if w.tx != nil {
		w.tx.add(cmd, end)
		if w.tx.bytes > txLimit {
			// Too big to hold: apply what it has one by one and go on without buffering.
			w.countSkip(CountMultiSplit, nil, "transaction too big to buffer: applied command by command",
				zap.Int64("offset", end))
			tx := w.tx
			w.tx = nil
			return w.applyEach(tx)
		}
		return nil
	}
	if cmd.Big() {
		return w.routeBig(cmd, end)
	}
	return w.route(cmd.Args, cmd.Raw, end)
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
func (w *sharded) applyEach(tx *txBuf) error {
	for _, tc := range tx.cmds {
		if err := w.route(tc.args, tc.raw, tc.end); err != nil {
			return err
		}
	}
	return nil
}

// flushTx sends a buffered transaction at its EXEC: whole to one node when its keys share a
// unit, else command by command.
func (w *sharded) flushTx(end int64) error {
	tx := w.tx
	w.tx = nil
	if w.alreadyApplied(end) {
		return nil
	}
	unit := -1
	one := true
	var keys [][]byte
	for _, tc := range tx.cmds {
		spec := aof.LookupArgs(tc.args)
		ks := spec.Keys(tc.args, w.keyBuf[:0])
		w.keyBuf = ks[:0]
		if spec == nil || (len(ks) == 0 && isBroadcast(tc.args)) {
			one = false
		}
		for _, k := range ks {
			u := w.router.unit(k)
			if unit < 0 {
				unit = u
			} else if u != unit {
				one = false
			}
			if len(keys) < 8 {
				keys = append(keys, append([]byte(nil), k...))
			}
		}
	}
	if len(tx.cmds) == 0 {
		w.skip("", end)
		return nil
	}
	if !one || unit < 0 {
		if unit >= 0 {
			var ks []string
			for _, k := range keys {
				ks = append(ks, keyString(k))
			}
			w.countSkip(CountMultiSplit, nil, "transaction over several "+w.kind.units+" applied command by command",
				zap.Strings("keys", ks), zap.Int64("offset", end))
		}
		if err := w.applyEach(tx); err != nil {
			return err
		}
		w.skip("", end)
		return nil
	}
	n, err := w.owner(unit)
	if err != nil {
		return err
	}
	if n == nil {
		w.countSkip(SkipUnowned, keys[0], "no node serves the transaction's "+w.kind.unit, zap.Int(w.kind.unit, unit))
		w.skip("", end)
		return nil
	}
	if w.covered(unit, end) {
		w.skip("", end)
		return nil
	}
	if w.cp != nil {
		// The node's batch is a transaction already: the commands go in it.
		seq := w.push(end, 1)
		for _, tc := range tx.cmds {
			tag, err := w.batchTag(n, unit, Tag{DB: unit, Kind: kindRoutedOp, Key: keys[0]}, seq, tc.end, int64(len(tc.raw)))
			if err != nil {
				return err
			}
			if err := n.oplog.SendRaw(w.ctx, tag, tc.raw); err != nil {
				return err
			}
		}
		n.batchEnd = max(n.batchEnd, end) // its position covers the transaction's EXEC
		return nil
	}
	cmds := make([][]byte, 0, len(tx.cmds)+2)
	cmds = append(cmds, appendCommandStrings(nil, "MULTI"))
	for _, tc := range tx.cmds {
		cmds = append(cmds, tc.raw)
	}
	cmds = append(cmds, appendCommandStrings(nil, "EXEC"))
	seq := w.push(end, 1)
	w.mu.Lock()
	w.txs[seq] = cmds
	w.mu.Unlock()
	return w.sendTx(n, seq, unit, keys[0], cmds, false)
}

func (w *sharded) sendTx(n *shardNode, seq uint64, unit int, key []byte, cmds [][]byte, ask bool) error {
	if ask {
		if err := n.oplog.Send(w.ctx, Tag{Offset: int64(seq), Kind: kindAsking, Key: key}, []byte("ASKING")); err != nil {
			return err
		}
	}
	for i, raw := range cmds {
		kind := kindRoutedTx
		if i == len(cmds)-1 {
			kind = kindRoutedExec
		}
		if err := n.oplog.SendRaw(w.ctx, Tag{Offset: int64(seq), DB: unit, Kind: kind, Key: key}, raw); err != nil {
			return err
		}
	}
	return nil
}

// isBroadcast reports whether a keyless command belongs on every node.
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

// route sends one command (outside a transaction) to the node(s) of its keys. Tags carry the
// unit in DB (-1 for every node): a redirect's resend needs it.
func (w *sharded) route(args [][]byte, raw []byte, end int64) error {
	if w.alreadyApplied(end) {
		return nil
	}
	spec := aof.LookupArgs(args)
	if spec == nil {
		w.countSkip(SkipUnknown, argOrNil(args, 1), "unknown command skipped: its keys cannot be routed",
			zap.ByteString("command", bytes.ToUpper(args[0])), zap.Int64("offset", end))
		w.skip("", end)
		return nil
	}
	keys := spec.Keys(args, w.keyBuf[:0])
	w.keyBuf = keys[:0]
	if len(keys) == 0 {
		if !isBroadcast(args) {
			w.countSkip(SkipNoKey, nil, "keyless command skipped",
				zap.ByteString("command", bytes.ToUpper(args[0])), zap.Int64("offset", end))
			w.skip("", end)
			return nil
		}
		if w.cp != nil && w.cp.slots {
			return w.broadcastExact(end, func(n *shardNode, tag Tag) error { return n.oplog.SendRaw(w.ctx, tag, raw) })
		}
		nodes := w.uncovered(w.serving(), end)
		seq := w.push(end, len(nodes))
		for _, n := range nodes {
			tag, err := w.batchTag(n, n.cpUnit, Tag{Offset: int64(seq), DB: -1, Kind: kindRoutedOp}, seq, end, int64(len(raw)))
			if err != nil {
				return err
			}
			if err := n.oplog.SendRaw(w.ctx, tag, raw); err != nil {
				return err
			}
		}
		return nil
	}
	unit := w.router.unit(keys[0])
	same := true
	for _, k := range keys[1:] {
		if w.router.unit(k) != unit {
			same = false
			break
		}
	}
	if same {
		n, err := w.owner(unit)
		if err != nil {
			return err
		}
		if n == nil {
			w.countSkip(SkipUnowned, keys[0], "no node serves the key's "+w.kind.unit, zap.Int(w.kind.unit, unit))
			w.skip("", end)
			return nil
		}
		if w.covered(unit, end) {
			w.skip("", end)
			return nil
		}
		seq := w.push(end, 1)
		tag, err := w.batchTag(n, unit, Tag{Offset: int64(seq), DB: unit, Kind: kindRoutedOp, Key: keys[0]}, seq, end, int64(len(raw)))
		if err != nil {
			return err
		}
		return n.oplog.SendRaw(w.ctx, tag, raw)
	}
	name := args[0]
	switch {
	case isCmd(name, "MSET") && len(args)%2 == 1:
		return w.split(args, end, 2)
	case isCmd(name, "DEL"), isCmd(name, "UNLINK"), isCmd(name, "TOUCH"):
		return w.split(args, end, 1)
	}
	ks := make([]string, 0, min(len(keys), 16))
	for _, k := range keys[:min(len(keys), 16)] {
		ks = append(ks, keyString(k))
	}
	w.countSkip(w.kind.crossReason, keys[0], "command over several "+w.kind.units+" not applied",
		zap.ByteString("command", bytes.ToUpper(name)), zap.Strings("keys", ks), zap.Int64("offset", end))
	w.skip("", end)
	return nil
}

func argOrNil(args [][]byte, i int) []byte {
	if i < len(args) {
		return args[i]
	}
	return nil
}

// split sends a command whose arguments after the name are groups of width (key first), one
// command per unit, each keeping its groups' order.
func (w *sharded) split(args [][]byte, end int64, width int) error {
	var order []int
	groups := map[int][]int{} // unit → indexes of its groups' keys
	for i := 1; i+width-1 < len(args); i += width {
		s := w.router.unit(args[i])
		if _, ok := groups[s]; !ok {
			order = append(order, s)
		}
		groups[s] = append(groups[s], i)
	}
	nodes := make([]*shardNode, len(order))
	parts := 0
	for j, s := range order {
		n, err := w.owner(s)
		if err != nil {
			return err
		}
		if n == nil {
			w.countSkip(SkipUnowned, args[groups[s][0]], "no node serves the key's "+w.kind.unit, zap.Int(w.kind.unit, s))
			continue
		}
		if w.covered(s, end) {
			continue
		}
		nodes[j] = n
		parts++
	}
	seq := w.push(end, parts)
	for j, s := range order {
		n := nodes[j]
		if n == nil {
			continue
		}
		idx := groups[s]
		tag, err := w.batchTag(n, s, Tag{Offset: int64(seq), DB: s, Kind: kindRoutedOp, Key: args[idx[0]]}, seq, end, 0)
		if err != nil {
			return err
		}
		buf, err := n.oplog.Begin(w.ctx)
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
		if w.cp != nil {
			n.batchBytes += int64(len(buf))
		}
		n.oplog.Commit(buf, tag)
	}
	return nil
}

// push records a command of the stream awaiting remaining replies and returns its sequence
// number. With none awaited it is a skip: the applied position passes it once everything before
// it is acknowledged.
func (w *sharded) push(end int64, remaining int) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := &w.seqs
	if remaining == 0 {
		if q.head == len(q.q) {
			w.applied, w.appliedDB = end, w.db
			return 0
		}
		if last := &q.q[len(q.q)-1]; last.parts == 0 {
			last.end, last.db = end, w.db // merge into the skip before
			return last.seq
		}
	}
	seq := w.nextSeq
	w.nextSeq++
	q.q = append(q.q, seqEntry{seq: seq, end: end, db: w.db, parts: remaining, remaining: remaining})
	return seq
}

// keepAcked remembers, before Reconnect drops the queue, the commands after the applied
// position that every node concerned already acknowledged, so that the stream resent from there
// does not run them twice (an INCR would count twice). It stops at the first command
// acknowledged by some of its nodes only (a split MSET, a FLUSHALL): that one is resent whole,
// so what follows it is resent too, in order. w.mu is held.
func (w *sharded) keepAcked() {
	q := &w.seqs
	for i := q.head; i < len(q.q); i++ {
		e := &q.q[i]
		switch {
		case e.parts == 0:
		case e.remaining == 0:
			if w.acked == nil {
				w.acked = make(map[int64]bool)
			}
			w.acked[e.end] = true
			w.ackedMax = max(w.ackedMax, e.end)
		case e.remaining < e.parts:
			return
		}
	}
}

// alreadyApplied reports whether the command ending at end was acknowledged before a
// Reconnect (see keepAcked); it is then passed over, counted as already_applied.
func (w *sharded) alreadyApplied(end int64) bool {
	if len(w.acked) == 0 {
		return false
	}
	if end > w.ackedMax {
		w.acked = nil
		return false
	}
	if !w.acked[end] {
		return false
	}
	delete(w.acked, end)
	w.mu.Lock()
	w.skipped[SkipAlreadyApplied]++
	w.mu.Unlock()
	w.push(end, 0)
	return true
}

// skip passes a command that is not forwarded (counted under reason unless empty).
func (w *sharded) skip(reason string, end int64) {
	if reason != "" {
		w.mu.Lock()
		w.skipped[reason]++
		w.mu.Unlock()
	}
	w.push(end, 0)
}

// done records one reply of command seq; w.mu is held.
func (w *sharded) done(seq uint64) {
	q := &w.seqs
	if q.head >= len(q.q) {
		return
	}
	i := q.head + int(seq-q.q[q.head].seq)
	if seq < q.q[q.head].seq || i >= len(q.q) {
		return
	}
	q.q[i].remaining--
	for q.head < len(q.q) && q.q[q.head].remaining <= 0 {
		w.applied, w.appliedDB = q.q[q.head].end, q.q[q.head].db
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
func (w *sharded) onOplogReply(n *shardNode, t *Tag, r *Reply) {
	seq := uint64(t.Offset)
	var re *ReplyError
	if r.Kind == KindError {
		re, _ = r.Err.(*ReplyError)
	}
	if r.Kind == KindFailed {
		w.mu.Lock()
		w.errs[ReasonBroken]++
		w.lastErr = r.Err.Error()
		if w.broken == nil {
			w.broken = r.Err
		}
		w.mu.Unlock()
		return
	}
	if t.Kind >= kindBatchMulti && w.cp != nil {
		w.onBatchReply(n, t, r, re)
		return
	}
	switch t.Kind {
	case kindAsking:
		if re != nil {
			w.countErr(re.Prefix, t, re)
		}
		return
	case kindRoutedTx:
		if re != nil {
			if rd, ok := w.redirectOf(n, t, re); ok {
				if n.txRedir == nil {
					n.txRedir = &rd
				}
				return
			}
			w.countErr(re.Prefix, t, re)
		}
		return
	case kindRoutedExec:
		rd := n.txRedir
		n.txRedir = nil
		if rd == nil && re != nil {
			// EXEC itself redirected: a key left the slot between queueing and EXEC.
			if r, ok := w.redirectOf(n, t, re); ok {
				rd = &r
			}
		}
		w.mu.Lock()
		cmds := w.txs[seq]
		if rd == nil {
			delete(w.txs, seq)
		}
		w.mu.Unlock()
		if rd != nil {
			rd.cmds = cmds
			rd.kind = kindRoutedExec
			w.addRedirect(*rd)
			return
		}
	default:
		if re != nil {
			if rd, ok := w.redirectOf(n, t, re); ok {
				rd.cmds = [][]byte{append([]byte(nil), t.Cmd...)}
				rd.body = t.body
				w.addRedirect(rd)
				return
			}
		}
	}
	if re != nil && (!n.errCounted || n.errSeq != seq) { // the chunks of one command: counted once
		w.countErr(re.Prefix, t, re)
		n.errSeq, n.errCounted = seq, true
	}
	if r.NestedErrs > 0 {
		w.mu.Lock()
		w.errs[r.NestedErr.Prefix] += uint64(r.NestedErrs)
		w.lastErr = r.NestedErr.Msg
		w.mu.Unlock()
	}
	w.mu.Lock()
	w.done(seq)
	w.mu.Unlock()
}

// redirectOf classifies an error reply that calls for a resend: MOVED or ASK (where the router
// follows them), or refused for now.
func (w *sharded) redirectOf(n *shardNode, t *Tag, re *ReplyError) (redirect, bool) {
	rd := redirect{seq: uint64(t.Offset), kind: t.Kind, key: append([]byte(nil), t.Key...),
		unit: t.DB, reason: re.Prefix}
	if unit, addr, ok := re.Redirect(); ok && w.router.redirects() {
		rd.unit, rd.addr, rd.ask = unit, addr, re.Prefix == "ASK"
		return rd, true
	}
	if re.Retryable() {
		rd.retry, rd.addr = true, n.addr
		return rd, true
	}
	return rd, false
}

func (w *sharded) addRedirect(rd redirect) {
	w.mu.Lock()
	w.opRedirs = append(w.opRedirs, rd)
	if rd.retry {
		w.retried++
	} else {
		w.redirected++
	}
	w.mu.Unlock()
	w.opRedir.Store(true)
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// resolve waits for every reply in flight, then resends the redirected commands in stream
// order: to the MOVED's node (after refreshing the map), to the ASK's node after ASKING,
// or to the same node after a backoff for TRYAGAIN/LOADING/BUSY. It repeats until no reply
// asks for a resend: MOVED and ASK are given up after redirectRounds (counted redirect_failed),
// refusals for now never.
func (w *sharded) resolve(ctx context.Context) error {
	for round := 0; ; round++ {
		for _, n := range w.oplogNodes() {
			if err := n.oplog.Drain(ctx); err != nil {
				return err
			}
		}
		w.opRedir.Store(false)
		w.mu.Lock()
		list := w.opRedirs
		w.opRedirs = nil
		w.mu.Unlock()
		if len(list) == 0 {
			return nil
		}
		sort.SliceStable(list, func(i, j int) bool { return list[i].seq < list[j].seq })
		if round >= redirectRounds {
			// MOVED and ASK that never settle are given up; what a node refused for now
			// (LOADING, BUSY, TRYAGAIN) is sent again until it takes it, as a Single does.
			var moved, refused []redirect
			for _, rd := range list {
				if rd.retry {
					refused = append(refused, rd)
				} else {
					moved = append(moved, rd)
				}
			}
			w.giveUp(moved)
			w.mu.Lock()
			for _, rd := range moved {
				delete(w.txs, rd.seq)
				w.done(rd.seq)
			}
			w.mu.Unlock()
			if len(refused) == 0 {
				return nil
			}
			list = refused
		}
		retry := round > 0 // the target has not settled yet (a cluster's nodes disagree during a move)
		for _, rd := range list {
			retry = retry || rd.retry
		}
		if retry {
			if err := redirectWait(ctx, round); err != nil {
				return err
			}
		}
		if err := w.refreshIfMoved(ctx, list); err != nil {
			return err
		}
		if round < redirectRounds || round%redirectRounds == 0 {
			w.log.Info("resending redirected commands", zap.Int("count", len(list)), zap.Int("round", round),
				zap.String("first_reason", list[0].reason), zap.String("first_addr", list[0].addr))
		}
		for _, rd := range list {
			n, err := w.node(ctx, rd.addr)
			if err != nil {
				return err
			}
			if !rd.ask && !rd.retry {
				w.shards[rd.unit] = n
			}
			if rd.kind == kindRoutedExec {
				if err := w.sendTx(n, rd.seq, rd.unit, rd.key, rd.cmds, rd.ask); err != nil {
					return err
				}
				continue
			}
			if rd.ask {
				if err := n.oplog.Send(ctx, Tag{Offset: int64(rd.seq), Kind: kindAsking, Key: rd.key}, []byte("ASKING")); err != nil {
					return err
				}
			}
			tag := Tag{Offset: int64(rd.seq), DB: rd.unit, Kind: kindRoutedOp, Key: rd.key}
			if rd.body != nil {
				if err := n.oplog.sendBody(ctx, tag, rd.cmds[0], rd.body, true); err != nil {
					return err
				}
				continue
			}
			if err := n.oplog.SendRaw(ctx, tag, rd.cmds[0]); err != nil {
				return err
			}
		}
	}
}

// oplogNodes returns every node with an oplog connection.
func (w *sharded) oplogNodes() []*shardNode {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*shardNode
	for _, n := range w.nodes {
		if n.oplog != nil {
			out = append(out, n)
		}
	}
	return out
}

func (w *sharded) brokenErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.broken != nil {
		return w.broken
	}
	for _, n := range w.nodes {
		if n.oplog != nil {
			if err := n.oplog.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Reconnect replaces every oplog connection (after a broken one), re-reads the map and returns
// the applied position: the caller resends the stream from offset. Commands after it that every
// node concerned had already acknowledged are passed over when they come again
// (already_applied), up to the first one acknowledged by only some of its nodes.
func (w *sharded) Reconnect(ctx context.Context) (offset int64, db int, err error) {
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	w.mu.Lock()
	nodes := append([]*shardNode(nil), w.nodes...)
	w.mu.Unlock()
	// Replies still coming on the connections that work tell what need not run again.
	for _, n := range nodes {
		if n.oplog != nil && n.oplog.Err() == nil {
			n.oplog.Drain(ctx)
		}
	}
	w.closeOplogs()
	if err := w.reloadCheckpoints(ctx, nodes); err != nil {
		offset, db = w.Applied()
		return offset, db, err
	}
	w.mu.Lock()
	offset, db = w.applied, w.appliedDB
	w.keepAcked()
	w.opRedirs = nil
	w.txs = make(map[uint64][][]byte)
	w.mu.Unlock()
	w.opRedir.Store(false)
	w.oplogOn = false
	if err := w.startOplog(ctx, offset, db); err != nil {
		return offset, db, err
	}
	if w.cp != nil {
		w.cp.end = offset
	}
	w.log.Info("oplog reconnected", zap.Int64("offset", offset), zap.Int("db", db))
	return offset, db, nil
}

// appliedNow is the acknowledged prefix of the stream.
func (w *sharded) appliedNow() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.applied
}

// Applied returns the replication offset up to which every command has its reply from every
// node concerned (or was skipped), and the db in force there.
//
// With checkpoints it is never past the lowest position a node acknowledged, where a restart
// resumes: the stream before it may be dropped, not the stream after.
func (w *sharded) Applied() (offset int64, db int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	offset, db = w.applied, w.appliedDB
	switch {
	case w.cp == nil:
	case w.cp.slots: // a cluster resumes from its base
		if w.cp.baseOK && w.cp.baseAcked.Offset < offset {
			offset, db = w.cp.baseAcked.Offset, w.cp.baseAcked.DB
		}
	default:
		for u, ok := range w.cp.ackedOK {
			if ok && w.cp.acked[u].Offset < offset {
				offset, db = w.cp.acked[u].Offset, w.cp.acked[u].DB
			}
		}
	}
	return offset, db
}

// WaitOplog returns when every command applied so far has its reply, redirected ones resent
// and answered included.
func (w *sharded) WaitOplog(ctx context.Context) error {
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	if err := w.closeBatches(); err != nil {
		return err
	}
	for {
		for _, n := range w.oplogNodes() {
			if err := n.oplog.Drain(ctx); err != nil {
				return err
			}
		}
		if !w.opRedir.Load() {
			if w.cp == nil {
				return nil
			}
			if err := w.brokenErr(); err != nil {
				return err // a refused batch has no reply that moves the position
			}
			if !w.cp.slots || w.cp.baseSent >= w.appliedNow() {
				return nil
			}
			sent := w.cp.baseSent
			if err := w.storeBase(true); err != nil { // the base catches up, then its reply
				return err
			}
			if w.cp.baseSent == sent {
				return nil // nothing to store it for (no replication ID, no node for its slot)
			}
		}
		if err := w.resolve(ctx); err != nil {
			return err
		}
	}
}

// Skip passes a command of the stream without sending it (the daemon's filters), counted under
// reason. Inside a buffered transaction it is only counted: the position passes it with the
// EXEC.
func (w *sharded) Skip(cmd *aof.Command, end int64, reason string) {
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	if w.tx != nil {
		w.mu.Lock()
		w.skipped[reason]++
		w.mu.Unlock()
		return
	}
	w.skip(reason, end)
	if err := w.passed(end); err != nil {
		w.breakOn(err) // Apply returns it
	}
}

// Flush closes the nodes' open batches and stores idle nodes' positions when checkpoints are
// kept; otherwise the oplog goes to each node as it comes, with nothing held back.
func (w *sharded) Flush() error {
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	return w.closeBatches()
}

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
