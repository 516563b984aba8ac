// Package statustest holds a fixed status.Snapshot for the tests of INFO's renderers and
// of the servers that serve it.
package statustest

import (
	"time"

	"github.com/rmt-project/rmt/daemon/status"
)

// Fixed returns a status.Snapshot with every section filled with fixed values: the one the
// golden files of INFO are rendered from, and what servers of INFO are tested with.
func Fixed() *status.Snapshot {
	return &status.Snapshot{
		Server: status.ServerInfo{
			Version:         "0.1.0",
			OS:              "Linux 6.1.0-18-amd64 x86_64",
			MultiplexingAPI: "epoll",
			GoVersion:       "go1.26.8",
			ProcessID:       4242,
			TCPPort:         8888,
			Uptime:          3*24*time.Hour + 5*time.Hour + 7*time.Second + 900*time.Millisecond,
			ConfigFile:      "/etc/rmt/rmt.yaml",
		},
		Clients: status.ClientsInfo{Connected: 2, MaxClients: 100, TotalReceived: 17},
		Memory:  status.MemoryInfo{Allocator: "go", RSS: 52428800, HeapInUse: 1536},
		Group:   status.GroupInfo{SourceNodes: 2, TargetNodes: 1},
		Stats: status.StatsInfo{
			AllRDBReceived: true, AllRDBParsed: false, AllAOFLoaded: false,
			RDBReceivedCount: 2, RDBParsedCount: 1, AOFLoadedCount: 0,
			TotalMsgsRecv: 123456, TotalMsgsSent: 123000,
			TotalNetInputBytes: 10 << 20, TotalNetOutputBytes: 1023,
			TotalMbufsInqueue: 456, TotalMsgsOutqueue: 12,
		},
		Sources: []status.SourceNode{
			{
				Addr: "10.0.0.1:6379", State: "oplog", Link: "up", LastIOMs: 120,
				Replid:         "8f9d4c3b2a1e0f9d8c7b6a5f4e3d2c1b0a9f8e7d",
				ReceivedOffset: 1000500, AppliedOffset: 1000000, LagBytes: 500, LagMs: 12,
				RDBBytes: 4096, RDBTotal: 4096, RDBKeysLoaded: 100, RDBPercent: 100,
				FullSyncs: 1, PartialSyncs: 2, Reconnects: 3,
			},
			{
				Name: "shard-b", Addr: "[::1]:6380", State: "rdb", Link: "down", LastIOMs: 5200, LinkDownMs: 5200,
				Replid:   "0000000000000000000000000000000000000000",
				RDBBytes: 2048, RDBTotal: -1, RDBPercent: 37.5, RDBEtaS: 12, FullSyncs: 1,
				LastError: "read tcp: i/o timeout,\r\nretry=3",
			},
		},
		Targets: []status.TargetNode{
			{
				Addr: "10.0.0.2:7000", State: "connected",
				Inflight: 12, InflightBytes: 3400, SentCmds: 123000, SentBytes: 9000000,
				Replies: 122988, ErrorCount: 1, LastError: "CROSSSLOT Keys in request don't hash to the same slot",
			},
		},
		Errors:   map[string]int64{"target_error": 1, "cross_slot": 4, "Unknown Type": 2},
		Skipped:  map[string]int64{"filtered": 10, "expired": 7},
		Progress: status.ProgressInfo{Phase: "oplog", KeysRestored: 100, ExpiredSkipped: 7},
	}
}
