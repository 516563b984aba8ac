package daemon

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"

	"github.com/rmt-project/rmt/conf"
)

// cjWriteCerts writes a CA and a server certificate for 127.0.0.1 signed by it.
func cjWriteCerts(t *testing.T) (caFile, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rmt test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", keyDER)
}

// Both jobs reach servers over TLS, trusting only the configured CA.
func TestCmdjobTLS(t *testing.T) {
	caFile, certFile, keyFile := cjWriteCerts(t)
	tc, err := cmdjobTLSConfig(conf.TLS{Enabled: true, CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	d := radix.Dialer{NetDialer: &tls.Dialer{Config: tc}}
	args := []string{"--port", "0", "--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--tls-ca-cert-file", caFile, "--tls-auth-clients", "no"}
	src := cjStartRedisWith(t, d, "--tls-port", args...)
	tgt := cjStartRedisWith(t, d, "--tls-port", args...)
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
	otherCA, _, _ := cjWriteCerts(t)
	cfg.Source.TLS.CAFile = otherCA
	if _, err := RunTestInsert(ctx, cfg, TestInsertOptions{Keys: 1}); err == nil {
		t.Fatal("server certificate accepted with the wrong CA")
	}
	cfg.Source.TLS.CAFile = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := RunTestInsert(ctx, cfg, TestInsertOptions{Keys: 1}); err == nil {
		t.Fatal("missing CA file accepted")
	}
}
