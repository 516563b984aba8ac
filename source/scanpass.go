package source

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/internal/redisfmt"
	"github.com/rmt-project/rmt/rdb"
)

// scanCount is SCAN's COUNT: about how many keys one step returns.
const scanCount = 1000

// dumpBatchBytes bounds the DUMP payloads one round trip asks for (their sizes as MEMORY USAGE
// estimates them), so that a page of big-but-not-too-big keys is not held at once.
const dumpBatchBytes = 32 << 20

// openPass begins a pass over every db of the server: the entries of a snapshot.
func (n *scanNode) openPass(ctx context.Context, maxRaw int64) (Entries, error) {
	n.maxRaw.Store(maxRaw)
	if n.live {
		n.lv.passOpened() // nothing read again while the pass reads
	}
	p := &passEntries{ctx: ctx, n: n, kr: n.keyReader()}
	err := n.retry(ctx, "scan pass", p.reconnect, func() error {
		if p.sc == nil {
			if err := p.reconnect(); err != nil {
				return err
			}
		}
		if n.facts.version == "" {
			learnServer(p.sc, &n.facts)
		}
		sizes, err := keyspace(p.sc)
		if err != nil {
			return err
		}
		p.dbs, p.total = nil, 0
		for db, keys := range sizes {
			p.dbs = append(p.dbs, db)
			p.total += keys
		}
		slices.Sort(p.dbs)
		return nil
	})
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("source %s: %w", n.currentAddr(), err)
	}
	n.st.passes.Add(1)
	n.st.passDone.Store(false)
	n.st.passKeys.Store(0)
	n.st.passTotal.Store(p.total)
	n.log.Info("scan pass", zap.Ints("dbs", p.dbs), zap.Int64("keys", p.total), zap.String("server_version", n.facts.version))
	return p, nil
}

// keyspace returns the number of keys of every db that has any: INFO keyspace, or where INFO
// is refused, DBSIZE in each db from 0 until SELECT refuses one (or 16).
func keyspace(sc *scanConn) (map[int]int64, error) {
	out := map[int]int64{}
	r, err := sc.do("INFO", "keyspace")
	if err == nil && r.Kind == '$' {
		for line := range strings.SplitSeq(string(r.Str), "\n") {
			rest, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "db")
			if !ok {
				continue
			}
			dbs, fields, _ := strings.Cut(rest, ":")
			keys, _, _ := strings.Cut(strings.TrimPrefix(fields, "keys="), ",")
			db, err1 := strconv.Atoi(dbs)
			k, err2 := strconv.ParseInt(keys, 10, 64)
			if err1 != nil || err2 != nil || db < 0 || k < 0 {
				return nil, fmt.Errorf("%w from %s: INFO keyspace line %q", errBadScanReply, sc.addr, truncate(line, 64))
			}
			out[db] = k
		}
		return out, nil
	}
	var re *ReplyError
	if err != nil && !errors.As(err, &re) {
		return nil, err
	}
	for db := range 16 {
		if err := sc.selectDB(db); err != nil {
			if errors.As(err, &re) && db > 0 {
				break
			}
			return nil, err
		}
		r, err := sc.do("DBSIZE")
		if err != nil {
			return nil, err
		}
		if r.Int > 0 {
			out[db] = r.Int
		}
	}
	return out, nil
}

// passEntries are a pass's keys, as the entries of a snapshot. The keys of one SCAN step are
// sized at once, and DUMPed in batches of at most dumpBatchBytes as the entries are taken.
type passEntries struct {
	ctx   context.Context
	n     *scanNode
	kr    *keyReader
	sc    *scanConn
	dbs   []int // the dbs with keys, in order
	total int64

	dbi    int    // dbs[dbi] is being scanned
	cursor string // its SCAN cursor ("0": its start)
	ended  bool   // every db scanned
	page   []keyRead
	pi     int // page[pi:] are not read yet
	queue  []keyRead
	qi     int // queue[qi:] are read, not yet returned
	batch  []keyRead

	version int // the RDB version of the payloads (of the first one)

	funcs     [][]byte // the function libraries' code, given after the keys
	funcsRead bool

	// the entry last returned
	held []byte   // its value bytes, given as not held (a payload of another version)
	file *os.File // its payload kept on disk
	path string
	big  *bigValue
	bigK keyRead // the key big reads
	err  error   // the pass is broken: every call fails
}

func (p *passEntries) reconnect() error {
	p.n.hangUp(p.sc)
	p.sc = nil
	sc, err := p.n.dial(p.ctx)
	if err != nil {
		return err
	}
	p.sc = sc
	p.n.st.setConn(true, p.n.live)
	return nil
}

// Next fills e with the next key. The first entry is one with a DUMP payload when the pass
// has any, so that Version is the payloads' version before the target writer is made.
func (p *passEntries) Next(e *rdb.Entry) error {
	if p.err != nil {
		return p.err
	}
	p.release()
	for {
		if p.version == 0 {
			if i := p.firstPayload(); i >= 0 {
				p.queue[p.qi], p.queue[i] = p.queue[i], p.queue[p.qi]
				_, _, v, err := rdb.SplitPayload(p.queue[p.qi].payload)
				if err != nil {
					return p.fail(fmt.Errorf("source %s: DUMP %s: %w", p.sc.addr, redisfmt.Quote(string(p.queue[p.qi].key)), err))
				}
				p.version = v
			} else if !p.ended {
				if err := p.fetch(); err != nil {
					return p.fail(err)
				}
				continue
			} else {
				p.version = p.n.facts.rdbVersion // no key small enough to DUMP: the server's own
			}
		}
		if p.qi < len(p.queue) {
			k := &p.queue[p.qi]
			p.qi++
			ok, err := p.entry(e, k)
			if err != nil {
				return p.fail(err)
			}
			if ok {
				return nil
			}
			continue
		}
		if p.ended && p.pi == len(p.page) {
			if !p.funcsRead {
				if err := p.n.retry(p.ctx, "scan pass", p.reconnect, p.readFunctions); err != nil {
					return p.fail(err)
				}
				p.funcsRead = true
			}
			if len(p.funcs) > 0 {
				*e = rdb.Entry{Kind: rdb.KindFunction, Value: p.funcs[0], Idle: -1, Freq: -1}
				p.funcs = p.funcs[1:]
				return nil
			}
			p.n.st.passDone.Store(true)
			p.n.st.completed.Add(1)
			p.n.log.Info("scan pass done", zap.Int64("keys", p.n.st.passKeys.Load()))
			if p.n.live {
				p.n.lv.passRead() // every key is read: the changes may be
			}
			p.err = io.EOF
			return io.EOF
		}
		p.queue, p.qi = p.queue[:0], 0
		if err := p.fetch(); err != nil {
			return p.fail(err)
		}
	}
}

func (p *passEntries) fail(err error) error {
	if p.ctx.Err() != nil {
		err = p.ctx.Err()
	}
	p.err = err
	return err
}

// readFunctions reads the server's function libraries (FUNCTION LIST WITHCODE, Redis 7.0+),
// given after the keys as the entries of a snapshot give them. A server without functions, or
// that refuses FUNCTION, has none to give: said in the log.
func (p *passEntries) readFunctions() error {
	if p.sc == nil {
		if err := p.reconnect(); err != nil {
			return err
		}
	}
	if major, _ := versionParts(p.n.facts.version); major > 0 && major < 7 {
		return nil
	}
	r, err := p.sc.do("FUNCTION", "LIST", "WITHCODE")
	var re *ReplyError
	if errors.As(err, &re) {
		p.n.log.Warn("FUNCTION LIST refused: function libraries are not migrated", zap.Error(err))
		return nil
	}
	if err != nil {
		return err
	}
	p.funcs = p.funcs[:0]
	for _, lib := range r.Elems {
		for i := 0; i+1 < len(lib.Elems); i += 2 {
			if string(lib.Elems[i].Str) == "library_code" {
				p.funcs = append(p.funcs, lib.Elems[i+1].Str)
			}
		}
	}
	if len(p.funcs) > 0 {
		p.n.log.Info("function libraries", zap.Int("libraries", len(p.funcs)))
	}
	return nil
}

// firstPayload is the index in the queue of the first key with a DUMP payload held, -1 if none.
func (p *passEntries) firstPayload() int {
	for i := p.qi; i < len(p.queue); i++ {
		if p.queue[i].payload != nil {
			return i
		}
	}
	return -1
}

// fetch reads the next batch of keys into the queue: from the page of the last SCAN step, or
// a new step's.
func (p *passEntries) fetch() error {
	return p.n.retry(p.ctx, "scan pass", p.reconnect, func() error {
		if p.sc == nil {
			if err := p.reconnect(); err != nil {
				return err
			}
		}
		if p.pi == len(p.page) {
			if err := p.step(); err != nil {
				return err
			}
		}
		// A batch: keys until their sizes pass dumpBatchBytes (one at least).
		j, sum := p.pi, int64(0)
		for j < len(p.page) && (j == p.pi || sum+p.page[j].size <= dumpBatchBytes) {
			sum += p.page[j].size
			j++
		}
		p.batch = append(p.batch[:0], p.page[p.pi:j]...)
		if err := p.kr.complete(p.sc, p.batch); err != nil {
			return err
		}
		p.pi = j
		for i := range p.batch {
			k := &p.batch[i]
			switch {
			case k.changed:
				p.n.st.changed.Add(1)
				p.n.changedInPass(k.db, k.key)
			case !k.gone:
				p.queue = append(p.queue, *k)
			}
		}
		return nil
	})
}

// step runs one SCAN step on the current db and sizes its keys; past a db's last step it
// moves to the next db.
func (p *passEntries) step() error {
	p.page, p.pi = p.page[:0], 0
	for !p.ended && len(p.page) == 0 {
		if p.dbi >= len(p.dbs) {
			p.ended = true
			return nil
		}
		db := p.dbs[p.dbi]
		if p.cursor == "" {
			p.cursor = "0"
		}
		if err := p.sc.selectDB(db); err != nil {
			return err
		}
		r, err := p.sc.do("SCAN", p.cursor, "COUNT", strconv.Itoa(scanCount))
		if err != nil {
			return err
		}
		if r.Kind != '*' || len(r.Elems) != 2 || r.Elems[1].Kind != '*' {
			return fmt.Errorf("%w from %s: SCAN: not [cursor, keys]", errBadScanReply, p.sc.addr)
		}
		next := string(r.Elems[0].Str)
		for _, k := range r.Elems[1].Elems {
			p.page = append(p.page, keyRead{db: db, key: k.Str})
		}
		if err := p.kr.sizes(p.sc, p.page); err != nil {
			p.page = p.page[:0]
			return err
		}
		// Counted once the step is read whole, so that a step read again is not counted twice.
		p.n.st.keys.Add(int64(len(p.page)))
		p.n.st.passKeys.Add(int64(len(p.page)))
		if next == "0" {
			p.dbi++
			p.cursor = ""
		} else {
			p.cursor = next
		}
	}
	return nil
}

// entry fills e with k; false when k is to be skipped (it went away while read in pages).
func (p *passEntries) entry(e *rdb.Entry, k *keyRead) (bool, error) {
	*e = rdb.Entry{Kind: rdb.KindKey, DB: k.db, Key: k.key, ExpireMs: k.expireMs, Idle: -1, Freq: -1}
	switch {
	case k.payload != nil:
		typ, value, v, err := rdb.SplitPayload(k.payload)
		if err != nil {
			return false, fmt.Errorf("source %s: DUMP %s: %w", p.kr.addr, redisfmt.Quote(string(k.key)), err)
		}
		e.Type, e.ValueLen = typ, int64(len(value))
		if p.n.live {
			p.n.lv.trackStream(k.db, k.key, typ, value)
		}
		if v == p.version {
			e.Value = value
		} else {
			p.held = value // another version than the writer was made for: rewritten from the bytes
		}
		k.payload = nil
		return true, nil
	case k.spill != "":
		p.path, k.spill = k.spill, ""
		f, err := os.Open(p.path)
		if err != nil {
			return false, err
		}
		p.file = f
		typ, err := checkPayloadFile(f, k.spillLen)
		if err != nil {
			return false, fmt.Errorf("source %s: DUMP %s (%d bytes): %w", p.kr.addr, redisfmt.Quote(string(k.key)), k.spillLen, err)
		}
		e.Type, e.ValueOffset, e.ValueLen = typ, 1, k.spillLen-11
		return true, nil
	case k.big != nil:
		var v *bigValue
		ok := false
		err := p.n.retry(p.ctx, "scan pass", p.reconnect, func() error {
			if p.sc == nil {
				if err := p.reconnect(); err != nil {
					return err
				}
			}
			if err := p.sc.selectDB(k.db); err != nil {
				return err
			}
			var err error
			v, ok, err = newBigValue(p.sc, k)
			return err
		})
		if err != nil || !ok {
			if !ok && err == nil {
				p.n.st.changed.Add(1)
				p.n.changedInPass(k.db, k.key)
			}
			return false, err
		}
		p.big, p.bigK = v, *k
		p.n.st.bigKeys.Add(1)
		e.Type, e.ValueLen = rdbTypeOf(k.big.typ), k.big.length
		p.n.log.Info("big key read in pages", zap.String("key", redisfmt.Quote(string(k.key))), zap.Int("db", k.db),
			zap.String("type", k.big.typ), zap.Int64("length", k.big.length))
		return true, nil
	}
	return false, nil
}

// checkPayloadFile checks the CRC64 and version trailer of a DUMP payload of size bytes in f,
// and returns its type byte.
func checkPayloadFile(f *os.File, size int64) (byte, error) {
	if size < 11 {
		return 0, fmt.Errorf("a DUMP payload of %d bytes: %w", size, rdb.ErrCorrupt)
	}
	var crc uint64
	buf := make([]byte, 256<<10)
	var typ [1]byte
	for off := int64(0); off < size-8; {
		n := min(int64(len(buf)), size-8-off)
		if _, err := f.ReadAt(buf[:n], off); err != nil {
			return 0, err
		}
		if off == 0 {
			typ[0] = buf[0]
		}
		crc = rdb.CRC64(crc, buf[:n])
		off += n
	}
	var sum [8]byte
	if _, err := f.ReadAt(sum[:], size-8); err != nil {
		return 0, err
	}
	if binary.LittleEndian.Uint64(sum[:]) != crc {
		return 0, fmt.Errorf("DUMP payload: %w", rdb.ErrChecksum)
	}
	return typ[0], nil
}

// Value reads the value of the entry last returned that is not held: its bytes of another RDB
// version, its payload on disk, or its pages.
func (p *passEntries) Value(e *rdb.Entry) io.Reader {
	switch {
	case p.held != nil:
		return bytes.NewReader(p.held)
	case p.file != nil:
		return io.NewSectionReader(p.file, e.ValueOffset, e.ValueLen)
	case p.big != nil:
		return p.big
	}
	return bytes.NewReader(nil)
}

// release drops what the entry last returned held. Pages are read whole, each before the next
// is asked for, so a big key read only in part leaves the connection in step, unless a page
// failed midway.
func (p *passEntries) release() {
	p.held = nil
	if p.file != nil {
		p.file.Close()
		p.file = nil
		os.Remove(p.path)
	}
	if p.big != nil {
		if p.big.changed {
			p.n.st.changed.Add(1)
			p.n.changedInPass(p.bigK.db, p.bigK.key)
		}
		if p.big.err != nil && p.big.err != io.EOF {
			// A page cut short: the connection is out of step.
			p.n.hangUp(p.sc)
			p.sc = nil
		}
		p.big = nil
	}
}

func (p *passEntries) Version() int { return p.version }

func (p *passEntries) Progress() (int64, int64) { return p.n.st.bytes.Load(), -1 }

func (p *passEntries) Close() error {
	p.release()
	for i := range p.queue {
		if p.queue[i].spill != "" {
			os.Remove(p.queue[i].spill)
		}
	}
	p.n.hangUp(p.sc)
	p.sc = nil
	return nil
}
