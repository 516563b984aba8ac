// Package shard maps a key to the node that holds it, bit-exact with the programs that decide it:
// Redis Cluster (CRC16 slots and {hash tags}) and twemproxy / nutcracker 0.5.0 (its twelve hash
// functions, its hash_tag, and its ketama, modula and random distributions).
//
// Cluster:
//
//	slot := shard.Slot([]byte("user:{42}:name")) // 0..16383, as CLUSTER KEYSLOT
//
// twemproxy, with the pool's servers as they appear in its config ("host:port:weight [name]"):
//
//	ring, err := shard.NewRing([]shard.Server{
//		{Addr: "10.0.0.1:6379", Weight: 1, Name: "a"},
//		{Addr: "10.0.0.2:6379", Weight: 2}, // no name: twemproxy uses "10.0.0.2:6379"
//	}, "fnv1a_64", "ketama", "{}")
//	if err != nil { ... }
//	i := ring.Pick([]byte("user:42")) // index into the slice given to NewRing
//
// Everything here is a pure function of its arguments: no I/O, no package state that changes,
// no allocation on Slot, Hash functions or Pick. A Ring is immutable and safe for concurrent use.
//
// The facts behind each function (twemproxy's signed char bytes, its 32-bit "64-bit" FNV, its
// CRC16 that is never masked to 16 bits, ketama's float32 point counts, modula's weights, the
// order it sorts servers in) are written beside the code, with the twemproxy source they come
// from, and checked by tests against a running nutcracker and redis-server.
package shard
