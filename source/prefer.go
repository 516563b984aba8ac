package source

import (
	"github.com/rmt-project/rmt/internal/topology"
)

// source.prefer_replica on a `redis cluster` source: each master's node links to one of the
// master's replicas (chained replication: the replica forks for rmtd's snapshot, the master
// never does). The replica's stream is its master's, byte for byte, with the same replid and
// offsets, so nothing else changes: the node keeps the master's name, slots and checkpoint.
// Every slot-map read checks the link: one whose replica failed, or now replicates another
// master, moves to another replica of the master (or the master itself when it has none); a
// promoted replica is kept, being the master now.

// replicaLink returns where a node standing for master ms links to: cur when it is still ms
// or a usable replica of it, else ms's first usable replica, else ms.
func replicaLink(ms topology.Master, cur string) string {
	if cur == ms.Addr {
		return cur
	}
	first := ""
	for _, r := range ms.Replicas {
		if !r.Usable() || r.Flags&topology.FlagPFail != 0 {
			continue
		}
		if r.Addr == cur {
			return cur
		}
		if first == "" {
			first = r.Addr
		}
	}
	if first == "" {
		return ms.Addr
	}
	return first
}

// linkAddr is where the node's link replicates from now (or will, once made).
func (n *replicaNode) linkAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.link != nil {
		return n.link.Addr()
	}
	if n.movedTo != "" {
		return n.movedTo
	}
	return n.opts.Addr
}
