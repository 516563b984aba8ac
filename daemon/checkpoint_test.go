package daemon

import (
	"context"
	"testing"

	"github.com/rmt-project/rmt/conf"
)

// A checkpoint value that does not parse means a full sync, at once: not a target failure to
// retry forever.
func TestResumePointBadCheckpoint(t *testing.T) {
	tgt := cjStartRedis(t)
	cfg := conf.Default()
	cfg.Source.Servers = []string{"127.0.0.1:1"}
	cfg.Target.Servers = []string{tgt.Addr}
	d, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	j := newNodeJob(d, "127.0.0.1:1", 0)
	tgt.Do("SET", j.checkpointKey(), "not a checkpoint")
	cp, err := j.resumePoint(context.Background())
	if cp != nil || err != nil {
		t.Fatalf("resumePoint: %+v, %v; want a full sync", cp, err)
	}
	tgt.Do("SET", j.checkpointKey(), "abc 42 3")
	if cp, err = j.resumePoint(context.Background()); err != nil || cp == nil || cp.Offset != 42 || cp.DB != 3 {
		t.Fatalf("resumePoint: %+v, %v; want offset 42 in db 3", cp, err)
	}
}
