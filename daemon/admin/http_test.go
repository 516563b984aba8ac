package admin

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rmt-project/rmt/daemon/status"
	"github.com/rmt-project/rmt/daemon/status/statustest"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestHTTPEndpoints(t *testing.T) {
	var ready atomic.Bool
	snap := func() *status.Snapshot {
		s := statustest.Fixed()
		if ready.Load() {
			s.Sources[1].State = "oplog"
		}
		return s
	}
	h := NewHTTP(HTTPOptions{Addr: "127.0.0.1:0", Snapshot: snap})
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	base := "http://" + h.Addr()

	code, body := httpGet(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	for _, name := range []string{"rmtd_info", "rmtd_source_lag_bytes", "rmtd_target_sent_commands_total",
		"rmtd_errors_total", "go_goroutines", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if code, body := httpGet(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := httpGet(t, base+"/readyz"); code != 503 || !strings.Contains(body, "state rdb") {
		t.Errorf("/readyz while a node loads: %d %q", code, body)
	}
	ready.Store(true)
	if code, body := httpGet(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz once every node replays: %d %q", code, body)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
}
