package verify

import (
	"fmt"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/shard"
)

// openTwemproxy fills the set with one node per backend of a twemproxy pool (its servers as in
// twemproxy's config, "host:port:weight [name]") and routes each key to the backend nutcracker
// would pick (the pool's hash, hash_tag and distribution). The proxy itself is never used: it
// refuses INFO, SCAN and SELECT, which the jobs need.
func (s *nodeSet) openTwemproxy(p conf.Pool, newNode func(addr string) *cmdNode) error {
	ring, err := twemproxyRing(s.side, p)
	if err != nil {
		return err
	}
	for _, line := range p.Servers {
		sv, _ := shard.ParseServer(line) // checked by twemproxyRing
		s.nodes = append(s.nodes, newNode(sv.Addr))
	}
	nodes := s.nodes
	s.route = func(key string) *cmdNode { return nodes[ring.Pick([]byte(key))] }
	return nil
}

// twemproxyRing builds pool p's key → backend map, refusing a random distribution: a key's
// backend cannot be known, so nothing can be checked or written where it will be found.
func twemproxyRing(side string, p conf.Pool) (*shard.Ring, error) {
	if len(p.Servers) == 0 {
		return nil, fmt.Errorf("%s: type %q wants at least one server", side, p.Type)
	}
	servers := make([]shard.Server, len(p.Servers))
	for i, line := range p.Servers {
		sv, err := shard.ParseServer(line)
		if err != nil {
			return nil, fmt.Errorf("%s: servers[%d]: %w", side, i, err)
		}
		servers[i] = sv
	}
	ring, err := shard.NewRing(servers, p.Hash, p.Distribution, p.HashTag)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", side, err)
	}
	if !ring.Deterministic() {
		return nil, fmt.Errorf("%s: twemproxy distribution %q puts keys on random backends: they cannot be found again",
			side, p.Distribution)
	}
	return ring, nil
}
