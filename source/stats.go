package source

import "time"

// State is where a link stands.
type State int32

// States of a link, in the order a connection goes through them.
const (
	StateConnecting State = iota
	StateHandshake
	StateRDBTransfer
	StateStreaming
	StateBackoff
)

var stateNames = [...]string{"connecting", "handshake", "rdb_transfer", "streaming", "backoff"}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "unknown"
	}
	return stateNames[s]
}

// LinkStats is a snapshot of a link; it shares nothing with the link, and taking it changes
// nothing.
type LinkStats struct {
	Addr           string
	State          State
	Replid         string
	ReceivedOffset int64 // end of the fsynced spool, in the master's offsets
	RDBBytes       int64 // bytes of the current/last RDB written to disk
	RDBTotal       int64 // its announced size; -1 while a diskless transfer runs
	FullSyncs      int64
	PartialSyncs   int64
	// LastFullSyncUnixMs is when the master last answered +FULLRESYNC (and forked for it).
	LastFullSyncUnixMs int64
	Reconnects         int64
	LastError          string
	LastIOUnixMs       int64 // last time bytes came from the master (PINGs and keep-alives too); 0: never
	// MasterLinkUp says the link is streaming, as Redis's master_link_status:up: connected,
	// the snapshot (if any) received. DownSinceUnixMs is when it last stopped being so (or
	// when the link was made, before the first time); 0 while it is up.
	MasterLinkUp    bool
	DownSinceUnixMs int64
	// ProtocolErrors counts replies and stream bytes from the master that broke the protocol
	// (a malformed or oversized line, a replid, an offset or a length out of range, a bad
	// command in the stream); each ended a connection, and LastError says which.
	ProtocolErrors int64
	// Resyncs counts the full syncs started by Resync, LastResyncError the reason given to the
	// last Resync, and NextResyncUnixMs when a pending one may start (the resync backoff), 0
	// when none is pending.
	Resyncs          int64
	LastResyncError  string
	NextResyncUnixMs int64
}

// LastIOAge returns how long ago the last byte came from the master, as of now (-1 if never):
// INFO's last_io_ms.
func (s LinkStats) LastIOAge(now time.Time) time.Duration {
	if s.LastIOUnixMs == 0 {
		return -1
	}
	return max(now.Sub(time.UnixMilli(s.LastIOUnixMs)), 0)
}

// DownFor returns how long the link has been down as of now, 0 while it is up: INFO's
// link_down_ms.
func (s LinkStats) DownFor(now time.Time) time.Duration {
	if s.MasterLinkUp || s.DownSinceUnixMs == 0 {
		return 0
	}
	return max(now.Sub(time.UnixMilli(s.DownSinceUnixMs)), 0)
}
