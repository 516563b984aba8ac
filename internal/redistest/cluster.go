package redistest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// Cluster is a Redis Cluster of masters started by StartCluster, slots split evenly in order.
type Cluster struct {
	Nodes []*Redis
	Addrs []string
}

// StartCluster starts n cluster-enabled servers, gives each an even, contiguous
// share of the 16384 slots (node i from i*16384/n), joins them with CLUSTER MEET and returns
// once every node reports cluster_state:ok, knows all n nodes, and has a config epoch of its
// own (nodes joined by MEET all start at epoch 0; while two collide, a slot moved to one of them
// can go back to its old owner).
func StartCluster(t testing.TB, n int, opts ...RedisOption) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("StartCluster: %d nodes", n)
	}
	c := &Cluster{Nodes: make([]*Redis, n)}
	opts = append([]RedisOption{WithCluster()}, opts...)
	for i := range c.Nodes {
		r := StartRedis(t, opts...)
		c.Nodes[i] = r
		c.Addrs = append(c.Addrs, r.Addr)
		lo, hi := i*clusterSlots/n, (i+1)*clusterSlots/n-1
		r.Do(t, "CLUSTER", "ADDSLOTSRANGE", lo, hi)
	}
	for _, r := range c.Nodes[1:] {
		bus := r.Do(t, "CONFIG", "GET", "cluster-port").([]interface{})[1]
		c.Nodes[0].Do(t, "CLUSTER", "MEET", "127.0.0.1", r.Port, bus)
	}
	WaitFor(t, 30*time.Second, func() error {
		epochs := map[string]string{} // config epoch → node
		for _, r := range c.Nodes {
			info := ParseInfo(r.DoString(t, "CLUSTER", "INFO"))
			if info["cluster_state"] != "ok" || info["cluster_known_nodes"] != strconv.Itoa(n) ||
				info["cluster_slots_assigned"] != strconv.Itoa(clusterSlots) {
				return fmt.Errorf("node %s: state %s, %s nodes known, %s slots assigned", r.Addr,
					info["cluster_state"], info["cluster_known_nodes"], info["cluster_slots_assigned"])
			}
			e := info["cluster_my_epoch"]
			if other, dup := epochs[e]; dup {
				return fmt.Errorf("nodes %s and %s both at config epoch %s", other, r.Addr, e)
			}
			epochs[e] = r.Addr
		}
		return nil
	})
	return c
}

// Dump reads every node and merges the results; a key found on two nodes fails the test.
func (c *Cluster) Dump(t testing.TB) *Dataset {
	t.Helper()
	parts := make([]*Dataset, len(c.Nodes))
	for i, r := range c.Nodes {
		parts[i] = r.Dump(t)
	}
	return MergeDatasets(t, "cluster "+strings.Join(c.Addrs, ","), parts...)
}

// NodeForSlot returns the node StartCluster gave slot to.
func (c *Cluster) NodeForSlot(slot int) *Redis {
	n := len(c.Nodes)
	for i := n - 1; i >= 0; i-- {
		if slot >= i*clusterSlots/n {
			return c.Nodes[i]
		}
	}
	return c.Nodes[0]
}

// NodeForKey returns the node holding key's slot (asked with CLUSTER KEYSLOT).
func (c *Cluster) NodeForKey(t testing.TB, key string) *Redis {
	t.Helper()
	return c.NodeForSlot(int(c.Nodes[0].Do(t, "CLUSTER", "KEYSLOT", key).(int64)))
}
