// Package test holds rmt's end-to-end tests: rmtd (in-process through daemon, or the built
// binary) migrating between real redis-server and nutcracker processes, under a live writer and
// injected faults, checked by comparing whole datasets. The harness they run on, shared with
// every package's tests, is internal/redistest:
//
//	src := redistest.StartRedis(t, redistest.WithRDB(redistest.Fixture(t, "redis-7.0.15.rdb")))
//	dst := redistest.StartRedis(t)
//	r := StartRmtd(t, singleConfig(t, src, dst))
//	redistest.WaitEqual(t, 30*time.Second, src.Addr, dst.Addr)
//
// The package has no code of its own besides the tests.
package test
