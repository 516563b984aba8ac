package target

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/shard"
	"github.com/rmt-project/rmt/rdb"
)

// MaxHeldValue is the largest value of a snapshot the writers take held in memory (the maxRaw
// of source.SnapshotReady.Open): a larger one comes with a nil Entry.Value, Restore returns
// ErrNeedsRewrite, and Rewrite reads it again from the snapshot, copying it to the socket as
// one RESTORE or sending it as chunked commands (Config.BigKeyBytes chooses). It is fixed and
// small: what a load holds does not grow with a key's size.
const MaxHeldValue = 1 << 20

// Kinds of target, as rmt.yaml's target.type names them (conf.TypeSingle and the others are the
// same strings; target does not import conf).
const (
	KindSingle    = "single"
	KindCluster   = "redis cluster"
	KindTwemproxy = "twemproxy"
	KindRDBFile   = "rdb file"
)

// kinds is the registry: a kind of target is one file of this package and one line here.
var kinds = map[string]func(Config) (Target, error){
	KindSingle:    newSingleTarget,
	KindCluster:   newClusterTarget,
	KindTwemproxy: newTwemproxyTarget,
	KindRDBFile:   newRDBFileTarget,
	KindSentinel:  newSentinelTarget,
}

// Kinds returns the kinds New knows, sorted.
func Kinds() []string {
	out := make([]string, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// New prepares a job's target of kind (one of the Kind constants). It checks c and builds what
// the kind's Writers share (a twemproxy pool's ring, an rdb file), without connecting: each
// Writer connects when it is made.
func New(kind string, c Config) (Target, error) {
	mk := kinds[kind]
	if mk == nil {
		return nil, fmt.Errorf("target: unknown kind %q (want one of %s)", kind, strings.Join(Kinds(), ", "))
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return mk(c)
}

// Config is what a job's target is made of, whatever its kind; each kind reads its part.
type Config struct {
	// Servers are target.servers, parsed: a single target's first is the server; a cluster's
	// are the seeds; a twemproxy pool's are its backends with their weights and names; an rdb
	// file's first Addr is the file's path.
	Servers []shard.Server
	// Conn is used for every connection: auth, TLS, timeout, window. Addr, DB, Name and
	// OnReply are set for each.
	Conn Options
	// Conns is the number of RDB-phase connections per target node (common.threads); 0 means
	// 4 on a single target, 2 per node on a cluster or pool.
	Conns int
	// BigKeyBytes: snapshot values not held (over MaxHeldValue) and over this many bytes go as
	// chunked native commands, others as one RESTORE copied from the snapshot (strings, streams
	// and module values always); 0 means no limit.
	BigKeyBytes int64
	// Hash, HashTag and Distribution are a twemproxy pool's (target.hash, ...).
	Hash, HashTag, Distribution string
	// RDBVersion is the version an rdb file is written in; 0 means the first snapshot's.
	RDBVersion int
	// Nodes returns how many source nodes write into the target. An rdb file is finished when
	// that many Writers closed (or Abandon was called for them); it is asked once, when the
	// first Writer is made or Abandon first called. nil means 1.
	Nodes func() int
	// Logger is the target's own (each Writer logs with WriterOptions.Logger); nil means none.
	Logger *zap.Logger
	// Now returns the current time, for skipping expired keys; nil means time.Now.
	Now func() time.Time
	// A sentinel target's master name, and the Sentinels' credentials (sentinel_auth); the
	// Sentinels are Servers, reached with Conn's TLS.
	MasterName                 string
	SentinelUser, SentinelPass string
}

// WriterOptions describe the source node a Writer is for.
type WriterOptions struct {
	Name             string // the source node: its address, or its file; for logs and errors
	SourceRDBVersion int    // RDB version of its snapshot (DUMP payload version); 0 when unknown
	// CheckpointKey, when set, makes the stream exactly once on a kind with Traits.Checkpoint:
	// its commands go in transactions that also store the position after them under this key.
	// A kind without checkpoints refuses a Writer with one.
	CheckpointKey string
	Replid        func() string // the source's replication ID, stored with each checkpoint
	Logger        *zap.Logger   // the node's; nil means Config.Logger
}

// Traits are what a kind of target does: the daemon asks them instead of testing the kind.
type Traits struct {
	// Stream: the target takes the replication stream after the snapshot. An rdb file takes
	// the snapshot only (its Writers' stream methods return ErrNoOplog): a live source's job
	// into it ends once its snapshot is written.
	Stream bool
	// Checkpoint: the target stores each source node's position atomically with the commands
	// it covers (WriterOptions.CheckpointKey), so a restarted job resumes exactly once from
	// ReadCheckpoint. Without it a restarted job begins with a full sync.
	Checkpoint bool
	// CheckpointUnits: the position is kept in parts, one per unit of the target (a twemproxy
	// backend: UnitCheckpointKey; a cluster slot: SlotCheckpointKey, beside a base under the
	// key itself), and ReadCheckpoint gives where a restart resumes: a key found under another
	// name cannot be adopted whole.
	CheckpointUnits bool
}

// Target is one job's target: it makes the Writer of each source node and holds what they
// share. Its methods are safe for concurrent use.
type Target interface {
	Traits() Traits
	// Writer connects the writer of one source node.
	Writer(ctx context.Context, o WriterOptions) (Writer, error)
	// ReadCheckpoint returns the checkpoint stored under key, and false when there is none. A
	// kind without Traits.Checkpoint never holds one: it returns false and no error.
	ReadCheckpoint(ctx context.Context, key string) (Checkpoint, bool, error)
	// ClearCheckpoint deletes the checkpoint under key, before a snapshot is loaded: a crash in
	// the middle of it must lead to a full sync, not a resume over half a snapshot. A kind
	// without Traits.Checkpoint has nothing to delete.
	ClearCheckpoint(ctx context.Context, key string) error
	// FlushAll empties the whole target before a snapshot that replaces an earlier one, where
	// the kind does so (a single target: FLUSHALL), and reports whether it did. A cluster or a
	// pool is not emptied; an rdb file has nothing to empty (each job writes a new one). The
	// caller makes sure no other source node writes into the target (design rule 6).
	FlushAll(ctx context.Context) (bool, error)
	// Inventory counts what the target holds besides rmtd's own keys (those under the
	// checkpoint prefix own), with a few of their names: before a job loads anything. With
	// owns, only the keys it reports count (a process of a sharded job: its masters' keys).
	Inventory(ctx context.Context, owns func(db int, key []byte) bool, own string) (Inventory, error)
	// DeleteKeys removes from the target the keys owns reports as one source node's (every
	// key when owns is nil), leaving rmtd's own, and returns how many: what a load of that
	// node left before a new one replaces it.
	DeleteKeys(ctx context.Context, owns func(db int, key []byte) bool, own string) (int64, error)
	// Abandon records that one source node will never make its Writer (its job failed before
	// it could), for a kind that waits for every node: an rdb file is then finished without
	// being renamed into place. It does nothing for the others.
	Abandon()
	// Close releases what the Target holds itself; each Writer is closed by its user.
	Close() error
}

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
	// value (nil: e.Value): a value not held as one RESTORE copied from value, or as native
	// commands (BigKeyBytes chooses), or into an rdb file; in bounded memory whatever its size.
	// value may be read after Rewrite returned, until WaitRDB does (an io.ReaderAt, such as
	// Entries.Value gives, is read again for a resend).
	Rewrite(e *rdb.Entry, value io.Reader) error
	// WaitRDB returns when everything the snapshot sent has its reply (or is written), after the
	// retries and redirects it needs. It returns an error only when the target broke or ctx ended.
	WaitRDB(ctx context.Context) error

	// StartOplog prepares the stream at (offset, db): where it resumes. Apply calls it with
	// (0, 0) when it was not called. A kind that takes no stream returns ErrNoOplog.
	StartOplog(ctx context.Context, offset int64, db int) error
	// Apply forwards one command of the stream, in order; end is the replication offset just
	// after it. A big command (aof.Command.Big) is read from its Input, re-chunked where that
	// keeps its meaning or copied whole (bigcmd.go); Apply returns once it is written, its
	// chunks counting as one command. Replication chatter (PING, REPLCONF) and PUBLISH are
	// skipped and counted. It
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
	// CheckTarget reads, on a kind that keeps checkpoints, the checkpoint this writer last had
	// acknowledged, and returns an error wrapping ErrTargetLost when it is gone or behind: the
	// target lost data (it restarted empty, or from an older save). Other kinds return nil.
	CheckTarget(ctx context.Context) error
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

// Every kind has a Writer and a Target.
var (
	_ Writer = (*Single)(nil)
	_ Writer = (*Cluster)(nil)
	_ Writer = (*Twemproxy)(nil)
	_ Writer = (*RDBFileNode)(nil)

	_ Target = (*singleTarget)(nil)
	_ Target = (*clusterTarget)(nil)
	_ Target = (*twemproxyTarget)(nil)
	_ Target = (*rdbFileTarget)(nil)
)

// nodeLogger is the logger of a Writer: the node's, or the target's.
func (c *Config) nodeLogger(o WriterOptions) *zap.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return c.Logger
}
