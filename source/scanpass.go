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

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/internal/redisctl"
	"github.com/rmt-project/rmt/internal/redisfmt"
	"github.com/rmt-project/rmt/rdb"
)

// scanCount is SCAN's COUNT: about how many keys one step returns.
const scanCount = 1000

// dumpBatchBytes bounds the DUMP payloads one round trip asks for (their sizes as MEMORY USAGE
// estimates them), so that a page of big-but-not-too-big keys is not held at once.
const dumpBatchBytes = 32 << 20

// openPass begins a pass over every db of the server: the entries of a snapshot. A reader
// goroutine reads the keys ahead, a batch at a time, on a connection of its own, while the
// daemon writes the batch before; big keys' pages come on another connection, as they are
// taken.
func (n *scanNode) openPass(ctx context.Context, maxRaw int64) (Entries, error) {
	n.holdMax.Store(maxRaw)
	if n.live {
		n.lv.passOpened() // nothing read again while the pass reads
	}
	rctx, cancel := context.WithCancel(ctx)
	kr := n.keyReader()
	kr.pass = &passSpill{}
	r := &passReader{ctx: rctx, n: n, kr: kr}
	err := n.retry(ctx, "scan pass", r.reconnect, func() error {
		if r.sc == nil {
			if err := r.reconnect(); err != nil {
				return err
			}
		}
		if n.facts.version == "" {
			learnServer(r.sc, &n.facts)
		}
		sizes, err := keyspace(r.sc)
		if err != nil {
			return err
		}
		r.dbs, r.total = nil, 0
		for db, keys := range sizes {
			r.dbs = append(r.dbs, db)
			r.total += keys
		}
		slices.Sort(r.dbs)
		return nil
	})
	if err != nil {
		cancel()
		n.hangUp(r.sc)
		kr.pass.remove()
		return nil, fmt.Errorf("source %s: %w", n.currentAddr(), err)
	}
	n.st.passes.Add(1)
	n.st.passDone.Store(false)
	n.st.passKeys.Store(0)
	n.st.passTotal.Store(r.total)
	n.log.Info("scan pass", zap.Ints("dbs", r.dbs), zap.Int64("keys", r.total), zap.String("server_version", n.facts.version))
	p := &passEntries{ctx: ctx, cancel: cancel, n: n, kr: r.kr, batches: make(chan passBatch, 1), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		r.run(p.batches)
	}()
	return p, nil
}

// keyspace returns the number of keys of every db that has any: INFO keyspace, or where INFO
// is refused, DBSIZE in each db from 0 until SELECT refuses one (or 16).
func keyspace(sc *scanConn) (map[int]int64, error) {
	out := map[int]int64{}
	r, err := sc.do("INFO", "keyspace")
	if err == nil && r.Kind == '$' {
		ks, err := redisctl.ParseKeyspace(string(r.Str))
		if err != nil {
			return nil, fmt.Errorf("%w from %s: %w", errBadScanReply, sc.addr, err)
		}
		return ks, nil
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

// passBatch is what the pass's reader sends: keys read (in order), or the end of the pass
// with the function libraries, or the error that ended it.
type passBatch struct {
	keys  []keyRead
	end   bool
	funcs [][]byte
	err   error
}

// passReader reads a pass's keys: SCAN step by step over every db, each step's keys sized at
// once, then DUMPed in batches of at most dumpBatchBytes.
type passReader struct {
	ctx   context.Context
	n     *scanNode
	kr    *keyReader
	sc    *scanConn
	dbs   []int // the dbs with keys, in order
	total int64

	dbi    int    // dbs[dbi] is being scanned
	cursor string // its SCAN cursor ("" or "0": its start)
	ended  bool   // every db scanned
	page   []keyRead
	pi     int // page[pi:] are not read yet
	batch  []keyRead
	funcs  [][]byte
}

func (r *passReader) reconnect() error {
	r.n.hangUp(r.sc)
	r.sc = nil
	sc, err := r.n.dial(r.ctx)
	if err != nil {
		return err
	}
	r.sc = sc
	r.n.st.setConn(true, r.n.live)
	return nil
}

// run sends batches to out until the pass ends, fails, or ctx ends.
func (r *passReader) run(out chan<- passBatch) {
	defer func() { r.n.hangUp(r.sc) }()
	send := func(b passBatch) bool {
		select {
		case out <- b:
			return true
		case <-r.ctx.Done():
			removeSpills(b.keys)
			return false
		}
	}
	for !r.ended || r.pi < len(r.page) {
		if err := r.n.retry(r.ctx, "scan pass", r.reconnect, r.fetch); err != nil {
			send(passBatch{err: err})
			return
		}
		if len(r.batch) > 0 && !send(passBatch{keys: r.batch}) {
			return
		}
		r.batch = nil // the consumer owns the sent one
	}
	if err := r.n.retry(r.ctx, "scan pass", r.reconnect, r.readFunctions); err != nil {
		send(passBatch{err: err})
		return
	}
	send(passBatch{end: true, funcs: r.funcs})
}

// fetch reads the next batch of keys into r.batch: from the page of the last SCAN step, or a
// new step's.
func (r *passReader) fetch() error {
	r.batch = r.batch[:0]
	if r.sc == nil {
		if err := r.reconnect(); err != nil {
			return err
		}
	}
	if r.pi == len(r.page) {
		if err := r.step(); err != nil {
			return err
		}
	}
	// A batch: keys until their sizes pass dumpBatchBytes (one at least).
	j, sum := r.pi, int64(0)
	for j < len(r.page) && (j == r.pi || sum+r.page[j].size <= dumpBatchBytes) {
		sum += r.page[j].size
		j++
	}
	read := append([]keyRead(nil), r.page[r.pi:j]...)
	if err := r.kr.complete(r.sc, read); err != nil {
		removeSpills(read)
		return err
	}
	r.pi = j
	for i := range read {
		k := &read[i]
		switch {
		case k.changed:
			r.n.st.changed.Add(1)
			r.n.changedInPass(k.db, k.key)
		case !k.gone:
			r.batch = append(r.batch, *k)
		}
	}
	return nil
}

// removeSpills removes the files of payloads kept on disk that will not be used (the pass's
// file goes with the pass).
func removeSpills(keys []keyRead) {
	for i := range keys {
		if keys[i].spill != "" && !keys[i].spillShared {
			os.Remove(keys[i].spill)
		}
	}
}

// step runs one SCAN step on the current db and sizes its keys; past a db's last step it
// moves to the next db.
func (r *passReader) step() error {
	r.page, r.pi = r.page[:0], 0
	for !r.ended && len(r.page) == 0 {
		if r.dbi >= len(r.dbs) {
			r.ended = true
			return nil
		}
		db := r.dbs[r.dbi]
		if r.cursor == "" {
			r.cursor = "0"
		}
		if err := r.sc.selectDB(db); err != nil {
			return err
		}
		rep, err := r.sc.do("SCAN", r.cursor, "COUNT", strconv.Itoa(scanCount))
		if err != nil {
			return err
		}
		if rep.Kind != '*' || len(rep.Elems) != 2 || rep.Elems[1].Kind != '*' {
			return fmt.Errorf("%w from %s: SCAN: not [cursor, keys]", errBadScanReply, r.sc.addr)
		}
		next := string(rep.Elems[0].Str)
		for _, k := range rep.Elems[1].Elems {
			r.page = append(r.page, keyRead{db: db, key: k.Str})
		}
		if err := r.kr.sizes(r.sc, r.page); err != nil {
			r.page = r.page[:0]
			return err
		}
		// Counted once the step is read whole, so that a step read again is not counted twice.
		r.n.st.keys.Add(int64(len(r.page)))
		r.n.st.passKeys.Add(int64(len(r.page)))
		if next == "0" {
			r.dbi++
			r.cursor = ""
		} else {
			r.cursor = next
		}
	}
	return nil
}

// readFunctions reads the server's function libraries (FUNCTION LIST WITHCODE, Redis 7.0+),
// given after the keys as the entries of a snapshot give them. A server without functions, or
// that refuses FUNCTION, has none to give: said in the log.
func (r *passReader) readFunctions() error {
	if r.sc == nil {
		if err := r.reconnect(); err != nil {
			return err
		}
	}
	if major, _ := versionParts(r.n.facts.version); major > 0 && major < 7 {
		return nil
	}
	rep, err := r.sc.do("FUNCTION", "LIST", "WITHCODE")
	var re *ReplyError
	if errors.As(err, &re) {
		r.n.log.Warn("FUNCTION LIST refused: function libraries are not migrated", zap.Error(err))
		return nil
	}
	if err != nil {
		return err
	}
	r.funcs = r.funcs[:0]
	for _, lib := range rep.Elems {
		for i := 0; i+1 < len(lib.Elems); i += 2 {
			if string(lib.Elems[i].Str) == "library_code" {
				r.funcs = append(r.funcs, lib.Elems[i+1].Str)
			}
		}
	}
	if len(r.funcs) > 0 {
		r.n.log.Info("function libraries", zap.Int("libraries", len(r.funcs)))
	}
	return nil
}

// passEntries are a pass's keys, as the entries of a snapshot, from its reader's batches.
type passEntries struct {
	ctx     context.Context
	cancel  context.CancelFunc // ends the reader
	n       *scanNode
	kr      *keyReader
	batches chan passBatch
	done    chan struct{} // closed when the reader has returned
	bigSC   *scanConn     // big keys' pages

	queue []keyRead
	qi    int  // queue[qi:] are read, not yet returned
	ended bool // the reader sent the end
	funcs [][]byte

	version int // the RDB version of the payloads (of the first one)

	// the entry last returned
	held []byte   // its value bytes, given as not held (a payload of another version)
	file *os.File // its payload kept on disk: the pass's file
	big  *bigValue
	bigK keyRead // the key big reads
	err  error   // the pass is broken: every call fails
}

// pull takes the reader's next batch into the queue.
func (p *passEntries) pull() error {
	var b passBatch
	select {
	case b = <-p.batches:
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
	if b.err != nil {
		return b.err
	}
	if b.end {
		p.ended, p.funcs = true, b.funcs
		return nil
	}
	if p.qi == len(p.queue) {
		p.queue, p.qi = p.queue[:0], 0
	}
	p.queue = append(p.queue, b.keys...)
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
					return p.fail(fmt.Errorf("source %s: DUMP %s: %w", p.kr.addr, redisfmt.Quote(string(p.queue[p.qi].key)), err))
				}
				p.version = v
			} else if !p.ended {
				if err := p.pull(); err != nil {
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
		if p.ended {
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
		if err := p.pull(); err != nil {
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

// firstPayload is the index in the queue of the first key with a DUMP payload held, -1 if none.
func (p *passEntries) firstPayload() int {
	for i := p.qi; i < len(p.queue); i++ {
		if p.queue[i].payload != nil {
			return i
		}
	}
	return -1
}

func (p *passEntries) bigReconnect() error {
	p.n.hangUp(p.bigSC)
	p.bigSC = nil
	sc, err := p.n.dial(p.ctx)
	if err != nil {
		return err
	}
	p.bigSC = sc
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
		// Always the pass's file: its keyReader has one.
		k.spill = ""
		p.file = p.kr.pass.f
		typ, err := checkPayloadFile(io.NewSectionReader(p.file, k.spillOff, k.spillLen), k.spillLen)
		if err != nil {
			return false, fmt.Errorf("source %s: DUMP %s (%d bytes at %d of %s): %w", p.kr.addr, redisfmt.Quote(string(k.key)),
				k.spillLen, k.spillOff, p.file.Name(), err)
		}
		e.Type, e.ValueOffset, e.ValueLen = typ, k.spillOff+1, k.spillLen-11
		return true, nil
	case k.big != nil:
		var v *bigValue
		ok := false
		err := p.n.retry(p.ctx, "scan pass", p.bigReconnect, func() error {
			if p.bigSC == nil {
				if err := p.bigReconnect(); err != nil {
					return err
				}
			}
			if err := p.bigSC.selectDB(k.db); err != nil {
				return err
			}
			var err error
			v, ok, err = newBigValue(p.bigSC, k)
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
func checkPayloadFile(f io.ReaderAt, size int64) (byte, error) {
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
		// Not an io.ReaderAt: bytes of another RDB version go as commands, never as a RESTORE
		// of the version the writer was made for.
		return struct{ io.Reader }{bytes.NewReader(p.held)}
	case p.file != nil:
		return io.NewSectionReader(p.file, e.ValueOffset, e.ValueLen)
	case p.big != nil:
		return p.big
	}
	return bytes.NewReader(nil)
}

// release drops what the entry last returned held. Pages are read whole, each before the next
// is asked for, so a big key read only in part leaves its connection in step, unless a page
// failed midway.
func (p *passEntries) release() {
	p.held = nil
	p.file = nil // the pass's file: its bytes stay until Close
	if p.big != nil {
		if p.big.changed {
			p.n.st.changed.Add(1)
			p.n.changedInPass(p.bigK.db, p.bigK.key)
		}
		if p.big.err != nil && p.big.err != io.EOF {
			p.n.hangUp(p.bigSC) // a page cut short: the connection is out of step
			p.bigSC = nil
		}
		p.big = nil
	}
}

func (p *passEntries) Version() int { return p.version }

func (p *passEntries) Progress() (int64, int64) { return p.n.st.bytes.Load(), -1 }

// Close ends the reader and drops what is read and not taken.
func (p *passEntries) Close() error {
	p.release()
	p.cancel()
	<-p.done
	for {
		select {
		case b := <-p.batches:
			removeSpills(b.keys)
			continue
		default:
		}
		break
	}
	removeSpills(p.queue[p.qi:])
	p.kr.pass.remove()
	p.n.hangUp(p.bigSC)
	p.bigSC = nil
	return nil
}
