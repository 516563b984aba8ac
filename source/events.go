package source

// Event is something the daemon must know about a link: FullSync, Continue or Disconnected.
type Event interface{ isEvent() }

// FullSync says a new RDB snapshot is completely on disk and fsynced at RDBPath. The daemon loads
// it, then replays the spool from Offset (the master's offset at the snapshot).
type FullSync struct {
	Replid  string
	Offset  int64
	RDBPath string
	RDBSize int64
}

// Continue says a partial resynchronisation was accepted: the stream goes on at Offset (the
// first new byte is Offset+1) under Replid, appended to the same spool.
type Continue struct {
	Replid string
	Offset int64
}

// Disconnected says the connection ended, with why. The link reconnects by itself.
type Disconnected struct{ Err error }

func (FullSync) isEvent()     {}
func (Continue) isEvent()     {}
func (Disconnected) isEvent() {}
