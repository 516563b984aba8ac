package verify

import (
	"context"
	"testing"
)

// BenchmarkRunTestInsert writes 100,000 keys of every type per op into a local redis-server.
func BenchmarkRunTestInsert(b *testing.B) {
	src := cjStartRedis(b)
	cfg := cjConfig(src, nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := RunTestInsert(context.Background(), cfg, TestInsertOptions{Keys: 100000})
		if err != nil || res.Failed != 0 {
			b.Fatalf("%+v %v", res, err)
		}
		b.ReportMetric(float64(res.Correct)/res.Elapsed.Seconds(), "keys/s")
	}
}

// BenchmarkRunCheck compares 1000 sampled keys of two identical servers per op.
func BenchmarkRunCheck(b *testing.B) {
	src, tgt := cjStartRedis(b), cjStartRedis(b)
	cfg := cjConfig(src, tgt)
	ctx := context.Background()
	if res, err := RunTestInsert(ctx, cfg, TestInsertOptions{Keys: 20000}); err != nil || res.Failed != 0 {
		b.Fatalf("%+v %v", res, err)
	}
	tgt.copyFrom(src)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := RunCheck(ctx, cfg, CheckOptions{Keys: 1000})
		if err != nil || res.OK != 1000 {
			b.Fatalf("%+v %v", res, err)
		}
		b.ReportMetric(float64(res.Checked)/res.Elapsed.Seconds(), "keys/s")
	}
}
