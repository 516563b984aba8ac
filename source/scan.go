package source

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/internal/redisfmt"
	"github.com/rmt-project/rmt/internal/topology"
)

// Source modes, as source.mode names them: how a live server is read.
const (
	ModePSync    = "psync"     // a replica link: snapshot, then the replication stream
	ModeScan     = "scan"      // one pass of SCAN + DUMP, then done
	ModeScanLive = "scan_live" // the same pass, then changes from keyspace notifications
)

// A scan node reads a server as a client, for the services that refuse to replicate to one
// (PSYNC, SYNC): its snapshot is one pass over every db (SCAN, then each key by DUMP and
// PEXPIRETIME, or in pages when big: scanread.go, scanbig.go), given to the daemon as entries
// that carry the DUMP payload's value and the absolute expiry, so that the target writer sends
// RESTORE ... ABSTTL REPLACE, or native commands where the target cannot take the payload.
//
// In mode scan the node is finite: after its pass the job is done, as with a file. In mode
// scan_live (scanlive.go) it subscribes to keyspace notifications before the pass, and its
// stream is every notified key read again and written whole, in order, until the job stops.
// What a pass cannot see (a key changed during a scan pass; in scan_live what notifications
// do not tell) is said in scanlive.go and counted in ScanStats.

// openScanSingle is `single` read by SCAN: one node per server. With several servers into one
// target, a flush seen on one of them must not wipe the others' keys.
func openScanSingle(live bool) func(context.Context, Config) (*Source, error) {
	return func(_ context.Context, c Config) (*Source, error) {
		s := &Source{}
		var filter func(int) Filter
		if len(c.Servers) > 1 {
			filter = func(db int) Filter { return &streamFilter{db: db, several: true, log: c.Logger} }
		}
		for _, addr := range c.Servers {
			s.Nodes = append(s.Nodes, newScanNode(addr, addr, c, live, filter))
		}
		return s, nil
	}
}

// openScanCluster is `redis cluster` read by SCAN: one node per master serving slots, found
// and watched as for replica nodes (cluster.go), each keeping only the keys of its slots.
func openScanCluster(live bool) func(context.Context, Config) (*Source, error) {
	return func(ctx context.Context, c Config) (*Source, error) {
		return openClusterNodes(ctx, c, func(ms topology.Master, own *ownership, filter func(db int) Filter) followingNode {
			n := newScanNode(ms.Addr, ms.Addr, c, live, filter)
			n.own = own
			return n
		})
	}
}

// scanNode is one source server read by SCAN. Its name is the configured (or discovered)
// address; follow moves it to another (a failover).
type scanNode struct {
	own    *ownership // a cluster master's slots, for Owns; nil: every key
	name   string
	live   bool
	opts   LinkOptions // Addr is the first address; Dir the node's directory
	filter func(db int) Filter
	log    *zap.Logger
	events chan Event
	facts  serverFacts
	st     scanCounters
	// bigKeyBytes is the size over which a key is read in pages (Config.BigKeyBytes); holdMax
	// the largest DUMP reply held in memory, from the last Open (the snapshot's maxRaw).
	bigKeyBytes int64
	holdMax     atomic.Int64

	addrMu sync.Mutex
	addr   string              // where the server is now
	conns  map[closer]struct{} // open connections, closed by follow
	kick   chan struct{}       // follow: reconnect at once

	lv *liveState // scan_live only
}

// closer is a connection follow closes.
type closer interface{ Close() error }

// newScanNode makes a scan node named name (its directory, checkpoint, log and INFO line) for
// the server at addr; single and cluster sources name a node after its first address. A
// sentinel source makes one from the master's address it resolved, and calls follow when the
// master moves: live says scan_live, filter is the node's Filter (nil: every key).
func newScanNode(name, addr string, c Config, live bool, filter func(db int) Filter) *scanNode {
	o := c.linkOptions(name)
	o.Addr = addr
	o.setDefaults()
	n := &scanNode{name: name, live: live, opts: o, filter: filter, log: o.Logger.With(zap.String("node", name)),
		bigKeyBytes: c.BigKeyBytes,
		events:      make(chan Event, 16), addr: addr, conns: map[closer]struct{}{}, kick: make(chan struct{}, 1)}
	n.st.passID.Store(new(string))
	n.st.downSince = time.Now().UnixMilli() // down until connected
	if live {
		n.lv = newLiveState(n)
	}
	return n
}

func (n *scanNode) Name() string           { return n.name }
func (n *scanNode) Finite() bool           { return !n.live }
func (n *scanNode) FollowsFailovers() bool { return false } // a pass never resumes: no checkpoint to find
func (n *scanNode) Events() <-chan Event   { return n.events }

// Owns is the node's ownership (a cluster master's slots), nil when it owns what it has.
func (n *scanNode) Owns() func(db int, key []byte) bool {
	if n.own == nil || n.own.get() == nil {
		return nil
	}
	return func(db int, key []byte) bool {
		o := n.own.get()
		return o != nil && o.owns(db, key)
	}
}

// linkAddr is the server the node reads now.
func (n *scanNode) linkAddr() string { return n.currentAddr() }

// followIfMoved reads addr from now on, unless it already does; it reports whether it moved.
func (n *scanNode) followIfMoved(addr string) bool {
	if n.currentAddr() == addr {
		return false
	}
	n.follow(addr)
	return true
}

func (n *scanNode) Filter(db int) Filter {
	if n.filter == nil {
		return nil
	}
	return n.filter(db)
}

func (n *scanNode) currentAddr() string {
	n.addrMu.Lock()
	defer n.addrMu.Unlock()
	return n.addr
}

// follow makes the node read the server at addr from now on: its connections are closed, and
// scan_live reads every db again there (the new master may lack writes the old one took).
func (n *scanNode) follow(addr string) {
	n.addrMu.Lock()
	if addr == n.addr {
		n.addrMu.Unlock()
		return
	}
	from := n.addr
	n.addr = addr
	var open []closer
	for c := range n.conns {
		open = append(open, c)
	}
	n.addrMu.Unlock()
	n.log.Warn("following the server at a new address", zap.String("was", from), zap.String("now", addr))
	for _, c := range open {
		c.Close()
	}
	select {
	case n.kick <- struct{}{}:
	default:
	}
	select {
	case n.events <- FailedOver{From: from, To: addr}:
	default:
	}
}

// dial connects to the server where it is now; the connection is closed by follow.
func (n *scanNode) dial(ctx context.Context) (*scanConn, error) {
	addr := n.currentAddr()
	sc, err := dialScanConn(ctx, addr, &n.opts, &n.st.lastIO)
	if err != nil {
		n.st.setErr(err)
		return nil, err
	}
	n.addrMu.Lock()
	moved := n.addr != addr
	if !moved {
		n.conns[sc] = struct{}{}
	}
	n.addrMu.Unlock()
	if moved {
		sc.Close()
		return nil, fmt.Errorf("source %s: the server moved", addr)
	}
	return sc, nil
}

// hangUp closes sc and forgets it.
func (n *scanNode) hangUp(sc *scanConn) {
	if sc == nil {
		return
	}
	n.addrMu.Lock()
	delete(n.conns, sc)
	n.addrMu.Unlock()
	sc.Close()
}

// keyReader returns a reader of the server's keys on behalf of this node.
func (n *scanNode) keyReader() *keyReader {
	return &keyReader{addr: n.currentAddr(), facts: &n.facts, bigKeyBytes: n.bigKeyBytes, holdMax: n.holdMax.Load(),
		spillDir: filepath.Join(n.opts.Dir, "scan-spill"), log: n.log, stats: &n.st, now: time.Now}
}

// Run offers the node's pass; scan_live then follows the changes until ctx ends.
func (n *scanNode) Run(ctx context.Context, resume *ResumePoint) error {
	defer close(n.events)
	if resume != nil && resume.Replid != "" {
		n.log.Info("a scan source cannot resume a previous run's stream: a new pass",
			zap.String("resume_replid", truncate(resume.Replid, 64)), zap.Int64("resume_offset", resume.Offset))
	}
	if n.live {
		return n.lv.run(ctx)
	}
	n.send(ctx, n.snapshot(0))
	return nil
}

// snapshot is the SnapshotReady of a new pass, whose stream starts after offset.
func (n *scanNode) snapshot(offset int64) SnapshotReady {
	id := syncReplid()
	n.st.passID.Store(&id)
	whole := make(chan struct{})
	close(whole)
	return SnapshotReady{Replid: id, Offset: offset, Name: "scan of " + n.name, Whole: whole,
		Open: func(ctx context.Context, maxRaw int64) (Entries, error) { return n.openPass(ctx, maxRaw) },
		Done: func() error { return nil },
		Keys: n.countKeys}
}

func (n *scanNode) send(ctx context.Context, ev Event) {
	select {
	case n.events <- ev:
	case <-ctx.Done():
	}
}

func (n *scanNode) Stream(ctx context.Context, from int64) (Commands, error) {
	if !n.live {
		return emptyCommands{}, nil
	}
	return n.lv.stream(ctx, from)
}

func (n *scanNode) Trim(upTo int64) error {
	if !n.live {
		return nil
	}
	return n.lv.trim(upTo)
}

// Resync starts a new pass (scan_live); a scan pass that failed fails its job.
func (n *scanNode) Resync(reason error) bool {
	if !n.live {
		return false
	}
	n.lv.resync(reason)
	return true
}

func (n *scanNode) Close() error {
	if n.lv != nil {
		return n.lv.close()
	}
	return nil
}

// changedInPass records a key that changed while the pass read it: scan_live reads it again in
// its stream; a scan pass logs it (the first ones, then one in logEveryDrop).
func (n *scanNode) changedInPass(db int, key []byte) {
	if n.live {
		n.lv.notified(db, key)
		return
	}
	if c := n.st.changed.Load(); c <= logFirstDrops || c%logEveryDrop == 0 {
		n.log.Warn("key changed while the pass read it: the target has one of its states", zap.Int("db", db),
			zap.String("key", redisfmt.Quote(string(key))), zap.Int64("changed_so_far", c))
	}
}

// retry runs step until it succeeds, ctx ends or it fails with an error that another try
// would meet again (an error reply). Between tries it waits a growing backoff, and reconnect
// gives step a new connection.
func (n *scanNode) retry(ctx context.Context, what string, reconnect func() error, step func() error) error {
	backoff := n.opts.BackoffMin
	for {
		err := step()
		if err == nil || ctx.Err() != nil {
			return err
		}
		var re *ReplyError
		if errors.As(err, &re) || errors.Is(err, errBadScanReply) {
			return err
		}
		n.st.setErr(err)
		n.st.reconnects.Add(1)
		n.st.setConn(false, n.live)
		n.log.Warn(what+": connection lost; reconnecting", zap.Error(err), zap.Duration("backoff", backoff))
		for connected := false; !connected; {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			case <-n.kick:
				t.Stop()
			}
			backoff = min(backoff*2, n.opts.BackoffMax)
			err := reconnect()
			switch {
			case err == nil:
				connected = true
			case ctx.Err() != nil:
				return ctx.Err()
			default:
				n.log.Warn(what+": reconnecting", zap.Error(err), zap.Duration("backoff", backoff))
			}
		}
		n.st.setConn(true, n.live)
	}
}

// countKeys is how many keys the server holds now (INFO keyspace): what a pass would read,
// without reading it.
func (n *scanNode) countKeys(ctx context.Context) (int64, error) {
	sc, err := n.dial(ctx)
	if err != nil {
		return 0, err
	}
	defer n.hangUp(sc)
	sizes, err := keyspace(sc)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, k := range sizes {
		total += k
	}
	return total, nil
}
