package daemon

import (
	"strings"
	"testing"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/testcert"
)

// TestTLSReachesEveryConnection: source.tls and target.tls are read once by New and handed to
// the replica link and to every target connection (before, only twemproxy targets used them,
// and a TLS source or single target was dialed in plain TCP).
func TestTLSReachesEveryConnection(t *testing.T) {
	ca := testcert.Write(t).CA
	cfg := conf.Default()
	cfg.Source.Servers = []string{"127.0.0.1:1"}
	cfg.Target.Servers = []string{"127.0.0.1:2"}
	cfg.Source.TLS = conf.TLS{Enabled: true, CAFile: ca}
	cfg.Target.TLS = conf.TLS{Enabled: true, CAFile: ca}
	d, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := d.sourceConfig(0)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Link.TLS == nil || sc.Link.TLS != d.sourceTLS {
		t.Error("the replica link does not get source.tls")
	}
	if o := d.targetConn(); o.TLS == nil || o.TLS != d.targetTLS {
		t.Error("target connections do not get target.tls")
	}

	cfg.Target.TLS.Enabled = false
	if d, err = New(cfg, Options{}); err != nil || d.targetConn().TLS != nil {
		t.Errorf("target.tls off: %v", err)
	}
	cfg.Source.TLS.CAFile = t.TempDir() + "/nosuch.pem"
	if _, err := New(cfg, Options{}); err == nil || !strings.Contains(err.Error(), "source.tls") {
		t.Errorf("a missing CA file: %v", err)
	}
}
