package daemon

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/confpool"
	"github.com/rmt-project/rmt/source"
)

// sourceConfig is the source.Config of the job; port is the admin port, which the links
// announce with REPLCONF listening-port.
func (d *Daemon) sourceConfig(port int) (source.Config, error) {
	cfg := d.cfg
	p := cfg.Source
	user, pass := p.Auth()
	c := source.Config{
		Kind:       p.Type,
		Mode:       p.Mode,
		Dir:        cfg.Common.Dir,
		SourceSafe: cfg.Common.SourceSafe && !conf.IsFile(p.Type),
		Link: source.LinkOptions{
			Username:      user,
			Password:      pass,
			Timeout:       p.Timeout,
			ListeningPort: port,
			MaxSpoolBytes: cfg.Common.MaxSpoolBytes,
			TLS:           d.sourceTLS,
			Logger:        d.log.Named("link"),
			// Managed services may rename them for a customer.
			PSyncCommand:    p.PSyncCommand,
			ReplconfCommand: p.ReplconfCommand,
		},
		Hash:          p.Hash,
		HashTag:       p.HashTag,
		Distribution:  p.Distribution,
		MasterName:    p.MasterName,
		PreferReplica: p.PreferReplica,
		BigKeyBytes:   cfg.Common.BigKeyBytes,
		Logger:        d.log,
	}
	c.SentinelUser, c.SentinelPass = sentinelAuth(p)
	if m := cfg.Common.MaxSpoolBytes; m > 0 {
		// Only whole segments are trimmed once applied: keep them small beside the limit, or a
		// spool at its limit could never make room.
		c.Link.SpoolSegmentBytes = min(max(m/8, 64<<10), source.DefaultSpoolSegmentBytes)
	}
	servers, err := confpool.Servers(p)
	if err != nil {
		return c, fmt.Errorf("source.%w", err)
	}
	c.Backends = servers
	for _, s := range servers {
		c.Servers = append(c.Servers, s.Addr)
	}
	if c.Dialer, err = confpool.Dialer(p); err != nil {
		return c, fmt.Errorf("source: %w", err)
	}
	return c, nil
}

// shardOf is common.shard: the nodes this process takes, those whose index (a cluster's masters
// ordered by their first slot, a pool's backends in its order, servers and files as listed) is
// i modulo n. Every node without the rule.
func (d *Daemon) shardOf(nodes []source.Node) []source.Node {
	i, n := d.cfg.Common.ShardRule()
	if n <= 1 {
		return nodes
	}
	var out []source.Node
	for k, node := range nodes {
		if k%n == i {
			out = append(out, node)
		}
	}
	names := make([]string, len(out))
	for k, node := range out {
		names[k] = node.Name()
	}
	d.log.Info("common.shard: this process takes its share of the source nodes", zap.String("shard", d.cfg.Common.Shard),
		zap.Int("of", len(nodes)), zap.Strings("nodes", names))
	return out
}

// loadGate is common.threads: at most that many snapshots load at once.
type loadGate chan struct{}

func newLoadGate(threads int) loadGate {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	return make(loadGate, threads)
}

// wait blocks until fewer than common.threads loads run, and returns the function that ends this
// one's turn (any number of times: only the first call ends it).
func (g loadGate) wait(ctx context.Context) (func(), error) {
	select {
	case g <- struct{}{}:
		return sync.OnceFunc(func() { <-g }), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// sentinelAuth splits sentinel_auth into an ACL user name (may be empty) and a password, as
// redis_auth is.
func sentinelAuth(p conf.Pool) (user, password string) {
	return conf.Pool{RedisAuth: p.SentinelAuth}.Auth()
}
