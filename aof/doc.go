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
// A command of any size passes in bounded memory. The replica link drains the socket through a
// Copier, which writes a big command to the spool in pieces as it arrives (and resumes inside
// one after a reconnect). The replayer reads the spool in big-command mode, where a command over
// the hold limit (DefaultHoldBytes) comes without being held: its name and key in Args, the
// rest a Section of the input, read in pieces from the SpoolReader (an io.ReaderAt by
// replication offset):
//
//	r := aof.NewStreamReader(sr, applied)      // big-command mode, offsets from `applied`
//	r.SetInput(sr)                             // every command's Input: where Rest is read from
//	...
//	if c.Big() {
//		aof.WriteCommand(conn, &c, nil, buf) // the command whole, copied in pieces from c.Input
//		a := c.Arguments(nil)                // or argument by argument, to re-chunk it
//		s := a.Section()                     // (an argument's wire bytes, for CopySection)
//	}
//
// AOF files (plain, with an RDB preamble, or a Redis 7 multi-part directory) go through
// OpenFile: File.NextEntry gives the RDB part's entries, then File.Next the commands
// (File.SetHold and File.ReaderAt for big ones).
package aof
