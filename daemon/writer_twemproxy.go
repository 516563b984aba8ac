package daemon

import (
	"context"
	"fmt"
	"strings"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/shard"
	"github.com/rmt-project/rmt/target"
)

// newTwemproxyWriter makes the writer of one node job for a `twemproxy` target: every key and
// command straight to the backend nutcracker would pick (target.servers are the pool's
// "host:port:weight [name]" lines, with target.hash, hash_tag and distribution), never through
// the proxy. There is no target-side checkpoint (see checkpointKey): a restarted job begins with
// a full sync.
func newTwemproxyWriter(ctx context.Context, j *nodeJob, rdbVersion int) (target.Writer, error) {
	cfg := j.d.cfg
	conn := j.targetOptions()
	conn.Addr = "" // each backend's, from the pool's lines
	servers, err := parsedServers(cfg.Target)
	if err != nil {
		return nil, err
	}
	w, err := target.NewTwemproxy(ctx, target.TwemproxyOptions{
		Servers:      servers,
		Hash:         cfg.Target.Hash,
		HashTag:      cfg.Target.HashTag,
		Distribution: cfg.Target.Distribution,
		NodeOptions: target.NodeOptions{
			Conn:             conn,
			Conns:            threads(cfg.Common.Threads),
			SourceRDBVersion: rdbVersion,
			BigKeyBytes:      cfg.Common.BigKeyBytes,
			Logger:           j.log.Named("target"),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("target twemproxy %s: %w", strings.Join(cfg.Target.Servers, ","), err)
	}
	return w, nil
}

// parsedServers are a pool's servers as conf parses them (for twemproxy, its "host:port:weight
// [name]" lines), in the form internal/shard and target take.
func parsedServers(p conf.Pool) ([]shard.Server, error) {
	out := make([]shard.Server, len(p.Servers))
	for i, line := range p.Servers {
		s, err := conf.ParseServer(p.Type, line)
		if err != nil {
			return nil, fmt.Errorf("servers[%d]: %w", i, err)
		}
		out[i] = shard.Server{Addr: s.Addr, Weight: s.Weight, Name: s.Name}
	}
	return out, nil
}
