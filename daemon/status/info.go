package status

import (
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
)

// INFO section names, in the order they render: RMT's five, then ours.
const (
	infoServer   = "server"
	infoClients  = "clients"
	infoMemory   = "memory"
	infoGroup    = "group"
	infoStats    = "stats"
	infoSources  = "sources"
	infoTargets  = "targets"
	infoErrors   = "errors"
	infoProgress = "progress"
)

// infoSection is one INFO section: its name (as INFO's argument) and the
// function that writes its lines.
type infoSection struct {
	name  string
	title string
	write func(w *infoWriter, s *Snapshot)
}

// infoSections lists every section in render order. It is a function, not a
// package variable, so that no table is shared mutable state.
func infoSections() []infoSection {
	return []infoSection{
		{infoServer, "Server", infoWriteServer},
		{infoClients, "Clients", infoWriteClients},
		{infoMemory, "Memory", infoWriteMemory},
		{infoGroup, "Group", infoWriteGroup},
		{infoStats, "Stats", infoWriteStats},
		{infoSources, "Sources", infoWriteSources},
		{infoTargets, "Targets", infoWriteTargets},
		{infoErrors, "Errors", infoWriteErrors},
		{infoProgress, "Progress", infoWriteProgress},
	}
}

// RenderInfo renders s as the text of INFO's bulk reply, Redis style: each
// section a "# Title" line and "field:value" lines, every line ending in
// "\r\n", sections separated by one empty line.
//
// sections are INFO's arguments, case-insensitive. None, "default", "all" or
// "everything" select every section. Several names select several sections,
// rendered in the fixed order server, clients, memory, group, stats (RMT's,
// with RMT's fields in RMT's order), then sources, targets, errors,
// progress. Unknown names select nothing, so INFO of only unknown names is
// empty, as in Redis. A nil s renders as an empty Snapshot.
func RenderInfo(s *Snapshot, sections []string) string {
	if s == nil {
		s = &Snapshot{}
	}
	want := infoSelect(sections)
	w := &infoWriter{}
	w.b.Grow(2048 + 400*(len(s.Sources)+len(s.Targets)) + 40*(len(s.Errors)+len(s.Skipped)))
	n := 0
	for _, sec := range infoSections() {
		if !want(sec.name) {
			continue
		}
		if n > 0 {
			w.b.WriteString("\r\n")
		}
		n++
		w.b.WriteString("# ")
		w.b.WriteString(sec.title)
		w.b.WriteString("\r\n")
		sec.write(w, s)
	}
	return w.b.String()
}

// infoSelect returns the predicate "section name is wanted" for INFO's
// arguments.
func infoSelect(args []string) func(string) bool {
	if len(args) == 0 {
		return func(string) bool { return true }
	}
	set := make(map[string]bool, len(args))
	for _, a := range args {
		a = strings.ToLower(a)
		switch a {
		case "default", "all", "everything":
			return func(string) bool { return true }
		}
		set[a] = true
	}
	return func(name string) bool { return set[name] }
}

// infoWriter accumulates INFO lines.
type infoWriter struct {
	b strings.Builder
}

func (w *infoWriter) str(key, val string) {
	w.b.WriteString(key)
	w.b.WriteByte(':')
	w.b.WriteString(val)
	w.b.WriteString("\r\n")
}

func (w *infoWriter) int(key string, v int64) {
	w.str(key, strconv.FormatInt(v, 10))
}

func (w *infoWriter) bool(key string, v bool) {
	if v {
		w.str(key, "1")
	} else {
		w.str(key, "0")
	}
}

func infoWriteServer(w *infoWriter, s *Snapshot) {
	sv := &s.Server
	up := int64(sv.Uptime.Seconds())
	w.str("version", infoValue(sv.Version))
	w.str("os", infoValue(sv.OS))
	w.str("multiplexing_api", infoValue(sv.MultiplexingAPI))
	w.str("gcc_version", infoValue(sv.GoVersion))
	w.int("process_id", int64(sv.ProcessID))
	w.int("tcp_port", int64(sv.TCPPort))
	w.int("uptime_in_seconds", up)
	w.int("uptime_in_days", up/(24*3600))
	w.str("config_file", infoValue(sv.ConfigFile))
}

func infoWriteClients(w *infoWriter, s *Snapshot) {
	w.int("connected_clients", s.Clients.Connected)
	w.int("max_clients_limit", s.Clients.MaxClients)
	w.int("total_connections_received", s.Clients.TotalReceived)
	w.int("rejected_connections", s.Clients.Rejected)
	w.int("evicted_clients", s.Clients.Evicted)
	w.int("auth_failures", s.Clients.AuthFailures)
}

func infoWriteMemory(w *infoWriter, s *Snapshot) {
	m := &s.Memory
	w.str("mem_allocator", infoValue(m.Allocator))
	// Ours, after RMT's single field; names as Redis's.
	w.int("used_memory", m.HeapInUse)
	w.str("used_memory_human", infoBytesHuman(m.HeapInUse))
	w.int("used_memory_rss", m.RSS)
	w.str("used_memory_rss_human", infoBytesHuman(m.RSS))
}

func infoWriteGroup(w *infoWriter, s *Snapshot) {
	w.int("source_nodes_count", int64(s.Group.SourceNodes))
	w.int("target_nodes_count", int64(s.Group.TargetNodes))
}

func infoWriteStats(w *infoWriter, s *Snapshot) {
	st := &s.Stats
	w.bool("all_rdb_received", st.AllRDBReceived)
	w.bool("all_rdb_parsed", st.AllRDBParsed)
	w.bool("all_aof_loaded", st.AllAOFLoaded)
	w.int("rdb_received_count", int64(st.RDBReceivedCount))
	w.int("rdb_parsed_count", int64(st.RDBParsedCount))
	w.int("aof_loaded_count", int64(st.AOFLoadedCount))
	w.int("total_msgs_recv", st.TotalMsgsRecv)
	w.int("total_msgs_sent", st.TotalMsgsSent)
	w.int("total_net_input_bytes", st.TotalNetInputBytes)
	w.int("total_net_output_bytes", st.TotalNetOutputBytes)
	w.str("total_net_input_bytes_human", infoBytesHuman(st.TotalNetInputBytes))
	w.str("total_net_output_bytes_human", infoBytesHuman(st.TotalNetOutputBytes))
	w.int("total_mbufs_inqueue", st.TotalMbufsInqueue)
	w.int("total_msgs_outqueue", st.TotalMsgsOutqueue)
}

// infoWriteSources writes one line per source master, in Redis's
// "slave0:ip=...,port=...,state=..." style:
//
//	source0:ip=10.0.0.1,port=6379,name=,state=oplog,link=up,last_io_ms=...,link_down_ms=0,replid=...,received_offset=...,applied_offset=...,lag_bytes=...,lag_ms=...,rdb_bytes=...,rdb_total=...,rdb_keys_loaded=...,rdb_percent=...,eta_s=...,full_syncs=...,partial_syncs=...,reconnects=...,last_error=
func infoWriteSources(w *infoWriter, s *Snapshot) {
	for i := range s.Sources {
		n := &s.Sources[i]
		l := infoLine{b: &w.b}
		l.start("source", i)
		ip, port := infoSplitAddr(n.Addr)
		l.str("ip", ip)
		l.str("port", port)
		l.str("name", n.Name)
		l.str("state", n.State)
		l.str("link", n.Link)
		l.int("last_io_ms", n.LastIOMs)
		l.int("link_down_ms", n.LinkDownMs)
		l.str("replid", n.Replid)
		l.int("received_offset", n.ReceivedOffset)
		l.int("applied_offset", n.AppliedOffset)
		l.int("lag_bytes", n.LagBytes)
		l.int("lag_ms", n.LagMs)
		l.int("rdb_bytes", n.RDBBytes)
		l.int("rdb_total", n.RDBTotal)
		l.int("rdb_keys_loaded", n.RDBKeysLoaded)
		l.str("rdb_percent", strconv.FormatFloat(n.RDBPercent, 'f', 1, 64))
		l.int("eta_s", n.RDBEtaS)
		l.int("full_syncs", n.FullSyncs)
		l.int("partial_syncs", n.PartialSyncs)
		l.int("reconnects", n.Reconnects)
		if n.Scan.Mode != "" {
			infoWriteScan(&l, &n.Scan)
		}
		l.str("last_error", n.LastError)
		l.end()
	}
}

// infoWriteScan writes the fields of a node read by SCAN, before last_error:
//
//	mode=scan_live,scan_passes=1,keys_scanned=...,scan_progress=42.5,big_keys=...,changed_during_read=...,
//	notify=ok,subscription=up,notifications=...,coalesced=...,rereads=...,pending=...,big_rereads=...,
//	big_reread_bytes=...,subscription_drops=...,rescans=...,flushes_detected=...,pending_overflows=...,
//	stream_refreshes=...
//
// (the fields after changed_during_read for mode scan_live only).
func infoWriteScan(l *infoLine, s *ScanNode) {
	l.str("mode", s.Mode)
	l.int("scan_passes", s.Passes)
	l.int("keys_scanned", s.KeysScanned)
	l.str("scan_progress", strconv.FormatFloat(s.Progress, 'f', 1, 64))
	l.int("big_keys", s.BigKeys)
	l.int("changed_during_read", s.ChangedDuringRead)
	if s.Mode != "scan_live" {
		return
	}
	l.str("notify", s.Notify)
	sub := "down"
	if s.SubscriptionUp {
		sub = "up"
	}
	l.str("subscription", sub)
	l.int("notifications", s.Notifications)
	l.int("coalesced", s.Coalesced)
	l.int("rereads", s.Rereads)
	l.int("pending", s.Pending)
	l.int("big_rereads", s.BigRereads)
	l.int("big_reread_bytes", s.BigRereadBytes)
	l.int("subscription_drops", s.SubscriptionDrops)
	l.int("rescans", s.Rescans)
	l.int("flushes_detected", s.FlushesDetected)
	l.int("pending_overflows", s.PendingOverflows)
	l.int("stream_refreshes", s.StreamRefreshes)
}

// infoWriteTargets writes one line per target node:
//
//	target0:ip=10.0.0.2,port=7000,state=connected,inflight=...,inflight_bytes=...,sent_cmds=...,sent_bytes=...,replies=...,errors=...,last_error=
func infoWriteTargets(w *infoWriter, s *Snapshot) {
	for i := range s.Targets {
		n := &s.Targets[i]
		l := infoLine{b: &w.b}
		l.start("target", i)
		ip, port := infoSplitAddr(n.Addr)
		l.str("ip", ip)
		l.str("port", port)
		l.str("state", n.State)
		l.int("inflight", n.Inflight)
		l.int("inflight_bytes", n.InflightBytes)
		l.int("sent_cmds", n.SentCmds)
		l.int("sent_bytes", n.SentBytes)
		l.int("replies", n.Replies)
		l.int("errors", n.ErrorCount)
		l.str("last_error", n.LastError)
		l.end()
	}
}

// infoWriteErrors writes the totals, then "errors_<reason>:N" and
// "skipped_<reason>:N", each sorted by reason.
func infoWriteErrors(w *infoWriter, s *Snapshot) {
	w.int("total_errors", infoSum(s.Errors))
	w.int("total_skipped", infoSum(s.Skipped))
	infoWriteCounts(w, "errors_", s.Errors)
	infoWriteCounts(w, "skipped_", s.Skipped)
}

// infoWriteCounts writes prefix+reason lines sorted by the field name;
// reasons that clean up to the same field name are added together.
func infoWriteCounts(w *infoWriter, prefix string, m map[string]int64) {
	byKey := make(map[string]int64, len(m))
	for k, v := range m {
		byKey[infoKey(k)] += v
	}
	for _, k := range slices.Sorted(maps.Keys(byKey)) {
		w.int(prefix+k, byKey[k])
	}
}

func infoSum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func infoWriteProgress(w *infoWriter, s *Snapshot) {
	p := &s.Progress
	w.str("phase", infoValue(p.Phase))
	w.int("keys_restored", p.KeysRestored)
	w.int("keys_expired_skipped", p.ExpiredSkipped)
	w.int("restores_from_file", p.RestoresFromFile)
	w.int("big_commands_streamed", p.BigStreamed)
	w.int("big_commands_chunked", p.BigChunked)
	w.int("big_command_chunks", p.BigChunks)
}

// infoLine builds one "name0:k=v,k=v" line.
type infoLine struct {
	b     *strings.Builder
	first bool
}

func (l *infoLine) start(name string, i int) {
	l.b.WriteString(name)
	l.b.WriteString(strconv.Itoa(i))
	l.b.WriteByte(':')
	l.first = true
}

func (l *infoLine) str(key, val string) {
	if !l.first {
		l.b.WriteByte(',')
	}
	l.first = false
	l.b.WriteString(key)
	l.b.WriteByte('=')
	l.b.WriteString(infoFieldValue(val))
}

func (l *infoLine) int(key string, v int64) {
	l.str(key, strconv.FormatInt(v, 10))
}

func (l *infoLine) end() { l.b.WriteString("\r\n") }

// infoSplitAddr splits "host:port" for the ip= and port= fields; an address
// without a port goes whole into ip=, with port= empty.
func infoSplitAddr(addr string) (ip, port string) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, ""
	}
	return h, p
}

// infoMaxValue caps a free-text value (an error message) so one INFO line
// stays short.
const infoMaxValue = 256

// infoValue makes free text safe as a "field:value" value: CR, LF and other
// control bytes become spaces, and the text is cut at infoMaxValue bytes.
func infoValue(s string) string {
	return infoClean(s, "")
}

// infoFieldValue makes free text safe inside a "k=v,k=v" line: as
// infoValue, and ',' and '=' become spaces too.
func infoFieldValue(s string) string {
	return infoClean(s, ",=")
}

func infoClean(s, also string) string {
	if len(s) > infoMaxValue {
		s = s[:infoMaxValue]
	}
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || strings.IndexByte(also, c) >= 0 {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c == 0x7f || strings.IndexByte(also, c) >= 0 {
			b[i] = ' '
		}
	}
	return string(b)
}

// infoKey makes a reason usable in a field name: lower case, and any byte
// but [a-z0-9_] becomes '_'.
func infoKey(reason string) string {
	if reason == "" {
		return "unknown"
	}
	b := []byte(strings.ToLower(reason))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// infoBytesHuman formats a byte count as RMT's integer_byte_to_size_string
// (rmt_util.c): under 1024 "<n>B", else 1024-based with two decimals and
// K, M, G, T or P; from 1024 P on, "<n>B" again.
func infoBytesHuman(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + "B"
	}
	const units = "KMGTP"
	for i := range len(units) {
		shift := 10 * (i + 1)
		if n < int64(1)<<(shift+10) {
			return strconv.FormatFloat(float64(n)/float64(int64(1)<<shift), 'f', 2, 64) + units[i:i+1]
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
