// Package testcert writes throwaway TLS certificates for tests: a CA and a server certificate
// for 127.0.0.1 signed by it, valid for a day.
package testcert

import (
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

// Files are the PEM files Write made and a pool that trusts the CA.
type Files struct {
	CA   string // the CA's certificate
	Cert string // the server's certificate, for 127.0.0.1
	Key  string // the server's private key
	Pool *x509.CertPool
}

// ClientConfig trusts the CA and nothing else.
func (f Files) ClientConfig() *tls.Config { return &tls.Config{RootCAs: f.Pool} }

// RedisArgs are redis-server's arguments to serve TLS on port with these files, clients not
// asked for a certificate.
func (f Files) RedisArgs(port string) []string {
	return []string{"--tls-port", port, "--tls-cert-file", f.Cert, "--tls-key-file", f.Key,
		"--tls-ca-cert-file", f.CA, "--tls-auth-clients", "no"}
}

// Write makes a new CA and server certificate in a directory of tb's TempDir.
func Write(tb testing.TB) Files {
	tb.Helper()
	caKey, srvKey := newKey(tb), newKey(tb)
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rmt test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		tb.Fatal(err)
	}
	srv := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			tb.Fatal(err)
		}
		return p
	}
	f := Files{
		CA:   write("ca.crt", "CERTIFICATE", caDER),
		Cert: write("server.crt", "CERTIFICATE", srvDER),
		Key:  write("server.key", "PRIVATE KEY", keyDER),
		Pool: x509.NewCertPool(),
	}
	f.Pool.AddCert(caCert)
	return f
}

func newKey(tb testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
