package daemon

import (
	"context"
	"testing"

	"github.com/rmt-project/rmt/conf"
	rt "github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/source"
)

// A checkpoint value that does not parse means a full sync, at once: not a target failure to
// retry forever.
func TestResumePointBadCheckpoint(t *testing.T) {
	tgt := rt.StartRedis(t)
	cfg := conf.Default()
	cfg.Source.Servers = []string{"127.0.0.1:1"}
	cfg.Target.Servers = []string{tgt.Addr}
	d, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	j := testPipeline(t, d, "127.0.0.1:1")
	tgt.Do(t, "SET", j.checkpointKey(), "not a checkpoint")
	cp, err := j.resumePoint(context.Background())
	if cp != nil || err != nil {
		t.Fatalf("resumePoint: %+v, %v; want a full sync", cp, err)
	}
	tgt.Do(t, "SET", j.checkpointKey(), "abc 42 3")
	if cp, err = j.resumePoint(context.Background()); err != nil || cp == nil || cp.Offset != 42 || cp.DB != 3 {
		t.Fatalf("resumePoint: %+v, %v; want offset 42 in db 3", cp, err)
	}
}

// A master without a checkpoint adopts the furthest one of its replication history left under
// other names (a failover), removes the stale ones, and leaves other histories alone.
func TestAdoptCheckpoint(t *testing.T) {
	src, tgt := rt.StartRedis(t), rt.StartRedis(t)
	replid := src.Info(t, "replication")["master_replid"]
	cfg := conf.Default()
	cfg.Source.Servers = []string{src.Addr}
	cfg.Target.Servers = []string{tgt.Addr}
	d, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	j := testPipeline(t, d, src.Addr)
	key := j.checkpointKey()
	tgt.Do(t, "SET", "rmt:checkpoint:10.0.0.1:7000", replid+" 100 0")
	tgt.Do(t, "SET", "rmt:checkpoint:10.0.0.2:7000", replid+" 500 2")
	tgt.Do(t, "SET", "rmt:checkpoint:10.0.0.3:7000", "0123456789012345678901234567890123456789 900 0")
	cp, err := j.adoptCheckpoint(context.Background(), key)
	if err != nil || cp == nil || cp.Offset != 500 || cp.DB != 2 {
		t.Fatalf("adopted %+v, %v; want offset 500 in db 2", cp, err)
	}
	if tgt.Do(t, "EXISTS", key) != int64(1) || tgt.Do(t, "EXISTS", "rmt:checkpoint:10.0.0.1:7000", "rmt:checkpoint:10.0.0.2:7000") != int64(0) ||
		tgt.Do(t, "EXISTS", "rmt:checkpoint:10.0.0.3:7000") != int64(1) {
		t.Fatalf("checkpoints left: %d own, %d of this history, %d of another",
			tgt.Do(t, "EXISTS", key), tgt.Do(t, "EXISTS", "rmt:checkpoint:10.0.0.1:7000", "rmt:checkpoint:10.0.0.2:7000"),
			tgt.Do(t, "EXISTS", "rmt:checkpoint:10.0.0.3:7000"))
	}
	if cp, err := j.adoptCheckpoint(context.Background(), key); err != nil || cp != nil {
		t.Fatalf("a second adoption found %+v, %v (its own key is not another's)", cp, err)
	}
}

// testPipeline is the pipeline of d's source node name, made as Run makes it.
func testPipeline(t *testing.T, d *Daemon, name string) *pipeline {
	t.Helper()
	sc, err := d.sourceConfig(0)
	if err != nil {
		t.Fatal(err)
	}
	src, err := source.Open(context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range src.Nodes {
		if n.Name() == name {
			return newPipeline(d, n)
		}
	}
	t.Fatalf("no source node %s", name)
	return nil
}
