package redistest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"
	"github.com/mediocregopher/radix/v4/resp"
	"github.com/mediocregopher/radix/v4/resp/resp3"
)

// WriterOptions shapes the load StartWriter puts on a server.
type WriterOptions struct {
	DBs            []int  // dbs written to (nil: db 0)
	Rate           int    // commands per second; 0: as fast as the server answers, Pipeline at a time
	Seed           uint64 // same seed, same command sequence
	Keys           int    // keys per db (0: 2000), so keys are overwritten and deleted again and again
	Pipeline       int    // commands per round trip (0: 16)
	User, Password string // AUTH
	// Twemproxy writes through nutcracker: db 0 only, no SELECT, and no stream commands
	// (nutcracker closes the connection on XADD).
	Twemproxy bool
	// Reconnect makes the writer survive its server going away (killed, restarted, failed
	// over): an I/O error is counted in Reconnects instead of Errors, and the writer dials
	// again every 50 ms until it gets through or is stopped.
	Reconnect bool
	// Resolve, with Reconnect, says where to dial again: a Sentinel group's master after a
	// failover (SentinelGroup.Resolve). "" or nil: the address the writer started with.
	Resolve func() string
}

// WriterStats counts what a writer did.
type WriterStats struct {
	Ops       map[string]int64 // commands sent, by name (SELECT included)
	Total     int64            // all commands sent
	Tolerated int64            // expected error replies: BUSYGROUP, NOGROUP
	Errors    int64            // any other error reply, or an I/O error without Reconnect
	LastError string           // the last of those
	// Reconnects counts I/O errors survived with Reconnect; the commands of a round trip cut
	// short by one may or may not have run.
	Reconnects int64
}

// Writer is a goroutine writing a mix of commands to a server: SET, APPEND, INCR, HSET, HDEL,
// LPUSH, LPOP, LTRIM, SADD, SREM, ZADD, ZINCRBY, ZREM, XADD (MAXLEN 50), XGROUP CREATE,
// XREADGROUP, XACK, DEL, EXPIRE and PEXPIRE (hours, so nothing expires during a test), PERSIST,
// and SELECT across its dbs. Keys are "w:<kind>:<n>", one type per kind, so no command meets
// a key of the wrong type.
type Writer struct {
	t      testing.TB
	addr   string
	opts   WriterOptions
	cancel context.CancelFunc
	done   chan struct{}
	total  atomic.Int64
	once   sync.Once
	stats  WriterStats // owned by the goroutine until done is closed
}

// StartWriter starts a writer against addr; it runs until Stop (or the end of the test).
func StartWriter(t testing.TB, addr string, opts WriterOptions) *Writer {
	t.Helper()
	if len(opts.DBs) == 0 || opts.Twemproxy {
		opts.DBs = []int{0}
	}
	if opts.Keys <= 0 {
		opts.Keys = 2000
	}
	if opts.Pipeline <= 0 {
		opts.Pipeline = 16
	}
	ctx, cancel := context.WithCancel(context.Background())
	c, err := (radix.Dialer{AuthUser: opts.User, AuthPass: opts.Password}).Dial(ctx, "tcp", addr)
	if err != nil {
		cancel()
		t.Fatalf("writer %s: %v", addr, err)
	}
	w := &Writer{t: t, addr: addr, opts: opts, cancel: cancel, done: make(chan struct{}),
		stats: WriterStats{Ops: map[string]int64{}}}
	go w.run(ctx, c)
	t.Cleanup(func() { w.Stop() })
	return w
}

// Done is closed when the writer's goroutine has ended: after Stop, or on its own after an
// I/O error without Reconnect.
func (w *Writer) Done() <-chan struct{} { return w.done }

// Ops returns how many commands the writer has sent so far; safe while it runs.
func (w *Writer) Ops() int64 { return w.total.Load() }

// Stop stops the writer promptly (the round trip in flight is abandoned, its commands may or
// may not have run), and returns its counts. Errors other than the expected ones fail the test.
func (w *Writer) Stop() WriterStats {
	w.cancel()
	<-w.done
	w.once.Do(func() {
		if w.stats.Errors > 0 {
			w.t.Errorf("writer %s: %d errors, last: %s", w.addr, w.stats.Errors, w.stats.LastError)
		}
	})
	s := w.stats
	s.Ops = make(map[string]int64, len(w.stats.Ops))
	for k, v := range w.stats.Ops {
		s.Ops[k] = v
	}
	return s
}

// String renders the counts, commands sorted by name.
func (s WriterStats) String() string {
	names := make([]string, 0, len(s.Ops))
	for n := range s.Ops {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "%d commands (", s.Total)
	for i, n := range names {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", n, s.Ops[n])
	}
	fmt.Fprintf(&b, "), %d tolerated errors, %d errors, %d reconnects", s.Tolerated, s.Errors, s.Reconnects)
	return b.String()
}

// newWriterRand is the writer's random source for seed.
func newWriterRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// writerState is what the goroutine keeps between round trips.
type writerState struct {
	rng     *rand.Rand
	db      int                 // db the connection is in (-1: unknown)
	pending map[string][]string // "db/key" → stream IDs read by XREADGROUP, to XACK later
}

// reply is a pipeline receiver that keeps an error reply instead of failing the pipeline.
type reply struct {
	cmd   string
	db    int
	err   error
	value interface{}
}

// UnmarshalRESP implements resp.Unmarshaler.
func (r *reply) UnmarshalRESP(br resp.BufferedReader, o *resp.Opts) error {
	b, err := br.Peek(1)
	if err != nil {
		return err
	}
	switch resp3.Prefix(b[0]) {
	case resp3.SimpleErrorPrefix:
		var e resp3.SimpleError
		if err := e.UnmarshalRESP(br, o); err != nil {
			return err
		}
		r.err = e
		return nil
	case resp3.BlobErrorPrefix:
		var e resp3.BlobError
		if err := e.UnmarshalRESP(br, o); err != nil {
			return err
		}
		r.err = e
		return nil
	}
	return resp3.Unmarshal(br, &r.value, o)
}

func (w *Writer) run(ctx context.Context, c radix.Conn) {
	defer close(w.done)
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	st := &writerState{rng: newWriterRand(w.opts.Seed), db: -1,
		pending: map[string][]string{}}
	var tick *time.Ticker
	start := time.Now()
	if w.opts.Rate > 0 {
		tick = time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
	}
	for {
		n := w.opts.Pipeline
		if tick != nil {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			due := int64(time.Since(start).Seconds()*float64(w.opts.Rate)) - w.total.Load()
			n = int(min(max(due, 0), 1000))
			if n == 0 {
				continue
			}
		} else if ctx.Err() != nil {
			return
		}
		ok, ioErr := w.roundTrip(ctx, c, st, n)
		if ok {
			continue
		}
		if ioErr == nil || !w.opts.Reconnect {
			return
		}
		w.stats.Reconnects++
		w.stats.LastError = ioErr.Error()
		c.Close()
		if c = w.redial(ctx); c == nil {
			return
		}
		st.db = -1 // a new connection starts in db 0
	}
}

// redial dials the server every 50 ms until it answers or ctx is done (then nil).
func (w *Writer) redial(ctx context.Context) radix.Conn {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		addr := w.addr
		if w.opts.Resolve != nil {
			if a := w.opts.Resolve(); a != "" {
				addr = a
			}
		}
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := (radix.Dialer{AuthUser: w.opts.User, AuthPass: w.opts.Password}).Dial(dctx, "tcp", addr)
		cancel()
		if err == nil {
			return c
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// roundTrip sends about n commands in one pipeline and checks every reply. It returns false
// when the writer should stop or reconnect, with the I/O error if there was one.
func (w *Writer) roundTrip(ctx context.Context, c radix.Conn, st *writerState, n int) (bool, error) {
	var cmds [][]string
	for len(cmds) < n {
		db := st.db
		if db < 0 || st.rng.IntN(8) == 0 { // stay in a db for a few commands, as clients do
			db = w.opts.DBs[st.rng.IntN(len(w.opts.DBs))]
		}
		if db != st.db && !w.opts.Twemproxy {
			cmds = append(cmds, []string{"SELECT", strconv.Itoa(db)})
		}
		st.db = db
		cmds = append(cmds, w.command(st, db))
	}
	p := radix.NewPipeline()
	replies := make([]*reply, len(cmds))
	db := -1
	for i, cmd := range cmds {
		if cmd[0] == "SELECT" {
			db, _ = strconv.Atoi(cmd[1])
		}
		replies[i] = &reply{cmd: cmd[0], db: db}
		p.Append(pipelinable.Cmd(replies[i], cmd[0], cmd[1:]...))
	}
	err := c.Do(ctx, p)
	if ctx.Err() != nil {
		return false, nil // stopping: the replies in flight do not matter
	}
	if err != nil {
		if !w.opts.Reconnect {
			w.stats.Errors++
			w.stats.LastError = err.Error()
		}
		return false, err // the connection is unusable
	}
	for _, cmd := range cmds {
		w.stats.Ops[cmd[0]]++
	}
	w.stats.Total += int64(len(cmds))
	w.total.Add(int64(len(cmds)))
	for i, r := range replies {
		if r.err != nil {
			msg := r.err.Error()
			if strings.HasPrefix(msg, "BUSYGROUP") || strings.HasPrefix(msg, "NOGROUP") {
				w.stats.Tolerated++
				continue
			}
			w.stats.Errors++
			w.stats.LastError = fmt.Sprintf("%s: %s", strings.Join(cmds[i], " "), msg)
			continue
		}
		if r.cmd == "XREADGROUP" {
			st.remember(r)
		}
	}
	return true, nil
}

// remember keeps (a bounded number of) the IDs an XREADGROUP returned, for a later XACK.
func (st *writerState) remember(r *reply) {
	for _, stream := range replyArr(r.value) {
		kv := replyArr(stream)
		if len(kv) != 2 {
			continue
		}
		k := fmt.Sprintf("%d/%s", r.db, replyStr(kv[0]))
		for _, e := range replyArr(kv[1]) {
			if ids := st.pending[k]; len(ids) < 8 {
				if e := replyArr(e); len(e) > 0 {
					st.pending[k] = append(ids, replyStr(e[0]))
				}
			}
		}
	}
}

// pipelinable builds commands radix lets into a pipeline: it refuses XREADGROUP, which can
// block, but the writer never passes BLOCK.
var pipelinable = radix.CmdConfig{ActionProperties: func(cmd string, args ...string) radix.ActionProperties {
	p := radix.DefaultActionProperties(cmd, args...)
	p.CanPipeline = true
	return p
}}

// writerKinds are the key kinds; a key's kind is its number modulo len(writerKinds).
var writerKinds = [...]string{"s", "c", "h", "l", "S", "z", "x"}

// command returns one command on a random key of db.
func (w *Writer) command(st *writerState, db int) []string {
	r := st.rng
	n := r.IntN(w.opts.Keys)
	kind := writerKinds[n%len(writerKinds)]
	if kind == "x" && w.opts.Twemproxy {
		n--
		kind = writerKinds[n%len(writerKinds)]
	}
	key := "w:" + kind + ":" + strconv.Itoa(n)
	p := r.IntN(100)
	switch {
	case p < 3:
		return []string{"DEL", key}
	case p < 6:
		return []string{"EXPIRE", key, strconv.Itoa(3600 + r.IntN(3600))}
	case p < 8:
		return []string{"PEXPIRE", key, strconv.Itoa(7_200_000 + r.IntN(1_000_000))}
	case p < 10:
		return []string{"PERSIST", key}
	}
	p = r.IntN(100)
	member := func(k int) string { return "m" + strconv.Itoa(r.IntN(k)) }
	switch kind {
	case "s":
		if p < 75 {
			return []string{"SET", key, randValue(r)}
		}
		return []string{"APPEND", key, randValue(r)}
	case "c":
		return []string{"INCR", key}
	case "h":
		if p < 65 {
			return []string{"HSET", key, member(20), randValue(r)}
		}
		return []string{"HDEL", key, member(20)}
	case "l":
		switch {
		case p < 55:
			return []string{"LPUSH", key, randValue(r), randValue(r)}
		case p < 90:
			return []string{"LPOP", key}
		default:
			return []string{"LTRIM", key, "0", "49"}
		}
	case "S":
		if p < 70 {
			return []string{"SADD", key, member(50)}
		}
		return []string{"SREM", key, member(50)}
	case "z":
		switch {
		case p < 50:
			return []string{"ZADD", key, strconv.FormatFloat(float64(r.IntN(2000))/8-100, 'g', -1, 64), member(50)}
		case p < 90:
			return []string{"ZINCRBY", key, strconv.FormatFloat(float64(r.IntN(64))/4, 'g', -1, 64), member(50)}
		default:
			return []string{"ZREM", key, member(50)}
		}
	default: // stream
		group := "g" + strconv.Itoa(r.IntN(2))
		switch {
		case p < 70:
			return []string{"XADD", key, "MAXLEN", "50", "*", "f", randValue(r), "n", strconv.Itoa(r.IntN(1000))}
		case p < 80:
			return []string{"XGROUP", "CREATE", key, group, "0", "MKSTREAM"}
		case p < 92:
			return []string{"XREADGROUP", "GROUP", group, "c" + strconv.Itoa(r.IntN(3)), "COUNT", "3", "STREAMS", key, ">"}
		default:
			pk := fmt.Sprintf("%d/%s", db, key)
			ids := st.pending[pk]
			delete(st.pending, pk)
			if len(ids) == 0 {
				ids = []string{"0-1"}
			}
			return append([]string{"XACK", key, group}, ids...)
		}
	}
}

// randValue is a short value, now and then with bytes that need escaping.
func randValue(r *rand.Rand) string {
	if r.IntN(10) == 0 {
		return "bin\x00\xff\r\n" + strconv.Itoa(r.IntN(100))
	}
	return "v" + strconv.FormatUint(r.Uint64()%1_000_000, 36)
}
