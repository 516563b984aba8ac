package source

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeTestCerts writes ca.crt, server.crt and server.key (for 127.0.0.1) to dir and returns
// a pool trusting the CA.
func writeTestCerts(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, srvKey := newKey(), newKey()
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rmt test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srv := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, blk := range map[string]*pem.Block{
		"ca.crt":     {Type: "CERTIFICATE", Bytes: caDER},
		"server.crt": {Type: "CERTIFICATE", Bytes: srvDER},
		"server.key": {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(blk), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return pool
}

// TestLinkRedisTLS: a full sync and the stream over TLS, with trust from a CA pool; a link that
// does not trust the server's certificate reports a certificate error and keeps retrying.
func TestLinkRedisTLS(t *testing.T) {
	certDir := t.TempDir()
	pool := writeTestCerts(t, certDir)
	tlsPort := freePort(t)
	master := startRedis(t, 0, "", "--tls-port", strconv.Itoa(tlsPort),
		"--tls-cert-file", filepath.Join(certDir, "server.crt"), "--tls-key-file", filepath.Join(certDir, "server.key"),
		"--tls-ca-cert-file", filepath.Join(certDir, "ca.crt"), "--tls-auth-clients", "no")
	m := master.client(t)
	m.must(t, "SET", "k", "v")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort))

	untrusted := newRedisLink(t, LinkOptions{Addr: addr, TLS: &tls.Config{RootCAs: x509.NewCertPool()}})
	waitFor(t, 10*time.Second, func() error {
		if st := untrusted.Stats(); !strings.Contains(st.LastError, "certificate") || st.Reconnects < 1 {
			return fmt.Errorf("stats %+v", st)
		}
		return nil
	})

	l := newRedisLink(t, LinkOptions{Addr: addr, TLS: &tls.Config{RootCAs: pool}})
	fs := waitEvent[FullSync](t, l, 20*time.Second)
	m.must(t, "SET", "k2", "v2")
	end := waitCaughtUp(t, l, m)
	if got := spooledCommands(t, l.Spool(), fs.Offset, end); strings.Join(got, "|") != "SELECT 0|SET k2 v2" {
		t.Fatalf("spooled %q", got)
	}
}
