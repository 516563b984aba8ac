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
// spool or of Events. State leaves the link only through Stats, as a value copy.
package source
