package redistest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// AddReplicas gives every master of c one replica (a cluster node that joins with CLUSTER MEET
// and CLUSTER REPLICATE), started with opts, and returns once each is synced with its master
// and every node lists it. Replicas[i] replicates Nodes[i].
func (c *Cluster) AddReplicas(t testing.TB, opts ...RedisOption) []*Redis {
	t.Helper()
	opts = append([]RedisOption{WithCluster()}, opts...)
	ids := make([]string, len(c.Nodes))
	for i, m := range c.Nodes {
		ids[i] = m.DoString(t, "CLUSTER", "MYID")
	}
	reps := make([]*Redis, len(c.Nodes))
	for i := range c.Nodes {
		r := StartRedis(t, opts...)
		bus := r.Do(t, "CONFIG", "GET", "cluster-port").([]interface{})[1]
		c.Nodes[0].Do(t, "CLUSTER", "MEET", "127.0.0.1", r.Port, bus)
		reps[i] = r
	}
	for i, r := range reps {
		WaitFor(t, 30*time.Second, func() error {
			_, err := r.DoErr(t, "CLUSTER", "REPLICATE", ids[i])
			return err // "Unknown node" until the MEET has spread
		})
	}
	for i, r := range reps {
		WaitReplicaSynced(t, c.Nodes[i], r, 30*time.Second)
	}
	WaitFor(t, 30*time.Second, func() error {
		for _, n := range append(append([]*Redis{}, c.Nodes...), reps...) {
			got := 0
			for _, line := range strings.Split(n.DoString(t, "CLUSTER", "NODES"), "\n") {
				if f := strings.Fields(line); len(f) > 3 && strings.Contains(f[2], "slave") {
					got++
				}
			}
			if got != len(reps) {
				return fmt.Errorf("node %s lists %d replicas, want %d", n.Addr, got, len(reps))
			}
		}
		return nil
	})
	return reps
}
