package target

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/rmt-project/rmt/rdb"
)

// Limits of one native command of a rewrite: so many elements or so many bytes, whichever first.
const (
	rewriteChunkElems = 512
	rewriteChunkBytes = 1 << 20
	// rewriteInflight bounds the bytes of a rewrite's commands in flight on its connection:
	// some 100 chunks, a tenth of a second of the target's work, keep it as busy as the whole
	// window would, and what the writer holds does not grow with the key.
	rewriteInflight = 2 << 20
)

// Rewrite sends one key whose value the decoder did not hold, reading its raw bytes (after the
// type byte: the file section Entry.ValueOffset/ValueLen name) from value, or one Restore could
// not carry (value nil: e.Value). Where the target restores the source's RDB version, value
// can be read again (an io.ReaderAt: a file's section, not a scan source's pages) and the
// value is at most BigKeyBytes (or a string, or a module value, which have no commands worth
// chunking), it goes as one RESTORE whose payload is copied from value to the socket in pieces
// (restoreFrom): fast, but the target is busy for the whole key's load. Otherwise it goes as
// native commands: DEL, then SET / RPUSH / SADD / ZADD / HSET in chunks (XADD, XSETID, XGROUP
// for streams), then PEXPIREAT, read element by element, so the target is never busy long.
// Either way a value of any size goes through bounded memory. Every command of the key goes on
// one connection, in order.
func (s *Single) Rewrite(e *rdb.Entry, value io.Reader) error {
	if e.Kind != rdb.KindKey {
		return nil
	}
	if s.skipExpired(e) {
		return nil
	}
	// A RESTORE's payload is copied when the request is written, after the next entry is
	// taken, and again for a resend: only a value that can be read again goes whole.
	if again, ok := value.(io.ReaderAt); ok && e.Value == nil && s.restorable && s.restoresWhole(e) {
		return s.restoreFrom(e, again)
	}
	if value == nil {
		if e.Value == nil {
			return fmt.Errorf("target %s: rewrite key %s: no value bytes", s.opts.Conn.Addr, keyString(e.Key))
		}
		value = bytes.NewReader(e.Value)
	}
	kind := rdb.TypeName(e.Type)
	if kind == "" || kind == "module" {
		s.countSkip("unsupported_type")
		return fmt.Errorf("target %s: rewrite key %s: value type %d cannot be written as commands",
			s.opts.Conn.Addr, keyString(e.Key), e.Type)
	}
	if s.retryBig.Load() {
		if err := s.WaitRDB(s.ctx); err != nil {
			return err
		}
	}
	rc := s.rdbConns[s.next]
	s.next = (s.next + 1) % len(s.rdbConns)
	if err := rc.selectDB(s.ctx, e.DB); err != nil {
		return err
	}
	rw := rewriter{s: s, rc: rc, key: e.Key, db: e.DB}
	if err := rw.send("DEL"); err != nil {
		return err
	}
	if kind == "string" {
		// SET, then APPEND in pieces: a string of any size is never held whole.
		if err := rw.stringInPieces(value); err != nil {
			return fmt.Errorf("target %s: rewrite key %s: %w", s.opts.Conn.Addr, keyString(e.Key), err)
		}
		return rw.finish(e, nil)
	}
	vr := rdb.NewValueReader(e.Type, value)
	var el rdb.Element
	for {
		err := vr.Next(&el)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("target %s: rewrite key %s: %w", s.opts.Conn.Addr, keyString(e.Key), err)
		}
		if err := rw.element(kind, &el); err != nil {
			return err
		}
	}
	if err := rw.flush(); err != nil {
		return err
	}
	return rw.finish(e, vr.Stream())
}

// finish sends what follows a key's elements: a stream's metadata, the expiry.
func (rw *rewriter) finish(e *rdb.Entry, meta *rdb.StreamMeta) error {
	if meta != nil {
		if err := rw.streamMeta(meta); err != nil {
			return err
		}
	}
	if e.ExpireMs > 0 {
		if err := rw.send("PEXPIREAT", strconv.AppendInt(nil, e.ExpireMs, 10)); err != nil {
			return err
		}
	}
	rw.s.rewritten.Add(1)
	return nil
}

// stringInPieces sends a string value as SET of its first rewriteChunkBytes, then APPENDs of
// the next, read from value decoded (rdb.StringReader) one piece at a time.
func (rw *rewriter) stringInPieces(value io.Reader) error {
	sr, err := rdb.NewStringReader(value)
	if err != nil {
		return err
	}
	if sr.Len() == 0 {
		return rw.send("SET", nil)
	}
	buf := make([]byte, min(sr.Len(), rewriteChunkBytes))
	cmd := "SET"
	for left := sr.Len(); left > 0; {
		p := buf[:min(int64(len(buf)), left)]
		if _, err := io.ReadFull(sr, p); err != nil {
			return err
		}
		if err := rw.send(cmd, p); err != nil {
			return err
		}
		left -= int64(len(p))
		cmd = "APPEND"
	}
	return nil
}

// restoresWhole reports whether a value not held goes as one RESTORE rather than as commands
// (on a target that restores the source's RDB version): see Rewrite.
func (s *Single) restoresWhole(e *rdb.Entry) bool {
	switch rdb.TypeName(e.Type) {
	case "string", "module", "":
		return true
	case "stream":
		// A stream's entries are blocks the target copies (measured 10 ms per MB, against
		// 20-55 for a zset), its groups exact; as commands it is one XADD per entry.
		return true
	}
	return s.opts.BigKeyBytes <= 0 || e.ValueLen <= s.opts.BigKeyBytes
}

// rewriter accumulates the elements of one chunk as encoded bulks.
type rewriter struct {
	s       *Single
	rc      *rdbConn
	key     []byte
	db      int
	cmd     string
	body    []byte
	n       int
	expires [][]byte // HPEXPIREAT commands for hash fields with a TTL, sent after their HSET
	score   []byte   // scratch for a zset score
}

func (rw *rewriter) element(kind string, el *rdb.Element) error {
	switch kind {
	case "string":
		return rw.send("SET", el.Member)
	case "list":
		return rw.add("RPUSH", el.Member)
	case "set":
		return rw.add("SADD", el.Member)
	case "zset":
		rw.score = appendScore(rw.score[:0], el.Score)
		return rw.add("ZADD", rw.score, el.Member)
	case "hash":
		if el.ExpireMs > 0 {
			if !rw.s.info.FieldTTL {
				// The target has no field expiry: the field is written without it, and counted.
				rw.s.countSkip(SkipFieldTTL)
			} else {
				rw.expires = append(rw.expires, bytes.Clone(el.Member), strconv.AppendInt(nil, el.ExpireMs, 10))
			}
		}
		return rw.add("HSET", el.Member, el.Value)
	case "stream":
		if err := rw.flush(); err != nil {
			return err
		}
		args := make([][]byte, 0, 1+len(el.Fields))
		args = append(args, []byte(el.ID.String()))
		args = append(args, el.Fields...)
		return rw.send("XADD", args...)
	}
	return nil
}

// appendScore appends a zset score as ZADD takes it.
func appendScore(dst []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// add appends one element (one or two arguments) to the chunk of cmd, sending the chunk when full.
func (rw *rewriter) add(cmd string, args ...[]byte) error {
	rw.cmd = cmd
	for _, a := range args {
		rw.body = appendBulk(rw.body, a)
	}
	rw.n += len(args)
	if rw.n >= rewriteChunkElems*len(args) || len(rw.body) >= rewriteChunkBytes {
		return rw.flush()
	}
	return nil
}

// flush sends the pending chunk, then the field expiries it set.
func (rw *rewriter) flush() error {
	if rw.n > 0 {
		buf, err := rw.rc.c.beginWithin(rw.s.ctx, rewriteInflight)
		if err != nil {
			return err
		}
		buf = appendArrayHeader(buf, 2+rw.n)
		buf = appendBulkString(buf, rw.cmd)
		buf = appendBulk(buf, rw.key)
		buf = append(buf, rw.body...)
		rw.rc.c.Commit(buf, Tag{DB: rw.db, Kind: kindRewrite, Key: rw.key})
		rw.body, rw.n = rw.body[:0], 0
	}
	for i := 0; i+1 < len(rw.expires); i += 2 {
		if err := rw.send("HPEXPIREAT", rw.expires[i+1], []byte("FIELDS"), []byte("1"), rw.expires[i]); err != nil {
			return err
		}
	}
	rw.expires = rw.expires[:0]
	return nil
}

// send sends one command on the key: cmd key args...
func (rw *rewriter) send(cmd string, args ...[]byte) error {
	buf, err := rw.rc.c.beginWithin(rw.s.ctx, rewriteInflight)
	if err != nil {
		return err
	}
	buf = appendArrayHeader(buf, 2+len(args))
	buf = appendBulkString(buf, cmd)
	buf = appendBulk(buf, rw.key)
	for _, a := range args {
		buf = appendBulk(buf, a)
	}
	rw.rc.c.Commit(buf, Tag{DB: rw.db, Kind: kindRewrite, Key: rw.key})
	return nil
}

// streamMeta recreates what a stream holds besides entries: its last ID and counters (XSETID),
// its consumer groups, their consumers and pending entries: each with the XCLAIM ... FORCE JUSTID
// that Redis itself propagates, carrying the delivery time and count.
func (rw *rewriter) streamMeta(m *rdb.StreamMeta) error {
	if m == nil {
		return nil
	}
	if m.Length == 0 {
		// XSETID needs the key: create it with one entry and delete that entry.
		if err := rw.send("XADD", []byte("0-1"), []byte("x"), []byte("x")); err != nil {
			return err
		}
		if err := rw.send("XDEL", []byte("0-1")); err != nil {
			return err
		}
	}
	args := [][]byte{[]byte(m.LastID.String())}
	if rw.s.info.Major >= 7 {
		args = append(args, []byte("ENTRIESADDED"), strconv.AppendUint(nil, m.EntriesAdded, 10),
			[]byte("MAXDELETEDID"), []byte(m.MaxDeletedID.String()))
	}
	if err := rw.send("XSETID", args...); err != nil {
		return err
	}
	for _, g := range m.Groups {
		args := [][]byte{[]byte("CREATE"), rw.key, g.Name, []byte(g.LastID.String())}
		if rw.s.info.Major >= 7 && g.EntriesRead >= 0 {
			args = append(args, []byte("ENTRIESREAD"), strconv.AppendInt(nil, g.EntriesRead, 10))
		}
		if err := rw.sendRaw("XGROUP", args...); err != nil {
			return err
		}
		for _, c := range g.Consumers {
			if err := rw.sendRaw("XGROUP", []byte("CREATECONSUMER"), rw.key, g.Name, c.Name); err != nil {
				return err
			}
		}
		if err := rw.pending(&g); err != nil {
			return err
		}
	}
	return nil
}

// sendRaw sends cmd args... (the key is among args).
func (rw *rewriter) sendRaw(cmd string, args ...[]byte) error {
	buf, err := rw.rc.c.Begin(rw.s.ctx)
	if err != nil {
		return err
	}
	buf = appendArrayHeader(buf, 1+len(args))
	buf = appendBulkString(buf, cmd)
	for _, a := range args {
		buf = appendBulk(buf, a)
	}
	rw.rc.c.Commit(buf, Tag{DB: rw.db, Kind: kindRewrite, Key: rw.key})
	return nil
}

// pending rebuilds a group's pending entries, consumer by consumer. An entry deleted from the
// stream cannot be claimed: XCLAIM leaves it out, as Redis's own replicas do.
func (rw *rewriter) pending(g *rdb.StreamGroup) error {
	if len(g.PEL) == 0 {
		return nil
	}
	nacks := make(map[rdb.StreamID]rdb.StreamNACK, len(g.PEL))
	for _, n := range g.PEL {
		nacks[n.ID] = n
	}
	for _, c := range g.Consumers {
		for _, id := range c.PEL {
			n, ok := nacks[id]
			if !ok {
				rw.s.countSkip("stream_pel")
				continue
			}
			if err := rw.sendRaw("XCLAIM", rw.key, g.Name, c.Name, []byte("0"), []byte(id.String()),
				[]byte("TIME"), strconv.AppendInt(nil, n.DeliveryTime, 10),
				[]byte("RETRYCOUNT"), strconv.AppendUint(nil, n.DeliveryCount, 10),
				[]byte("FORCE"), []byte("JUSTID")); err != nil {
				return err
			}
		}
	}
	return nil
}
