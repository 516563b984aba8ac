package source

// Event is something the daemon must know about a link: RDBStarted, FullSync, Continue or
// Disconnected.
type Event interface{ isEvent() }

// FullSync says a new RDB snapshot is completely on disk and fsynced at RDBPath. The daemon loads
// it, then replays the spool from Offset (the master's offset at the snapshot).
type FullSync struct {
	Replid  string
	Offset  int64
	RDBPath string
	RDBSize int64
}

// RDBStarted says a new snapshot has begun to arrive. Its Transfer can be read while it does;
// the FullSync with the same Replid and Offset follows once it is complete (or, if the transfer
// fails, never: the link starts over and a new RDBStarted comes).
type RDBStarted struct {
	Replid   string
	Offset   int64
	Transfer *Transfer
}

// Continue says a partial resynchronisation was accepted: the stream goes on at Offset (the
// first new byte is Offset+1) under Replid, appended to the same spool.
type Continue struct {
	Replid string
	Offset int64
}

// Disconnected says the connection ended, with why. The link reconnects by itself.
type Disconnected struct{ Err error }

func (RDBStarted) isEvent()   {}
func (FullSync) isEvent()     {}
func (Continue) isEvent()     {}
func (Disconnected) isEvent() {}
