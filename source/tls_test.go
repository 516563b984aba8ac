package source

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/internal/testcert"
)

// TestLinkRedisTLS: a full sync and the stream over TLS, with trust from a CA pool; a link that
// does not trust the server's certificate reports a certificate error and keeps retrying.
func TestLinkRedisTLS(t *testing.T) {
	certs := testcert.Write(t)
	pool := certs.Pool
	tlsPort := redistest.FreePort(t)
	master := startRedis(t, 0, "", certs.RedisArgs(strconv.Itoa(tlsPort))...)
	m := master.client(t)
	m.must(t, "SET", "k", "v")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort))

	untrusted := newRedisLink(t, LinkOptions{Addr: addr, TLS: &tls.Config{RootCAs: x509.NewCertPool()}})
	redistest.WaitFor(t, 10*time.Second, func() error {
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
