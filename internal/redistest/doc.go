// Package redistest is the test harness of every package of rmt: real redis-server and
// nutcracker processes started as children of the test on random loopback ports, a fault
// proxy, a full dataset comparison, a live writer that keeps a source busy, and the RDB
// fixtures of the repository's testdata/.
//
//	src := redistest.StartRedis(t, redistest.WithRDB(redistest.Fixture(t, "redis-7.0.15.rdb")))
//	dst := redistest.StartRedis(t, redistest.WithFlags("--maxmemory", "1gb"))
//	w := redistest.StartWriter(t, src.Addr, redistest.WriterOptions{DBs: []int{0, 1, 15}})
//	// ... migrate src to dst ...
//	w.Stop()
//	redistest.WaitEqual(t, 30*time.Second, src.Addr, dst.Addr) // or CompareRedis(t, src.Addr, dst.Addr)
//
// StartCluster, StartNutcracker and StartProxy start a Redis Cluster, a twemproxy pool and a
// proxy that cuts, blocks, pauses, delays or throttles a connection; WaitFor polls any
// condition against a deadline and reports its last error.
//
// Every helper takes a testing.TB, calls t.Helper() and fails with t.Fatalf; nothing panics,
// nothing sleeps to synchronise, and every process is killed and reaped in t.Cleanup, with the
// tail of its log printed if the test failed. A program or fixture that is missing fails the
// test (`make deps` installs the programs); nothing is skipped for want of it.
//
// The package imports nothing of rmt's but internal/redisfmt, so that the tests inside any
// package (rdb, aof, target, source, daemon, internal/shard...) can use it without a cycle.
package redistest
