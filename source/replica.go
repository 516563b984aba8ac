package source

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/mediocregopher/radix/v4"
	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/redisctl"
)

// replicaNode is a master rmtd replicates through a Link: the node of single sources, of each
// master of a cluster and of each backend of a twemproxy pool.
type replicaNode struct {
	name    string
	opts    LinkOptions // Resume is set by Run
	hosts   *hostTurns  // common.source_safe; nil: no gate
	filter  func(db int) Filter
	follows bool       // a cluster's master: failovers are followed
	own     *ownership // the keys it owns, for Owns; nil: unknown
	log     *zap.Logger
	events  chan Event

	mu      sync.Mutex
	link    *Link  // once Run has made it
	movedTo string // where a followed failover moved the master, for a link not yet made
}

func newReplicaNode(name string, opts LinkOptions, hosts *hostTurns, filter func(db int) Filter) *replicaNode {
	opts.Addr = name
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	return &replicaNode{name: name, opts: opts, hosts: hosts, filter: filter,
		log: opts.Logger.With(zap.String("node", name)), events: make(chan Event, 16)}
}

func (n *replicaNode) Name() string           { return n.name }
func (n *replicaNode) Finite() bool           { return false }
func (n *replicaNode) FollowsFailovers() bool { return n.follows }
func (n *replicaNode) Events() <-chan Event   { return n.events }

func (n *replicaNode) Filter(db int) Filter {
	if n.filter == nil {
		return nil
	}
	return n.filter(db)
}

func (n *replicaNode) Owns() func(db int, key []byte) bool {
	if n.own == nil || n.own.get() == nil {
		return nil
	}
	return func(db int, key []byte) bool {
		o := n.own.get()
		return o != nil && o.owns(db, key)
	}
}

func (n *replicaNode) getLink() *Link {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.link
}

// follow makes the link replicate from addr: the master failed over to it. A link not yet
// made starts there.
func (n *replicaNode) follow(addr string) {
	n.mu.Lock()
	n.movedTo = addr
	l := n.link
	n.mu.Unlock()
	from := n.name
	if l != nil {
		from = l.Addr()
		l.Follow(addr)
	}
	select {
	case n.events <- FailedOver{From: from, To: addr}:
	default: // informational; the daemon is busy and the link moves all the same
	}
}

// Run holds the node's turn of its host (common.source_safe), makes the link and turns its
// events into the node's: a snapshot as it starts to arrive (RDBStarted) becomes SnapshotReady,
// whose Whole closes with the matching FullSync; a FullSync without its start (a resume point
// that could not be used) is a SnapshotReady already whole.
func (n *replicaNode) Run(ctx context.Context, resume *ResumePoint) error {
	defer close(n.events)
	turn, ok := n.hosts.wait(ctx, n.name, n.log)
	if !ok {
		return nil
	}
	defer turn.end()
	opts := n.opts
	opts.Resume = resume
	link := NewLink(opts)
	n.mu.Lock()
	n.link = link
	to := n.movedTo
	n.mu.Unlock()
	if to != "" {
		link.Follow(to) // a master that moved before the link was made
	}
	done := make(chan error, 1)
	go func() { done <- link.Run(ctx) }()

	var whole chan struct{} // of the snapshot arriving, nil when none is
	var replid string
	var offset int64
	for ev := range link.Events() {
		switch ev := ev.(type) {
		case RDBStarted:
			whole, replid, offset = make(chan struct{}), ev.Replid, ev.Offset
			t := ev.Transfer
			n.send(ctx, SnapshotReady{Replid: ev.Replid, Offset: ev.Offset, Name: t.Path(), Whole: whole,
				Open: func(ctx context.Context, maxRaw int64) (Entries, error) {
					f, err := t.Open(ctx)
					if err != nil {
						return nil, err
					}
					return newRDBEntries(f, -1, maxRaw), nil
				},
				Done: func() error { return removeFile(t.Path()) }})
		case FullSync:
			// The snapshot is whole: the host's next node may sync once its child is gone.
			go n.hosts.endAfterFork(ctx, turn, link.Addr())
			if whole != nil && ev.Replid == replid && ev.Offset == offset {
				close(whole)
				whole = nil
				continue
			}
			w := make(chan struct{})
			close(w)
			path := ev.RDBPath
			n.send(ctx, SnapshotReady{Replid: ev.Replid, Offset: ev.Offset, Name: path, Whole: w,
				Open: func(_ context.Context, maxRaw int64) (Entries, error) { return openRDBFile(path, maxRaw) },
				Done: func() error { return removeFile(path) }})
		case Continue:
			turn.end() // no snapshot to produce
			n.send(ctx, ev)
		case Disconnected:
			turn.end() // a master that is down must not hold up its host's other nodes
			whole = nil
			n.send(ctx, ev)
		}
	}
	return <-done
}

// send hands an event to the daemon, unless ctx ended.
func (n *replicaNode) send(ctx context.Context, ev Event) {
	select {
	case n.events <- ev:
	case <-ctx.Done():
	}
}

func (n *replicaNode) Stream(ctx context.Context, from int64) (Commands, error) {
	l := n.getLink()
	if l == nil {
		return nil, errors.New("source: " + n.name + ": no stream before the link runs")
	}
	sp := l.Spool()
	if sp == nil {
		return nil, errors.New("source: " + n.name + ": the spool is not open")
	}
	r, err := sp.NewReader(ctx, from)
	if err != nil {
		return nil, err
	}
	// Big-command mode: a command of any size comes out with at most a few MiB of it held; its
	// Start and Rest are replication offsets, and its Input the SpoolReader, which reads them
	// again until Close, from any goroutine.
	rd := aof.NewStreamReader(r, from)
	rd.SetInput(r)
	return &spoolCommands{Reader: rd, sr: r}, nil
}

func (n *replicaNode) Resync(reason error) bool {
	l := n.getLink()
	if l == nil {
		return false
	}
	l.Resync(reason)
	return true
}

func (n *replicaNode) Trim(upTo int64) error {
	if l := n.getLink(); l != nil {
		if sp := l.Spool(); sp != nil {
			return sp.Trim(upTo)
		}
	}
	return nil
}

func (n *replicaNode) Stats() NodeStats {
	st := NodeStats{Name: n.name, Addr: n.name, Live: true}
	if l := n.getLink(); l != nil {
		st.Link = l.Stats()
		st.Addr = st.Link.Addr
	} else {
		st.Link = LinkStats{Addr: n.name, RDBTotal: -1}
	}
	return st
}

func (n *replicaNode) Close() error {
	if l := n.getLink(); l != nil {
		return l.Close()
	}
	return nil
}

// spoolCommands are a replica link's stream, read from its spool.
type spoolCommands struct {
	*aof.Reader
	sr *aof.SpoolReader
}

func (c *spoolCommands) Close() error { return c.sr.Close() }

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// hostTurns is common.source_safe: at most one node of each source host produces its snapshot
// at a time, so a host's masters do not all fork at once.
type hostTurns struct {
	mu      sync.Mutex
	hosts   map[string]chan struct{} // one token per host
	waiting map[string]int           // nodes waiting for each host's token
	dialer  *radix.Dialer            // asks a master whether its snapshot child is gone; nil: not asked
}

func newHostTurns(d *radix.Dialer) *hostTurns {
	return &hostTurns{hosts: map[string]chan struct{}{}, waiting: map[string]int{}, dialer: d}
}

func (h *hostTurns) addWaiting(host string, n int) {
	h.mu.Lock()
	h.waiting[host] += n
	h.mu.Unlock()
}

func (h *hostTurns) anyWaiting(host string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.waiting[host] > 0
}

// forkWait bounds how long a node's turn outlives its snapshot, waiting for the master to reap
// the child that produced it.
const forkWait = 5 * time.Second

// endAfterFork ends t once the master at addr no longer reports a snapshot child
// (rdb_bgsave_in_progress:0): the child that sent a diskless snapshot lives on after its last
// byte until the master reaps it (up to a cron tick later), and the host's next master must not
// fork beside it. It ends t at once when no node of the host waits, where INFO cannot be had,
// and after forkWait at most.
func (h *hostTurns) endAfterFork(ctx context.Context, t *turn, addr string) {
	defer t.end()
	if h == nil || h.dialer == nil || !h.anyWaiting(hostOf(addr)) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, forkWait)
	defer cancel()
	c, err := h.dialer.Dial(ctx, "tcp", addr)
	if err != nil {
		return
	}
	defer c.Close()
	for {
		var info string
		if err := c.Do(ctx, radix.Cmd(&info, "INFO", "persistence")); err != nil {
			return
		}
		if v, ok := redisctl.InfoField(info, "rdb_bgsave_in_progress"); !ok || v != "1" {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// turn is one node's hold of its host's token; end releases it, any number of times.
type turn struct {
	once    sync.Once
	release func()
}

func (t *turn) end() {
	if t != nil && t.release != nil {
		t.once.Do(t.release)
	}
}

// wait blocks until addr's host is free of other nodes producing a snapshot; false when ctx
// ended first. A nil hostTurns never waits. The turn is taken once, before the link's first
// connection: a later full sync (after a reconnect) does not wait, and a link that fails before
// its snapshot is whole gives its turn away.
func (h *hostTurns) wait(ctx context.Context, addr string, log *zap.Logger) (*turn, bool) {
	if h == nil {
		return &turn{}, true
	}
	host := hostOf(addr)
	h.mu.Lock()
	c := h.hosts[host]
	if c == nil {
		c = make(chan struct{}, 1)
		h.hosts[host] = c
	}
	h.mu.Unlock()
	select {
	case c <- struct{}{}:
	default:
		log.Info("source_safe: waiting for another node of this host to finish sending its RDB")
		h.addWaiting(host, 1)
		select {
		case c <- struct{}{}:
			h.addWaiting(host, -1)
		case <-ctx.Done():
			h.addWaiting(host, -1)
			return nil, false
		}
		log.Info("source_safe: this node's turn to send its RDB")
	}
	return &turn{release: func() { <-c }}, true
}

// hostOf is addr's host (addr itself when it has no port).
func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}
