package test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rmt-project/rmt/internal/redistest"
)

// scrape GETs url and returns its status and body.
func scrape(url string) (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// scrapeMetrics GETs rmtd's /metrics and parses it with Prometheus's own parser.
func scrapeMetrics(t *testing.T, r *Rmtd) map[string]*dto.MetricFamily {
	t.Helper()
	_, body, err := scrape("http://" + r.D.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// metricValue is the value of the series of family name with the given label value.
func metricValue(fams map[string]*dto.MetricFamily, name, label, value string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if label == "" || l.GetName() == label && l.GetValue() == value {
				if f.GetType() == dto.MetricType_COUNTER {
					return m.GetCounter().GetValue(), true
				}
				return m.GetGauge().GetValue(), true
			}
		}
		if label == "" && len(m.GetLabel()) == 0 {
			if f.GetType() == dto.MetricType_COUNTER {
				return m.GetCounter().GetValue(), true
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// TestMetricsEndpoint: /readyz is false while the snapshot cannot load (the target is
// unreachable) and true once the stream is replayed; /metrics parses with Prometheus's own
// parser and, on a quiet job, says what INFO says.
func TestMetricsEndpoint(t *testing.T) {
	src, dst := redistest.StartRedis(t), redistest.StartRedis(t)
	for i := range 2000 {
		src.Do(t, "SET", fmt.Sprintf("key:%d", i), i)
	}
	proxy := redistest.StartProxy(t, dst.Addr)
	proxy.Block()
	cfg := singleConfig(t, src, dst)
	cfg.Target.Servers = []string{proxy.Addr}
	cfg.Common.MetricsListen = "127.0.0.1:0"
	r := StartRmtd(t, cfg)
	base := "http://" + r.D.MetricsAddr()

	if code, body, err := scrape(base + "/readyz"); err != nil || code != 503 {
		t.Fatalf("/readyz with the target unreachable: %d %q %v", code, body, err)
	}
	if code, body, err := scrape(base + "/healthz"); err != nil || code != 200 {
		t.Fatalf("/healthz: %d %q %v", code, body, err)
	}
	proxy.Unblock()
	redistest.WaitFor(t, 60*time.Second, func() error {
		code, body, err := scrape(base + "/readyz")
		if err != nil || code != 200 {
			return fmt.Errorf("/readyz: %d %q %v", code, body, err)
		}
		return nil
	})
	src.Do(t, "INCR", "after")
	waitCaughtUp(t, r, src, 30*time.Second)

	info := r.Info(t)
	fams := scrapeMetrics(t, r)
	line := parseNodeLine(info["source0"])
	node := src.Addr
	for _, c := range []struct {
		family, label, value, info string
	}{
		{"rmtd_source_received_offset", "node", node, line["received_offset"]},
		{"rmtd_source_applied_offset", "node", node, line["applied_offset"]},
		{"rmtd_source_lag_bytes", "node", node, line["lag_bytes"]},
		{"rmtd_source_full_syncs_total", "node", node, line["full_syncs"]},
		{"rmtd_source_rdb_keys_loaded", "node", node, line["rdb_keys_loaded"]},
		{"rmtd_source_rdb_eta_seconds", "node", node, line["eta_s"]},
		{"rmtd_keys_restored_total", "", "", info["keys_restored"]},
		{"rmtd_commands_received_total", "", "", info["total_msgs_recv"]},
		{"rmtd_source_nodes", "", "", info["source_nodes_count"]},
	} {
		got, ok := metricValue(fams, c.family, c.label, c.value)
		if !ok {
			t.Errorf("/metrics lacks %s{%s=%q}", c.family, c.label, c.value)
			continue
		}
		if fmt.Sprint(int64(got)) != c.info {
			t.Errorf("%s = %v, INFO says %q", c.family, got, c.info)
		}
	}
	if v, ok := metricValue(fams, "rmtd_source_state", "state", "oplog"); !ok || v != 1 {
		t.Errorf("rmtd_source_state{state=oplog} = %v, %v", v, ok)
	}
}

// parseNodeLine splits an INFO node line "ip=...,port=...,state=..." into its fields.
func parseNodeLine(s string) map[string]string {
	out := map[string]string{}
	for _, f := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(f, "="); ok {
			out[k] = v
		}
	}
	return out
}
