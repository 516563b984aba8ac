// Package test holds rmt's end-to-end tests and the harness they run on: real redis-server and
// nutcracker processes started as children of the test on random loopback ports, a full
// dataset comparison, and a live writer that keeps a source busy.
//
//	src := StartRedis(t, WithRDB("../../shared/fixtures/rdb/redis-7.0.15.rdb"))
//	dst := StartRedis(t)
//	w := StartWriter(t, src.Addr, WriterOptions{DBs: []int{0, 1, 15}})
//	// ... migrate src to dst ...
//	w.Stop()
//	WaitEqual(t, 30*time.Second, src.Addr, dst.Addr)   // or CompareRedis(t, src.Addr, dst.Addr)
//
// Every helper takes a testing.TB, calls t.Helper() and fails with t.Fatalf; nothing panics,
// nothing sleeps to synchronise (WaitFor polls a condition against a deadline), and every
// process is killed and reaped in t.Cleanup, with the tail of its log printed if the test failed.
package test
