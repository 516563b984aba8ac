package status_test

import (
	"testing"

	"github.com/rmt-project/rmt/daemon/status"
)

// TestRenderInfoScanNodes: nodes read by SCAN add their figures to their sourceN lines, before
// last_error; scan_live's only for a scan_live node; other nodes' lines are unchanged.
func TestRenderInfoScanNodes(t *testing.T) {
	snap := &status.Snapshot{
		Sources: []status.SourceNode{
			{Addr: "10.0.0.1:6379", State: "oplog", Replid: "8f9d4c3b2a1e0f9d8c7b6a5f4e3d2c1b0a9f8e7d",
				ReceivedOffset: 5000, AppliedOffset: 4000, LagBytes: 1000, RDBBytes: 4096, RDBTotal: -1, RDBKeysLoaded: 100, RDBPercent: 100,
				FullSyncs: 1, Reconnects: 1, LastError: "connection reset",
				Scan: status.ScanNode{Mode: "scan_live", Passes: 2, KeysScanned: 250, Progress: 100, BigKeys: 3,
					ChangedDuringRead: 1, Notify: "unknown", SubscriptionUp: true, Notifications: 900, Coalesced: 40,
					Rereads: 850, Pending: 10, BigRereads: 2, BigRereadBytes: 1 << 20, SubscriptionDrops: 1, Rescans: 1,
					FlushesDetected: 0, PendingOverflows: 0, StreamRefreshes: 12}},
			{Addr: "10.0.0.3:6379", State: "rdb", RDBBytes: 512, RDBTotal: -1, RDBPercent: 42.2, RDBEtaS: 30,
				Scan: status.ScanNode{Mode: "scan", Passes: 1, KeysScanned: 40, Progress: 42.25}},
			{Addr: "10.0.0.4:6379", State: "oplog", Replid: "0000000000000000000000000000000000000000", RDBPercent: 100},
		},
	}
	infoCheckGolden(t, "info_scan.txt", status.RenderInfo(snap, []string{"sources"}))
}
