package verify

import (
	"fmt"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/confpool"
	"github.com/rmt-project/rmt/internal/topology"
)

// openTwemproxy fills the set with one node per backend of a twemproxy pool (its servers as in
// twemproxy's config, "host:port:weight [name]") and routes each key to the backend nutcracker
// would pick (the pool's hash, hash_tag and distribution). The proxy itself is never used: it
// refuses INFO, SCAN and SELECT, which the jobs need.
func (s *nodeSet) openTwemproxy(p conf.Pool, newNode func(addr string) *cmdNode) error {
	pool, err := twemproxyPool(s.side, p)
	if err != nil {
		return err
	}
	for _, sv := range pool.Servers {
		s.nodes = append(s.nodes, newNode(sv.Addr))
	}
	nodes := s.nodes
	s.route = func(key string) *cmdNode { return nodes[pool.Ring.Pick([]byte(key))] }
	return nil
}

// twemproxyPool builds pool p's servers and key → backend ring, refusing a random
// distribution: a key's backend cannot be known, so nothing can be checked or written where it
// will be found.
func twemproxyPool(side string, p conf.Pool) (*topology.Pool, error) {
	if len(p.Servers) == 0 {
		return nil, fmt.Errorf("%s: type %q wants at least one server", side, p.Type)
	}
	servers, err := confpool.Servers(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", side, err)
	}
	pool, err := topology.NewPool(servers, p.Hash, p.Distribution, p.HashTag)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", side, err)
	}
	if !pool.Ring.Deterministic() {
		return nil, fmt.Errorf("%s: twemproxy distribution %q puts keys on random backends: they cannot be found again",
			side, p.Distribution)
	}
	return pool, nil
}
