package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
)

// TestWrongSourcePassword: rmtd says clearly in INFO and in its log that the source refused the
// password, keeps retrying, never shows the password, and migrates once the password is right.
func TestWrongSourcePassword(t *testing.T) {
	const wrong = "not-the-password"
	src := redistest.StartRedis(t, redistest.WithPassword("s3cret"))
	dst := redistest.StartRedis(t)
	src.Do(t, "SET", "k", "v")
	cfg := singleConfig(t, src, dst)
	cfg.Source.RedisAuth = wrong
	r := StartRmtd(t, cfg)

	redistest.WaitFor(t, 20*time.Second, func() error {
		m := r.Info(t)
		if !strings.Contains(m["source0.last_error"], "WRONGPASS") || atoi(t, m["source0.reconnects"]) < 2 {
			return fmt.Errorf("source0: %s", m["source0"])
		}
		return nil
	})
	if log := r.LogBuf.String(); !strings.Contains(log, "WRONGPASS") {
		t.Errorf("the log does not say WRONGPASS:\n%s", log)
	}
	for _, where := range []string{r.LogBuf.String(), fmt.Sprint(r.Info(t))} {
		if strings.Contains(where, wrong) || strings.Contains(where, "s3cret") {
			t.Fatalf("a password shows:\n%s", where)
		}
	}

	// The operator fixes the source's password; the link, still retrying, gets through.
	src.Do(t, "CONFIG", "SET", "requirepass", wrong)
	waitPhase(t, r, "oplog", 30*time.Second)
	if v := dst.DoString(t, "GET", "k"); v != "v" {
		t.Errorf("target GET k = %q", v)
	}
}
