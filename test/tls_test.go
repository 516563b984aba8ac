package test

import (
	"testing"
	"time"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/internal/testcert"
)

// TestMigrateTLS: rmtd is given only the TLS ports of the source and the target, trusting only
// the test CA: the snapshot, the stream and the checkpoint all go over TLS, and the target ends
// equal to the source. (The harness itself talks to both servers on their plain ports.)
func TestMigrateTLS(t *testing.T) {
	certs := testcert.Write(t)
	withTLS := redistest.WithTLS(certs.Cert, certs.Key, certs.CA)
	src := redistest.StartRedis(t, redistest.WithRDB(redistest.Fixture(t, "redis-7.0.15.rdb")), withTLS)
	dst := redistest.StartRedis(t, withTLS)
	srcAddr, dstAddr := src.TLSAddr, dst.TLSAddr

	cfg := singleConfig(t, src, dst)
	cfg.Source.Servers, cfg.Target.Servers = []string{srcAddr}, []string{dstAddr}
	trustCA := conf.TLS{Enabled: true, CAFile: certs.CA}
	cfg.Source.TLS, cfg.Target.TLS = trustCA, trustCA
	r := StartRmtd(t, cfg)
	waitPhase(t, r, "oplog", 60*time.Second)
	src.Do(t, "SET", "after:snapshot", "over tls")
	src.Do(t, "SELECT", "3")
	src.Do(t, "HSET", "after:hash", "f", "v")
	waitCaughtUp(t, r, src, 30*time.Second)
	compareWithSource(t, src, dst)
	if cp := dst.DoString(t, "GET", "rmt:checkpoint:"+srcAddr); cp == "" {
		t.Errorf("no checkpoint for %s on the target", srcAddr)
	}
}
