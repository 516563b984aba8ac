// Package source is where data comes from. Its core is Link, a replica link to one Redis master:
// it performs the replica handshake, asks for a partial or a full resynchronisation, spools the
// master's RDB snapshot to a file (both the disk `$<len>` and the diskless `$EOF:<mark>` framings),
// then drains the replication stream into an on-disk spool (aof.Spool) at full speed, counting
// every byte toward the replication offset, and acknowledges only what is fsynced. It reconnects
// with exponential backoff and asks for `PSYNC <replid> <received+1>` first.
//
//	l := source.NewLink(source.LinkOptions{Addr: "127.0.0.1:6379", Dir: "data/node0"})
//	go l.Run(ctx) // returns when ctx is done, then closes Events
//	defer l.Close() // closes the spool, once its readers are done
//	for ev := range l.Events() {
//		switch ev := ev.(type) {
//		case source.FullSync: // load ev.RDBPath, then replay l.Spool() from ev.Offset
//		case source.Continue: // keep replaying l.Spool()
//		case source.Disconnected: // informational; the link retries by itself
//		}
//	}
//
// One goroutine reads the socket and nothing else does; it never waits on the consumer of the
// spool or of Events. State leaves the link only through Stats, as a value copy (link up or
// down and since when, the last byte's time, protocol errors, resyncs), taken without side
// effects by any number of readers.
//
// Commands of any size pass: the drain (an aof.Copier) writes a big one to the spool in pieces
// as it arrives and never holds it, so the spool may end inside a command; the next PSYNC
// resumes at that byte and the drain goes on there. Every reply from the master is checked
// (replid, offsets, lengths, marks, line lengths) before it is used. A snapshot that fails to
// load is dropped with Resync, which asks for a new one after a capped backoff:
//
//	if err := load(ev.RDBPath); err != nil {
//		l.Resync(err) // PSYNC ? -1, no sooner than the resync backoff; a FullSync follows
//	}
package source
