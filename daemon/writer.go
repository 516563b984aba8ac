package daemon

import (
	"context"
	"fmt"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/target"
)

// writerFactory makes the writer of one node job for a snapshot of RDB version rdbVersion.
type writerFactory func(ctx context.Context, j *nodeJob, rdbVersion int) (target.Writer, error)

// writerFactories by target type; a type absent here is refused by New.
var writerFactories = map[string]writerFactory{
	conf.TypeSingle:       newSingleWriter,
	conf.TypeRedisCluster: newClusterWriter,
	conf.TypeRDBFile:      newRDBFileWriter,
	conf.TypeTwemproxy:    newTwemproxyWriter,
}

func newSingleWriter(ctx context.Context, j *nodeJob, rdbVersion int) (target.Writer, error) {
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
