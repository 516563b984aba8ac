package source

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

// LinkStats is a snapshot of a link; it shares nothing with the link.
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
	LastIOUnixMs       int64 // last time bytes came from the master
	MasterLinkUp       bool
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
