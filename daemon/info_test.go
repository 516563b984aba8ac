package daemon

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var infoUpdateGolden = flag.Bool("update-info-golden", false, "rewrite the golden files in testdata/")

// infoFixedSnapshot is the snapshot every golden file is rendered from.
func infoFixedSnapshot() *Snapshot {
	return &Snapshot{
		Server: ServerInfo{
			Version:         "0.1.0",
			OS:              "Linux 6.1.0-18-amd64 x86_64",
			MultiplexingAPI: "epoll",
			GoVersion:       "go1.26.8",
			ProcessID:       4242,
			TCPPort:         8888,
			Uptime:          3*24*time.Hour + 5*time.Hour + 7*time.Second + 900*time.Millisecond,
			ConfigFile:      "/etc/rmt/rmt.yaml",
		},
		Clients: ClientsInfo{Connected: 2, MaxClients: 100, TotalReceived: 17},
		Memory:  MemoryInfo{Allocator: "go", RSS: 52428800, HeapInUse: 1536},
		Group:   GroupInfo{SourceNodes: 2, TargetNodes: 1},
		Stats: StatsInfo{
			AllRDBReceived: true, AllRDBParsed: false, AllAOFLoaded: false,
			RDBReceivedCount: 2, RDBParsedCount: 1, AOFLoadedCount: 0,
			TotalMsgsRecv: 123456, TotalMsgsSent: 123000,
			TotalNetInputBytes: 10 << 20, TotalNetOutputBytes: 1023,
			TotalMbufsInqueue: 456, TotalMsgsOutqueue: 12,
		},
		Sources: []SourceNode{
			{
				Addr: "10.0.0.1:6379", State: "oplog",
				Replid:         "8f9d4c3b2a1e0f9d8c7b6a5f4e3d2c1b0a9f8e7d",
				ReceivedOffset: 1000500, AppliedOffset: 1000000, LagBytes: 500, LagMs: 12,
				RDBBytes: 4096, RDBTotal: 4096, RDBKeysLoaded: 100,
				FullSyncs: 1, PartialSyncs: 2, Reconnects: 3,
			},
			{
				Name: "shard-b", Addr: "[::1]:6380", State: "rdb",
				Replid:   "0000000000000000000000000000000000000000",
				RDBBytes: 2048, RDBTotal: -1, FullSyncs: 1,
				LastError: "read tcp: i/o timeout,\r\nretry=3",
			},
		},
		Targets: []TargetNode{
			{
				Addr: "10.0.0.2:7000", State: "connected",
				Inflight: 12, InflightBytes: 3400, SentCmds: 123000, SentBytes: 9000000,
				Replies: 122988, ErrorCount: 1, LastError: "CROSSSLOT Keys in request don't hash to the same slot",
			},
		},
		Errors:   map[string]int64{"target_error": 1, "cross_slot": 4, "Unknown Type": 2},
		Skipped:  map[string]int64{"filtered": 10, "expired": 7},
		Progress: ProgressInfo{Phase: "oplog", KeysRestored: 100, ExpiredSkipped: 7},
	}
}

func TestRenderInfoGolden(t *testing.T) {
	tests := []struct {
		golden   string
		snap     *Snapshot
		sections []string
	}{
		{"info_default.txt", infoFixedSnapshot(), nil},
		{"info_default.txt", infoFixedSnapshot(), []string{"default"}},
		{"info_default.txt", infoFixedSnapshot(), []string{"ALL"}},
		{"info_default.txt", infoFixedSnapshot(), []string{"everything"}},
		{"info_default.txt", infoFixedSnapshot(), []string{"server", "Default"}},
		{"info_server.txt", infoFixedSnapshot(), []string{"server"}},
		{"info_server.txt", infoFixedSnapshot(), []string{"SeRvEr", "server"}},
		{"info_stats.txt", infoFixedSnapshot(), []string{"STATS"}},
		// Order is the fixed section order, not the arguments' order.
		{"info_clients_memory.txt", infoFixedSnapshot(), []string{"memory", "nosuch", "clients"}},
		{"info_nodes.txt", infoFixedSnapshot(), []string{"targets", "sources"}},
		{"info_errors_progress.txt", infoFixedSnapshot(), []string{"progress", "errors"}},
		{"info_empty_snapshot.txt", nil, nil},
		{"info_empty.txt", infoFixedSnapshot(), []string{"nosuch"}},
		{"info_empty.txt", infoFixedSnapshot(), []string{"keyspace", "replication"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden+"/"+strings.Join(tt.sections, ","), func(t *testing.T) {
			got := RenderInfo(tt.snap, tt.sections)
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
	out := RenderInfo(infoFixedSnapshot(), nil)
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
	secs := infoParse(t, RenderInfo(infoFixedSnapshot(), []string{"sources", "targets"}))
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

// TestInfoBytesHuman checks RMT's _human format. The expected strings were
// printed by RMT's integer_byte_to_size_string (rmt_util.c) compiled with
// gcc on glibc, called with each value.
func TestInfoBytesHuman(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0B"},
		{1, "1B"},
		{1023, "1023B"},
		{1024, "1.00K"},
		{1025, "1.00K"},
		{1152, "1.12K"}, // 1.125: ties round to even, as glibc
		{1536, "1.50K"},
		{5368, "5.24K"},
		{1047552, "1023.00K"},
		{1048064, "1023.50K"},
		{1048575, "1024.00K"},
		{1048576, "1.00M"},
		{10485760, "10.00M"},
		{123456789, "117.74M"},
		{1073741823, "1024.00M"},
		{1073741824, "1.00G"},
		{1099511627776, "1.00T"},
		{1649267441664, "1.50T"},
		{1125899906842624, "1.00P"},
		{1125899909999999, "1.00P"},
		{1152921504606846975, "1024.00P"},
		{1152921504606846976, "1152921504606846976B"},
		{9223372036854775807, "9223372036854775807B"},
	}
	for _, tt := range tests {
		if got := infoBytesHuman(tt.n); got != tt.want {
			t.Errorf("infoBytesHuman(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestInfoKeyAndValues(t *testing.T) {
	tests := []struct {
		fn         func(string) string
		name, in   string
		want       string
		wantMaxLen int
	}{
		{infoKey, "key", "Cross Slot", "cross_slot", 0},
		{infoKey, "key", "", "unknown", 0},
		{infoKey, "key", "wrong-type:x", "wrong_type_x", 0},
		{infoValue, "value", "a:b,c=d", "a:b,c=d", 0},
		{infoValue, "value", "a\r\nb\x00c", "a  b c", 0},
		{infoFieldValue, "field", "a:b,c=d\n", "a:b c d ", 0},
		{infoFieldValue, "field", strings.Repeat("x", 1000), strings.Repeat("x", infoMaxValue), 0},
	}
	for _, tt := range tests {
		if got := tt.fn(tt.in); got != tt.want {
			t.Errorf("%s(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestSnapshotClone(t *testing.T) {
	s := infoFixedSnapshot()
	c := s.Clone()
	c.Sources[0].State = "changed"
	c.Targets[0].Inflight = -1
	c.Errors["cross_slot"] = 99
	c.Skipped["new"] = 1
	if s.Sources[0].State != "oplog" || s.Targets[0].Inflight != 12 ||
		s.Errors["cross_slot"] != 4 || len(s.Skipped) != 2 {
		t.Fatalf("Clone shares state with the original")
	}
	if RenderInfo(s, nil) != RenderInfo(infoFixedSnapshot(), nil) {
		t.Fatalf("original changed")
	}
	if (*Snapshot)(nil).Clone() != nil {
		t.Fatalf("nil Clone not nil")
	}
}

func TestCurrentServerInfoAndMemory(t *testing.T) {
	si := CurrentServerInfo("1.2.3", "rmt.yaml", 8888, time.Now().Add(-90*time.Second))
	if si.ProcessID != os.Getpid() || si.MultiplexingAPI != "epoll" || si.GoVersion == "" ||
		si.Uptime < 90*time.Second || si.OS == "" || si.TCPPort != 8888 {
		t.Fatalf("CurrentServerInfo = %+v", si)
	}
	m := CurrentMemory()
	if m.Allocator != "go" || m.HeapInUse <= 0 {
		t.Fatalf("CurrentMemory = %+v", m)
	}
	if _, err := os.Stat("/proc/self/statm"); err == nil && m.RSS <= 0 {
		t.Fatalf("RSS = %d with /proc available", m.RSS)
	}
}

func BenchmarkRenderInfo(b *testing.B) {
	s := infoFixedSnapshot()
	b.ReportAllocs()
	for b.Loop() {
		_ = RenderInfo(s, nil)
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
		s := infoFixedSnapshot()
		s.Server.ConfigFile = confFile
		s.Server.Version = state
		s.Sources[0].Name, s.Sources[0].Addr, s.Sources[0].State, s.Sources[0].LastError = name, addr, state, lastErr
		s.Sources[1].Replid = reason
		s.Targets[0].Addr, s.Targets[0].State, s.Targets[0].LastError = addr, state, lastErr
		s.Errors[reason]++
		s.Skipped[lastErr]++
		s.Progress.Phase = name
		secs := infoParse(t, RenderInfo(s, nil))
		if len(secs) != 9 {
			t.Fatalf("%d sections", len(secs))
		}
		wantFields := map[string]int{"source0": 16, "source1": 16, "target0": 10}
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
