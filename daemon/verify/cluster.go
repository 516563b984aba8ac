package verify

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/mediocregopher/radix/v4"
)

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// discoverCluster asks the seeds, in turn, for CLUSTER SLOTS and fills the set with one node
// per master and a slot table routing every key to its master. Every slot must be served.
func (s *nodeSet) discoverCluster(ctx context.Context, seeds []string, newNode func(addr string) *cmdNode) error {
	var lastErr error
	for _, seed := range seeds {
		addr := serverAddr(seed)
		probe := newNode(addr)
		var reply []interface{}
		err := probe.do(ctx, 0, radix.Cmd(&reply, "CLUSTER", "SLOTS"))
		probe.close()
		if err != nil {
			lastErr = fmt.Errorf("%s: CLUSTER SLOTS: %w", probe, err)
			continue
		}
		host, _, _ := net.SplitHostPort(addr)
		table, masters, err := parseClusterSlots(reply, host)
		if err != nil {
			return fmt.Errorf("%s: CLUSTER SLOTS: %w", probe, err)
		}
		byAddr := map[string]*cmdNode{}
		for _, m := range masters {
			n := newNode(m)
			byAddr[m] = n
			s.nodes = append(s.nodes, n)
		}
		var route [clusterSlots]*cmdNode
		for slot, a := range table {
			route[slot] = byAddr[a]
		}
		s.route = func(key string) *cmdNode { return route[radix.ClusterSlot([]byte(key))] }
		return nil
	}
	return fmt.Errorf("%s: no seed answered: %w", s.side, lastErr)
}

// parseClusterSlots turns a CLUSTER SLOTS reply into the master address of every slot and the
// list of masters, in order of first appearance. An empty IP means the host we asked.
func parseClusterSlots(reply []interface{}, seedHost string) ([clusterSlots]string, []string, error) {
	var table [clusterSlots]string
	var masters []string
	seen := map[string]bool{}
	for i, r := range reply {
		rng, ok := r.([]interface{})
		if !ok || len(rng) < 3 {
			return table, nil, fmt.Errorf("range %d: want [start end master ...], got %v", i, r)
		}
		start, ok1 := rng[0].(int64)
		end, ok2 := rng[1].(int64)
		if !ok1 || !ok2 || start < 0 || end < start || end >= clusterSlots {
			return table, nil, fmt.Errorf("range %d: bad slots %v..%v", i, rng[0], rng[1])
		}
		m, ok := rng[2].([]interface{})
		if !ok || len(m) < 2 {
			return table, nil, fmt.Errorf("range %d: bad master %v", i, rng[2])
		}
		ip, ok1 := m[0].([]byte)
		port, ok2 := m[1].(int64)
		if !ok1 || !ok2 || port <= 0 || port > 65535 {
			return table, nil, fmt.Errorf("range %d: bad master address %v", i, m)
		}
		host := string(ip)
		if host == "" || host == "?" {
			host = seedHost
		}
		addr := net.JoinHostPort(host, strconv.FormatInt(port, 10))
		if !seen[addr] {
			seen[addr] = true
			masters = append(masters, addr)
		}
		for slot := start; slot <= end; slot++ {
			table[slot] = addr
		}
	}
	for slot, a := range table {
		if a == "" {
			return table, nil, fmt.Errorf("slot %d is not served by any master", slot)
		}
	}
	return table, masters, nil
}
