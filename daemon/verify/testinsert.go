package verify

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mediocregopher/radix/v4"
	"github.com/mediocregopher/radix/v4/resp/resp3"
	"go.uber.org/zap"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/redisfmt"
)

// InsertTypes is a set of value types for redis_testinsert.
type InsertTypes uint8

// The value types redis_testinsert can write. InsertAll is every one of them, streams included.
const (
	InsertString InsertTypes = 1 << iota
	InsertList
	InsertSet
	InsertZSet
	InsertHash
	InsertStream

	InsertAll = InsertString | InsertList | InsertSet | InsertZSet | InsertHash | InsertStream
)

// insertTypeNames lists the types in RMT's order, which is also the order keys cycle through.
var insertTypeNames = [...]struct {
	t    InsertTypes
	name string
}{
	{InsertString, "string"}, {InsertList, "list"}, {InsertSet, "set"},
	{InsertZSet, "zset"}, {InsertHash, "hash"}, {InsertStream, "stream"},
}

func (t InsertTypes) String() string {
	var parts []string
	for _, n := range insertTypeNames {
		if t&n.t != 0 {
			parts = append(parts, n.name)
		}
	}
	return strings.Join(parts, "|")
}

// defaultTestInsertKeys is RMT's default key count.
const defaultTestInsertKeys = 1000

// ParseTestInsertArgs reads the arguments of `redis_testinsert` as RMT does: none, a count, a
// type list (`string|list`), or both in either order. Types are string list set zset hash
// stream and all (case-insensitive); with no types every type is written; the count defaults
// to 1000.
func ParseTestInsertArgs(args []string) (InsertTypes, int, error) {
	var typesArg string
	n := defaultTestInsertKeys
	switch len(args) {
	case 0:
		return InsertAll, n, nil
	case 1:
		if isDigits(args[0]) {
			c, err := parseInsertCount(args[0])
			return InsertAll, c, err
		}
		typesArg = args[0]
	case 2:
		var err error
		switch {
		case isDigits(args[0]):
			n, err = parseInsertCount(args[0])
			typesArg = args[1]
		case isDigits(args[1]):
			n, err = parseInsertCount(args[1])
			typesArg = args[0]
		default:
			return 0, 0, fmt.Errorf("arguments must have a number for key count, got %q", strings.Join(args, " "))
		}
		if err != nil {
			return 0, 0, err
		}
	default:
		return 0, 0, fmt.Errorf("at most two arguments (types and count), got %d", len(args))
	}
	var t InsertTypes
	for _, name := range strings.Split(typesArg, "|") {
		switch strings.ToLower(name) {
		case "all":
			t |= InsertAll
			continue
		case "":
			return 0, 0, fmt.Errorf("empty key type in %q", typesArg)
		}
		found := false
		for _, tn := range insertTypeNames {
			if strings.EqualFold(name, tn.name) {
				t |= tn.t
				found = true
			}
		}
		if !found {
			return 0, 0, fmt.Errorf("unknown key type %q (want string, list, set, zset, hash, stream or all)", name)
		}
	}
	return t, n, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func parseInsertCount(s string) (int, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("key count must be a number from 1 to %d, got %q", int32(^uint32(0)>>1), s)
	}
	return int(n), nil
}

// TestInsertOptions tunes the redis_testinsert job. Zero values take the defaults.
type TestInsertOptions struct {
	Types   InsertTypes // 0: InsertAll
	Keys    int         // default 1000
	Workers int         // parallel pipelines; default 8
	Batch   int         // keys per pipeline round trip; default 64
	RunID   string      // in every key name; "" picks a random one, so repeated runs never collide
	Out     io.Writer   // RMT's report; nil: discarded
	Logger  *zap.Logger // failed keys (the first 100) and a summary; nil: none
}

// TestInsertResult counts what was written. Per type: keys attempted.
type TestInsertResult struct {
	Strings, Lists, Sets, ZSets, Hashes, Streams int

	Total   int    // keys sent whose replies all came back
	Correct int    // keys whose every reply was the expected one
	Failed  int    // attempted - Correct
	Prefix  string // every key written starts with it: "rmt_test:<run id>:"
	Elapsed time.Duration
}

// RunTestInsert fills the source with opts.Keys test keys of opts.Types, cycling through the
// types as RMT does, pipelined, checks every reply and writes RMT's report to opts.Out.
//
// Keys are named rmt_test:<run id>:<type>:<n>, some with a binary or a 500-byte suffix. Values
// vary in size (some over 64 bytes, some integers) so that several encodings show up; lists,
// sets, zsets and hashes hold 2 to 16 elements; one key in ten expires in 2 to 4 hours;
// streams get 3 to 5 entries, a group g1 and a consumer c1 with 2 pending entries.
func RunTestInsert(ctx context.Context, cfg *conf.Config, opts TestInsertOptions) (TestInsertResult, error) {
	if opts.Types == 0 {
		opts.Types = InsertAll
	}
	if opts.Types&^InsertAll != 0 {
		return TestInsertResult{}, fmt.Errorf("redis_testinsert: unknown type bits %#x", uint8(opts.Types))
	}
	if opts.Keys <= 0 {
		opts.Keys = defaultTestInsertKeys
	}
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	if opts.Batch <= 0 {
		opts.Batch = 64
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	log := opts.Logger.With(zap.String("job", "redis_testinsert"))
	if opts.RunID == "" {
		var b [4]byte
		if _, err := crand.Read(b[:]); err != nil {
			return TestInsertResult{}, fmt.Errorf("redis_testinsert: run id: %w", err)
		}
		opts.RunID = hex.EncodeToString(b[:])
	}
	src, err := openNodeSet(ctx, "source", cfg.Source, opts.Workers)
	if err != nil {
		return TestInsertResult{}, fmt.Errorf("redis_testinsert: %w", err)
	}
	defer src.Close()
	for _, n := range src.nodes {
		if opts.Types&InsertStream != 0 && !n.atLeast(5, 0) {
			if opts.Types != InsertAll {
				return TestInsertResult{}, fmt.Errorf("redis_testinsert: %s: streams need Redis 5.0 or newer", n)
			}
			log.Info("streams skipped: the source is older than 5.0", zap.String("node", n.addr))
			opts.Types &^= InsertStream
		}
	}

	ins := &inserter{
		src:    src,
		opts:   opts,
		log:    log,
		prefix: "rmt_test:" + opts.RunID + ":",
	}
	for _, tn := range insertTypeNames {
		if opts.Types&tn.t != 0 {
			ins.cycle = append(ins.cycle, tn.t)
		}
	}
	fmt.Fprintln(opts.Out, "Test insert job is running...")
	start := time.Now()
	ins.run(ctx)
	res := ins.result()
	res.Elapsed = time.Since(start)
	if res.Failed > 0 {
		log.Error("test insert had failures", zap.Int("failed", res.Failed), zap.Int("correct", res.Correct))
	}
	writeTestInsertReport(opts.Out, res, opts.Types&InsertStream != 0)
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("redis_testinsert: %w", err)
	}
	return res, nil
}

// inserter is one run of the job, shared by its workers.
type inserter struct {
	src    *nodeSet
	opts   TestInsertOptions
	log    *zap.Logger
	prefix string
	cycle  []InsertTypes // types in key order: key i has type cycle[i%len(cycle)]

	next     atomic.Int64 // next key number to hand out
	answered atomic.Int64
	correct  atomic.Int64
	logged   atomic.Int64
}

func (ins *inserter) run(ctx context.Context) {
	var wg sync.WaitGroup
	var seed [8]byte
	_, _ = crand.Read(seed[:])
	s := binary.LittleEndian.Uint64(seed[:])
	for w := 0; w < ins.opts.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ins.worker(ctx, newTestGen(s, uint64(w)))
		}()
	}
	wg.Wait()
}

// result counts keys per type from the cycle: every key number below Keys was attempted
// unless the context ended first.
func (ins *inserter) result() TestInsertResult {
	attempted := min(ins.next.Load(), int64(ins.opts.Keys))
	var r TestInsertResult
	k := int64(len(ins.cycle))
	for j, t := range ins.cycle {
		n := int((attempted - int64(j) + k - 1) / k)
		switch t {
		case InsertString:
			r.Strings = n
		case InsertList:
			r.Lists = n
		case InsertSet:
			r.Sets = n
		case InsertZSet:
			r.ZSets = n
		case InsertHash:
			r.Hashes = n
		case InsertStream:
			r.Streams = n
		}
	}
	r.Total = int(ins.answered.Load())
	r.Correct = int(ins.correct.Load())
	r.Failed = int(attempted) - r.Correct
	r.Prefix = ins.prefix
	return r
}

// insertCmd is one command of a key and the reply it must get.
type insertCmd struct {
	args []string
	want replyWant
}

// replyWant is what a reply must look like.
type replyWant struct {
	kind byte  // '+' OK, ':' integer n, '$' non-nil bulk, '*' non-empty array
	n    int64 // for ':'
}

func (w replyWant) check(raw []byte) error {
	s := string(raw)
	switch {
	case strings.HasPrefix(s, "-"):
		return fmt.Errorf("error reply %q", strings.TrimRight(s[1:], "\r\n"))
	case w.kind == '+' && s == "+OK\r\n":
	case w.kind == ':' && s == ":"+strconv.FormatInt(w.n, 10)+"\r\n":
	case w.kind == '$' && strings.HasPrefix(s, "$") && !strings.HasPrefix(s, "$-1"):
	case w.kind == '*' && strings.HasPrefix(s, "*") && !strings.HasPrefix(s, "*-1") && !strings.HasPrefix(s, "*0\r"):
	default:
		if len(s) > 64 {
			s = s[:64] + "..."
		}
		return fmt.Errorf("unexpected reply %q", s)
	}
	return nil
}

// insertKey is one key and the commands that write it.
type insertKey struct {
	key  string
	cmds []insertCmd
}

func (ins *inserter) worker(ctx context.Context, g *testGen) {
	batch := make([]insertKey, 0, ins.opts.Batch)
	for ctx.Err() == nil {
		first := ins.next.Add(int64(ins.opts.Batch)) - int64(ins.opts.Batch)
		if first >= int64(ins.opts.Keys) {
			return
		}
		last := min(first+int64(ins.opts.Batch), int64(ins.opts.Keys))
		batch = batch[:0]
		for i := first; i < last; i++ {
			batch = append(batch, ins.build(g, i))
		}
		ins.send(ctx, batch)
	}
}

// send writes a batch, one pipeline per server, and checks every reply.
func (ins *inserter) send(ctx context.Context, batch []insertKey) {
	type group struct {
		keys []int
		raws []resp3.RawMessage
	}
	groups := map[*cmdNode]*group{}
	var order []*cmdNode
	for i, k := range batch {
		n := ins.src.nodeFor(k.key)
		gr := groups[n]
		if gr == nil {
			gr = &group{}
			groups[n] = gr
			order = append(order, n)
		}
		gr.keys = append(gr.keys, i)
	}
	for _, n := range order {
		gr := groups[n]
		p := radix.NewPipeline()
		// No command here blocks (XREADGROUP has no BLOCK), so all may share a pipeline.
		cc := radix.CmdConfig{ActionProperties: func(cmd string, args ...string) radix.ActionProperties {
			pr := radix.DefaultActionProperties(cmd, args...)
			pr.CanPipeline, pr.CanShareConn = true, true
			return pr
		}}
		ncmd := 0
		for _, i := range gr.keys {
			ncmd += len(batch[i].cmds)
		}
		gr.raws = make([]resp3.RawMessage, ncmd)
		j := 0
		for _, i := range gr.keys {
			for _, c := range batch[i].cmds {
				p.Append(cc.Cmd(&gr.raws[j], c.args[0], c.args[1:]...))
				j++
			}
		}
		if err := n.do(ctx, 0, p); err != nil {
			for _, i := range gr.keys {
				ins.fail(n, batch[i].key, fmt.Errorf("pipeline: %w", err))
			}
			continue
		}
		j = 0
		for _, i := range gr.keys {
			var bad error
			for _, c := range batch[i].cmds {
				if err := c.want.check(gr.raws[j]); err != nil && bad == nil {
					bad = fmt.Errorf("%s: %w", c.args[0], err)
				}
				j++
			}
			ins.answered.Add(1)
			if bad != nil {
				ins.fail(n, batch[i].key, bad)
				continue
			}
			ins.correct.Add(1)
		}
	}
}

func (ins *inserter) fail(n *cmdNode, key string, err error) {
	if ins.logged.Add(1) <= 100 {
		ins.log.Error("insert failed", zap.String("node", n.addr), zap.String("key", redisfmt.Quote(key)), zap.Error(err))
	}
}

func writeTestInsertReport(w io.Writer, r TestInsertResult, streams bool) {
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Insert string keys: %d\n", r.Strings)
	fmt.Fprintf(w, "Insert list keys  : %d\n", r.Lists)
	fmt.Fprintf(w, "Insert set keys   : %d\n", r.Sets)
	fmt.Fprintf(w, "Insert zset keys  : %d\n", r.ZSets)
	fmt.Fprintf(w, "Insert hash keys  : %d\n", r.Hashes)
	if streams {
		fmt.Fprintf(w, "Insert stream keys: %d\n", r.Streams)
	}
	fmt.Fprintf(w, "Insert total keys : %d\n", r.Total)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Correct inserted keys: %d\n", r.Correct)
	fmt.Fprintf(w, "Test insert job finished, used %.3fs\n", r.Elapsed.Seconds())
}

// build makes key number i and the commands that write it.
func (ins *inserter) build(g *testGen, i int64) insertKey {
	t := ins.cycle[i%int64(len(ins.cycle))]
	key := ins.prefix + t.String() + ":" + strconv.FormatInt(i, 10)
	switch {
	case i%16 == 15:
		key += ":" + g.bytes(g.between(1, 12)) // binary key bytes
	case i%97 == 96:
		key += ":" + g.printable(500) // long key (RMT dropped those in the stream)
	}
	k := insertKey{key: key}
	add := func(want replyWant, args ...string) { k.cmds = append(k.cmds, insertCmd{args: args, want: want}) }
	n := g.between(2, 16)
	switch t {
	case InsertString:
		add(replyWant{kind: '+'}, "SET", key, g.value())
	case InsertList:
		args := []string{"RPUSH", key}
		for j := 0; j < n; j++ {
			args = append(args, g.value())
		}
		add(replyWant{kind: ':', n: int64(n)}, args...)
	case InsertSet:
		args := []string{"SADD", key}
		ints := g.r.IntN(4) == 0 // all-integer sets are intsets
		v := g.r.Int64N(1<<40) - 1<<39
		for j := 0; j < n; j++ {
			if ints {
				v += int64(g.between(1, 1000)) // strictly increasing: distinct
				args = append(args, strconv.FormatInt(v, 10))
			} else {
				args = append(args, "m"+strconv.Itoa(j)+":"+g.value())
			}
		}
		add(replyWant{kind: ':', n: int64(n)}, args...)
	case InsertZSet:
		args := []string{"ZADD", key}
		for j := 0; j < n; j++ {
			args = append(args, g.score(), "m"+strconv.Itoa(j)+":"+g.value())
		}
		add(replyWant{kind: ':', n: int64(n)}, args...)
	case InsertHash:
		args := []string{"HSET", key}
		want := replyWant{kind: ':', n: int64(n)}
		if !ins.src.nodeFor(key).atLeast(4, 0) {
			args[0], want = "HMSET", replyWant{kind: '+'}
		}
		for j := 0; j < n; j++ {
			f := "f" + strconv.Itoa(j)
			if j == 0 && g.r.IntN(8) == 0 {
				f += ":" + g.printable(80) // a field name past the listpack limit
			}
			args = append(args, f, g.value())
		}
		add(want, args...)
	case InsertStream:
		for e, ne := 0, g.between(3, 5); e < ne; e++ {
			args := []string{"XADD", key, "*"}
			for f, nf := 0, g.between(1, 3); f < nf; f++ {
				args = append(args, "f"+strconv.Itoa(f), g.value())
			}
			add(replyWant{kind: '$'}, args...)
		}
		add(replyWant{kind: '+'}, "XGROUP", "CREATE", key, "g1", "0")
		add(replyWant{kind: '*'}, "XREADGROUP", "GROUP", "g1", "c1", "COUNT", "2", "STREAMS", key, ">")
	}
	if i%10 == 9 {
		add(replyWant{kind: ':', n: 1}, "PEXPIRE", key, strconv.FormatInt(g.ttl(), 10))
	}
	return k
}
