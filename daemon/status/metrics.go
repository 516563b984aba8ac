package status

import (
	"net"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is a prometheus.Collector that renders the Snapshot its function returns at each
// scrape, as INFO renders it: the same values, named by Prometheus's rules and
// redis_exporter's habits (the rmtd_ prefix, base units, _total counters, one _info gauge,
// labels per source and target node, never per key).
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(status.NewMetrics(d.Snapshot))
type Metrics struct {
	snapshot func() *Snapshot
	descs    metricDescs
}

// NewMetrics returns the collector of the snapshots snapshot returns.
func NewMetrics(snapshot func() *Snapshot) *Metrics {
	return &Metrics{snapshot: snapshot, descs: newMetricDescs()}
}

// metricDescs are every family Metrics exports.
type metricDescs struct {
	info, uptime                                   *prometheus.Desc
	clients, clientsTotal, rejected, authFailures  *prometheus.Desc
	rss, heap                                      *prometheus.Desc
	sourceNodes, targetNodes                       *prometheus.Desc
	msgsRecv, msgsSent, netIn, netOut              *prometheus.Desc
	keysRestored, keysExpired                      *prometheus.Desc
	restoresFromFile, bigCommands, bigChunks       *prometheus.Desc
	errors, skipped                                *prometheus.Desc
	srcState, srcReceived, srcApplied              *prometheus.Desc
	srcLagBytes, srcLagSeconds                     *prometheus.Desc
	srcRDBBytes, srcRDBSize, srcRDBKeys            *prometheus.Desc
	srcRDBLoaded, srcRDBEta                        *prometheus.Desc
	srcFullSyncs, srcPartialSyncs, srcReconnects   *prometheus.Desc
	scan                                           scanDescs
	tgtUp, tgtInflight, tgtInflightBytes           *prometheus.Desc
	tgtSent, tgtSentBytes, tgtReplies, tgtErrorsTo *prometheus.Desc
}

func newMetricDescs() metricDescs {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("rmtd_"+name, help, labels, nil)
	}
	node := []string{"node"}
	return metricDescs{
		info:   d("info", "rmtd's version; always 1.", "version", "go_version"),
		uptime: d("uptime_seconds", "Seconds since rmtd started."),

		clients:      d("admin_connected_clients", "Connections open on the admin port."),
		clientsTotal: d("admin_connections_received_total", "Connections accepted by the admin port."),
		rejected:     d("admin_rejected_connections_total", "Admin connections refused or evicted at max_clients.", "why"),
		authFailures: d("admin_auth_failures_total", "Failed AUTH commands on the admin port."),

		rss:  d("resident_memory_bytes", "Resident set size of the rmtd process."),
		heap: d("heap_inuse_bytes", "Go heap in use."),

		sourceNodes: d("source_nodes", "Source nodes of the job (masters, backends, files)."),
		targetNodes: d("target_nodes", "Target nodes written to."),

		msgsRecv:         d("commands_received_total", "Commands read from the sources' streams."),
		msgsSent:         d("commands_sent_total", "Commands written to the targets."),
		netIn:            d("received_bytes_total", "Bytes read from the sources (snapshots and streams)."),
		netOut:           d("sent_bytes_total", "Bytes written to the targets."),
		keysRestored:     d("keys_restored_total", "Snapshot keys written to the targets."),
		keysExpired:      d("keys_expired_skipped_total", "Snapshot keys skipped because already expired."),
		restoresFromFile: d("restores_from_file_total", "Snapshot values too big to hold, RESTOREd from the file."),
		bigCommands:      d("big_commands_total", "Stream commands over big_key_bytes, by how they went: whole from the spool, or chunked.", "how"),
		bigChunks:        d("big_command_chunks_total", "Chunks the chunked big commands made."),
		errors:           d("errors_total", "What could not be applied, by reason.", "reason"),
		skipped:          d("skipped_total", "What was left out on purpose, by reason.", "reason"),

		srcState:        d("source_state", "1 for the state the source node is in.", "node", "state"),
		srcReceived:     d("source_received_offset", "Replication offset spooled and fsynced.", node...),
		srcApplied:      d("source_applied_offset", "Replication offset applied on the target.", node...),
		srcLagBytes:     d("source_lag_bytes", "Bytes of stream received and not yet applied.", node...),
		srcLagSeconds:   d("source_lag_seconds", "Seconds the node has been behind.", node...),
		srcRDBBytes:     d("source_rdb_received_bytes", "Bytes of the current snapshot received.", node...),
		srcRDBSize:      d("source_rdb_size_bytes", "Size of the current snapshot, -1 while unknown (diskless).", node...),
		srcRDBKeys:      d("source_rdb_keys_loaded", "Keys of the current snapshot loaded into the target.", node...),
		srcRDBLoaded:    d("source_rdb_load_ratio", "How much of the current snapshot is loaded, 0 to 1; absent while unknown.", node...),
		srcRDBEta:       d("source_rdb_eta_seconds", "Seconds the snapshot load needs yet, at its average rate; absent while unknown.", node...),
		srcFullSyncs:    d("source_full_syncs_total", "Full synchronisations with the source node.", node...),
		srcPartialSyncs: d("source_partial_syncs_total", "Partial resynchronisations with the source node.", node...),
		srcReconnects:   d("source_reconnects_total", "Reconnections to the source node.", node...),

		scan: scanDescs{
			passes:      d("source_scan_passes_total", "Passes over every db begun (source.mode scan or scan_live).", node...),
			keys:        d("source_scan_keys_total", "Keys SCAN gave, every pass and rescan.", node...),
			progress:    d("source_scan_progress_ratio", "How far the current pass is, 0 to 1.", node...),
			bigKeys:     d("source_scan_big_keys_total", "Keys read in pages rather than by one DUMP.", node...),
			changed:     d("source_scan_changed_during_read_total", "Keys that changed while read, read again.", node...),
			subUp:       d("source_scan_subscription_up", "1 while the keyspace-notification subscription is up (scan_live).", node...),
			notified:    d("source_scan_notifications_total", "Keyspace notifications received (scan_live).", node...),
			coalesced:   d("source_scan_notifications_coalesced_total", "Notifications of a key already waiting to be read.", node...),
			rereads:     d("source_scan_rereads_total", "Keys read again and written whole after a notification.", node...),
			pending:     d("source_scan_pending_keys", "Keys waiting to be read again.", node...),
			bigRereads:  d("source_scan_big_rereads_total", "Big keys read again whole after a notification.", node...),
			bigBytes:    d("source_scan_big_reread_bytes_total", "Bytes of the big keys read again.", node...),
			drops:       d("source_scan_subscription_drops_total", "Subscriptions lost (changes until the next one unseen).", node...),
			rescans:     d("source_scan_rescans_total", "Passes made again because changes may have been missed.", node...),
			flushes:     d("source_scan_flushes_detected_total", "FLUSHALL or FLUSHDB found by the key count check.", node...),
			overflows:   d("source_scan_pending_overflows_total", "Times the keys waiting to be read overflowed into a rescan.", node...),
			streamReads: d("source_scan_stream_refreshes_total", "Streams with consumer groups read again.", node...),
		},

		tgtUp:            d("target_up", "1 when every connection to the target node is usable.", node...),
		tgtInflight:      d("target_inflight_commands", "Commands sent whose reply has not come back.", node...),
		tgtInflightBytes: d("target_inflight_bytes", "Bytes of the commands in flight.", node...),
		tgtSent:          d("target_sent_commands_total", "Commands sent to the target node.", node...),
		tgtSentBytes:     d("target_sent_bytes_total", "Bytes sent to the target node.", node...),
		tgtReplies:       d("target_replies_total", "Replies read from the target node.", node...),
		tgtErrorsTo:      d("target_error_replies_total", "Error replies from the target node.", node...),
	}
}

// Describe sends every family's description.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(m, ch)
}

// Collect renders one snapshot.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	s := m.snapshot()
	if s == nil {
		s = &Snapshot{}
	}
	d := &m.descs
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	counter := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, v, labels...)
	}
	gauge(d.info, 1, s.Server.Version, s.Server.GoVersion)
	gauge(d.uptime, s.Server.Uptime.Seconds())
	gauge(d.clients, float64(s.Clients.Connected))
	counter(d.clientsTotal, float64(s.Clients.TotalReceived))
	counter(d.rejected, float64(s.Clients.Rejected), "max_clients")
	counter(d.rejected, float64(s.Clients.Evicted), "evicted")
	counter(d.authFailures, float64(s.Clients.AuthFailures))
	gauge(d.rss, float64(s.Memory.RSS))
	gauge(d.heap, float64(s.Memory.HeapInUse))
	gauge(d.sourceNodes, float64(s.Group.SourceNodes))
	gauge(d.targetNodes, float64(s.Group.TargetNodes))
	counter(d.msgsRecv, float64(s.Stats.TotalMsgsRecv))
	counter(d.msgsSent, float64(s.Stats.TotalMsgsSent))
	counter(d.netIn, float64(s.Stats.TotalNetInputBytes))
	counter(d.netOut, float64(s.Stats.TotalNetOutputBytes))
	counter(d.keysRestored, float64(s.Progress.KeysRestored))
	counter(d.keysExpired, float64(s.Progress.ExpiredSkipped))
	counter(d.restoresFromFile, float64(s.Progress.RestoresFromFile))
	counter(d.bigCommands, float64(s.Progress.BigStreamed), "whole")
	counter(d.bigCommands, float64(s.Progress.BigChunked), "chunked")
	counter(d.bigChunks, float64(s.Progress.BigChunks))
	for reason, n := range foldReasons(s.Errors) {
		counter(d.errors, float64(n), reason)
	}
	for reason, n := range foldReasons(s.Skipped) {
		counter(d.skipped, float64(n), reason)
	}
	for i := range s.Sources {
		n := &s.Sources[i]
		node := nodeLabel(n.Addr, n.Name)
		gauge(d.srcState, 1, node, n.State)
		gauge(d.srcReceived, float64(n.ReceivedOffset), node)
		gauge(d.srcApplied, float64(n.AppliedOffset), node)
		gauge(d.srcLagBytes, float64(n.LagBytes), node)
		gauge(d.srcLagSeconds, float64(n.LagMs)/1000, node)
		gauge(d.srcRDBBytes, float64(n.RDBBytes), node)
		gauge(d.srcRDBSize, float64(n.RDBTotal), node)
		gauge(d.srcRDBKeys, float64(n.RDBKeysLoaded), node)
		if n.RDBPercent >= 0 {
			gauge(d.srcRDBLoaded, n.RDBPercent/100, node)
		}
		if n.RDBEtaS >= 0 {
			gauge(d.srcRDBEta, float64(n.RDBEtaS), node)
		}
		counter(d.srcFullSyncs, float64(n.FullSyncs), node)
		counter(d.srcPartialSyncs, float64(n.PartialSyncs), node)
		counter(d.srcReconnects, float64(n.Reconnects), node)
		if n.Scan.Mode != "" {
			d.scan.collect(&n.Scan, node, gauge, counter)
		}
	}
	for i := range s.Targets {
		n := &s.Targets[i]
		node := nodeLabel(n.Addr, "")
		up := 1.0
		if n.State == "down" {
			up = 0
		}
		gauge(d.tgtUp, up, node)
		gauge(d.tgtInflight, float64(n.Inflight), node)
		gauge(d.tgtInflightBytes, float64(n.InflightBytes), node)
		counter(d.tgtSent, float64(n.SentCmds), node)
		counter(d.tgtSentBytes, float64(n.SentBytes), node)
		counter(d.tgtReplies, float64(n.Replies), node)
		counter(d.tgtErrorsTo, float64(n.ErrorCount), node)
	}
}

// scanDescs are the families of a node read by SCAN, the figures its sourceN line adds.
type scanDescs struct {
	passes, keys, progress, bigKeys, changed      *prometheus.Desc
	subUp, notified, coalesced, rereads, pending  *prometheus.Desc
	bigRereads, bigBytes, drops, rescans, flushes *prometheus.Desc
	overflows, streamReads                        *prometheus.Desc
}

func (d *scanDescs) collect(s *ScanNode, node string, gauge, counter func(*prometheus.Desc, float64, ...string)) {
	counter(d.passes, float64(s.Passes), node)
	counter(d.keys, float64(s.KeysScanned), node)
	gauge(d.progress, s.Progress/100, node)
	counter(d.bigKeys, float64(s.BigKeys), node)
	counter(d.changed, float64(s.ChangedDuringRead), node)
	if s.Mode != "scan_live" {
		return
	}
	up := 0.0
	if s.SubscriptionUp {
		up = 1
	}
	gauge(d.subUp, up, node)
	counter(d.notified, float64(s.Notifications), node)
	counter(d.coalesced, float64(s.Coalesced), node)
	counter(d.rereads, float64(s.Rereads), node)
	gauge(d.pending, float64(s.Pending), node)
	counter(d.bigRereads, float64(s.BigRereads), node)
	counter(d.bigBytes, float64(s.BigRereadBytes), node)
	counter(d.drops, float64(s.SubscriptionDrops), node)
	counter(d.rescans, float64(s.Rescans), node)
	counter(d.flushes, float64(s.FlushesDetected), node)
	counter(d.overflows, float64(s.PendingOverflows), node)
	counter(d.streamReads, float64(s.StreamRefreshes), node)
}

// foldReasons keys counters by the names INFO gives them (errors_<name>), so that both
// renderings agree and two reasons that clean up alike make one series.
func foldReasons(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[infoKey(k)] += v
	}
	return out
}

// nodeLabel is a node's label: its twemproxy name when it has one, else host:port as INFO's
// ip and port fields give it.
func nodeLabel(addr, name string) string {
	if name != "" {
		return name
	}
	ip, port := infoSplitAddr(addr)
	if port == "" {
		return ip
	}
	return net.JoinHostPort(ip, port)
}

// ReadyMaxLag is the most a source node may be behind for the job to be ready.
const ReadyMaxLag = 30_000 // ms

// Ready reports whether the job is ready, as a Kubernetes readiness probe asks: every source
// node replays its stream (or, a file, is done) within ReadyMaxLag. why says what is not.
func Ready(s *Snapshot) (ok bool, why string) {
	if s == nil || len(s.Sources) == 0 {
		return false, "no source node yet"
	}
	for i := range s.Sources {
		n := &s.Sources[i]
		switch {
		case n.State != "oplog" && n.State != "done":
			return false, "source " + n.Addr + " is in state " + n.State
		case n.LagMs > ReadyMaxLag:
			return false, "source " + n.Addr + " is " + strconv.FormatInt(n.LagMs, 10) + " ms behind"
		}
	}
	return true, "every source node replays its stream"
}
