package verify

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"testing"

	"github.com/mediocregopher/radix/v4"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/testcert"
)

// Both jobs reach servers over TLS, trusting only the configured CA.
func TestCmdjobTLS(t *testing.T) {
	certs := testcert.Write(t)
	caFile, certFile, keyFile := certs.CA, certs.Cert, certs.Key
	tc, err := conf.TLS{Enabled: true, CAFile: caFile}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	d := radix.Dialer{NetDialer: &tls.Dialer{Config: tc}}
	src := cjStartRedisTLS(t, d, certFile, keyFile, caFile)
	tgt := cjStartRedisTLS(t, d, certFile, keyFile, caFile)
	cfg := cjConfig(src, tgt)
	ctx := context.Background()
	if _, err := RunTestInsert(ctx, cfg, TestInsertOptions{Keys: 10}); err == nil {
		t.Fatal("plain TCP to a TLS port worked")
	}
	tlsOn := conf.TLS{Enabled: true, CAFile: caFile}
	cfg.Source.TLS, cfg.Target.TLS = tlsOn, tlsOn
	if res, err := RunTestInsert(ctx, cfg, TestInsertOptions{Keys: 120}); err != nil || res.Correct != 120 {
		t.Fatalf("insert over TLS: %+v %v", res, err)
	}
	res, err := RunCheck(ctx, cfg, cjFastCheck(nil))
	if err != nil || res.Checked != 120 || res.ValueDiff != 120 {
		t.Fatalf("check over TLS (empty target): %+v %v", res, err)
	}
	// A CA that did not sign the server's certificate is refused.
	otherCA := testcert.Write(t).CA
	cfg.Source.TLS.CAFile = otherCA
	if _, err := RunTestInsert(ctx, cfg, TestInsertOptions{Keys: 1}); err == nil {
		t.Fatal("server certificate accepted with the wrong CA")
	}
	cfg.Source.TLS.CAFile = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := RunTestInsert(ctx, cfg, TestInsertOptions{Keys: 1}); err == nil {
		t.Fatal("missing CA file accepted")
	}
}
