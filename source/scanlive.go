package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/redisfmt"
	"github.com/rmt-project/rmt/rdb"
)

// scan_live: the pass, then the changes. Before the pass the node subscribes to keyspace
// notifications (PSUBSCRIBE __keyspace@*__:*), so that no change made during it goes unseen.
// A notified key goes into a set of keys to read again (several notifications of one key cost
// one read); once the pass is read whole, a generator reads those keys from the source and
// writes each whole into the node's spool, as the commands of its stream: RESTORE key
// <absolute expiry> <payload> REPLACE ABSTTL, or DEL when it is gone, or for a big key DEL and
// its pages as native commands. Every command is read from the source after the pass read its
// key, and written in the order of the reads, so the last write of a key on the target is its
// last read, made after its last notification: the target converges on the source.
//
// What notifications cannot tell, and what rmtd does about it (each counted in ScanStats):
//   - The subscription dropped (a connection lost, a pubsub output buffer over its limit): the
//     changes in between are lost. The node subscribes again and offers a new snapshot, a new
//     pass (Rescans), which the daemon loads as after any full resync.
//   - FLUSHALL, FLUSHDB and SWAPDB are not notified. Every flushCheckEvery the node compares
//     each db's key count with the previous one less the removals notified in between (DEL,
//     expiry, eviction, RENAME and MOVE from); a db with fewer keys lost some without a word:
//     FLUSHDB of that db goes into the stream, then every key of it again (FlushesDetected,
//     Rescans). A flush followed at once by as many new keys goes unseen until the next pass.
//   - Reads and acknowledgements by consumer groups (XREADGROUP, XACK, XCLAIM) are not
//     notified: streams with groups are read again every streamRefreshEvery (StreamRefreshes).
//   - A big key changed often is read again whole each time (BigRereads, BigRereadBytes).
//   - Keys that expire on the source: the target holds the same absolute expiry; the
//     notification of the expiry brings a DEL anyway.

const (
	maxPendingKeys     = 1 << 20   // keys waiting to be read again ...
	maxPendingBytes    = 256 << 20 // ... and their bytes: past either, a new pass
	genBatchKeys       = 256       // keys read in one round trip by the generator
	maxTrackedStreams  = 10000     // streams with groups read again periodically
	streamRefreshEvery = 2 * time.Second
	flushCheckEvery    = 2 * time.Second
	notifyRecheck      = 5 * time.Second
	spoolFlushBytes    = 1 << 20 // the generator appends to the spool at least this often
)

// notifyNeeded are the classes of notify-keyspace-events scan_live needs besides K: generic
// (DEL, EXPIRE, RENAME ...), string, list, set, hash, zset, expired, evicted, stream. "A" is
// all of them.
const notifyNeeded = "g$lshzxet"

// pkey is a key of a db.
type pkey struct {
	db  int
	key string
}

// rescanState is a db read again in the stream after a flush was detected.
type rescanState struct {
	db      int
	cursor  string
	flushed bool // its FLUSHDB is in the stream
}

// liveState is a scan_live node's changes.
type liveState struct {
	n   *scanNode
	log *zap.Logger

	spMu  sync.Mutex
	sp    *aof.Spool
	spErr error

	// genMu is held by the generator while it reads a batch and appends it; newPass takes it
	// to stop the generator before it offers a new pass.
	genMu   sync.Mutex
	genOn   bool // the pass is read whole: changes may be read (set under genMu and mu)
	spoolDB int  // the db in force at the spool's end; -1 after a new pass (under genMu)

	mu       sync.Mutex
	wake     chan struct{}
	pending  map[pkey]struct{}
	fifo     []pkey
	head     int
	pendingB int64
	rescans  []rescanState
	streams  map[pkey]struct{} // streams with consumer groups
	warned   bool              // maxTrackedStreams was logged
	removed  map[int]int64     // removal notifications by db, since the start
	subEpoch int64             // counts (re)subscriptions: a flush check spans one

	passReq chan string        // why a new pass is needed
	pings   chan chan struct{} // barrier requests to the subscription's pinger
	barrier func(ctx context.Context) bool
}

func newLiveState(n *scanNode) *liveState {
	lv := &liveState{n: n, log: n.log, spoolDB: -1, wake: make(chan struct{}, 1), pending: map[pkey]struct{}{},
		streams: map[pkey]struct{}{}, removed: map[int]int64{}, passReq: make(chan string, 1),
		pings: make(chan chan struct{})}
	lv.barrier = lv.pingBarrier
	return lv
}

func (lv *liveState) spool() (*aof.Spool, error) {
	lv.spMu.Lock()
	defer lv.spMu.Unlock()
	if lv.sp == nil && lv.spErr == nil {
		lv.sp, lv.spErr = aof.OpenSpool(filepath.Join(lv.n.opts.Dir, "oplog"), aof.SpoolOptions{
			SegmentBytes: lv.n.opts.SpoolSegmentBytes, MaxBytes: lv.n.opts.MaxSpoolBytes})
	}
	return lv.sp, lv.spErr
}

func (lv *liveState) received() int64 {
	lv.spMu.Lock()
	defer lv.spMu.Unlock()
	if lv.sp == nil {
		return 0
	}
	return lv.sp.Synced()
}

func (lv *liveState) close() error {
	lv.spMu.Lock()
	defer lv.spMu.Unlock()
	if lv.sp == nil {
		return nil
	}
	return lv.sp.Close()
}

func (lv *liveState) trim(upTo int64) error {
	sp, err := lv.spool()
	if err != nil {
		return err
	}
	return sp.Trim(upTo)
}

// run checks the notification setting, subscribes, offers the first pass and then a new one
// whenever changes may have been lost, until ctx ends.
func (lv *liveState) run(ctx context.Context) error {
	sp, err := lv.spool()
	if err != nil {
		return fmt.Errorf("source %s: %w", lv.n.name, err)
	}
	if err := sp.Reset(sp.End()); err != nil { // a stream is never resumed: what is there is stale
		return fmt.Errorf("source %s: %w", lv.n.name, err)
	}
	if !lv.waitNotifyConfig(ctx) {
		return nil
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ready := make(chan struct{})
	wg.Go(func() { lv.subscribe(ctx, ready) })
	wg.Go(func() { lv.generate(ctx) })
	wg.Go(func() { lv.watch(ctx) })
	select {
	case <-ready:
	case <-ctx.Done():
		return nil
	}
	lv.newPass(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case why := <-lv.passReq:
			lv.n.st.rescans.Add(1)
			lv.log.Warn("changes may have been missed: a new pass", zap.String("why", why))
			lv.newPass(ctx)
		}
	}
}

// requestPass asks run for a new pass (several requests before it starts make one).
func (lv *liveState) requestPass(why string) {
	select {
	case lv.passReq <- why:
	default:
	}
}

func (lv *liveState) resync(reason error) { lv.requestPass("resync: " + reason.Error()) }

// newPass stops the generator (after the batch it is writing), then offers a pass whose
// stream starts at the spool's end: what the generator read before it is never applied after it.
func (lv *liveState) newPass(ctx context.Context) {
	lv.genMu.Lock()
	lv.mu.Lock()
	lv.genOn = false
	lv.mu.Unlock()
	lv.n.st.streaming.Store(false)
	lv.spoolDB = -1
	offset := lv.sp.End()
	lv.genMu.Unlock()
	lv.n.send(ctx, lv.n.snapshot(offset))
}

// passOpened and passRead bracket a pass: the generator reads nothing while one is read.
func (lv *liveState) passOpened() {
	lv.genMu.Lock()
	lv.mu.Lock()
	lv.genOn = false
	lv.mu.Unlock()
	lv.genMu.Unlock()
	lv.n.st.streaming.Store(false)
}

func (lv *liveState) passRead() {
	lv.mu.Lock()
	lv.genOn = true
	lv.mu.Unlock()
	lv.n.st.streaming.Store(true)
	lv.poke()
}

func (lv *liveState) poke() {
	select {
	case lv.wake <- struct{}{}:
	default:
	}
}

// stream reads the node's commands after from, from its spool.
func (lv *liveState) stream(ctx context.Context, from int64) (Commands, error) {
	sp, err := lv.spool()
	if err != nil {
		return nil, err
	}
	r, err := sp.NewReader(ctx, from)
	if err != nil {
		return nil, err
	}
	return &spoolCommands{Reader: aof.NewReader(r), sr: r}, nil
}

// waitNotifyConfig reads notify-keyspace-events with CONFIG GET. Where it lacks classes the
// node waits (and says so every notifyRecheck) rather than lose changes; where CONFIG is
// refused it says that the operator must set it, and goes on. False when ctx ended.
func (lv *liveState) waitNotifyConfig(ctx context.Context) bool {
	for {
		state, value, err := lv.readNotifyConfig(ctx)
		if err == nil {
			lv.n.st.setNotify(state, value)
			switch state {
			case NotifyOK:
				lv.log.Info("keyspace notifications are on", zap.String("notify-keyspace-events", value))
				return true
			case NotifyUnknown:
				lv.log.Warn("CONFIG is refused: rmtd cannot check notify-keyspace-events. The operator must set it to KEA " +
					"(or at least K" + notifyNeeded + "), in the service's parameters: without it every change after the pass is lost")
				return true
			}
			lv.log.Error("notify-keyspace-events lacks classes scan_live needs: waiting until it is set to KEA (or at least K"+
				notifyNeeded+")", zap.String("notify-keyspace-events", value))
		} else {
			lv.n.st.setErr(err)
			lv.log.Warn("reading notify-keyspace-events", zap.Error(err))
		}
		t := time.NewTimer(notifyRecheck)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

func (lv *liveState) readNotifyConfig(ctx context.Context) (state, value string, err error) {
	sc, err := lv.n.dial(ctx)
	if err != nil {
		return "", "", err
	}
	defer lv.n.hangUp(sc)
	r, err := sc.do("CONFIG", "GET", "notify-keyspace-events")
	var re *ReplyError
	if errors.As(err, &re) {
		return NotifyUnknown, "", nil // refused, renamed away, or not allowed to this user
	}
	if err != nil {
		return "", "", err
	}
	if r.Kind != '*' || len(r.Elems) != 2 {
		return NotifyUnknown, "", nil
	}
	value = string(r.Elems[1].Str)
	return notifyState(value), value, nil
}

// notifyState says whether notify-keyspace-events value has what scan_live needs.
func notifyState(value string) string {
	if !strings.Contains(value, "K") {
		return NotifyMissing
	}
	if strings.Contains(value, "A") {
		return NotifyOK
	}
	for _, c := range notifyNeeded {
		if !strings.ContainsRune(value, c) {
			return NotifyMissing
		}
	}
	return NotifyOK
}

// notified records that key of db changed: it is read again.
func (lv *liveState) notified(db int, key []byte) {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	lv.addLocked(pkey{db, string(key)})
}

func (lv *liveState) addLocked(k pkey) {
	if _, ok := lv.pending[k]; ok {
		lv.n.st.coalesced.Add(1)
		return
	}
	if len(lv.pending) >= maxPendingKeys || lv.pendingB+int64(len(k.key)) > maxPendingBytes {
		// Too many to keep: forget them all, a new pass reads every key.
		lv.n.st.overflows.Add(1)
		clear(lv.pending)
		lv.fifo, lv.head, lv.pendingB = nil, 0, 0
		lv.n.st.pending.Store(0)
		lv.requestPass(fmt.Sprintf("more than %d keys (or %d bytes of them) wait to be read again", maxPendingKeys, maxPendingBytes))
		return
	}
	lv.pending[k] = struct{}{}
	lv.fifo = append(lv.fifo, k)
	lv.pendingB += int64(len(k.key))
	lv.n.st.pending.Store(int64(len(lv.pending)))
	select {
	case lv.wake <- struct{}{}:
	default:
	}
}

// popLocked takes up to max keys waiting, all of the db of the first.
func (lv *liveState) popLocked(keys []pkey, limit int) []pkey {
	keys = keys[:0]
	for lv.head < len(lv.fifo) && len(keys) < limit {
		k := lv.fifo[lv.head]
		if len(keys) > 0 && k.db != keys[0].db {
			break
		}
		lv.fifo[lv.head] = pkey{}
		lv.head++
		delete(lv.pending, k)
		lv.pendingB -= int64(len(k.key))
		keys = append(keys, k)
	}
	if lv.head == len(lv.fifo) {
		lv.fifo, lv.head = lv.fifo[:0], 0
	} else if lv.head > 4096 && lv.head*2 > len(lv.fifo) {
		lv.fifo = append(lv.fifo[:0], lv.fifo[lv.head:]...)
		lv.head = 0
	}
	lv.n.st.pending.Store(int64(len(lv.pending)))
	return keys
}

// rescanDB makes db read again in the stream, after a FLUSHDB (a flush was detected).
func (lv *liveState) rescanDB(db int) {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	for i, r := range lv.rescans {
		if r.db == db {
			lv.rescans[i] = rescanState{db: db} // again from the start, after a new FLUSHDB
			return
		}
	}
	lv.rescans = append(lv.rescans, rescanState{db: db})
	lv.n.st.rescans.Add(1)
	lv.poke()
}

// generate reads the keys waiting and the dbs to scan again, and writes their commands to
// the spool, for as long as ctx lives; nothing while a pass is read.
func (lv *liveState) generate(ctx context.Context) {
	g := &generator{ctx: ctx, lv: lv, n: lv.n}
	defer lv.n.hangUp(g.sc)
	var keys []pkey
	for {
		lv.mu.Lock()
		work := lv.genOn && (lv.head < len(lv.fifo) || len(lv.rescans) > 0)
		lv.mu.Unlock()
		if !work {
			select {
			case <-ctx.Done():
				return
			case <-lv.wake:
				continue
			}
		}
		lv.genMu.Lock()
		lv.mu.Lock()
		var rs *rescanState
		if lv.genOn {
			keys = lv.popLocked(keys, genBatchKeys)
			if len(keys) == 0 && len(lv.rescans) > 0 {
				r := lv.rescans[0]
				rs = &r
			}
		} else {
			keys = keys[:0]
		}
		lv.mu.Unlock()
		err := g.run(ctx, keys, rs)
		lv.genMu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// Not a lost connection (retry deals with those): an error reply to a read, a
			// spool that cannot be written. The keys wait again, and the generator a while.
			lv.n.st.setErr(err)
			lv.log.Error("reading changed keys", zap.Error(err), zap.Int("keys", len(keys)))
			lv.mu.Lock()
			for _, k := range keys {
				lv.addLocked(k)
			}
			lv.mu.Unlock()
			t := time.NewTimer(lv.n.opts.BackoffMax)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

// generator turns keys read again into the spool's commands.
type generator struct {
	ctx   context.Context
	lv    *liveState
	n     *scanNode
	sc    *scanConn
	reads []keyRead
	keys  [][]byte
	buf   []byte // commands not yet appended to the spool
	bufDB int    // the db in force at buf's end
}

func (g *generator) reconnect(ctx context.Context) error {
	g.n.hangUp(g.sc)
	g.sc = nil
	sc, err := g.n.dial(ctx)
	if err != nil {
		return err
	}
	g.sc = sc
	g.n.st.setConn(true, true)
	return nil
}

// run reads keys (all of one db), or one SCAN step of rs, and appends their commands.
func (g *generator) run(ctx context.Context, keys []pkey, rs *rescanState) error {
	if len(keys) == 0 && rs == nil {
		return nil
	}
	kr := g.n.keyReader()
	reconnect := func() error { return g.reconnect(ctx) }
	return g.n.retry(ctx, "reading changed keys", reconnect, func() error {
		if g.sc == nil {
			if err := reconnect(); err != nil {
				return err
			}
		}
		g.buf, g.bufDB = g.buf[:0], g.lv.spoolDB // a try again starts where the spool ends
		var err error
		if rs != nil {
			err = g.rescanStep(kr, rs)
		} else {
			g.keys = g.keys[:0]
			for _, k := range keys {
				g.keys = append(g.keys, []byte(k.key))
			}
			g.reads, err = kr.read(g.sc, keys[0].db, g.keys, g.reads)
			if err == nil {
				err = g.write(kr, g.reads, true)
			}
		}
		if err != nil {
			return err
		}
		return g.sync()
	})
}

// rescanStep appends, for a db read again, its FLUSHDB first, then one SCAN step's keys.
func (g *generator) rescanStep(kr *keyReader, rs *rescanState) error {
	if !rs.flushed {
		g.selectDB(rs.db)
		g.emitStr("FLUSHDB")
		if err := g.sync(); err != nil {
			return err
		}
		g.lv.mu.Lock()
		if len(g.lv.rescans) > 0 && g.lv.rescans[0].db == rs.db {
			g.lv.rescans[0].flushed = true
		}
		g.lv.mu.Unlock()
		rs.flushed = true
	}
	if err := g.sc.selectDB(rs.db); err != nil {
		return err
	}
	cursor := rs.cursor
	if cursor == "" {
		cursor = "0"
	}
	r, err := g.sc.do("SCAN", cursor, "COUNT", strconv.Itoa(scanCount))
	if err != nil {
		return err
	}
	if r.Kind != '*' || len(r.Elems) != 2 || r.Elems[1].Kind != '*' {
		return fmt.Errorf("%w from %s: SCAN: not [cursor, keys]", errBadScanReply, g.sc.addr)
	}
	g.keys = g.keys[:0]
	for _, k := range r.Elems[1].Elems {
		g.keys = append(g.keys, k.Str)
	}
	g.n.st.keys.Add(int64(len(g.keys)))
	if g.reads, err = kr.read(g.sc, rs.db, g.keys, g.reads); err != nil {
		return err
	}
	if err := g.write(kr, g.reads, false); err != nil {
		return err
	}
	next := string(r.Elems[0].Str)
	g.lv.mu.Lock()
	if len(g.lv.rescans) > 0 && g.lv.rescans[0].db == rs.db && g.lv.rescans[0].flushed {
		if next == "0" {
			g.lv.rescans = g.lv.rescans[1:]
			g.lv.log.Info("db read again after a flush", zap.Int("db", rs.db))
		} else {
			g.lv.rescans[0].cursor = next
		}
	}
	g.lv.mu.Unlock()
	return nil
}

// write appends the commands of keys read: reread says they were notified (counted as such;
// a rescan's keys are not).
func (g *generator) write(kr *keyReader, reads []keyRead, reread bool) error {
	for i := range reads {
		k := &reads[i]
		if k.changed {
			g.lv.notified(k.db, k.key) // it changed while read: read it again
			continue
		}
		if reread {
			g.n.st.rereads.Add(1)
		}
		g.selectDB(k.db)
		switch {
		case k.gone:
			g.n.st.dels.Add(int64(btoi(reread)))
			g.emit([]byte("DEL"), k.key)
			g.lv.untrack(pkey{k.db, string(k.key)})
		case k.payload != nil:
			typ, value, _, err := rdb.SplitPayload(k.payload)
			if err != nil {
				return fmt.Errorf("source %s: DUMP %s: %w", kr.addr, redisfmt.Quote(string(k.key)), err)
			}
			g.lv.trackStream(k.db, k.key, typ, value)
			g.restore(k, k.payload)
		case k.spill != "":
			err := g.restoreFile(k)
			os.Remove(k.spill)
			if err != nil {
				return err
			}
		case k.big != nil:
			if err := g.sc.selectDB(k.db); err != nil {
				return err
			}
			n, err := bigCommands(g.sc, k, func(args ...[]byte) error {
				g.emit(args...)
				return g.spill()
			})
			if err != nil {
				return err
			}
			g.n.st.bigKeys.Add(1)
			if reread {
				g.n.st.bigRereads.Add(1)
				g.n.st.bigRereadBytes.Add(n)
				if c := g.n.st.bigRereads.Load(); c <= logFirstDrops || c%100 == 0 {
					g.lv.log.Warn("big key changed: read again whole", zap.Int("db", k.db), zap.String("key", redisfmt.Quote(string(k.key))),
						zap.Int64("bytes", n), zap.Int64("big_rereads", c), zap.Int64("big_reread_bytes", g.n.st.bigRereadBytes.Load()))
				}
			}
		}
		if err := g.spill(); err != nil {
			return err
		}
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (g *generator) selectDB(db int) {
	if g.bufDB != db {
		g.emitStr("SELECT", strconv.Itoa(db))
		g.bufDB = db
	}
}

func (g *generator) emit(args ...[]byte) { g.buf = aof.AppendCommand(g.buf, args...) }

func (g *generator) emitStr(args ...string) { g.buf = aof.AppendCommandString(g.buf, args...) }

// restore appends RESTORE key <expiry> payload REPLACE [ABSTTL].
func (g *generator) restore(k *keyRead, payload []byte) {
	ttl := strconv.AppendInt(nil, k.expireMs, 10)
	if k.expireMs > 0 {
		g.emit([]byte("RESTORE"), k.key, ttl, payload, []byte("REPLACE"), []byte("ABSTTL"))
	} else {
		g.emit([]byte("RESTORE"), k.key, ttl, payload, []byte("REPLACE"))
	}
}

// restoreFile appends the RESTORE of a payload kept on disk, copied in pieces.
func (g *generator) restoreFile(k *keyRead) error {
	f, err := os.Open(k.spill)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := checkPayloadFile(f, k.spillLen); err != nil {
		return fmt.Errorf("source %s: DUMP %s (%d bytes): %w", g.n.currentAddr(), redisfmt.Quote(string(k.key)), k.spillLen, err)
	}
	args := 5
	if k.expireMs > 0 {
		args = 6
	}
	ttl := strconv.AppendInt(nil, k.expireMs, 10)
	g.buf = append(g.buf, '*')
	g.buf = strconv.AppendInt(g.buf, int64(args), 10)
	g.buf = append(g.buf, "\r\n$7\r\nRESTORE\r\n"...)
	g.buf = appendBulk(g.buf, k.key)
	g.buf = appendBulk(g.buf, ttl)
	g.buf = append(g.buf, '$')
	g.buf = strconv.AppendInt(g.buf, k.spillLen, 10)
	g.buf = append(g.buf, '\r', '\n')
	if err := g.flushBuf(); err != nil {
		return err
	}
	piece := make([]byte, 256<<10)
	for off := int64(0); off < k.spillLen; {
		n, err := f.ReadAt(piece[:min(int64(len(piece)), k.spillLen-off)], off)
		if err != nil && !errors.Is(err, io.EOF) || n == 0 {
			return fmt.Errorf("source: reading %s: %w", k.spill, err)
		}
		if err := g.appendSpool(piece[:n]); err != nil {
			return err
		}
		off += int64(n)
	}
	g.buf = append(g.buf, '\r', '\n')
	g.buf = appendBulk(g.buf, []byte("REPLACE"))
	if k.expireMs > 0 {
		g.buf = appendBulk(g.buf, []byte("ABSTTL"))
	}
	return nil
}

func appendBulk(b, s []byte) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, '\r', '\n')
	b = append(b, s...)
	return append(b, '\r', '\n')
}

// spill appends the buffer to the spool once it holds spoolFlushBytes.
func (g *generator) spill() error {
	if len(g.buf) < spoolFlushBytes {
		return nil
	}
	return g.flushBuf()
}

func (g *generator) flushBuf() error {
	if err := g.appendSpool(g.buf); err != nil {
		return err
	}
	g.buf = g.buf[:0]
	g.lv.spoolDB = g.bufDB
	return nil
}

// appendSpool appends p, waiting while the spool is full (the target is behind).
func (g *generator) appendSpool(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	for {
		err := g.lv.sp.Append(p)
		if !errors.Is(err, aof.ErrSpoolFull) {
			return err
		}
		if err := g.lv.sp.Sync(); err != nil { // let the daemon read what is there
			return err
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-g.ctx.Done():
			t.Stop()
			return g.ctx.Err()
		case <-t.C:
		}
	}
}

// sync appends the rest of the buffer and makes the spool's commands readable.
func (g *generator) sync() error {
	if err := g.flushBuf(); err != nil {
		return err
	}
	return g.lv.sp.Sync()
}

// trackStream notes whether a stream read has consumer groups: those are read again every
// streamRefreshEvery.
func (lv *liveState) trackStream(db int, key []byte, typ byte, value []byte) {
	if rdb.TypeName(typ) != "stream" {
		return
	}
	vr := rdb.NewValueReader(typ, bytes.NewReader(value))
	var el rdb.Element
	for vr.Next(&el) == nil {
	}
	k := pkey{db, string(key)}
	m := vr.Stream()
	lv.mu.Lock()
	defer lv.mu.Unlock()
	if m == nil || len(m.Groups) == 0 {
		delete(lv.streams, k)
	} else if _, ok := lv.streams[k]; !ok {
		if len(lv.streams) >= maxTrackedStreams {
			if !lv.warned {
				lv.warned = true
				lv.log.Warn("too many streams with consumer groups to read again: their groups' reads and acks "+
					"(XREADGROUP, XACK) reach the target only when the stream changes otherwise",
					zap.Int("tracked", len(lv.streams)), zap.String("first_untracked", redisfmt.Quote(k.key)))
			}
		} else {
			lv.streams[k] = struct{}{}
		}
	}
	lv.n.st.streamsTracked.Store(int64(len(lv.streams)))
}

func (lv *liveState) untrack(k pkey) {
	lv.mu.Lock()
	delete(lv.streams, k)
	lv.n.st.streamsTracked.Store(int64(len(lv.streams)))
	lv.mu.Unlock()
}

// watch reads streams with groups again every streamRefreshEvery, and checks the key counts
// for unnotified flushes every flushCheckEvery.
func (lv *liveState) watch(ctx context.Context) {
	refresh := time.NewTicker(streamRefreshEvery)
	defer refresh.Stop()
	check := time.NewTicker(flushCheckEvery)
	defer check.Stop()
	fc := &flushCheck{lv: lv}
	defer lv.n.hangUp(fc.sc)
	for {
		select {
		case <-ctx.Done():
			return
		case <-refresh.C:
			lv.mu.Lock()
			for k := range lv.streams {
				if _, ok := lv.pending[k]; !ok {
					lv.n.st.streamRefreshes.Add(1)
				}
				lv.addLocked(k)
			}
			lv.mu.Unlock()
		case <-check.C:
			if err := fc.run(ctx); err != nil && ctx.Err() == nil {
				lv.log.Debug("flush check", zap.Error(err))
				lv.n.hangUp(fc.sc)
				fc.sc = nil
			}
		}
	}
}

// flushCheck finds dbs that lost keys without notifications (FLUSHALL, FLUSHDB, SWAPDB).
type flushCheck struct {
	lv    *liveState
	sc    *scanConn
	epoch int64         // the subscription the baseline was taken in
	sizes map[int]int64 // key counts at the last check
	r0    map[int]int64 // removals notified before it
}

func (fc *flushCheck) run(ctx context.Context) error {
	lv := fc.lv
	if fc.sc == nil {
		sc, err := lv.n.dial(ctx)
		if err != nil {
			return err
		}
		fc.sc = sc
	}
	lv.mu.Lock()
	epoch := lv.subEpoch
	r0 := cloneCounts(lv.removed)
	lv.mu.Unlock()
	sizes, err := keyspace(fc.sc)
	if err != nil {
		return err
	}
	// Every removal made before the counts were read is notified before the PING's answer.
	if !lv.barrier(ctx) {
		fc.sizes = nil
		return nil
	}
	lv.mu.Lock()
	r1 := cloneCounts(lv.removed)
	same := lv.subEpoch == epoch
	lv.mu.Unlock()
	if same && fc.sizes != nil && fc.epoch == epoch {
		for db, prev := range fc.sizes {
			floor := prev - (r1[db] - fc.r0[db])
			if now := sizes[db]; now < floor {
				lv.n.st.flushes.Add(1)
				lv.log.Error("a db lost keys without notifications (FLUSHDB, FLUSHALL or SWAPDB on the source): "+
					"FLUSHDB on the target, then the db read again", zap.Int("db", db), zap.Int64("keys_before", prev),
					zap.Int64("removals_notified", r1[db]-fc.r0[db]), zap.Int64("keys_now", now))
				lv.rescanDB(db)
			}
		}
	}
	fc.sizes, fc.r0, fc.epoch = sizes, r0, epoch
	lv.n.st.flushChecks.Add(1)
	return nil
}

func cloneCounts(m map[int]int64) map[int]int64 {
	out := make(map[int]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
