package topology

import (
	"fmt"
	"net"
	"slices"

	"github.com/rmt-project/rmt/internal/shard"
)

// Pool is a twemproxy pool: its servers, in the order of its config, and the ring that places
// each key on one of them exactly as nutcracker does (its hash, hash_tag and distribution).
type Pool struct {
	Servers []shard.Server
	Ring    *shard.Ring // Pick returns an index into Servers
}

// NewPool checks a pool's servers, already parsed from their "host:port:weight [name]" lines,
// and builds its ring: hash is twemproxy's hash name ("" = fnv1a_64), distribution ketama,
// modula or random ("" = ketama), hashTag "" or two bytes such as "{}". Every server needs a
// "host:port" address (rmt reaches each backend over TCP), no address may be listed twice, and
// the names must be distinct as twemproxy demands. Whether a random ring may be used is the
// caller's call (Ring.Deterministic).
func NewPool(servers []shard.Server, hash, distribution, hashTag string) (*Pool, error) {
	if len(servers) == 0 {
		return nil, fmt.Errorf("topology: twemproxy pool with no servers")
	}
	seen := make(map[string]int, len(servers))
	for i, s := range servers {
		if _, _, err := net.SplitHostPort(s.Addr); err != nil {
			return nil, fmt.Errorf("topology: twemproxy server %d (%q): want host:port: %w", i, clip(s.Addr), err)
		}
		if j, dup := seen[s.Addr]; dup {
			return nil, fmt.Errorf("topology: twemproxy servers %d and %d are both %s", j, i, s.Addr)
		}
		seen[s.Addr] = i
	}
	ring, err := shard.NewRing(servers, hash, distribution, hashTag)
	if err != nil {
		return nil, fmt.Errorf("topology: twemproxy pool: %w", err)
	}
	return &Pool{Servers: slices.Clone(servers), Ring: ring}, nil
}

// Addrs returns the servers' addresses, in the pool's order.
func (p *Pool) Addrs() []string {
	out := make([]string, len(p.Servers))
	for i, s := range p.Servers {
		out[i] = s.Addr
	}
	return out
}
