package status_test

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rmt-project/rmt/daemon/status"
	"github.com/rmt-project/rmt/daemon/status/statustest"
)

var infoUpdateGolden = flag.Bool("update-info-golden", false, "rewrite the golden files in testdata/")

func TestRenderInfoGolden(t *testing.T) {
	tests := []struct {
		golden   string
		snap     *status.Snapshot
		sections []string
	}{
		{"info_default.txt", statustest.Fixed(), nil},
		{"info_default.txt", statustest.Fixed(), []string{"default"}},
		{"info_default.txt", statustest.Fixed(), []string{"ALL"}},
		{"info_default.txt", statustest.Fixed(), []string{"everything"}},
		{"info_default.txt", statustest.Fixed(), []string{"server", "Default"}},
		{"info_server.txt", statustest.Fixed(), []string{"server"}},
		{"info_server.txt", statustest.Fixed(), []string{"SeRvEr", "server"}},
		{"info_stats.txt", statustest.Fixed(), []string{"STATS"}},
		// Order is the fixed section order, not the arguments' order.
		{"info_clients_memory.txt", statustest.Fixed(), []string{"memory", "nosuch", "clients"}},
		{"info_nodes.txt", statustest.Fixed(), []string{"targets", "sources"}},
		{"info_errors_progress.txt", statustest.Fixed(), []string{"progress", "errors"}},
		{"info_empty_snapshot.txt", nil, nil},
		{"info_empty.txt", statustest.Fixed(), []string{"nosuch"}},
		{"info_empty.txt", statustest.Fixed(), []string{"keyspace", "replication"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden+"/"+strings.Join(tt.sections, ","), func(t *testing.T) {
			got := status.RenderInfo(tt.snap, tt.sections)
			infoCheckGolden(t, tt.golden, got)
		})
	}
}

func infoCheckGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *infoUpdateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update-info-golden to create it)", err)
	}
	if got != string(want) {
		t.Errorf("INFO differs from %s:\n got: %q\nwant: %q", path, got, want)
	}
}

// TestRenderInfoShape checks, independently of the golden files, Redis's
// framing and RMT's field order as NOTES.md lists it.
func TestRenderInfoShape(t *testing.T) {
	out := status.RenderInfo(statustest.Fixed(), nil)
	if !strings.HasSuffix(out, "\r\n") || strings.HasSuffix(out, "\r\n\r\n") {
		t.Fatalf("INFO must end with exactly one CRLF: %q", out[max(0, len(out)-20):])
	}
	sections := infoParse(t, out)

	rmt := []struct {
		title  string
		fields []string
	}{
		{"Server", strings.Fields("version os multiplexing_api gcc_version process_id tcp_port uptime_in_seconds uptime_in_days config_file")},
		{"Clients", strings.Fields("connected_clients max_clients_limit total_connections_received")},
		{"Memory", strings.Fields("mem_allocator")},
		{"Group", strings.Fields("source_nodes_count target_nodes_count")},
		{"Stats", strings.Fields("all_rdb_received all_rdb_parsed all_aof_loaded rdb_received_count rdb_parsed_count aof_loaded_count total_msgs_recv total_msgs_sent total_net_input_bytes total_net_output_bytes total_net_input_bytes_human total_net_output_bytes_human total_mbufs_inqueue total_msgs_outqueue")},
	}
	var titles []string
	for _, s := range sections {
		titles = append(titles, s.title)
	}
	wantTitles := []string{"Server", "Clients", "Memory", "Group", "Stats", "Sources", "Targets", "Errors", "Progress"}
	if !slices.Equal(titles, wantTitles) {
		t.Fatalf("sections %q, want %q", titles, wantTitles)
	}
	for i, r := range rmt {
		keys := sections[i].keys
		if len(keys) < len(r.fields) || !slices.Equal(keys[:len(r.fields)], r.fields) {
			t.Errorf("# %s fields %q, want RMT's %q first", r.title, keys, r.fields)
		}
	}
	if got := sections[5].keys; !slices.Equal(got, []string{"source0", "source1"}) {
		t.Errorf("# Sources keys %q", got)
	}
	if got := sections[7].keys; !slices.Equal(got, []string{"total_errors", "total_skipped",
		"errors_cross_slot", "errors_target_error", "errors_unknown_type", "skipped_expired", "skipped_filtered"}) {
		t.Errorf("# Errors keys %q", got)
	}
}

type infoParsedSection struct {
	title string
	keys  []string
	vals  map[string]string
}

// infoParse splits INFO text into sections, failing on any line that is not
// "# Title", "key:value" or the single empty line between sections.
func infoParse(t *testing.T, out string) []infoParsedSection {
	t.Helper()
	if !strings.HasSuffix(out, "\r\n") {
		t.Fatalf("INFO does not end with CRLF")
	}
	var secs []infoParsedSection
	lines := strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
	for i, l := range lines {
		switch {
		case strings.ContainsAny(l, "\r\n"):
			t.Fatalf("line %d has a bare CR or LF: %q", i, l)
		case strings.HasPrefix(l, "# "):
			if i > 0 && lines[i-1] != "" {
				t.Fatalf("line %d: section %q not preceded by an empty line", i, l)
			}
			secs = append(secs, infoParsedSection{title: l[2:], vals: map[string]string{}})
		case l == "":
			if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "# ") {
				t.Fatalf("line %d: empty line not followed by a section", i)
			}
		default:
			k, v, ok := strings.Cut(l, ":")
			if !ok || len(secs) == 0 {
				t.Fatalf("line %d: not key:value in a section: %q", i, l)
			}
			s := &secs[len(secs)-1]
			s.keys = append(s.keys, k)
			s.vals[k] = v
		}
	}
	return secs
}

func TestRenderInfoNodeLines(t *testing.T) {
	secs := infoParse(t, status.RenderInfo(statustest.Fixed(), []string{"sources", "targets"}))
	fields := func(line string) map[string]string {
		m := map[string]string{}
		for _, kv := range strings.Split(line, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("field %q without '=' in %q", kv, line)
			}
			if _, dup := m[k]; dup {
				t.Fatalf("field %q twice in %q", k, line)
			}
			m[k] = v
		}
		return m
	}
	tests := []struct {
		line string
		key  string
		want string
	}{
		{secs[0].vals["source0"], "ip", "10.0.0.1"},
		{secs[0].vals["source0"], "port", "6379"},
		{secs[0].vals["source0"], "lag_bytes", "500"},
		{secs[0].vals["source0"], "partial_syncs", "2"},
		{secs[0].vals["source1"], "ip", "::1"},
		{secs[0].vals["source1"], "name", "shard-b"},
		{secs[0].vals["source1"], "rdb_total", "-1"},
		{secs[0].vals["source1"], "last_error", "read tcp: i/o timeout   retry 3"},
		{secs[1].vals["target0"], "inflight", "12"},
		{secs[1].vals["target0"], "errors", "1"},
	}
	for _, tt := range tests {
		if got := fields(tt.line)[tt.key]; got != tt.want {
			t.Errorf("%s = %q, want %q (line %q)", tt.key, got, tt.want, tt.line)
		}
	}
}

func TestSnapshotClone(t *testing.T) {
	s := statustest.Fixed()
	c := s.Clone()
	c.Sources[0].State = "changed"
	c.Targets[0].Inflight = -1
	c.Errors["cross_slot"] = 99
	c.Skipped["new"] = 1
	if s.Sources[0].State != "oplog" || s.Targets[0].Inflight != 12 ||
		s.Errors["cross_slot"] != 4 || len(s.Skipped) != 2 {
		t.Fatalf("Clone shares state with the original")
	}
	if status.RenderInfo(s, nil) != status.RenderInfo(statustest.Fixed(), nil) {
		t.Fatalf("original changed")
	}
	if (*status.Snapshot)(nil).Clone() != nil {
		t.Fatalf("nil Clone not nil")
	}
}

func BenchmarkRenderInfo(b *testing.B) {
	s := statustest.Fixed()
	b.ReportAllocs()
	for b.Loop() {
		_ = status.RenderInfo(s, nil)
	}
}

// FuzzRenderInfo puts arbitrary text in every free-text field and wants INFO
// to stay parseable: Redis framing, and node lines whose k=v fields are
// exactly the documented ones.
func FuzzRenderInfo(f *testing.F) {
	f.Add("shard-a", "10.0.0.1:6379", "oplog", "read: timeout", "cross_slot", "/etc/rmt.yaml")
	f.Add("a,b=c", "[::1]:1", "x\r\ny", "e\nrror,=:", "Wrong Type!", "c:\\conf\r\n")
	f.Add("", "", "", "", "", "")
	f.Add(strings.Repeat("n", 300), "host-without-port", "\x00\x7f", strings.Repeat(",", 1000), "\xff\xfe", "\r\n# Server")
	f.Fuzz(func(t *testing.T, name, addr, state, lastErr, reason, confFile string) {
		s := statustest.Fixed()
		s.Server.ConfigFile = confFile
		s.Server.Version = state
		s.Sources[0].Name, s.Sources[0].Addr, s.Sources[0].State, s.Sources[0].LastError = name, addr, state, lastErr
		s.Sources[1].Replid = reason
		s.Targets[0].Addr, s.Targets[0].State, s.Targets[0].LastError = addr, state, lastErr
		s.Errors[reason]++
		s.Skipped[lastErr]++
		s.Progress.Phase = name
		secs := infoParse(t, status.RenderInfo(s, nil))
		if len(secs) != 9 {
			t.Fatalf("%d sections", len(secs))
		}
		wantFields := map[string]int{"source0": 21, "source1": 21, "target0": 10}
		for _, sec := range secs[5:7] {
			for _, k := range sec.keys {
				n := len(strings.Split(sec.vals[k], ","))
				if n != wantFields[k] {
					t.Fatalf("%s has %d fields, want %d: %q", k, n, wantFields[k], sec.vals[k])
				}
				for _, kv := range strings.Split(sec.vals[k], ",") {
					if strings.Count(kv, "=") != 1 {
						t.Fatalf("%s: field %q", k, kv)
					}
				}
			}
		}
		for _, k := range secs[7].keys {
			if strings.Trim(k, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
				t.Fatalf("# Errors key %q", k)
			}
		}
	})
}
