package daemon

import (
	"context"
	"fmt"
	"strings"

	"github.com/rmt-project/rmt/target"
)

// newClusterWriter makes the writer of one node job for a `redis cluster` target: the slot map
// from any of target.servers, RESTOREs and the oplog routed by slot to every master.
func newClusterWriter(ctx context.Context, j *nodeJob, rdbVersion int) (target.Writer, error) {
	cfg := j.d.cfg
	conn := j.targetOptions()
	conn.Addr = "" // each master's, from the slot map
	w, err := target.NewCluster(ctx, target.ClusterOptions{
		Servers: cfg.Target.Servers,
		NodeOptions: target.NodeOptions{
			Conn:             conn,
			Conns:            threads(cfg.Common.Threads),
			SourceRDBVersion: rdbVersion,
			BigKeyBytes:      cfg.Common.BigKeyBytes,
			Logger:           j.log.Named("target"),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("target cluster %s: %w", strings.Join(cfg.Target.Servers, ","), err)
	}
	return w, nil
}
