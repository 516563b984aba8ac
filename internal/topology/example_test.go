package topology_test

import (
	"fmt"

	"github.com/rmt-project/rmt/internal/shard"
	"github.com/rmt-project/rmt/internal/topology"
)

// A cluster source: the masters to link to, each with the slots whose keys its stream carries
// (served and importing), every slot served by a reachable master or an error.
func ExampleParseNodes() {
	text := "a1 10.0.0.1:7000@17000 master - 0 0 1 connected 0-8000 [100->-b2]\n" +
		"b2 :7001@17001 myself,master - 0 0 2 connected 8001-16383 [100-<-a1]\n" +
		"c3 10.0.0.3:7002@17002 slave a1 0 0 1 connected\n" +
		"d4 10.0.0.4:7003@17003 master,fail - 0 0 3 connected\n"
	m, err := topology.ParseNodes([]byte(text), topology.Options{DefaultHost: "10.0.0.2"}) // the host asked
	if err != nil {
		fmt.Println(err)
		return
	}
	if s := m.Unserved(); s >= 0 {
		fmt.Println("slot", s, "is not served")
		return
	}
	for _, ms := range m.Serving() {
		keys := ms.SlotSet(true)
		fmt.Println(ms.ID, ms.Addr, keys.String(), len(ms.Replicas), "replica(s)")
	}
	// Output:
	// a1 10.0.0.1:7000 0-8000 1 replica(s)
	// b2 10.0.0.2:7001 100,8001-16383 0 replica(s)
}

// A -C job's routing: CLUSTER SLOTS as radix decodes it, one node per master, each key to the
// master of its slot.
func ExampleParseSlots() {
	reply := []any{
		[]any{int64(0), int64(8000), []any{[]byte("10.0.0.1"), int64(7000), []byte("a1")}},
		[]any{int64(8001), int64(16383), []any{[]byte(""), int64(7001), []byte("b2")}},
	}
	m, err := topology.ParseSlots(reply, topology.Options{DefaultHost: "10.0.0.2"})
	if err != nil || m.Unserved() >= 0 {
		fmt.Println("no routing:", err)
		return
	}
	for _, ms := range m.Masters { // in order of first appearance: one node each
		fmt.Println(ms.Addr)
	}
	table := m.Table()
	fmt.Println(table[shard.Slot([]byte("user:42"))])
	// Output:
	// 10.0.0.1:7000
	// 10.0.0.2:7001
	// 10.0.0.2:7001
}

// A twemproxy pool (source, target or -C job): servers as conf parsed them, the ring built once.
func ExampleNewPool() {
	servers := []shard.Server{{Addr: "10.0.0.1:6379", Weight: 1, Name: "a"}, {Addr: "10.0.0.2:6379", Weight: 1, Name: "b"}}
	pool, err := topology.NewPool(servers, "fnv1a_64", "ketama", "{}")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(pool.Ring.Deterministic(), pool.Servers[pool.Ring.Pick([]byte("{user}:1"))].Addr ==
		pool.Servers[pool.Ring.Pick([]byte("{user}:2"))].Addr)
	// Output:
	// true true
}
