package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/rdb"
)

// driveMaxRaw is the raw value limit the drives open snapshots with: values over it are read
// again through Entries.Value, as the daemon does with big keys.
const driveMaxRaw = 512

// drive is one source node driven through the Node interface as the daemon's pipeline drives
// it: Run; a SnapshotReady's entries through the node's Filter into a fake target; Whole; then
// the stream from the snapshot's offset, through a Filter too.
type drive struct {
	t      *testing.T
	node   Node
	fake   *fakeTarget
	cancel context.CancelFunc
	runErr chan error
	events chan Event    // the node's events, pumped so that the node never waits for the test
	closed chan struct{} // closed once the node's Events channel is (and events after it)

	mu      sync.Mutex
	skipped map[Reason]int // by the Filter, snapshot keys and stream commands alike
	errs    []error        // of the replay goroutine

	applied      atomic.Int64 // stream offset after the last command the replay took
	stopReplay   context.CancelFunc
	replayEnded  chan error // the replay's end: nil at io.EOF
	replayCmds   atomic.Int64
	snapshotKeys int // keys the last load stored
}

// startDrive runs node until the test ends; fake receives what it sends.
func startDrive(t *testing.T, node Node, fake *fakeTarget) *drive {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &drive{t: t, node: node, fake: fake, cancel: cancel, runErr: make(chan error, 1),
		events: make(chan Event, 1024), closed: make(chan struct{}), skipped: map[Reason]int{}}
	go func() { d.runErr <- node.Run(ctx, nil) }()
	go func() {
		for ev := range node.Events() {
			d.events <- ev
		}
		close(d.events)
		close(d.closed)
	}()
	t.Cleanup(func() {
		d.endReplay()
		cancel()
		<-d.closed
		node.Close()
	})
	return d
}

// snapshot returns the next SnapshotReady, skipping other events.
func (d *drive) snapshot(timeout time.Duration) SnapshotReady {
	d.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-d.events:
			if !ok {
				d.t.Fatalf("%s: events closed before a snapshot", d.node.Name())
			}
			switch ev := ev.(type) {
			case SnapshotReady:
				return ev
			case Disconnected:
				d.t.Logf("%s: disconnected: %v", d.node.Name(), ev.Err)
			}
		case <-deadline:
			d.t.Fatalf("%s: no snapshot after %v (stats %+v)", d.node.Name(), timeout, d.node.Stats())
		}
	}
}

func (d *drive) skip(r Reason) {
	d.mu.Lock()
	d.skipped[r]++
	d.mu.Unlock()
}

// Skipped is how many keys and commands the node's Filter left out for reason r.
func (d *drive) Skipped(r Reason) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.skipped[r]
}

// load stores every entry of snap the node's Filter keeps into the fake, then waits for Whole,
// and removes the snapshot (Done).
func (d *drive) load(snap SnapshotReady) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	entries, err := snap.Open(ctx, driveMaxRaw)
	if err != nil {
		d.t.Fatalf("%s: open %s: %v", d.node.Name(), snap.Name, err)
	}
	defer entries.Close()
	filter := d.node.Filter(0)
	var e rdb.Entry
	keys, big := 0, 0
	for {
		err := entries.Next(&e)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			d.t.Fatalf("%s: %s: %v", d.node.Name(), snap.Name, err)
		}
		if e.Kind == rdb.KindKey && filter != nil && !filter.KeepKey(e.DB, e.Key) {
			d.skip(ReasonNotOwned)
			continue
		}
		raw := e.Value
		if e.Kind == rdb.KindKey && raw == nil {
			if raw, err = io.ReadAll(entries.Value(&e)); err != nil || int64(len(raw)) != e.ValueLen {
				d.t.Fatalf("%s: key %s: %d bytes of %d read again: %v", d.node.Name(), redistest.Escape(string(e.Key)), len(raw), e.ValueLen, err)
			}
			big++
		}
		if err := d.fake.restore(&e, raw); err != nil {
			d.t.Fatalf("%s: %v", d.node.Name(), err)
		}
		if e.Kind == rdb.KindKey {
			keys++
		}
	}
	if read, total := entries.Progress(); total >= 0 && read != total {
		d.t.Errorf("%s: progress %d of %d after the last entry", d.node.Name(), read, total)
	}
	select {
	case <-snap.Whole:
	case <-ctx.Done():
		d.t.Fatalf("%s: snapshot %s never whole", d.node.Name(), snap.Name)
	}
	if err := snap.Done(); err != nil {
		d.t.Errorf("%s: Done: %v", d.node.Name(), err)
	}
	d.snapshotKeys = keys
	d.t.Logf("snapshot %s: %d keys (%d read again for being over %d bytes), RDB v%d", snap.Name, keys, big, driveMaxRaw, entries.Version())
}

// replay applies the node's stream after offset from into the fake, in a goroutine, until the
// stream ends (a file) or endReplay.
func (d *drive) replay(from int64) {
	d.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmds, err := d.node.Stream(ctx, from)
	if err != nil {
		cancel()
		d.t.Fatalf("%s: stream from %d: %v", d.node.Name(), from, err)
	}
	d.applied.Store(from)
	d.stopReplay, d.replayEnded = cancel, make(chan error, 1)
	go func() {
		defer cmds.Close()
		d.replayEnded <- d.apply(ctx, cmds, from)
	}()
}

func (d *drive) apply(ctx context.Context, cmds Commands, from int64) error {
	filter := d.node.Filter(0)
	db := 0
	var c aof.Command
	end := from
	for {
		if err := cmds.Next(&c); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%s: stream at %d: %w", d.node.Name(), end, err)
		}
		end += c.N
		if filter != nil {
			if r := filter.Drop(&c); r != ReasonNone {
				d.skip(r)
				d.applied.Store(end)
				continue
			}
		}
		if err := d.fake.exec(&db, c.Args); err != nil {
			d.mu.Lock()
			d.errs = append(d.errs, fmt.Errorf("%s: at %d: %w", d.node.Name(), end, err))
			d.mu.Unlock()
		}
		d.replayCmds.Add(1)
		d.applied.Store(end)
	}
}

// checkErrs fails the test with what the replay could not apply.
func (d *drive) checkErrs() {
	d.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, err := range d.errs {
		d.t.Error(err)
	}
	d.errs = nil
}

// endReplay stops the replay goroutine and returns how it ended (nil: io.EOF).
func (d *drive) endReplay() error {
	if d.stopReplay == nil {
		return nil
	}
	d.stopReplay()
	d.stopReplay = nil
	err := <-d.replayEnded
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// replayEnd waits for a finite stream's io.EOF.
func (d *drive) replayEnd(timeout time.Duration) {
	d.t.Helper()
	select {
	case err := <-d.replayEnded:
		d.replayEnded <- err // for endReplay
		if err != nil {
			d.t.Fatalf("%s: stream: %v", d.node.Name(), err)
		}
	case <-time.After(timeout):
		d.t.Fatalf("%s: stream not ended after %v (at %d)", d.node.Name(), timeout, d.applied.Load())
	}
	d.checkErrs()
}

// caughtUp waits until the replay has taken every byte the master has written.
func (d *drive) caughtUp(master *rclient) int64 {
	d.t.Helper()
	var want int64
	redistest.WaitFor(d.t, 30*time.Second, func() error {
		var err error
		if want, err = strconv.ParseInt(master.infoField(d.t, "replication", "master_repl_offset"), 10, 64); err != nil {
			return err
		}
		select {
		case err := <-d.replayEnded:
			d.replayEnded <- err
			return fmt.Errorf("replay ended: %v", err)
		default:
		}
		if got := d.applied.Load(); got < want {
			return fmt.Errorf("%s: applied %d, master_repl_offset %d", d.node.Name(), got, want)
		}
		return nil
	})
	d.checkErrs()
	return want
}

// stop ends the node: Run returns nil and its Events channel is closed.
func (d *drive) stop() {
	d.t.Helper()
	if err := d.endReplay(); err != nil {
		d.t.Errorf("%s: replay: %v", d.node.Name(), err)
	}
	d.cancel()
	d.returned(30 * time.Second)
}

// returned waits for Run to return nil, and its Events to be closed.
func (d *drive) returned(timeout time.Duration) {
	d.t.Helper()
	select {
	case err := <-d.runErr:
		if err != nil {
			d.t.Errorf("%s: Run: %v", d.node.Name(), err)
		}
	case <-time.After(timeout):
		d.t.Fatalf("%s: Run did not return after %v", d.node.Name(), timeout)
	}
	select {
	case <-d.closed:
	case <-time.After(5 * time.Second):
		d.t.Fatalf("%s: Events not closed after Run returned", d.node.Name())
	}
}

// compareFake fails the test with the differences between want (what the source holds) and the
// fake target.
func compareFake(t *testing.T, want *redistest.Dataset, fake *fakeTarget) {
	t.Helper()
	got := fake.Dataset("fake target")
	if want.Functions == nil {
		got.Functions = nil
	}
	if diffs, n := redistest.DiffCount(want, got, redistest.TTLTolerance); n > 0 {
		t.Fatalf("%d differences between %s and the fake target:\n%s", n, want.Source, strings.Join(diffs, "\n"))
	}
	if want.Keys() == 0 {
		t.Logf("compared an empty data set (%s)", want.Source)
	}
}

// clientOf is a client of the server at addr.
func clientOf(t *testing.T, addr string) *rclient {
	t.Helper()
	c, err := dialRedis(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c
}

// sink sends a write about key to wherever key lives.
type sink func(key string, args ...string)

// clientSink sends every write to c.
func clientSink(t *testing.T, c *rclient) sink {
	return func(_ string, args ...string) { c.must(t, args...) }
}

// fillAllTypes writes keys of every type, each prefixed: strings (an integer, a short one, one
// of 100 kB), lists, sets (integers: an intset; strings), zsets, hashes, small and big (over
// driveMaxRaw, and over the listpack limits), keys with an expiry, and with streams a stream with
// a consumer group, pending entries and a deleted entry.
func fillAllTypes(w sink, prefix string, streams bool) {
	k := func(name string) string { return prefix + name }
	w(k("int"), "SET", k("int"), "12345")
	w(k("str"), "SET", k("str"), "hello")
	w(k("bigstr"), "SET", k("bigstr"), strings.Repeat("abcdefghij", 10_000))
	w(k("ttl"), "SET", k("ttl"), "expires", "EX", "3600")
	w(k("list"), "RPUSH", k("list"), "a", "b", "c", "1", "2")
	w(k("biglist"), append([]string{"RPUSH", k("biglist")}, numbered("element-", 2000)...)...)
	w(k("intset"), "SADD", k("intset"), "1", "2", "3", "100000", "-5")
	w(k("set"), "SADD", k("set"), "x", "y", "z")
	w(k("bigset"), append([]string{"SADD", k("bigset")}, numbered("member-", 1000)...)...)
	w(k("zset"), "ZADD", k("zset"), "1", "one", "2.5", "two", "-3", "three")
	big := []string{"ZADD", k("bigzset")}
	for i := range 500 {
		big = append(big, strconv.Itoa(i*7%500)+".25", "zm-"+strconv.Itoa(i))
	}
	w(k("bigzset"), big...)
	w(k("hash"), "HSET", k("hash"), "f1", "v1", "f2", "2")
	w(k("bighash"), append([]string{"HSET", k("bighash")}, pairs("field-", 1000)...)...)
	w(k("hashttl"), "HSET", k("hashttl"), "f", "v")
	w(k("hashttl"), "PEXPIRE", k("hashttl"), "7200000")
	if streams {
		s := k("stream")
		for i := range 5 {
			w(s, "XADD", s, strconv.Itoa(i+1)+"-0", "n", strconv.Itoa(i), "pad", strings.Repeat("p", 100))
		}
		w(s, "XGROUP", "CREATE", s, "grp", "0")
		w(s, "XGROUP", "CREATE", s, "late", "$")
		w(s, "XREADGROUP", "GROUP", "grp", "alice", "COUNT", "2", "STREAMS", s, ">")
		w(s, "XREADGROUP", "GROUP", "grp", "bob", "COUNT", "1", "STREAMS", s, ">")
		w(s, "XADD", s, "9-1", "deleted", "soon")
		w(s, "XDEL", s, "9-1")
	}
}

// writeAfter writes to keys fillAllTypes made, and to new ones, with the commands the fake
// target knows: what a source's stream carries after its snapshot.
func writeAfter(w sink, prefix string) {
	k := func(name string) string { return prefix + name }
	w(k("int"), "INCR", k("int"))
	w(k("int"), "INCRBY", k("int"), "10")
	w(k("str"), "APPEND", k("str"), " world")
	w(k("new"), "SET", k("new"), "v", "PX", "3600000")
	w(k("newint"), "INCR", k("newint"))
	w(k("float"), "INCRBYFLOAT", k("float"), "1.5") // propagated as SET ... KEEPTTL
	w(k("ttl"), "PERSIST", k("ttl"))
	w(k("list"), "RPUSH", k("list"), "d")
	w(k("list"), "LPUSH", k("list"), "z")
	w(k("biglist"), "RPUSH", k("biglist"), "last")
	w(k("set"), "SADD", k("set"), "w")
	w(k("set"), "SREM", k("set"), "x")
	w(k("zset"), "ZADD", k("zset"), "9", "nine", "0", "one")
	w(k("hash"), "HSET", k("hash"), "f3", "v3", "f1", "changed")
	w(k("hash"), "HDEL", k("hash"), "f2")
	w(k("bigstr"), "DEL", k("bigstr"))
	w(k("list"), "EXPIRE", k("list"), "1800")
	w(k("gone"), "SET", k("gone"), "x")
	w(k("gone"), "UNLINK", k("gone"))
	for i := range 200 { // enough stream for several spool segments
		w(k("many"), "RPUSH", k("many"), strings.Repeat("m", 50)+strconv.Itoa(i))
	}
}

// numbered is prefix0 .. prefix<n-1>.
func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

// pairs is prefix0 value-0 .. prefix<n-1> value-<n-1>.
func pairs(prefix string, n int) []string {
	out := make([]string, 0, 2*n)
	for i := range n {
		out = append(out, prefix+strconv.Itoa(i), "value-"+strconv.Itoa(i))
	}
	return out
}

// checkLiveStats: a replica node that caught up with its master at addr says so.
func checkLiveStats(t *testing.T, n Node, name, addr string, applied int64) {
	t.Helper()
	st := n.Stats()
	if !st.Live || st.Name != name || st.Addr != addr || st.Link.Addr != addr || st.Link.State != StateStreaming ||
		!st.Link.MasterLinkUp || st.Link.FullSyncs < 1 || st.Link.ReceivedOffset < applied || st.Link.Replid == "" {
		t.Errorf("%s: stats %+v (applied %d)", name, st, applied)
	}
	if n.Finite() {
		t.Errorf("%s: a live node says its stream ends", name)
	}
}
