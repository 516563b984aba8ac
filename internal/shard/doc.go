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
// Everything here is a pure function of its arguments (but Pick on a random ring, which draws
// from math/rand/v2): no I/O, no package state that changes, no allocation on Slot, Hash
// functions or Pick. A Ring is immutable and safe for concurrent use.
//
// twemproxy facts that a straightforward port gets wrong, each checked against nutcracker 0.5.0
// (TestNutcracker) or its C code (testdata/hashvectors):
//   - key bytes are signed char in one_at_a_time, the four FNVs and hsieh's odd tail byte;
//   - fnv1a_64 and fnv1_64 are 32-bit; crc16 is not masked to 16 bits; crc32 is 15 bits, so
//     crc32 under ketama sends every key to one server;
//   - servers are sorted by name, shorter names first; an unnamed server is "host:port"
//     ("host" on port 11211, "/path:" for a unix socket);
//   - modula is hash % total weight, each server holding weight consecutive slots;
//   - ketama gives a server floorf(weight/total*40*n)*4 points computed in float32 (weights
//     29, 1, 30 give the 29 only 228 points), from md5 of "<name>-<i>" cut to 272 bytes;
//   - an empty key hashes to 0, a pool of one server takes every key.
//
// Each is written beside the code with the twemproxy source it comes from. All but the 11211
// rule (which would need a fixed port) are checked live.
package shard
