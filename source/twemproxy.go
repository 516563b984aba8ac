package source

import (
	"context"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/internal/topology"
)

// openTwemproxy is a `twemproxy` source: one replica node per backend of the pool, in the
// pool's order, each keeping only the keys the pool's ring places on it (in db 0; filter.go).
// With distribution random a key's home cannot be known: every key of every backend is kept.
func openTwemproxy(_ context.Context, c Config) (*Source, error) {
	pool, err := topology.NewPool(c.Backends, c.Hash, c.Distribution, c.HashTag)
	if err != nil {
		return nil, err
	}
	deterministic := pool.Ring.Deterministic()
	if !deterministic {
		c.Logger.Warn("twemproxy source with distribution random: a key's home cannot be known, every key of every backend is kept")
	}
	s := &Source{}
	hosts := c.hostTurns()
	several := len(pool.Servers) > 1
	for i, b := range pool.Servers {
		own := &ownership{log: c.Logger.With(zap.String("node", b.Addr))}
		if deterministic {
			own.set(ringOwner{ring: pool.Ring, index: i})
		}
		n := newReplicaNode(b.Addr, c.linkOptions(b.Addr), hosts, func(db int) Filter {
			return &streamFilter{own: own, several: several, db: db, log: own.log}
		})
		n.own = own
		s.Nodes = append(s.Nodes, n)
	}
	return s, nil
}
