package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/rdb"
)

// liveNode is a scan_live node driven as the daemon drives it: its first pass read to the end,
// then its stream read into cmds.
type liveNode struct {
	n    *scanNode
	snap SnapshotReady
	keys int // entries of the first pass
	cmds chan []string
}

func startLiveNode(t *testing.T, addr string, maxRaw int64) *liveNode {
	t.Helper()
	n := newScanNode(addr, addr, scanConfig(t), true, nil)
	n.bigKeyBytes = maxRaw
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
		n.Close()
	})
	h := &liveNode{n: n, cmds: make(chan []string, 100000)}
	h.snap = h.nextSnapshot(t)
	h.keys = h.load(t, ctx, maxRaw)
	cmds, err := n.Stream(ctx, h.snap.Offset)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer cmds.Close()
		var c aof.Command
		for cmds.Next(&c) == nil {
			args := make([]string, len(c.Args))
			for i, a := range c.Args {
				args[i] = string(a)
			}
			h.cmds <- args
		}
	}()
	return h
}

func (h *liveNode) nextSnapshot(t *testing.T) SnapshotReady {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case ev := <-h.n.Events():
			if s, ok := ev.(SnapshotReady); ok {
				return s
			}
		case <-deadline:
			t.Fatalf("no snapshot; stats %+v", h.n.Stats().Scan)
		}
	}
}

// load reads a pass to its end, as the daemon's load does.
func (h *liveNode) load(t *testing.T, ctx context.Context, maxRaw int64) int {
	t.Helper()
	ents, err := h.snap.Open(ctx, maxRaw)
	if err != nil {
		t.Fatal(err)
	}
	defer ents.Close()
	var e rdb.Entry
	n := 0
	for {
		err := ents.Next(&e)
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.Value == nil {
			if _, err := io.Copy(io.Discard, ents.Value(&e)); err != nil {
				t.Fatal(err)
			}
		}
		n++
	}
}

// waitCmd returns the first command of the stream that pred accepts.
func (h *liveNode) waitCmd(t *testing.T, what string, pred func(args []string) bool) []string {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case args := <-h.cmds:
			if pred(args) {
				return args
			}
		case <-deadline:
			t.Fatalf("no %s in the stream; stats %+v", what, h.n.Stats().Scan)
			return nil
		}
	}
}

func isCmdOn(name, key string) func([]string) bool {
	return func(a []string) bool { return len(a) > 1 && strings.EqualFold(a[0], name) && a[1] == key }
}

// TestScanLiveRereads: notified keys are read again and written whole: RESTORE ... REPLACE
// with the absolute expiry (ABSTTL), DEL for a key gone; a burst of changes to one key costs
// fewer reads than notifications.
func TestScanLiveRereads(t *testing.T) {
	r := startRedis(t, 0, "", "--notify-keyspace-events", "KEA")
	c := r.client(t)
	c.must(t, "SET", "before", "1")
	h := startLiveNode(t, r.addr, 1<<20)
	if h.keys != 1 {
		t.Fatalf("pass of %d keys", h.keys)
	}
	c.must(t, "SET", "k", "v", "PX", "600000")
	abs, _ := strconv.ParseInt(c.must(t, "PEXPIRETIME", "k"), 10, 64)
	got := h.waitCmd(t, "RESTORE k", isCmdOn("RESTORE", "k"))
	if len(got) != 6 || got[2] != strconv.FormatInt(abs, 10) || got[4] != "REPLACE" || got[5] != "ABSTTL" {
		t.Fatalf("stream: %q", got)
	}
	c.must(t, "DEL", "before")
	h.waitCmd(t, "DEL before", isCmdOn("DEL", "before"))
	var burst [][]string
	for i := range 200 {
		burst = append(burst, []string{"INCR", "counter" + strconv.Itoa(i%2)})
	}
	if err := pipeStr(c, burst...); err != nil {
		t.Fatal(err)
	}
	c.must(t, "SET", "last", "x")
	h.waitCmd(t, "RESTORE last", isCmdOn("RESTORE", "last"))
	st := h.n.Stats().Scan
	if st.Notifications < 203 || st.Rereads >= st.Notifications || st.Rereads < 4 || st.Deleted != 1 || st.Coalesced == 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestScanLiveFlushDetected: FLUSHDB is not notified: the key count check finds the db that
// lost keys without notifications and puts FLUSHDB, then the db's keys, into the stream. Keys
// removed with notifications (DEL, expiry) are not taken for a flush.
func TestScanLiveFlushDetected(t *testing.T) {
	r := startRedis(t, 0, "", "--notify-keyspace-events", "KEA")
	c := r.client(t)
	var cmds [][]string
	for i := range 300 {
		cmds = append(cmds, []string{"SET", "k" + strconv.Itoa(i), "v"})
	}
	cmds = append(cmds, []string{"SELECT", "3"}, []string{"SET", "other", "x"}, []string{"SELECT", "0"})
	if err := pipeStr(c, cmds...); err != nil {
		t.Fatal(err)
	}
	h := startLiveNode(t, r.addr, 1<<20)
	checks := h.n.st.flushChecks.Load()
	var dels [][]string
	for i := range 200 {
		dels = append(dels, []string{"DEL", "k" + strconv.Itoa(i)})
	}
	if err := pipeStr(c, dels...); err != nil {
		t.Fatal(err)
	}
	c.must(t, "SET", "short", "v", "PX", "1")
	redistest.WaitFor(t, 15*time.Second, func() error {
		if n := h.n.st.flushChecks.Load(); n < checks+3 {
			return fmt.Errorf("%d flush checks", n-checks)
		}
		return nil
	})
	if st := h.n.Stats().Scan; st.FlushesDetected != 0 {
		t.Fatalf("DELs taken for a flush: %+v", st)
	}
	c.must(t, "SET", "after-flush", "x") // before the FLUSHDB: gone with it
	c.must(t, "FLUSHDB")
	c.must(t, "SET", "new", "y")
	h.waitCmd(t, "FLUSHDB", func(a []string) bool { return strings.EqualFold(a[0], "FLUSHDB") })
	h.waitCmd(t, "RESTORE new", isCmdOn("RESTORE", "new"))
	if st := h.n.Stats().Scan; st.FlushesDetected != 1 || st.Rescans != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestScanLiveStreamRefresh: reads by a consumer group (XREADGROUP) are not notified: a stream
// with groups is read again every few seconds.
func TestScanLiveStreamRefresh(t *testing.T) {
	r := startRedis(t, 0, "", "--notify-keyspace-events", "KEA")
	c := r.client(t)
	c.must(t, "XADD", "s", "1-1", "f", "v")
	c.must(t, "XGROUP", "CREATE", "s", "g", "0")
	c.must(t, "XGROUP", "CREATECONSUMER", "s", "g", "c") // notified: reading with it later is not
	c.must(t, "XADD", "plain", "1-1", "f", "v")
	h := startLiveNode(t, r.addr, 1<<20)
	if st := h.n.Stats().Scan; st.StreamsTracked != 1 {
		t.Fatalf("stats %+v", st)
	}
	c.must(t, "XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">")
	h.waitCmd(t, "RESTORE s", isCmdOn("RESTORE", "s"))
	if st := h.n.Stats().Scan; st.StreamRefreshes == 0 || st.Notifications != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestScanLiveNotifyMissing: where CONFIG GET shows notify-keyspace-events without what
// scan_live needs, the node waits (and says so) instead of losing every change; it starts
// once the setting is right. TestScanLiveRereads covers a server that refuses CONFIG.
func TestScanLiveNotifyMissing(t *testing.T) {
	r := startRedis(t, 0, "", "--notify-keyspace-events", "Kgx")
	n := newScanNode(r.addr, r.addr, scanConfig(t), true, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx, nil) }()
	defer func() { cancel(); <-done; n.Close() }()
	redistest.WaitFor(t, 10*time.Second, func() error {
		if st := n.Stats().Scan; st.Notify != NotifyMissing || st.NotifyConfig != "gxK" {
			return fmt.Errorf("stats %+v", st)
		}
		return nil
	})
	select {
	case ev := <-n.Events():
		t.Fatalf("event %#v before the setting is right", ev)
	default:
	}
	r.client(t).must(t, "CONFIG", "SET", "notify-keyspace-events", "KEA")
	select {
	case ev := <-n.Events():
		if _, ok := ev.(SnapshotReady); !ok {
			t.Fatalf("event %#v", ev)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no pass; stats %+v", n.Stats().Scan)
	}
	if st := n.Stats().Scan; st.Notify != NotifyOK {
		t.Fatalf("stats %+v", st)
	}
}

func TestNotifyState(t *testing.T) {
	for v, want := range map[string]string{"": NotifyMissing, "KEA": NotifyOK, "AK": NotifyOK, "EA": NotifyMissing,
		"Kg$lshzxet": NotifyOK, "Kg$lshzxe": NotifyMissing, "Kgx": NotifyMissing, "KA m": NotifyOK} {
		if got := notifyState(v); got != want {
			t.Errorf("%q: %s, want %s", v, got, want)
		}
	}
}

// TestScanLiveBigReread: a big key changed is read again whole, in pages, as DEL and native
// commands; counted with its bytes.
func TestScanLiveBigReread(t *testing.T) {
	r := startRedis(t, 0, "", "--notify-keyspace-events", "KEA")
	c := r.client(t)
	var cmds [][]string
	for i := range 1500 {
		cmds = append(cmds, []string{"HSET", "h", "f" + strconv.Itoa(i), "v"})
	}
	if err := pipeStr(c, cmds...); err != nil {
		t.Fatal(err)
	}
	c.must(t, "PEXPIRE", "h", "600000")
	h := startLiveNode(t, r.addr, 4096)
	c.must(t, "HSET", "h", "new", "field")
	h.waitCmd(t, "DEL h", isCmdOn("DEL", "h"))
	fields := 0
	for fields < 1501 {
		a := h.waitCmd(t, "HSET h", func(a []string) bool { return isCmdOn("HSET", "h")(a) || isCmdOn("PEXPIREAT", "h")(a) })
		if a[0] == "PEXPIREAT" {
			t.Fatalf("PEXPIREAT after %d fields", fields)
		}
		fields += (len(a) - 2) / 2
	}
	h.waitCmd(t, "PEXPIREAT h", isCmdOn("PEXPIREAT", "h"))
	if st := h.n.Stats().Scan; st.BigRereads != 1 || st.BigRereadBytes < 1501*2 || st.BigKeys != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestScanLiveSpilledRestore: a DUMP reply over the big-key limit (a stream: it has no paged
// read) is kept on disk and copied into the stream's RESTORE in pieces; that RESTORE rebuilds
// the key elsewhere.
func TestScanLiveSpilledRestore(t *testing.T) {
	r := startRedis(t, 0, "", "--notify-keyspace-events", "KEA")
	dst := startRedis(t, 0, "")
	c := r.client(t)
	h := startLiveNode(t, r.addr, 2048)
	var cmds [][]string
	for i := range 300 {
		cmds = append(cmds, []string{"XADD", "s", "*", "f", strings.Repeat("x", 50) + strconv.Itoa(i)})
	}
	if err := pipeStr(c, cmds...); err != nil {
		t.Fatal(err)
	}
	c.must(t, "SET", "marker", "1")
	var restore []string
	for {
		a := h.waitCmd(t, "RESTORE", func(a []string) bool { return a[0] == "RESTORE" })
		if a[1] == "marker" {
			break
		}
		restore = a
	}
	if restore == nil || len(restore[3]) <= 2048 {
		t.Fatalf("last RESTORE of s: %d args", len(restore))
	}
	if _, err := dst.client(t).do(restore...); err != nil {
		t.Fatal(err)
	}
	if st := h.n.Stats().Scan; st.Spilled == 0 {
		t.Fatalf("stats %+v", st)
	}
	redistest.CompareDatasets(t, keysOnly(t, r, "s"), keysOnly(t, dst, "s"))
}

// keysOnly dumps r with only key kept.
func keysOnly(t *testing.T, r *redisProc, key string) *redistest.Dataset {
	d := r.srv.Dump(t)
	for _, keys := range d.DBs {
		for k := range keys {
			if k != key {
				delete(keys, k)
			}
		}
	}
	return d
}

// TestScanLiveResync: Resync offers a new pass; nothing is read again until it is read whole,
// then changes go on in the stream after its offset.
func TestScanLiveResync(t *testing.T) {
	r := startRedis(t, 0, "", "--notify-keyspace-events", "KEA")
	c := r.client(t)
	h := startLiveNode(t, r.addr, 1<<20)
	c.must(t, "SET", "a", "1")
	h.waitCmd(t, "RESTORE a", isCmdOn("RESTORE", "a"))
	h.n.Resync(errors.New("test"))
	snap := h.nextSnapshot(t)
	c.must(t, "SET", "b", "2") // during the new pass: not read before it is read whole
	if st := h.n.Stats(); st.Link.State != StateRDBTransfer || st.Scan.Passes != 1 {
		t.Fatalf("stats %+v %+v", st.Link, st.Scan)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	redistest.WaitFor(t, 10*time.Second, func() error {
		if p := h.n.Stats().Scan.Pending; p != 1 {
			return fmt.Errorf("%d pending", p)
		}
		return nil
	})
	h.snap = snap
	if n := h.load(t, ctx, 1<<20); n != 2 {
		t.Fatalf("second pass of %d keys", n)
	}
	cmds, err := h.n.Stream(ctx, snap.Offset)
	if err != nil {
		t.Fatal(err)
	}
	defer cmds.Close()
	var cmd aof.Command
	for {
		if err := cmds.Next(&cmd); err != nil {
			t.Fatal(err)
		}
		if string(cmd.Args[0]) == "RESTORE" {
			if string(cmd.Args[1]) != "b" {
				t.Fatalf("stream after the new pass: RESTORE %s", cmd.Args[1])
			}
			break
		}
	}
	if st := h.n.Stats().Scan; st.Passes != 2 || st.Rescans != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestPendingOverflow: past maxPendingKeys keys waiting, the node forgets them and asks for a
// new pass, counted.
func TestPendingOverflow(t *testing.T) {
	n := newScanNode("127.0.0.1:1", "127.0.0.1:1", scanConfig(t), true, nil)
	lv := n.lv
	for i := range maxPendingKeys {
		lv.notified(0, []byte(strconv.Itoa(i)))
	}
	lv.notified(0, []byte("0")) // coalesced
	if st := n.Stats().Scan; st.Pending != maxPendingKeys || st.Coalesced != 1 || st.PendingOverflows != 0 {
		t.Fatalf("stats %+v", st)
	}
	lv.notified(0, []byte("one too many"))
	select {
	case why := <-lv.passReq:
		if !strings.Contains(why, "wait to be read again") {
			t.Fatalf("pass asked for %q", why)
		}
	default:
		t.Fatal("no new pass asked for")
	}
	if st := n.Stats().Scan; st.Pending != 0 || st.PendingOverflows != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestGeneratorRetrySelects: a batch tried again after a lost connection starts from the db in
// force at the spool's end, not from where the dropped attempt had got to: its SELECT comes again.
func TestGeneratorRetrySelects(t *testing.T) {
	n := newScanNode("127.0.0.1:1", "127.0.0.1:1", scanConfig(t), true, nil)
	sp, err := n.lv.spool()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	g := &generator{ctx: context.Background(), lv: n.lv, n: n}
	try := func() {
		g.buf, g.bufDB = g.buf[:0], g.lv.spoolDB
		g.selectDB(1)
		g.emitStr("DEL", "k")
	}
	try() // fails before it reaches the spool
	try()
	if err := g.sync(); err != nil {
		t.Fatal(err)
	}
	try()
	if err := g.sync(); err != nil {
		t.Fatal(err)
	}
	want := cmd("SELECT", "1") + cmd("DEL", "k") + cmd("DEL", "k")
	if got := spooled(t, sp, sp.Start(), len(want)); string(got) != want {
		t.Fatalf("spool %q, want %q", got, want)
	}
}

// TestScanLiveFollow: a node told its server moved (a failover followed by a cluster or
// sentinel source) reads the new one: a FailedOver event, a new pass there (changes between
// the two may be missed), then the new server's changes in the stream.
func TestScanLiveFollow(t *testing.T) {
	a := startRedis(t, 0, "", "--notify-keyspace-events", "KEA")
	b := startRedis(t, 0, "", "--notify-keyspace-events", "KEA")
	a.client(t).must(t, "SET", "k", "on a")
	b.client(t).must(t, "SET", "k", "on b")
	h := startLiveNode(t, a.addr, 1<<20)
	h.n.follow(b.addr)
	var snap SnapshotReady
	for snap.Open == nil {
		select {
		case ev := <-h.n.Events():
			switch ev := ev.(type) {
			case FailedOver:
				if ev.From != a.addr || ev.To != b.addr {
					t.Fatalf("event %+v", ev)
				}
			case SnapshotReady:
				snap = ev
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("no new pass; stats %+v", h.n.Stats().Scan)
		}
	}
	h.snap = snap
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if n := h.load(t, ctx, 1<<20); n != 1 {
		t.Fatalf("pass of %d keys", n)
	}
	cmds, err := h.n.Stream(ctx, snap.Offset)
	if err != nil {
		t.Fatal(err)
	}
	defer cmds.Close()
	b.client(t).must(t, "SET", "after", "1")
	var c aof.Command
	for {
		if err := cmds.Next(&c); err != nil {
			t.Fatal(err)
		}
		if string(c.Args[0]) == "RESTORE" && string(c.Args[1]) == "after" {
			break
		}
	}
	if st := h.n.Stats(); st.Addr != b.addr || st.Scan.Rescans != 1 || st.Name != a.addr {
		t.Fatalf("stats %+v %+v", st, st.Scan)
	}
}
