package source

import (
	"sync"
	"sync/atomic"
	"time"
)

// Notification states of a scan_live node (ScanStats.Notify).
const (
	NotifyOK      = "ok"      // CONFIG GET shows notify-keyspace-events with every class needed
	NotifyMissing = "missing" // CONFIG GET shows classes missing: the node waits until they are set
	NotifyUnknown = "unknown" // CONFIG is refused: the operator must make sure it is set
)

// ScanStats are the figures of a node read by SCAN (source.mode scan or scan_live), for INFO.
// They share nothing with the node.
type ScanStats struct {
	Mode string // ModeScan or ModeScanLive

	// Passes counts the passes over every db begun (the first, and a new one after Resync);
	// PassDone says the latest is complete. PassKeys are the keys it has read so far,
	// PassTotal the server's keys when it began (INFO keyspace; 0 when unknown): Progress()
	// is its percentage. KeysScanned counts every key SCAN gave, rescans included.
	Passes      int64
	PassDone    bool
	PassKeys    int64
	PassTotal   int64
	KeysScanned int64
	// BigKeys counts keys read in pages rather than by one DUMP (over big_key_bytes);
	// Spilled the DUMP replies over big_key_bytes kept on disk (streams, module values, a size
	// estimate too low); ChangedDuringRead the big keys that changed while read in pages.
	BigKeys           int64
	Spilled           int64
	ChangedDuringRead int64

	// scan_live. Notifications received; Coalesced of them for a key already waiting to be
	// read; Rereads keys read again and written whole (Deleted of them gone: a DEL); Pending
	// keys waiting. BigRereads big keys read again whole, BigRereadBytes their bytes.
	Notifications  int64
	Coalesced      int64
	Rereads        int64
	Deleted        int64
	Pending        int64
	BigRereads     int64
	BigRereadBytes int64
	// SubscriptionUp says the notification connection is subscribed; SubscriptionDrops counts
	// the times it was lost. Rescans counts the dbs read again in the stream (FLUSHDB, then
	// every key) because changes may have been missed: a dropped subscription, a flush
	// detected (FlushesDetected: FLUSHALL and FLUSHDB are not notified), more pending keys
	// than the node keeps (PendingOverflows).
	SubscriptionUp    bool
	SubscriptionDrops int64
	Rescans           int64
	FlushesDetected   int64
	PendingOverflows  int64
	// StreamRefreshes counts the reads of streams with consumer groups made because reads and
	// acknowledgements by a group (XREADGROUP, XACK, XCLAIM) are not notified; StreamsTracked
	// is how many such streams are read again every few seconds.
	StreamRefreshes int64
	StreamsTracked  int64
	// Notify is NotifyOK, NotifyMissing or NotifyUnknown; NotifyConfig the value CONFIG GET
	// gave ("" when refused).
	Notify       string
	NotifyConfig string
}

// Progress is the current pass's percentage, from 0 to 100 (100 only once it is done).
func (s ScanStats) Progress() float64 {
	switch {
	case s.PassDone:
		return 100
	case s.PassTotal <= 0:
		return 0
	}
	return min(float64(s.PassKeys)*100/float64(s.PassTotal), 99.9)
}

// scanCounters are a scan node's figures, updated as it goes.
type scanCounters struct {
	passID                                  atomic.Pointer[string]
	passes, passKeys, passTotal, keys       atomic.Int64
	passDone                                atomic.Bool
	completed                               atomic.Int64 // passes completed
	bytes                                   atomic.Int64 // DUMP bytes read
	bigKeys, spilled, changed               atomic.Int64
	notifications, coalesced, rereads, dels atomic.Int64
	pending, bigRereads, bigRereadBytes     atomic.Int64
	subDrops, rescans, flushes, overflows   atomic.Int64
	streamRefreshes, streamsTracked         atomic.Int64
	reconnects                              atomic.Int64
	flushChecks                             atomic.Int64 // key count checks made (for tests)
	lastIO                                  atomic.Int64
	streaming                               atomic.Bool // the pass is loaded: changes are read

	mu           sync.Mutex
	lastErr      string
	connUp       bool  // the node's data connection works
	subUp        bool  // scan_live: the notification connection is subscribed
	downSince    int64 // unix ms since the node is not up (connUp, and subUp in scan_live)
	notify       string
	notifyConfig string
}

// setConn records whether the data connection works; setSub whether the subscription does.
func (c *scanCounters) setConn(up bool, live bool) { c.setUp(func() { c.connUp = up }, live) }
func (c *scanCounters) setSub(up bool)             { c.setUp(func() { c.subUp = up }, true) }

func (c *scanCounters) setUp(change func(), live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	was := c.upLocked(live)
	change()
	if now := c.upLocked(live); now != was || !now && c.downSince == 0 {
		c.downSince = 0
		if !now {
			c.downSince = time.Now().UnixMilli()
		}
	}
}

func (c *scanCounters) upLocked(live bool) bool { return c.connUp && (c.subUp || !live) }

func (c *scanCounters) setErr(err error) {
	c.mu.Lock()
	c.lastErr = err.Error()
	c.mu.Unlock()
}

func (c *scanCounters) setNotify(state, config string) {
	c.mu.Lock()
	c.notify, c.notifyConfig = state, config
	c.mu.Unlock()
}

// Stats is the node's state: a pass is a snapshot being received (rdb_transfer), the changes
// after it a stream (streaming), and the link is up while the node's connections are.
func (n *scanNode) Stats() NodeStats {
	c := &n.st
	mode := ModeScan
	if n.live {
		mode = ModeScanLive
	}
	s := ScanStats{Mode: mode, Passes: c.passes.Load(), PassDone: c.passDone.Load(), PassKeys: c.passKeys.Load(),
		PassTotal: c.passTotal.Load(), KeysScanned: c.keys.Load(), BigKeys: c.bigKeys.Load(), Spilled: c.spilled.Load(),
		ChangedDuringRead: c.changed.Load(), Notifications: c.notifications.Load(), Coalesced: c.coalesced.Load(),
		Rereads: c.rereads.Load(), Deleted: c.dels.Load(), Pending: c.pending.Load(), BigRereads: c.bigRereads.Load(),
		BigRereadBytes: c.bigRereadBytes.Load(), SubscriptionDrops: c.subDrops.Load(),
		Rescans: c.rescans.Load(), FlushesDetected: c.flushes.Load(), PendingOverflows: c.overflows.Load(),
		StreamRefreshes: c.streamRefreshes.Load(), StreamsTracked: c.streamsTracked.Load()}
	addr := n.currentAddr()
	ls := LinkStats{Addr: addr, State: StateConnecting, RDBBytes: c.bytes.Load(), RDBTotal: -1, FullSyncs: c.completed.Load(),
		Reconnects: c.reconnects.Load(), LastIOUnixMs: c.lastIO.Load()}
	if id := c.passID.Load(); id != nil {
		ls.Replid = *id
	}
	switch {
	case c.streaming.Load():
		ls.State = StateStreaming
	case s.Passes > 0:
		ls.State = StateRDBTransfer
	}
	if n.live {
		ls.ReceivedOffset = n.lv.received()
	}
	c.mu.Lock()
	ls.LastError = c.lastErr
	s.Notify, s.NotifyConfig = c.notify, c.notifyConfig
	s.SubscriptionUp = c.subUp
	ls.MasterLinkUp = c.upLocked(n.live)
	ls.DownSinceUnixMs = c.downSince
	c.mu.Unlock()
	return NodeStats{Name: n.name, Addr: addr, Live: true, Link: ls, Scan: &s}
}
