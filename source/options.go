package source

import (
	"crypto/tls"
	"time"

	"go.uber.org/zap"
)

// Defaults applied by NewLink to zero fields of LinkOptions.
const (
	DefaultTimeout           = 60 * time.Second // repl-timeout of Redis
	DefaultBackoffMin        = 100 * time.Millisecond
	DefaultBackoffMax        = 5 * time.Second
	DefaultSpoolSegmentBytes = 64 << 20
	DefaultAckInterval       = time.Second
	// A failed full sync is retried after FullSyncBackoffMin, doubling up to FullSyncBackoffMax.
	DefaultFullSyncBackoffMin = 2 * time.Second
	DefaultFullSyncBackoffMax = 5 * time.Minute
	// A Resync's full sync waits at least DefaultResyncBackoffMin after the previous full sync,
	// twice as long after each Resync that follows within twice DefaultResyncBackoffMax of the
	// last one, up to DefaultResyncBackoffMax: a snapshot that keeps failing to load makes the
	// master fork at most every few minutes.
	DefaultResyncBackoffMin = time.Second
	DefaultResyncBackoffMax = 5 * time.Minute
)

// ResumePoint is where a previous run stopped: the master's replication id and the offset of the
// last stream byte already dealt with (a checkpoint's applied offset). The spool in Dir/oplog
// must hold every byte after Offset: then the first PSYNC asks for the spool's end + 1. If the
// spool ends before Offset (it was lost) it restarts at Offset; if it starts after Offset, the
// link asks for a full sync.
type ResumePoint struct {
	Replid string
	Offset int64
}

// LinkOptions configure a Link. Only Addr and Dir are required.
type LinkOptions struct {
	Addr     string // host:port of the master
	Username string // ACL user; empty for the legacy `AUTH <password>`
	Password string // never logged
	// Timeout bounds each handshake step and every read from the master (repl-timeout).
	Timeout time.Duration
	TLS     *tls.Config // nil: plain TCP
	// Dir is this node's directory: RDB files and the oplog/ spool live there.
	Dir string
	// ListeningPort is sent in `REPLCONF listening-port` (the daemon passes its admin port).
	ListeningPort int
	// Resume, when set, makes the first attempt a `PSYNC <replid> <offset+1>`.
	Resume            *ResumePoint
	SpoolSegmentBytes int64 // 0: DefaultSpoolSegmentBytes
	MaxSpoolBytes     int64 // 0: unbounded (the spool's own default)
	Logger            *zap.Logger
	BackoffMin        time.Duration // 0: DefaultBackoffMin
	BackoffMax        time.Duration // 0: DefaultBackoffMax
	// AckInterval is the period of `REPLCONF ACK` (0: DefaultAckInterval).
	AckInterval time.Duration
	// FullSyncBackoffMin and Max bound the wait after a full sync that failed (0: defaults).
	FullSyncBackoffMin, FullSyncBackoffMax time.Duration
	// The backoff between full syncs asked for by Resync (0: the defaults).
	ResyncBackoffMin time.Duration
	ResyncBackoffMax time.Duration
	// PSyncCommand and ReplconfCommand are the names the master knows PSYNC and REPLCONF by:
	// some managed services rename them for a customer (source.psync_command,
	// source.replconf_command). "" means PSYNC and REPLCONF.
	PSyncCommand    string
	ReplconfCommand string
}

func (o *LinkOptions) setDefaults() {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = DefaultBackoffMin
	}
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = max(DefaultBackoffMax, o.BackoffMin)
	}
	if o.SpoolSegmentBytes <= 0 {
		o.SpoolSegmentBytes = DefaultSpoolSegmentBytes
	}
	if o.AckInterval <= 0 {
		o.AckInterval = DefaultAckInterval
	}
	if o.FullSyncBackoffMin <= 0 {
		o.FullSyncBackoffMin = DefaultFullSyncBackoffMin
	}
	if o.FullSyncBackoffMax < o.FullSyncBackoffMin {
		o.FullSyncBackoffMax = max(DefaultFullSyncBackoffMax, o.FullSyncBackoffMin)
	}
	if o.ResyncBackoffMin <= 0 {
		o.ResyncBackoffMin = DefaultResyncBackoffMin
	}
	if o.ResyncBackoffMax < o.ResyncBackoffMin {
		o.ResyncBackoffMax = max(DefaultResyncBackoffMax, o.ResyncBackoffMin)
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.PSyncCommand == "" {
		o.PSyncCommand = "PSYNC"
	}
	if o.ReplconfCommand == "" {
		o.ReplconfCommand = "REPLCONF"
	}
}
