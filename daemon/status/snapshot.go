package status

import (
	"maps"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Snapshot is everything INFO shows, as plain values. A Snapshot shares no
// maps, slices or pointers with live state (nats `Varz` style): it is built
// under whatever locks the components need, then rendered by RenderInfo with
// none held. A Snapshot handed to the admin port is only read, never written.
type Snapshot struct {
	Server  ServerInfo
	Clients ClientsInfo
	Memory  MemoryInfo
	Group   GroupInfo
	Stats   StatsInfo

	// Sources has one entry per source master, Targets one per target node,
	// rendered in slice order as source0, source1, ... and target0, ...
	Sources []SourceNode
	Targets []TargetNode

	// Errors counts what could not be applied, by reason; Skipped counts
	// what was left out on purpose (expired keys, filtered keys, ...), by
	// reason. Both render sorted by reason.
	Errors  map[string]int64
	Skipped map[string]int64

	Progress ProgressInfo
}

// ServerInfo is INFO's "# Server" section.
type ServerInfo struct {
	Version         string        // rmtd's version
	OS              string        // "Linux 6.1.0 x86_64", as RMT's uname line
	MultiplexingAPI string        // "epoll" (RMT's field; Go's netpoller)
	GoVersion       string        // runtime.Version(), shown as gcc_version
	ProcessID       int           // os.Getpid()
	TCPPort         int           // the admin port
	Uptime          time.Duration // since the daemon started
	ConfigFile      string        // path of the config file, "" if none
}

// ClientsInfo is INFO's "# Clients" section: admin-port connections. The
// admin port fills it itself when it renders INFO.
type ClientsInfo struct {
	Connected     int64 // connected_clients
	MaxClients    int64 // max_clients_limit
	TotalReceived int64 // total_connections_received

	// rmtd's own, after RMT's fields.
	Rejected     int64 // rejected_connections: max_clients reached, every client authenticated
	Evicted      int64 // evicted_clients: unauthenticated connections closed to make room
	AuthFailures int64 // auth_failures
}

// MemoryInfo is INFO's "# Memory" section.
type MemoryInfo struct {
	Allocator string // "go"
	RSS       int64  // resident set size in bytes, 0 if unknown
	HeapInUse int64  // bytes of heap spans in use (runtime.MemStats.HeapInuse)
}

// GroupInfo is INFO's "# Group" section.
type GroupInfo struct {
	SourceNodes int
	TargetNodes int
}

// StatsInfo is INFO's "# Stats" section, RMT's fields.
type StatsInfo struct {
	AllRDBReceived bool // every source node's RDB is on disk
	AllRDBParsed   bool // every source node's RDB is loaded into the target
	AllAOFLoaded   bool // every "aof file" source is loaded

	RDBReceivedCount int
	RDBParsedCount   int
	AOFLoadedCount   int

	TotalMsgsRecv       int64 // commands read from the sources
	TotalMsgsSent       int64 // commands written to the targets
	TotalNetInputBytes  int64 // bytes read from the sources
	TotalNetOutputBytes int64 // bytes written to the targets
	TotalMbufsInqueue   int64 // commands spooled, not yet sent
	TotalMsgsOutqueue   int64 // commands sent, reply not yet in
}

// SourceNode is one source master as INFO shows it, one "sourceN:" line.
type SourceNode struct {
	Name  string // twemproxy server name, "" if none
	Addr  string // host:port
	State string // e.g. "connecting", "sync", "rdb", "oplog", "stalled"

	// The replica link, as Redis's own replica INFO says it: "up" or "down" ("none" for a
	// file), milliseconds since the last byte from the master, and since the link went down
	// (0 while up).
	Link       string
	LastIOMs   int64
	LinkDownMs int64

	Replid         string
	ReceivedOffset int64 // end of the spool on disk
	AppliedOffset  int64 // last command whose reply came back
	LagBytes       int64
	LagMs          int64

	RDBBytes      int64 // RDB bytes received so far
	RDBTotal      int64 // RDB size announced by the master, -1 if unknown (diskless)
	RDBKeysLoaded int64
	// How far the snapshot load is: percent (of its bytes, or of the keys the source held
	// where a diskless transfer does not say its size; 100 once loaded) and seconds left at
	// the load's average rate; -1 while unknown.
	RDBPercent float64
	RDBEtaS    int64
	// RDBLoadedBytes estimates the snapshot bytes the target has answered for (not in INFO:
	// the rate of the terminal's progress bars).
	RDBLoadedBytes int64

	FullSyncs    int64
	PartialSyncs int64
	Reconnects   int64
	LastError    string

	// Scan holds the figures of a node read by SCAN (source.mode scan or scan_live); its Mode
	// is "" for every other node, whose line shows none of them.
	Scan ScanNode
}

// ScanNode is what a node read by SCAN adds to its sourceN line.
type ScanNode struct {
	Mode              string  // "scan" or "scan_live"
	Passes            int64   // passes over every db begun
	KeysScanned       int64   // keys SCAN gave, every pass and rescan
	Progress          float64 // the current pass, in percent (100 once done)
	BigKeys           int64   // keys read in pages rather than one DUMP
	ChangedDuringRead int64

	// scan_live only.
	Notify            string // notify-keyspace-events: "ok", "missing" or "unknown" (CONFIG refused)
	SubscriptionUp    bool
	Notifications     int64
	Coalesced         int64 // notifications of a key already waiting to be read
	Rereads           int64 // keys read again and written whole
	Pending           int64 // keys waiting to be read again
	BigRereads        int64
	BigRereadBytes    int64
	SubscriptionDrops int64
	Rescans           int64 // new passes (or dbs read again) because changes may have been missed
	FlushesDetected   int64
	PendingOverflows  int64
	StreamRefreshes   int64 // streams with consumer groups read again (XREADGROUP, XACK are not notified)
}

// TargetNode is one target node as INFO shows it, one "targetN:" line.
type TargetNode struct {
	Addr  string // host:port
	State string // e.g. "connected", "down"

	Inflight      int64 // commands sent, reply not yet in
	InflightBytes int64
	SentCmds      int64
	SentBytes     int64
	Replies       int64
	ErrorCount    int64 // error replies
	LastError     string
}

// ProgressInfo is INFO's "# Progress" section.
type ProgressInfo struct {
	Phase          string // e.g. "sync", "rdb", "oplog", "done"
	KeysRestored   int64  // RDB keys written to the targets
	ExpiredSkipped int64  // RDB keys skipped because already expired
	// RestoresFromFile counts snapshot values too big to hold, RESTOREd from the file.
	RestoresFromFile int64
	// Big commands of the stream (over big_key_bytes): sent whole from the spool, or re-chunked
	// (BigChunked), in BigChunks chunks.
	BigStreamed, BigChunked, BigChunks int64
}

// Clone returns a deep copy of s: the copy shares no slices or maps with s.
// A nil s gives nil.
func (s *Snapshot) Clone() *Snapshot {
	if s == nil {
		return nil
	}
	c := *s
	c.Sources = slices.Clone(s.Sources)
	c.Targets = slices.Clone(s.Targets)
	c.Errors = maps.Clone(s.Errors)
	c.Skipped = maps.Clone(s.Skipped)
	return &c
}

// CurrentServerInfo fills the process-wide part of the Server section: OS,
// multiplexing API, Go version, pid and uptime since started.
func CurrentServerInfo(version, configFile string, tcpPort int, started time.Time) ServerInfo {
	return ServerInfo{
		Version:         version,
		OS:              HostOS(),
		MultiplexingAPI: "epoll",
		GoVersion:       runtime.Version(),
		ProcessID:       os.Getpid(),
		TCPPort:         tcpPort,
		Uptime:          time.Since(started),
		ConfigFile:      configFile,
	}
}

// HostOS returns the OS line as RMT prints it from uname(2):
// "<sysname> <release> <machine>", e.g. "Linux 6.1.0-18-amd64 x86_64". Off
// Linux (no /proc) it falls back to GOOS and the release is left out.
func HostOS() string {
	sys, release := runtime.GOOS, ""
	if b, err := os.ReadFile("/proc/sys/kernel/ostype"); err == nil {
		sys = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		release = strings.TrimSpace(string(b))
	}
	machine := runtime.GOARCH
	switch machine { // uname's names for Go's
	case "amd64":
		machine = "x86_64"
	case "arm64":
		machine = "aarch64"
	case "386":
		machine = "i686"
	}
	if release == "" {
		return sys + " " + machine
	}
	return sys + " " + release + " " + machine
}

// CurrentMemory reads the Memory section for this process: heap in use from
// runtime/metrics (no stop-the-world), RSS from /proc/self/statm (0 when
// unavailable).
func CurrentMemory() MemoryInfo {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
	}
	metrics.Read(samples)
	var heap int64
	for _, s := range samples {
		if s.Value.Kind() == metrics.KindUint64 {
			heap += int64(s.Value.Uint64())
		}
	}
	return MemoryInfo{Allocator: "go", RSS: infoProcRSS(), HeapInUse: heap}
}

// infoProcRSS reads the resident set size from /proc/self/statm (second
// field, in pages), or 0.
func infoProcRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || pages < 0 {
		return 0
	}
	return pages * int64(os.Getpagesize())
}
