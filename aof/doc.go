// Package aof is the command stream of a Redis master: a RESP command reader that counts the
// bytes of every command (so replication offsets are sums of exact wire lengths), the on-disk
// spool of a replication stream in segments named by offset, the command table (flags and key
// positions, generated from Redis's own COMMAND output), and AOF file sources.
//
// Reading commands from a spool, from a given replication offset:
//
//	sr, err := spool.NewReader(ctx, applied)
//	r := aof.NewReader(sr)
//	var c aof.Command
//	for {
//		if err := r.Next(&c); err != nil {
//			return err // io.EOF, ctx.Err(), or an *aof.Error saying where
//		}
//		offset := applied + r.Offset() // the replication offset after c
//		spec := aof.Lookup(c.Args[0])  // nil for an unknown command
//		keys := spec.Keys(c.Args, nil)
//		...
//	}
package aof
