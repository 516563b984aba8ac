package verify

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/mediocregopher/radix/v4"
	"github.com/mediocregopher/radix/v4/resp/resp3"

	"github.com/rmt-project/rmt/internal/shard"
	"github.com/rmt-project/rmt/internal/topology"
)

// discoverCluster asks the seeds, in turn, for the cluster's slot map (clusterMap) and fills the
// set with one node per master and a slot table routing every key to its master. Every slot must
// be served.
func (s *nodeSet) discoverCluster(ctx context.Context, seeds []string, newNode func(addr string) *cmdNode) error {
	var lastErr error
	for _, seed := range seeds {
		probe := newNode(serverAddr(seed))
		m, err := clusterMap(ctx, probe)
		probe.close()
		var bad *badTopology
		switch {
		case errors.As(err, &bad):
			return err
		case err != nil:
			lastErr = err
			continue
		}
		table, masters, err := routes(m)
		if err != nil {
			return fmt.Errorf("%s: %w", probe, err)
		}
		byAddr := map[string]*cmdNode{}
		for _, a := range masters {
			n := newNode(a)
			byAddr[a] = n
			s.nodes = append(s.nodes, n)
		}
		var route [topology.SlotCount]*cmdNode
		for slot, a := range table {
			route[slot] = byAddr[a]
		}
		s.route = func(key string) *cmdNode { return route[shard.Slot([]byte(key))] }
		return nil
	}
	return fmt.Errorf("%s: no seed answered: %w", s.side, lastErr)
}

// badTopology is a slot map a node gave that does not parse: the seed answered, wrongly.
type badTopology struct{ err error }

func (e *badTopology) Error() string { return e.err.Error() }
func (e *badTopology) Unwrap() error { return e.err }

// clusterQueries are the ways to read a cluster's slot map, in the order tried: CLUSTER SLOTS,
// then, from a server that refuses it (an ACL without it, a managed service's restricted
// commands, a release that dropped it), CLUSTER SHARDS (Redis 7) and CLUSTER NODES. Each parses
// the reply as radix decodes it into an interface{}.
var clusterQueries = []struct {
	sub   string
	parse func(reply interface{}, o topology.Options) (*topology.Map, error)
}{
	{"SLOTS", func(reply interface{}, o topology.Options) (*topology.Map, error) {
		a, _ := reply.([]interface{})
		return topology.ParseSlots(a, o)
	}},
	{"SHARDS", func(reply interface{}, o topology.Options) (*topology.Map, error) {
		a, _ := reply.([]interface{})
		return topology.ParseShards(a, o)
	}},
	{"NODES", func(reply interface{}, o topology.Options) (*topology.Map, error) {
		switch text := reply.(type) {
		case []byte:
			return topology.ParseNodes(text, o)
		case string:
			return topology.ParseNodes([]byte(text), o)
		}
		return nil, fmt.Errorf("reply %T, want text", reply)
	}},
}

// clusterMap reads the slot map from n, trying the next query when the server answers one with
// an error reply; a node that shows itself without an IP is at n's host. A reply that does not
// parse is a *badTopology.
func clusterMap(ctx context.Context, n *cmdNode) (*topology.Map, error) {
	host, _, _ := net.SplitHostPort(n.addr)
	o := topology.Options{DefaultHost: host}
	var refused error
	for _, q := range clusterQueries {
		var reply interface{}
		err := n.do(ctx, 0, radix.Cmd(&reply, "CLUSTER", q.sub))
		var refusal resp3.SimpleError
		switch {
		case errors.As(err, &refusal): // the connection is still good for the next query
			refused = errors.Join(refused, fmt.Errorf("CLUSTER %s: %w", q.sub, err))
			continue
		case err != nil:
			return nil, fmt.Errorf("%s: CLUSTER %s: %w", n, q.sub, err)
		}
		m, err := q.parse(reply, o)
		if err != nil {
			return nil, &badTopology{fmt.Errorf("%s: CLUSTER %s: %w", n, q.sub, err)}
		}
		return m, nil
	}
	return nil, fmt.Errorf("%s: the slot map is refused: %w", n, refused)
}

// routes turns a slot map into the master address of every slot and the list of masters, in
// the reply's order. Every slot must be served by a reachable master.
func routes(m *topology.Map) (table, masters []string, err error) {
	if slot := m.Unserved(); slot >= 0 {
		return nil, nil, fmt.Errorf("slot %d is not served by any master", slot)
	}
	for _, ms := range m.Serving() {
		masters = append(masters, ms.Addr)
	}
	return m.Table(), masters, nil
}
