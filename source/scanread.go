package source

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/internal/redisfmt"
)

// How a scan node reads keys. A page of keys (a SCAN step, or keys notified as changed) is read
// in two pipelined round trips: first the size of each (MEMORY USAGE, or TYPE and the type's
// length command where MEMORY is refused), then, for each key under the big-key limit, its
// expiry (PEXPIRETIME, or PTTL made absolute at once before 7.0) and DUMP. A key over the limit
// is not DUMPed (the source would build its whole payload in memory, and so would rmtd): its
// type, expiry and length are read, and its elements later in pages (scanbig.go). A DUMP reply
// over the limit anyway (a size estimate too low, a stream: streams have no paged read that
// keeps their consumer groups) goes to a file beside the node's spool, never into memory.

// bigPageElems is how many elements one page of a big key asks for; bigPageBytes how many bytes
// of a big string.
const (
	bigPageElems = 1000
	bigPageBytes = 1 << 20
)

// keyRead is what was read of one key.
type keyRead struct {
	db       int
	key      []byte
	gone     bool   // the key does not exist (any more)
	changed  bool   // it changed while read (its type, or its expiry appeared): read it again
	size     int64  // its size in bytes as MEMORY USAGE estimates it (or STRLEN); 0 when unknown
	expireMs int64  // absolute Unix ms, 0: none
	payload  []byte // its whole DUMP payload (type, value, version, CRC64)
	spill    string // or the file holding it, when over the limit
	spillOff int64  // where in spill it begins
	spillLen int64
	// spillShared: spill is the pass's file (passSpill), removed with the pass, not with the key
	spillShared bool
	big         *bigKey // or, for a key too big to DUMP, what paging it needs
}

// bigKey is a key read in pages: its type as TYPE names it, and its length (elements, or a
// string's bytes) when its read began.
type bigKey struct {
	typ    string
	length int64
}

// serverFacts is what a scan node learned of its server: which commands it has.
type serverFacts struct {
	version    string // redis_version; "" when INFO is refused
	rdbVersion int    // the RDB version it writes, from its version; 0 when unknown
	// pttl: expiries are read with PTTL (before 7.0, or PEXPIRETIME refused) and made absolute
	// at read time. noMemory: MEMORY USAGE is refused (or unknown before 4.0): sizes come from
	// TYPE and the length commands.
	pttl, noMemory atomic.Bool
}

// learnServer reads INFO server: the version decides the expiry command and the RDB version.
// A server that refuses INFO is taken to be recent; each refused command is then replaced by
// its older form the first time it is refused.
func learnServer(sc *scanConn, f *serverFacts) {
	r, err := sc.do("INFO", "server")
	if err != nil || r.Kind != '$' {
		return
	}
	var redis, valkey string
	for line := range strings.SplitSeq(string(r.Str), "\n") {
		line = strings.TrimRight(line, "\r")
		if v, ok := strings.CutPrefix(line, "redis_version:"); ok {
			redis = v
		} else if v, ok := strings.CutPrefix(line, "valkey_version:"); ok {
			valkey = v
		}
	}
	f.version = redis
	major, minor := versionParts(redis)
	if major > 0 && major < 7 {
		f.pttl.Store(true)
	}
	if major > 0 && major < 4 {
		f.noMemory.Store(true)
	}
	f.rdbVersion = rdbVersionOf(major, minor, valkey)
}

func versionParts(v string) (int, int) {
	a, rest, _ := strings.Cut(v, ".")
	b, _, _ := strings.Cut(rest, ".")
	major, err1 := strconv.Atoi(a)
	minor, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil {
		return 0, 0
	}
	return major, minor
}

// rdbVersionOf is the RDB version a server writes (rdb.h's RDB_VERSION), for the rare pass
// whose first keys are all too big to DUMP; a DUMP payload's own version is used otherwise.
func rdbVersionOf(major, minor int, valkey string) int {
	if valkey != "" {
		if vm, _ := versionParts(valkey); vm >= 9 {
			return 80
		}
		return 11
	}
	switch {
	case major <= 0:
		return 0
	case major < 3:
		return 6
	case major == 3:
		return 7
	case major == 4:
		return 8
	case major < 7:
		return 9
	case major == 7 && minor < 2:
		return 10
	case major == 7 && minor < 4:
		return 11
	}
	return 12
}

// keyReader reads keys of one server for a scan node.
type keyReader struct {
	addr  string
	facts *serverFacts
	// bigKeyBytes is the big-key limit (common.big_key_bytes; 0: none): a key over it is read
	// in pages. holdMax is the largest DUMP reply held in memory (0: maxReplyBulk).
	bigKeyBytes int64
	holdMax     int64
	spillDir    string     // where DUMP replies over holdLimit go
	pass        *passSpill // a pass's: they go into its one file; nil: a file each
	log         *zap.Logger
	stats       *scanCounters
	now         func() time.Time
}

// holdLimit is the largest DUMP payload held in memory: the snapshot's maxRaw and the big-key
// limit, at most maxReplyBulk; a larger one goes to disk.
func (kr *keyReader) holdLimit() int64 {
	limit := int64(maxReplyBulk)
	for _, l := range []int64{kr.holdMax, kr.bigKeyBytes} {
		if l > 0 && l < limit {
			limit = l
		}
	}
	return limit
}

// bigElems is the length over which a collection is read in pages when its size in bytes is
// not known (MEMORY USAGE refused).
func (kr *keyReader) bigElems() int64 { return max(kr.bigKeyBytes/1024, 1024) }

// read reads keys of db on sc into out (reset first), in the order given.
func (kr *keyReader) read(sc *scanConn, db int, keys [][]byte, out []keyRead) ([]keyRead, error) {
	out = out[:0]
	if len(keys) == 0 {
		return out, nil
	}
	if err := sc.selectDB(db); err != nil {
		return out, err
	}
	for _, k := range keys {
		out = append(out, keyRead{db: db, key: k})
	}
	if err := kr.sizes(sc, out); err != nil {
		return out, err
	}
	return out, kr.complete(sc, out)
}

// complete reads keys sized by sizes (all of one db): DUMP and expiry of each that is not
// big, type, expiry and length of each that is.
func (kr *keyReader) complete(sc *scanConn, keys []keyRead) error {
	if len(keys) == 0 {
		return nil
	}
	if err := sc.selectDB(keys[0].db); err != nil {
		return err
	}
	if err := kr.dumps(sc, keys); err != nil {
		return err
	}
	for i := range keys {
		if k := &keys[i]; k.big != nil && !k.gone {
			if err := kr.bigInfo(sc, k); err != nil {
				return err
			}
		}
	}
	return nil
}

// sizes marks the keys (all of one db) that are gone and those too big to DUMP.
func (kr *keyReader) sizes(sc *scanConn, keys []keyRead) error {
	if len(keys) == 0 {
		return nil
	}
	if err := sc.selectDB(keys[0].db); err != nil {
		return err
	}
	if !kr.facts.noMemory.Load() {
		for i := range keys {
			sc.add([]byte("MEMORY"), []byte("USAGE"), keys[i].key)
		}
		if err := sc.flush(); err != nil {
			return err
		}
		refused := false
		for i := range keys {
			r, err := sc.read()
			if err != nil {
				return err
			}
			switch {
			case r.Kind == '-':
				refused = true
			case r.Null:
				keys[i].gone = true
			case r.Kind == ':':
				keys[i].size = r.Int
				if r.Int > kr.bigKeyBytes && kr.bigKeyBytes > 0 {
					keys[i].big = &bigKey{}
				}
			}
		}
		if !refused {
			return nil
		}
		kr.facts.noMemory.Store(true)
		kr.log.Info("MEMORY USAGE refused: key sizes come from TYPE and the length commands")
		for i := range keys {
			keys[i].gone, keys[i].big, keys[i].size = false, nil, 0
		}
	}
	for i := range keys {
		sc.add([]byte("TYPE"), keys[i].key)
	}
	if err := sc.flush(); err != nil {
		return err
	}
	types := make([]string, len(keys))
	for i := range keys {
		r, err := sc.read()
		if err != nil {
			return err
		}
		if err := r.err("TYPE"); err != nil {
			return fmt.Errorf("source %s: TYPE %s: %w", kr.addr, redisfmt.Quote(string(keys[i].key)), err)
		}
		types[i] = string(r.Str)
	}
	n := 0
	for i, t := range types {
		if lc := lengthCommand(t); lc != "" {
			sc.add([]byte(lc), keys[i].key)
			n++
		} else if t == "none" {
			keys[i].gone = true
		}
	}
	if err := sc.flush(); err != nil {
		return err
	}
	for i, t := range types {
		if lengthCommand(t) == "" {
			continue
		}
		r, err := sc.read()
		if err != nil {
			return err
		}
		if r.Kind != ':' {
			continue // changed type meanwhile: DUMP tells
		}
		limit := kr.bigElems()
		if t == "string" {
			limit = kr.bigKeyBytes
			keys[i].size = r.Int
		}
		if kr.bigKeyBytes > 0 && r.Int > limit {
			keys[i].big = &bigKey{typ: t, length: r.Int}
		}
	}
	return nil
}

// lengthCommand is the command giving the length of a key of type t ("" for none or a type
// that has none: a module's).
func lengthCommand(t string) string {
	switch t {
	case "string":
		return "STRLEN"
	case "list":
		return "LLEN"
	case "set":
		return "SCARD"
	case "zset":
		return "ZCARD"
	case "hash":
		return "HLEN"
	case "stream":
		return "XLEN"
	}
	return ""
}

// dumps reads expiry and DUMP payload of the keys neither gone nor big.
func (kr *keyReader) dumps(sc *scanConn, keys []keyRead) error {
	for {
		err := kr.dumpOnce(sc, keys)
		var re *ReplyError
		if errors.As(err, &re) && re.Step == "PEXPIRETIME" && !kr.facts.pttl.Load() {
			kr.facts.pttl.Store(true)
			kr.log.Info("PEXPIRETIME refused: expiries are read with PTTL and made absolute at once", zap.Error(err))
			continue
		}
		return err
	}
}

func (kr *keyReader) expireCmd() string {
	if kr.facts.pttl.Load() {
		return "PTTL"
	}
	return "PEXPIRETIME"
}

func (kr *keyReader) dumpOnce(sc *scanConn, keys []keyRead) error {
	exp := kr.expireCmd()
	at := kr.now() // PTTL counts from about now: the absolute expiry is never late
	for i := range keys {
		if k := &keys[i]; !k.gone && k.big == nil {
			sc.add([]byte(exp), k.key)
			sc.add([]byte("DUMP"), k.key)
		}
	}
	if err := sc.flush(); err != nil {
		return err
	}
	var replyErr error // the first error reply; the others are read to stay in step
	for i := range keys {
		k := &keys[i]
		if k.gone || k.big != nil {
			continue
		}
		r, err := sc.read()
		if err != nil {
			return err
		}
		if re := r.err(exp); re != nil && replyErr == nil {
			replyErr = re
		}
		noKey := r.Kind == ':' && r.Int == -2
		if r.Kind == ':' {
			k.expireMs = absExpiry(exp, r.Int, at)
		}
		size, er, err := sc.readBulkHeader()
		if err != nil {
			return err
		}
		switch {
		case size == -2:
			if replyErr == nil {
				replyErr = fmt.Errorf("source %s: DUMP %s: %w", kr.addr, redisfmt.Quote(string(k.key)), er.err("DUMP"))
			}
		case size == -1:
			k.gone = true
		case size > kr.holdLimit():
			if err := kr.spillPayload(sc, k, size); err != nil {
				return err
			}
		default:
			k.payload = make([]byte, size)
			if err := sc.readFull(k.payload); err != nil {
				return err
			}
			if err := sc.crlf(); err != nil {
				return err
			}
		}
		if noKey && !k.gone {
			k.changed = true // made between the two reads: its expiry is not known
		}
		kr.stats.bytes.Add(max(size, 0))
	}
	return replyErr
}

// absExpiry turns an expiry reply into absolute ms (0: none): PEXPIRETIME gives it, PTTL the
// time left from at, when the reply was asked for.
func absExpiry(cmd string, v int64, at time.Time) int64 {
	if v < 0 { // -1 no expiry, -2 no key (DUMP tells)
		return 0
	}
	if cmd == "PTTL" {
		return at.UnixMilli() + v
	}
	return v
}

// spillPayload writes a DUMP reply over the limit into a file: the pass's, or one of its own.
func (kr *keyReader) spillPayload(sc *scanConn, k *keyRead, size int64) error {
	if kr.pass != nil {
		f, err := kr.pass.file(kr.spillDir)
		if err != nil {
			return err
		}
		off := kr.pass.end.Add(size) - size
		if err := sc.readBulkBody(io.NewOffsetWriter(f, off), size); err != nil {
			return err
		}
		k.spill, k.spillOff, k.spillLen, k.spillShared = f.Name(), off, size, true
		kr.spilled(k, size)
		return nil
	}
	if err := os.MkdirAll(kr.spillDir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(kr.spillDir, "dump-*.payload")
	if err != nil {
		return err
	}
	err = sc.readBulkBody(f, size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	k.spill, k.spillOff, k.spillLen = f.Name(), 0, size
	kr.spilled(k, size)
	return nil
}

func (kr *keyReader) spilled(k *keyRead, size int64) {
	kr.stats.spilled.Add(1)
	kr.log.Info("DUMP reply over big_key_bytes: kept on disk, not in memory", zap.String("key", redisfmt.Quote(string(k.key))),
		zap.Int("db", k.db), zap.Int64("bytes", size))
}

// passSpill is the file of a pass's DUMP replies over the hold limit, appended to as they come
// and read at each one's offset until the pass's entries are closed: a writer may read a
// value after the next entry is taken (a RESTORE copied from the file as it is sent, or sent
// again after a refusal), so no payload's bytes may go before the pass ends. It holds at most
// what a replica link's RDB file would.
type passSpill struct {
	mu  sync.Mutex
	f   *os.File
	end atomic.Int64
}

func (s *passSpill) file(dir string) (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		return s.f, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "pass-*.payloads")
	if err != nil {
		return nil, err
	}
	s.f = f
	return f, nil
}

// remove closes and removes the file, once nothing reads it.
func (s *passSpill) remove() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		s.f.Close()
		os.Remove(s.f.Name())
		s.f = nil
	}
}

// bigInfo reads a big key's type (when not known), expiry and length.
func (kr *keyReader) bigInfo(sc *scanConn, k *keyRead) error {
	if k.big.typ == "" {
		r, err := sc.do("TYPE", string(k.key))
		if err != nil {
			return err
		}
		k.big.typ = string(r.Str)
	}
	lc := lengthCommand(k.big.typ)
	if lc == "" || k.big.typ == "stream" {
		// Nothing to page (gone; a stream; a module's type): a DUMP, kept on disk if big.
		k.big = nil
		one := []keyRead{*k}
		err := kr.dumps(sc, one)
		*k = one[0]
		return err
	}
	exp := kr.expireCmd()
	at := kr.now()
	sc.add([]byte(exp), k.key)
	sc.add([]byte(lc), k.key)
	if err := sc.flush(); err != nil {
		return err
	}
	r, err := sc.read()
	if err != nil {
		return err
	}
	if r.Kind == '-' && exp == "PEXPIRETIME" {
		kr.facts.pttl.Store(true)
		if _, err := sc.read(); err != nil {
			return err
		}
		return kr.bigInfo(sc, k)
	}
	k.expireMs = absExpiry(exp, r.Int, at)
	r, err = sc.read()
	if err != nil {
		return err
	}
	if r.Kind != ':' || r.Int == 0 {
		k.changed = true // changed type or gone meanwhile
		return nil
	}
	k.big.length = r.Int
	return nil
}
