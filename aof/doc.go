// Package aof is the command stream of a Redis master: a RESP command reader that counts the
// bytes of every command (so replication offsets are sums of exact wire lengths), the on-disk
// spool of a replication stream in segments named by offset, the command table (flags and key
// positions, generated from Redis's own COMMAND reply), and AOF file sources.
//
// The replica link appends the stream to a Spool; the replayer tails it from the applied offset:
//
//	sp, err := aof.OpenSpool(dir, aof.SpoolOptions{})
//	sp.Append(cmd.Raw); sp.Sync()              // writer: Synced() is what may be ACKed
//
//	sr, err := sp.NewReader(ctx, applied)      // blocks for fsynced bytes, never polls
//	r := aof.NewReader(sr)
//	var c aof.Command
//	for {
//		if err := r.Next(&c); err != nil {
//			return err // ctx.Err(), or an *aof.Error saying what and at which offset
//		}
//		offset := applied + r.Offset()     // the replication offset after c
//		spec := aof.LookupArgs(c.Args)     // nil: unknown command, count and report it
//		keys := spec.Keys(c.Args, keys[:0]) // as COMMAND GETKEYS would answer
//		...
//	}
//
// AOF files (plain, with an RDB preamble, or a Redis 7 multi-part directory) go through
// OpenFile: File.NextEntry gives the RDB part's entries, then File.Next the commands.
package aof
