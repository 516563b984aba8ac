package target

import (
	"bytes"
	"fmt"
	"slices"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/aof"
)

// SkipBigUnroutable counts big commands of the stream (aof.Command.Big) on a routed target
// whose keys cannot be found without holding them whole (where they are depends on arguments
// past the leading ones held): not applied, logged with the command's name.
const SkipBigUnroutable = "big_unroutable"

// routeBig sends a big command (aof.Command.Big) of the stream to the node(s) of its keys:
// re-chunked where its rule allows (see bigcmd.go), every chunk to the node of its key's unit,
// else whole from its Input to the one node of its keys; as route does for a command held
// whole, with the same skips and reasons. It returns once every byte of it is written.
func (w *sharded) routeBig(cmd *aof.Command, end int64) error {
	if w.alreadyApplied(end) {
		return nil
	}
	spec := aof.LookupArgs(cmd.Args)
	if spec == nil {
		w.countSkip(SkipUnknown, argOrNil(cmd.Args, 1), "unknown command skipped: its keys cannot be routed",
			zap.ByteString("command", bytes.ToUpper(argOrNil(cmd.Args, 0))), zap.Int64("offset", end))
		w.skip("", end)
		return nil
	}
	if r, ok := chunkRuleOf(cmd); ok {
		return w.sendChunked(cmd, r, end)
	}
	idx, ok := spec.KeyIndexes(cmd.Args, int(cmd.NArgs), w.keyIdx[:0])
	w.keyIdx = idx[:0]
	name := bytes.ToUpper(cmd.Args[0])
	if !ok {
		w.countSkip(SkipBigUnroutable, argOrNil(cmd.Args, 1), "big command whose keys cannot be found without holding it: not applied",
			zap.ByteString("command", name), zap.Int64("args", cmd.NArgs), zap.Int64("bytes", cmd.N), zap.Int64("offset", end))
		w.skip("", end)
		return nil
	}
	whole := newSectionsBody(cmd.Input, cmd.Wire())
	if len(idx) == 0 {
		if !isBroadcast(cmd.Args) {
			w.countSkip(SkipNoKey, nil, "keyless command skipped", zap.ByteString("command", name), zap.Int64("offset", end))
			w.skip("", end)
			return nil
		}
		w.bigStreamed.Add(1)
		if w.cp != nil && w.cp.slots {
			return w.broadcastExact(end, func(n *shardNode, tag Tag) error { return n.oplog.sendBody(w.ctx, tag, nil, whole, true) })
		}
		nodes := w.uncovered(w.serving(), end)
		seq := w.push(end, len(nodes))
		for _, n := range nodes {
			tag, err := w.batchTag(n, n.cpUnit, Tag{Offset: int64(seq), DB: -1, Kind: kindRoutedOp}, seq, end, cmd.N)
			if err != nil {
				return err
			}
			if err := n.oplog.sendBody(w.ctx, tag, nil, whole, true); err != nil {
				return err
			}
		}
		return nil
	}
	unit, key, same, err := w.unitOfKeys(cmd, idx)
	if err != nil {
		return w.breakOn(fmt.Errorf("big command at offset %d: %w", cmd.Start, err))
	}
	if !same {
		w.countSkip(w.kind.crossReason, key, "command over several "+w.kind.units+" not applied",
			zap.ByteString("command", name), zap.Int64("offset", end))
		w.skip("", end)
		return nil
	}
	n, err := w.owner(unit)
	if err != nil {
		return err
	}
	if n == nil {
		w.countSkip(SkipUnowned, key, "no node serves the key's "+w.kind.unit, zap.Int(w.kind.unit, unit))
		w.skip("", end)
		return nil
	}
	if w.covered(unit, end) {
		w.skip("", end)
		return nil
	}
	seq := w.push(end, 1)
	w.bigStreamed.Add(1)
	tag, err := w.batchTag(n, unit, Tag{Offset: int64(seq), DB: unit, Kind: kindRoutedOp, Key: key}, seq, end, cmd.N)
	if err != nil {
		return err
	}
	return n.oplog.sendBody(w.ctx, tag, nil, whole, true)
}

// unitOfKeys returns the unit of the keys of cmd at positions idx (sorted), whether they all
// share it, and the first key. Keys past the held arguments are read from the command's Input,
// one at a time; one longer than maxRouteKey counts by its first bytes only (a routed target's
// units hash a key's hash tag, or a proxy's whole key, which such a key cannot usefully be).
func (w *sharded) unitOfKeys(cmd *aof.Command, idx []int) (int, []byte, bool, error) {
	first := -1
	var key []byte
	same := true
	see := func(k []byte) {
		u := w.router.unit(k)
		switch {
		case first < 0:
			first, key = u, bytes.Clone(k)
		case u != first:
			same = false
		}
	}
	var rest []int
	for _, i := range idx {
		if i < len(cmd.Args) {
			see(cmd.Args[i])
		} else {
			rest = append(rest, i)
		}
	}
	if len(rest) == 0 || !same {
		return first, key, same, nil
	}
	a := cmd.Arguments(nil)
	var buf []byte
	for i := 0; len(rest) > 0; i++ {
		size, err := a.Next()
		if err != nil {
			return 0, nil, false, err
		}
		if i != rest[0] {
			continue
		}
		rest = rest[1:]
		if buf, _, err = readKey(a, buf[:0], size); err != nil {
			return 0, nil, false, err
		}
		if see(buf); !same {
			break
		}
	}
	return first, key, same, nil
}

// sendChunked sends a big command re-chunked (see walkChunks), each chunk to the node of its
// key's unit, waiting for each to be written. The command is one entry of the sequence queue,
// held open until every chunk is sent, so that the applied position passes it only once every
// chunk has its reply. A redirect that comes meanwhile is resolved before the next chunk, so
// the redirected requests held stay within the window. A failure halfway (a connection broke,
// the input could not be read) leaves the entry open: the resend from Applied() sends the
// command again whole.
func (w *sharded) sendChunked(cmd *aof.Command, r chunkRule, end int64) error {
	fixedUnit := -1
	if !r.keyed {
		fixedUnit = w.router.unit(cmd.Args[1])
		n, err := w.owner(fixedUnit)
		if err != nil {
			return err
		}
		if n == nil {
			w.countSkip(SkipUnowned, cmd.Args[1], "no node serves the key's "+w.kind.unit, zap.Int(w.kind.unit, fixedUnit))
			w.skip("", end)
			return nil
		}
		if w.covered(fixedUnit, end) {
			w.skip("", end)
			return nil
		}
	}
	var unitOf func(key []byte, whole bool) (int, bool)
	if r.keyed {
		unitOf = func(key []byte, whole bool) (int, bool) {
			if !whole {
				w.countSkip(SkipBigUnroutable, key[:min(len(key), 64)], "key too long to route in a big command: left out of it",
					zap.ByteString("command", bytes.ToUpper(cmd.Args[0])), zap.Int64("offset", end))
				return 0, false
			}
			return w.router.unit(key), true
		}
	}
	seq := w.push(end, 1) // the sender's hold, released once every chunk is sent
	w.bigChunked.Add(1)
	err := walkChunks(cmd, r, unitOf, func(ch *chunk, last bool) error {
		unit, key := fixedUnit, cmd.Args[min(1, len(cmd.Args)-1)]
		if r.keyed {
			unit, key = ch.unit, ch.key
		}
		n, err := w.owner(unit)
		if err != nil {
			return err
		}
		if n == nil {
			w.countSkip(SkipUnowned, key, "no node serves the key's "+w.kind.unit, zap.Int(w.kind.unit, unit))
			return nil
		}
		if r.keyed && w.cp != nil && end <= w.cp.pos[unit] {
			return nil // this node's part ran already
		}
		if w.newPart(n, seq) { // in a batch, one reply (its EXEC's) answers every chunk of it
			w.mu.Lock()
			w.addPart(seq)
			w.mu.Unlock()
		}
		w.head = r.head(w.head[:0], cmd, ch)
		w.bigChunks.Add(1)
		b := newSectionsBody(cmd.Input, slices.Clone(ch.secs)...)
		tag, err := w.batchTag(n, unit, Tag{Offset: int64(seq), DB: unit, Kind: kindRoutedOp, Key: key}, seq, end, ch.bytes)
		if err != nil {
			return err
		}
		if err := n.oplog.sendBody(w.ctx, tag, w.head, b, true); err != nil {
			return err
		}
		if w.opRedir.Load() {
			return w.resolve(w.ctx)
		}
		return nil
	})
	if err != nil {
		return w.breakOn(err)
	}
	w.mu.Lock()
	w.done(seq)
	w.mu.Unlock()
	return nil
}

// addPart adds one awaited reply to command seq of the sequence queue; w.mu is held.
func (w *sharded) addPart(seq uint64) {
	q := &w.seqs
	if q.head >= len(q.q) || seq < q.q[q.head].seq {
		return
	}
	if i := q.head + int(seq-q.q[q.head].seq); i < len(q.q) {
		q.q[i].parts++
		q.q[i].remaining++
	}
}

// breakOn records a failure that leaves a command half sent: the writer is broken until
// Reconnect, which resends from the applied position.
func (w *sharded) breakOn(err error) error {
	w.mu.Lock()
	if w.broken == nil {
		w.broken = fmt.Errorf("%w: %w", ErrBroken, err)
	}
	b := w.broken
	w.mu.Unlock()
	return b
}
