package status_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/rmt-project/rmt/daemon/status"
	"github.com/rmt-project/rmt/daemon/status/statustest"
)

// gather renders the fixed snapshot through a registry, as a scrape does.
func gather(t *testing.T, s *status.Snapshot) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(status.NewMetrics(func() *status.Snapshot { return s }))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// value is the value of family name's series whose labels are labels (name=value pairs).
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no family %s", name)
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		default:
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("%s has no series %v", name, labels)
	return 0
}

func TestMetricsMatchSnapshot(t *testing.T) {
	s := statustest.Fixed()
	fams := gather(t, s)
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"rmtd_info", []string{"version", "0.1.0"}, 1},
		{"rmtd_admin_connected_clients", nil, 2},
		{"rmtd_commands_received_total", nil, 123456},
		{"rmtd_received_bytes_total", nil, 10 << 20},
		{"rmtd_keys_restored_total", nil, 100},
		{"rmtd_errors_total", []string{"reason", "cross_slot"}, 4},
		{"rmtd_errors_total", []string{"reason", "unknown_type"}, 2}, // as INFO names it
		{"rmtd_skipped_total", []string{"reason", "filtered"}, 10},
		{"rmtd_source_state", []string{"node", "10.0.0.1:6379", "state", "oplog"}, 1},
		{"rmtd_source_received_offset", []string{"node", "10.0.0.1:6379"}, 1000500},
		{"rmtd_source_applied_offset", []string{"node", "10.0.0.1:6379"}, 1000000},
		{"rmtd_source_lag_bytes", []string{"node", "10.0.0.1:6379"}, 500},
		{"rmtd_source_lag_seconds", []string{"node", "10.0.0.1:6379"}, 0.012},
		{"rmtd_source_rdb_size_bytes", []string{"node", "shard-b"}, -1},
		{"rmtd_source_full_syncs_total", []string{"node", "10.0.0.1:6379"}, 1},
		{"rmtd_target_inflight_commands", []string{"node", "10.0.0.2:7000"}, 12},
		{"rmtd_target_sent_bytes_total", []string{"node", "10.0.0.2:7000"}, 9000000},
		{"rmtd_target_up", []string{"node", "10.0.0.2:7000"}, 1},
	}
	for _, tt := range tests {
		if got := value(t, fams, tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	// Prometheus's own linter: names, units, _total on counters, help texts.
	problems, err := testutil.CollectAndLint(status.NewMetrics(statustest.Fixed))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	// An empty snapshot still renders.
	if fams := gather(t, nil); fams["rmtd_info"] == nil {
		t.Errorf("nothing rendered for a nil snapshot")
	}
}

func TestReady(t *testing.T) {
	s := statustest.Fixed()
	if ok, why := status.Ready(s); ok || !strings.Contains(why, "state rdb") {
		t.Errorf("Ready with a node loading: %v %q", ok, why)
	}
	s.Sources[1].State = "oplog"
	if ok, why := status.Ready(s); !ok {
		t.Errorf("Ready with every node in oplog: %v %q", ok, why)
	}
	s.Sources[0].LagMs = status.ReadyMaxLag + 1
	if ok, why := status.Ready(s); ok || !strings.Contains(why, "ms behind") {
		t.Errorf("Ready with a node behind: %v %q", ok, why)
	}
	if ok, _ := status.Ready(nil); ok {
		t.Errorf("Ready(nil)")
	}
}

// TestMetricsScanNodes: a node read by SCAN adds its figures as families of its own (scan_live's
// only for a scan_live node), named by Prometheus's rules; other nodes have none.
func TestMetricsScanNodes(t *testing.T) {
	snap := func() *status.Snapshot {
		s := statustest.Fixed()
		s.Sources[0].Scan = status.ScanNode{Mode: "scan_live", Passes: 2, KeysScanned: 250, Progress: 42.5, BigKeys: 3,
			SubscriptionUp: true, Notifications: 900, Coalesced: 40, Rereads: 850, Pending: 10, BigRereads: 2,
			BigRereadBytes: 1 << 20, SubscriptionDrops: 1, Rescans: 1, FlushesDetected: 1, PendingOverflows: 0, StreamRefreshes: 5}
		s.Sources[1].Scan = status.ScanNode{Mode: "scan", Passes: 1, KeysScanned: 40, Progress: 100}
		return s
	}
	fams := gather(t, snap())
	live, pass := []string{"node", "10.0.0.1:6379"}, []string{"node", "shard-b"}
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"rmtd_source_scan_passes_total", live, 2},
		{"rmtd_source_scan_keys_total", pass, 40},
		{"rmtd_source_scan_progress_ratio", live, 0.425},
		{"rmtd_source_scan_progress_ratio", pass, 1},
		{"rmtd_source_scan_subscription_up", live, 1},
		{"rmtd_source_scan_notifications_total", live, 900},
		{"rmtd_source_scan_rereads_total", live, 850},
		{"rmtd_source_scan_pending_keys", live, 10},
		{"rmtd_source_scan_big_reread_bytes_total", live, 1 << 20},
		{"rmtd_source_scan_subscription_drops_total", live, 1},
		{"rmtd_source_scan_rescans_total", live, 1},
		{"rmtd_source_scan_flushes_detected_total", live, 1},
	} {
		if got := value(t, fams, tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if n := len(fams["rmtd_source_scan_notifications_total"].GetMetric()); n != 1 {
		t.Errorf("rmtd_source_scan_notifications_total has %d series, want only the scan_live node's", n)
	}
	if fams := gather(t, statustest.Fixed()); fams["rmtd_source_scan_passes_total"] != nil {
		t.Error("scan families for nodes that are not read by SCAN")
	}
	problems, err := testutil.CollectAndLint(status.NewMetrics(snap))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
