// Package topology says where a deployment's data lives: which master of a Redis Cluster serves
// which slots (one parser each for CLUSTER NODES, CLUSTER SLOTS and CLUSTER SHARDS, giving the
// same Map), and a twemproxy pool's ring over its servers, built in one place.
//
// A cluster, from the text of CLUSTER NODES asked of 10.0.0.1:7000:
//
//	m, err := topology.ParseNodes(text, topology.Options{DefaultHost: "10.0.0.1"})
//	if err != nil { ... }                 // names the line and what is wrong with it
//	if s := m.Unserved(); s >= 0 { ... }   // a slot no reachable master serves
//	for _, master := range m.Serving() {   // reachable masters serving or importing slots
//		keys := master.SlotSet(true)      // the slots whose keys its stream carries
//		_ = master.Addr                   // "10.0.0.2:7000"
//	}
//	table := m.Table()                    // slot → address of the master serving it, "" for none
//
// The same Map comes from a CLUSTER SLOTS or CLUSTER SHARDS reply, as a RESP2 client decodes it
// into []any (arrays as []any, integers as int64, strings as []byte or string): ParseSlots,
// ParseShards. They know less than CLUSTER NODES (no importing or migrating slots, no flags but
// a shard's health).
//
// A twemproxy pool, from servers already parsed (conf reads the "host:port:weight [name]" lines):
//
//	pool, err := topology.NewPool(servers, "fnv1a_64", "ketama", "{}")
//	i := pool.Ring.Pick(key) // index into pool.Servers, where nutcracker puts key
//
// Sentinel discovery (sentinel.go) is the exception: NewSentinels asks a master's Sentinels where
// it is, checks its ROLE, and watches for failovers, through the Dial functions it is given.
//
// Everything else here is a pure function of its input: no I/O. No input makes it panic, and work is
// bounded by the input's size (a slot listed twice is an error, so no reply can make Table or
// Unserved loop over more than the 16,384 slots once each).
package topology
