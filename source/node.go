package source

import (
	"context"
	"io"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/rdb"
)

// Node is one source node of a migration, whatever its kind: a master that rmtd replicates
// (single, a cluster's master, a twemproxy backend), or a file (rdb file, aof file). Every kind
// gives the daemon the same things: snapshots of its keys as entries, the stream of its commands
// after a snapshot's offset, the rule of which keys are its own, and events when these change.
//
//	go node.Run(ctx, resume)
//	for ev := range node.Events() {
//		switch ev := ev.(type) {
//		case source.SnapshotReady: // load ev.Open's entries, wait for ev.Whole, replay node.Stream(ctx, ev.Offset)
//		case source.Continue:      // the stream goes on at ev.Offset: replay node.Stream(ctx, ev.Offset)
//		case source.Disconnected, source.FailedOver: // informational: the node recovers by itself
//		}
//	}
type Node interface {
	// Name is the node's stable name: the master's address as configured (a followed failover
	// does not change it), or the file's path. It names the node's directory, its checkpoint,
	// its log lines and its INFO line.
	Name() string
	// Finite reports whether the node's stream ends (a file) rather than goes on for as long
	// as the master runs.
	Finite() bool
	// FollowsFailovers reports whether the node's master may move to another address (a
	// cluster's failover): a previous run's checkpoint may then be under another name.
	FollowsFailovers() bool
	// Run drives the node until ctx ends, sending Events, and closes Events when it returns. A
	// live node retries by itself and returns nil when ctx ends, or an error when it cannot go
	// on at all (its spool cannot be opened). A file node offers its snapshot and returns nil.
	// resume, when set, is where a previous run stopped: the stream is asked from there.
	Run(ctx context.Context, resume *ResumePoint) error
	// Events are SnapshotReady, Continue, Disconnected and FailedOver.
	Events() <-chan Event
	// Stream returns the node's commands after offset from, in order. A live node's blocks
	// until more arrive; a file's ends with io.EOF. Valid after SnapshotReady or Continue.
	Stream(ctx context.Context, from int64) (Commands, error)
	// Filter returns the rule of the node's own keys for a pass over its snapshot or a replay
	// of its stream that starts in db; nil keeps every key and command.
	Filter(db int) Filter
	// Owns returns whether a key on the target is one this node sends (a cluster master's
	// slots, a backend's share of the ring), to remove what it loaded before loading anew; nil
	// when the node cannot tell its keys from other nodes' (several single servers, files, a
	// random ring).
	Owns() func(db int, key []byte) bool
	// Trim tells the node that its stream up to offset upTo is applied: it may free it.
	Trim(upTo int64) error
	// Resync drops the snapshot that failed to load (corrupt, cut short) and asks the source
	// for a new one, with a growing wait between such requests; a new SnapshotReady follows.
	// It reports false when the node cannot (a file: the same bytes would fail again).
	Resync(reason error) bool
	// Stats is the node's state, a value that shares nothing with it.
	Stats() NodeStats
	// Close releases what the node holds (its spool), once Run has returned.
	Close() error
}

// SnapshotReady says a snapshot of the node's keys can be loaded: from Open's entries, which
// may be read while the snapshot still arrives. The stream that follows it starts after Offset,
// once Whole is closed. A new SnapshotReady replaces the previous one (a full resync).
type SnapshotReady struct {
	Replid string
	Offset int64
	Name   string // where the snapshot is, for messages
	// Open returns the snapshot's entries; values over maxRaw bytes are not held (see
	// Entries.Value). It may be called again to start over.
	Open func(ctx context.Context, maxRaw int64) (Entries, error)
	// Whole is closed once every byte of the snapshot is on disk and the stream after Offset
	// is spooled from there.
	Whole <-chan struct{}
	// Done removes what the snapshot holds on disk, once it is loaded and Whole is closed.
	Done func() error
	// Keys, when set, says how many keys the snapshot has, where the kind knows it cheaply (a
	// SCAN pass asks the server); nil: count them by reading the entries.
	Keys func(ctx context.Context) (int64, error)
}

// FailedOver says the node's master moved (a failover followed): its data now comes from To.
type FailedOver struct{ From, To string }

func (SnapshotReady) isEvent() {}
func (FailedOver) isEvent()    {}

// Entries are a snapshot's keys (and function libraries, module data ...), in order.
type Entries interface {
	// Next fills e with the next entry and returns io.EOF after the last one (and a verified
	// checksum). e's slices stay valid until the next call.
	Next(e *rdb.Entry) error
	// Value reads again, from the snapshot, the value of an entry the decoder did not hold
	// (over maxRaw): e.ValueLen bytes at e.ValueOffset.
	Value(e *rdb.Entry) io.Reader
	// Version is the snapshot's RDB version, known once Next has returned an entry (0 for a
	// snapshot with no RDB part).
	Version() int
	// Progress is how far Next has read the snapshot, and its size (-1 while unknown).
	Progress() (read, total int64)
	Close() error
}

// Commands are a node's stream.
type Commands interface {
	// Next reads the next command; its offset is the sum of the commands' N from the stream's
	// start. c's slices stay valid until the next call.
	Next(c *aof.Command) error
	// Buffered is how many bytes were read ahead: 0 means nothing more is there for now.
	Buffered() int
	Close() error
}

// Filter is the rule of a node's own keys: a cluster master holds keys of slots it no longer
// serves, a twemproxy backend keys the ring gives another (leftovers of a reshard, keys written
// around the proxy). Sent to the target they would overwrite, or by their expiry delete, the
// live key its rightful node sends. One Filter serves one pass or one replay, in order.
type Filter interface {
	// KeepKey reports whether an RDB key of db is the node's own.
	KeepKey(db int, key []byte) bool
	// Drop returns why a stream command must not be applied, or "" to apply it. It follows
	// SELECT to know the db.
	Drop(cmd *aof.Command) Reason
}

// Reason says why a key or command of a source is left out; its String is INFO's
// skipped_<reason>.
type Reason string

// Reasons a Filter gives.
const (
	ReasonNone               Reason = ""
	ReasonNotOwned           Reason = "not_owned"             // a key another node owns (dirty data)
	ReasonFlushFromOneMaster Reason = "flush_from_one_master" // FLUSHALL/FLUSHDB of one node of several
)

func (r Reason) String() string { return string(r) }

// NodeStats is a node's state for INFO.
type NodeStats struct {
	Name   string // as Node.Name
	Addr   string // where the data comes from now: a followed failover's new master, or the file
	Live   bool   // a connection to a live server (the fields below are the link's); false for a file
	Link   LinkStats
	Detail string // what the node says of itself when there is no link ("file")
	// Scan holds the figures of a node read by SCAN (source.mode scan or scan_live); nil for
	// the other kinds. Its Link is then the node's connections, its passes the snapshots.
	Scan *ScanStats
}
