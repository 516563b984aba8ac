package target

import (
	"context"
	"io"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/rdb"
)

// Writer is where one source node's data goes, whatever the kind of target: first the snapshot
// (Restore, Rewrite, WaitRDB), then the replication stream in order (StartOplog, Apply, Skip,
// Flush, WaitOplog, Reconnect), its position read by Applied. Every kind implements every
// method; where one means nothing for a kind, the kind says what it does instead.
//
// The snapshot methods are called from one goroutine; the stream methods from one goroutine
// (the same or another, once WaitRDB returned); Applied, Stats and Abort from any goroutine.
type Writer interface {
	// Restore queues one RDB entry: a key (skipped and counted when already expired), a function
	// library; aux fields are ignored. The entry's slices are copied before it returns. It
	// returns an error wrapping ErrNeedsRewrite when the entry's value was not held by the
	// decoder (call Rewrite with a reader of it), and one wrapping ErrBroken when a connection
	// broke. Error replies of the target are counted in Stats, not returned.
	Restore(e *rdb.Entry) error
	// Rewrite sends one key whose value Restore could not carry, reading its raw bytes from
	// value (nil: e.Value): as native commands, or re-encoded for an rdb file.
	Rewrite(e *rdb.Entry, value io.Reader) error
	// WaitRDB returns when everything the snapshot sent has its reply (or is written), after the
	// retries and redirects it needs. It returns an error only when the target broke or ctx ended.
	WaitRDB(ctx context.Context) error

	// StartOplog prepares the stream at (offset, db): where it resumes. Apply calls it with
	// (0, 0) when it was not called. A kind that takes no stream returns ErrNoOplog.
	StartOplog(ctx context.Context, offset int64, db int) error
	// Apply forwards one command of the stream, in order; end is the replication offset just
	// after it. Replication chatter (PING, REPLCONF) and PUBLISH are skipped and counted. It
	// returns an error wrapping ErrBroken or ErrRetry when the caller must Reconnect and resend
	// from the offset Reconnect returns; ErrNoOplog for a kind that takes no stream.
	Apply(cmd *aof.Command, end int64) error
	// Skip passes a command of the stream without sending it (the daemon's filters), counted in
	// Stats.Skipped under reason; the applied position moves past it as past an answered one.
	Skip(cmd *aof.Command, end int64, reason string)
	// Flush sends what the writer holds back waiting for more of the stream (a checkpointed
	// batch): the caller calls it when the stream has nothing more for now.
	Flush() error
	// WaitOplog returns when every command applied so far has its reply.
	WaitOplog(ctx context.Context) error
	// Reconnect replaces broken connections and returns the position to resend the stream from:
	// every command after offset (in db) must come again, in order.
	Reconnect(ctx context.Context) (offset int64, db int, err error)
	// Applied returns the replication offset just after the last command of the stream whose
	// reply came back (or that was skipped with everything before it answered), and the db in
	// force there.
	Applied() (offset int64, db int)

	// Stats returns a snapshot of the writer's counters, sharing nothing with it.
	Stats() Stats
	// Abort marks the writer's work as failed before Close: a kind that finishes something on
	// Close (an rdb file, renamed into place) then throws it away instead.
	Abort()
	// Close closes the writer's connections; requests still in flight are failed.
	Close() error
}

// Every kind is a Writer.
var (
	_ Writer = (*Single)(nil)
	_ Writer = (*Cluster)(nil)
	_ Writer = (*Twemproxy)(nil)
	_ Writer = (*RDBFileNode)(nil)
)
