package target

import (
	"errors"
	"fmt"
	"slices"

	"github.com/rmt-project/rmt/aof"
)

// sendBig sends a big command (aof.Command.Big) on the oplog connection: re-chunked where its
// rule allows (see bigcmd.go), else whole, copied from its Input. It returns once every byte of
// it is written to the connection, so that the stream's reader may move on. Only the last
// chunk's reply moves the applied position (the batch's EXEC, when batching). A failure to read
// the command's input after part of it was sent breaks the connection: the target must not run
// half of it, and the resend from Applied() sends it again.
func (s *Single) sendBig(cmd *aof.Command, end int64, kind uint8, key []byte) error {
	tag := Tag{Offset: end, DB: s.oplogDB, Kind: kind, Key: key}
	r, ok := chunkRuleOf(cmd)
	if !ok {
		s.bigStreamed.Add(1)
		return s.sendOplogBody(tag, nil, newSectionsBody(cmd.Input, cmd.Wire()), true)
	}
	s.bigChunked.Add(1)
	part := 0
	err := walkChunks(cmd, r, nil, func(ch *chunk, last bool) error {
		t := tag
		if !last {
			part++
			t.Part, t.Kind = part, kindOplogTx
		}
		if r.keyed {
			t.Key = ch.key
		}
		s.head = r.head(s.head[:0], cmd, ch)
		s.bigChunks.Add(1)
		return s.sendOplogBody(t, s.head, newSectionsBody(cmd.Input, slices.Clone(ch.secs)...), last)
	})
	if err != nil && !errors.Is(err, ErrBroken) {
		s.oplog.Close() // part of the command may be queued or applied: never the rest alone
		err = fmt.Errorf("%w: %w", ErrBroken, err)
	}
	return err
}

// sendOplogBody queues one oplog request with a body (see Conn.sendBody), counted pending.
func (s *Single) sendOplogBody(t Tag, head []byte, b body, wait bool) error {
	s.mu.Lock()
	s.pending++
	s.mu.Unlock()
	if err := s.oplog.sendBody(s.ctx, t, head, b, wait); err != nil {
		s.mu.Lock()
		s.pending--
		s.mu.Unlock()
		return err
	}
	return nil
}
