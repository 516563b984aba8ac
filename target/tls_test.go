package target

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
)

// writeCert makes a self-signed certificate for 127.0.0.1 and returns its files and a client
// config that trusts it.
func writeCert(t *testing.T) (certFile, keyFile string, cfg *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "rmt test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, &tls.Config{RootCAs: pool}
}

func TestDialTLS(t *testing.T) {
	certFile, keyFile, cfg := writeCert(t)
	srv := startRedisTLS(t, cfg, "--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--tls-ca-cert-file", certFile, "--tls-auth-clients", "no")
	ctx := context.Background()
	w, err := NewSingle(ctx, SingleOptions{Conn: Options{Addr: srv.Addr, TLS: cfg}, Conns: 2, SourceRDBVersion: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, k := range []string{"a", "b", "c"} {
		if err := w.Restore(stringEntry(0, k, "v", 0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WaitRDB(ctx); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Restored != 3 {
		t.Fatalf("restored %d over TLS", st.Restored)
	}
	// A client that does not trust the certificate is refused.
	if _, err := Dial(ctx, Options{Addr: srv.Addr, TLS: &tls.Config{}, Timeout: 2 * time.Second}); err == nil {
		t.Fatal("Dial trusted an unknown certificate")
	}
}
