package target

import (
	"fmt"
	"io"

	"github.com/rmt-project/rmt/aof"
)

// Big commands of the stream (aof.Command.Big: read without being held) go to the target in one
// of two ways, both in bounded memory:
//
//   - re-chunked, where splitting keeps the command's meaning: SADD, SREM, RPUSH, LPUSH, HSET,
//     HMSET, HDEL, ZADD without flags, ZREM, PFADD (on their key), DEL, UNLINK and MSET (over
//     their keys): the same command with at most chunkElems elements or chunkBytes bytes of
//     arguments each, in the original order (an LPUSH of a b c as LPUSH a b, then LPUSH c, makes
//     the same list). The elements are never held: each chunk is its head (the name and the key,
//     a few bytes) and the sections of the input its arguments lie in, copied from there by the
//     connection's writer (a body).
//   - any other whole, copied from the input to the socket in pieces (aof.CopySection).
//
// The chunks of one command are one command for the position (only the last one's reply, or
// the batch's EXEC, moves it), for checkpoints (a batch holds all of them), for routing (every
// chunk of a key to its node) and for the counters (an error counted once).

// Chunk limits: a chunk holds so many elements or so many bytes, whichever comes first.
const (
	chunkElems = rewriteChunkElems
	chunkBytes = rewriteChunkBytes
)

// maxRouteKey is the largest key of a re-chunked DEL, UNLINK or MSET read to be routed; a
// larger one makes the command go whole.
const maxRouteKey = 64 << 10

// chunkRule says how a command splits: every chunk repeats its fixed leading arguments (the name,
// and the key unless keyed), then takes whole elements of width arguments.
type chunkRule struct {
	fixed int
	width int
	keyed bool // each element starts with a key (DEL, UNLINK, MSET): split per unit on a routed target
}

// chunkRuleOf returns how cmd splits, or false when it goes whole: not a command that splits,
// a ZADD with flags, an argument count that does not fit, or leading arguments not held.
func chunkRuleOf(cmd *aof.Command) (chunkRule, bool) {
	if len(cmd.Args) == 0 {
		return chunkRule{}, false
	}
	name := cmd.Args[0]
	var r chunkRule
	switch {
	case isCmd(name, "SADD"), isCmd(name, "SREM"), isCmd(name, "RPUSH"), isCmd(name, "LPUSH"),
		isCmd(name, "HDEL"), isCmd(name, "ZREM"), isCmd(name, "PFADD"):
		r = chunkRule{fixed: 2, width: 1}
	case isCmd(name, "HSET"), isCmd(name, "HMSET"):
		r = chunkRule{fixed: 2, width: 2}
	case isCmd(name, "ZADD"):
		// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member ...: only the plain form splits (CH
		// and INCR change the reply, NX/XX/GT/LT would still split, but are left whole: rare).
		if len(cmd.Args) < 3 || isZaddFlag(cmd.Args[2]) {
			return chunkRule{}, false
		}
		r = chunkRule{fixed: 2, width: 2}
	case isCmd(name, "DEL"), isCmd(name, "UNLINK"):
		r = chunkRule{fixed: 1, width: 1, keyed: true}
	case isCmd(name, "MSET"):
		r = chunkRule{fixed: 1, width: 2, keyed: true}
	default:
		return chunkRule{}, false
	}
	elems := cmd.NArgs - int64(r.fixed)
	if len(cmd.Args) < r.fixed || elems <= 0 || elems%int64(r.width) != 0 {
		return chunkRule{}, false
	}
	return r, true
}

// isChunked reports whether cmd goes re-chunked (chunkRuleOf).
func isChunked(cmd *aof.Command) bool {
	_, ok := chunkRuleOf(cmd)
	return ok
}

func isZaddFlag(a []byte) bool {
	return isCmd(a, "NX") || isCmd(a, "XX") || isCmd(a, "GT") || isCmd(a, "LT") || isCmd(a, "CH") || isCmd(a, "INCR")
}

// chunk is one part of a re-chunked command: elems elements, whose arguments lie in secs.
type chunk struct {
	unit  int
	elems int
	bytes int64
	secs  []aof.Section
	key   []byte // the first element's key (keyed rules), for routing and logs
}

func (ch *chunk) add(s aof.Section) {
	if n := len(ch.secs); n > 0 && ch.secs[n-1].End() == s.Off {
		ch.secs[n-1].Len += s.Len
	} else {
		ch.secs = append(ch.secs, s)
	}
	ch.bytes += s.Len
}

func (ch *chunk) full() bool { return ch.elems >= chunkElems || ch.bytes >= chunkBytes }

// head returns the request head of ch: the array header and the fixed arguments.
func (r chunkRule) head(dst []byte, cmd *aof.Command, ch *chunk) []byte {
	dst = appendArrayHeader(dst, r.fixed+ch.elems*r.width)
	for _, a := range cmd.Args[:r.fixed] {
		dst = appendBulk(dst, a)
	}
	return dst
}

// readKey appends the key argument a is at to dst, up to maxRouteKey bytes; whole says it is
// all of it.
func readKey(a *aof.ArgReader, dst []byte, size int64) ([]byte, bool, error) {
	if size <= maxRouteKey {
		dst, err := a.Append(dst, 0)
		return dst, true, err
	}
	dst = append(dst, make([]byte, maxRouteKey)...)
	_, err := io.ReadFull(a, dst[len(dst)-maxRouteKey:])
	return dst, false, err
}

// walkChunks reads the arguments of the big command cmd from its Input and calls emit with each
// chunk, in order, last set on the final one. For a keyed rule, unit gives each element's unit
// (from its key; whole is false for a key longer than maxRouteKey, of which only the start is
// given) and a chunk holds elements of one unit; an element unit refuses (keep false) is left
// out, the caller having counted it. unit nil means one unit. An error after some chunks were
// emitted leaves the command half sent: the caller breaks the connection.
func walkChunks(cmd *aof.Command, r chunkRule, unit func(key []byte, whole bool) (int, bool), emit func(ch *chunk, last bool) error) error {
	a := cmd.Arguments(nil)
	fail := func(err error) error { return fmt.Errorf("big command at offset %d: %w", cmd.Start, err) }
	for range r.fixed {
		if _, err := a.Next(); err != nil {
			return fail(err)
		}
	}
	var (
		open   []*chunk // chunks being filled, at most one per unit, in order of their first element
		spare  []*chunk
		keyBuf []byte
	)
	remaining := (cmd.NArgs - int64(r.fixed)) / int64(r.width)
	take := func(u int) *chunk {
		for _, ch := range open {
			if ch.unit == u {
				return ch
			}
		}
		var ch *chunk
		if n := len(spare); n > 0 {
			ch, spare = spare[n-1], spare[:n-1]
			*ch = chunk{secs: ch.secs[:0], key: ch.key[:0]}
		} else {
			ch = &chunk{}
		}
		ch.unit = u
		open = append(open, ch)
		return ch
	}
	send := func(ch *chunk) error {
		for i, o := range open {
			if o == ch {
				open = append(open[:i], open[i+1:]...)
				break
			}
		}
		err := emit(ch, remaining == 0 && len(open) == 0)
		spare = append(spare, ch)
		return err
	}
	for remaining > 0 {
		remaining--
		var sec aof.Section
		u, keep := 0, true
		for k := 0; k < r.width; k++ {
			size, err := a.Next()
			if err != nil {
				return fail(err)
			}
			s := a.Section()
			if k > 0 {
				sec.Len = s.End() - sec.Off
				continue
			}
			sec = s
			if r.keyed {
				var whole bool
				if keyBuf, whole, err = readKey(a, keyBuf[:0], size); err != nil {
					return fail(err)
				}
				if unit != nil {
					u, keep = unit(keyBuf, whole)
				}
			}
		}
		if !keep {
			continue
		}
		ch := take(u)
		if ch.elems == 0 && r.keyed {
			ch.key = append(ch.key[:0], keyBuf...)
		}
		ch.add(sec)
		ch.elems++
		if ch.full() {
			if err := send(ch); err != nil {
				return err
			}
		}
	}
	for len(open) > 0 {
		if err := send(open[0]); err != nil {
			return err
		}
	}
	if _, err := a.Next(); err != io.EOF {
		if err == nil {
			err = fmt.Errorf("more arguments than %d", cmd.NArgs)
		}
		return fail(err)
	}
	return nil
}
