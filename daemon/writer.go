package daemon

import (
	"context"
	"fmt"
	"io"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/rdb"
	"github.com/rmt-project/rmt/target"
)

// writer is what a node job needs of its target, whatever the target's type: the RDB phase
// (Restore, Rewrite, WaitRDB), then the ordered oplog (StartOplog, Apply, Reconnect, Applied).
// *target.Single is one; a cluster or twemproxy target routes the same calls to its nodes.
type writer interface {
	Restore(e *rdb.Entry) error
	Rewrite(e *rdb.Entry, value io.Reader) error
	WaitRDB(ctx context.Context) error
	StartOplog(ctx context.Context, offset int64, db int) error
	Apply(cmd *aof.Command, end int64) error
	Reconnect(ctx context.Context) (offset int64, db int, err error)
	Applied() (offset int64, db int)
	Stats() target.Stats
	Close() error
}

// writerFactory makes the writer of one node job for a snapshot of RDB version rdbVersion.
type writerFactory func(ctx context.Context, j *nodeJob, rdbVersion int) (writer, error)

// writerFactories by target type; a type absent here is refused by New.
var writerFactories = map[string]writerFactory{
	conf.TypeSingle:       newSingleWriter,
	conf.TypeRedisCluster: newClusterWriter,
	conf.TypeRDBFile:      newRDBFileWriter,
	conf.TypeTwemproxy:    newTwemproxyWriter,
}

func newSingleWriter(ctx context.Context, j *nodeJob, rdbVersion int) (writer, error) {
	cfg := j.d.cfg
	w, err := target.NewSingle(ctx, target.SingleOptions{
		Conn:             j.targetOptions(),
		Conns:            threads(cfg.Common.Threads),
		SourceRDBVersion: rdbVersion,
		BigKeyBytes:      cfg.Common.BigKeyBytes,
		Logger:           j.log.Named("target"),
		CheckpointKey:    j.checkpointKey(),
		Replid:           j.replid,
	})
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", cfg.Target.Servers[0], err)
	}
	return w, nil
}
