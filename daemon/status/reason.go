package status

// Reason is why something is counted in INFO's Errors section: what could not be done, or
// what was left out on purpose. Its String is the counter's name (errors_<reason>,
// skipped_<reason>), which stays as it is: scripts read it.
type Reason int

// Reasons the daemon counts. Reasons from the source and the target (a filter's, a target's
// error reply prefix) are counted under their own names.
const (
	ReasonTargetConn           Reason = iota + 1 // a target connection failed or broke
	ReasonTargetClose                            // closing a writer failed (an rdb file not finished)
	ReasonRDBLoad                                // a snapshot could not be loaded
	ReasonRDBFile                                // an rdb file target could not be written
	ReasonAOFOpen                                // an aof file source could not be opened
	ReasonAOFCorrupt                             // an aof file source holds bytes that are not commands
	ReasonAOFTruncated                           // an aof file source ends inside a command
	ReasonPartialResyncRefused                   // the master answered a resume with a full sync
	ReasonResyncFlushAll                         // the target was emptied before a new snapshot
	ReasonResyncStaleKeys                        // a new snapshot over keys other nodes wrote: stale keys may stay
	ReasonMasterNotFollowed                      // a source master serves slots no node follows
	ReasonFiltered                               // common.filter left a key or command out
	ReasonFailover                               // a source master's failover was followed
	ReasonSnapshotResync                         // a snapshot did not decode: a new one was asked
	ReasonTargetDataLost                         // the target lost what it acknowledged: a full sync follows
	ReasonSourceHeld                             // a new snapshot would have emptied the target: held for RESYNC
	ReasonOwnKeysRemoved                         // keys of a load cut short or replaced, removed before the next
	ReasonCommandDropped                         // a stream command the target broke its connection on, again and again
)

var reasonNames = map[Reason]string{
	ReasonTargetConn:           "target_conn",
	ReasonTargetClose:          "target_close",
	ReasonRDBLoad:              "rdb_load",
	ReasonRDBFile:              "rdb_file",
	ReasonAOFOpen:              "aof_open",
	ReasonAOFCorrupt:           "aof_corrupt",
	ReasonAOFTruncated:         "aof_truncated",
	ReasonPartialResyncRefused: "partial_resync_refused",
	ReasonResyncFlushAll:       "resync_flushall",
	ReasonResyncStaleKeys:      "resync_stale_keys_possible",
	ReasonMasterNotFollowed:    "source_master_not_followed",
	ReasonFiltered:             "filtered",
	ReasonFailover:             "source_failover_followed",
	ReasonSnapshotResync:       "snapshot_resync",
	ReasonTargetDataLost:       "target_data_lost",
	ReasonSourceHeld:           "source_held",
	ReasonOwnKeysRemoved:       "own_keys_removed",
	ReasonCommandDropped:       "command_dropped",
}

func (r Reason) String() string {
	if s, ok := reasonNames[r]; ok {
		return s
	}
	return "unknown"
}
