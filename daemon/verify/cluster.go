package verify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/mediocregopher/radix/v4"
	"github.com/mediocregopher/radix/v4/resp/resp3"

	"github.com/rmt-project/rmt/internal/topology"
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
		table, masters, err := slotMap(ctx, probe, addr)
		probe.close()
		var ae askError
		if errors.As(err, &ae) {
			lastErr = ae.err
			continue
		}
		if err != nil {
			return err
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

// askError is a failure to get the slot map from one seed: the next may answer.
type askError struct{ err error }

func (e askError) Error() string { return e.err.Error() }

// slotMap asks probe, the node at addr, for the slot map: CLUSTER SLOTS, or where a service
// refuses it, CLUSTER SHARDS (7.0+), then CLUSTER NODES. An askError says no answer came; any
// other error is one of the reply.
func slotMap(ctx context.Context, probe *cmdNode, addr string) (table [clusterSlots]string, masters []string, err error) {
	host, _, _ := net.SplitHostPort(addr)
	var reply []interface{}
	askErr := probe.do(ctx, 0, radix.Cmd(&reply, "CLUSTER", "SLOTS"))
	if askErr == nil {
		table, masters, err = parseClusterSlots(reply, host)
		if err != nil {
			err = fmt.Errorf("%s: CLUSTER SLOTS: %w", probe, err)
		}
		return table, masters, err
	}
	var refused resp3.SimpleError
	if !errors.As(askErr, &refused) {
		return table, nil, askError{fmt.Errorf("%s: CLUSTER SLOTS: %w", probe, askErr)}
	}
	askErr = fmt.Errorf("%s: CLUSTER SLOTS: %w", probe, askErr)
	o := topology.Options{DefaultHost: host}
	for _, sub := range []string{"SHARDS", "NODES"} {
		var m *topology.Map
		if sub == "NODES" {
			var text string
			if e := probe.do(ctx, 0, radix.Cmd(&text, "CLUSTER", sub)); e != nil {
				askErr = errors.Join(askErr, fmt.Errorf("CLUSTER %s: %w", sub, e))
				continue
			}
			m, err = topology.ParseNodes([]byte(text), o)
		} else {
			var r []any
			if e := probe.do(ctx, 0, radix.Cmd(&r, "CLUSTER", sub)); e != nil {
				askErr = errors.Join(askErr, fmt.Errorf("CLUSTER %s: %w", sub, e))
				continue
			}
			m, err = topology.ParseShards(r, o)
		}
		if err != nil {
			return table, nil, fmt.Errorf("%s: CLUSTER %s: %w", probe, sub, err)
		}
		if slot := m.Unserved(); slot >= 0 {
			return table, nil, fmt.Errorf("%s: CLUSTER %s: slot %d is not served by any master", probe, sub, slot)
		}
		copy(table[:], m.Table())
		for _, ms := range m.Serving() {
			masters = append(masters, ms.Addr)
		}
		return table, masters, nil
	}
	return table, nil, askError{askErr}
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
