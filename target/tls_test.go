package target

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/internal/testcert"
)

func TestDialTLS(t *testing.T) {
	certs := testcert.Write(t)
	cfg := certs.ClientConfig()
	srv := redistest.StartRedis(t, redistest.WithTLS(certs.Cert, certs.Key, certs.CA))
	ctx := context.Background()
	w, err := NewSingle(ctx, SingleOptions{Conn: Options{Addr: srv.TLSAddr, TLS: cfg}, Conns: 2, SourceRDBVersion: 10})
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
	if _, err := Dial(ctx, Options{Addr: srv.TLSAddr, TLS: &tls.Config{}, Timeout: 2 * time.Second}); err == nil {
		t.Fatal("Dial trusted an unknown certificate")
	}
}
