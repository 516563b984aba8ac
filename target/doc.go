// Package target is where data goes: a pipelined connection to a Redis target with a bounded
// in-flight window and per-reply checking (Conn), and the writers that turn RDB entries into
// RESTORE commands and forward the replication stream in order, one per kind of target: Single,
// Cluster (slots, MOVED/ASK), Twemproxy (straight to the backend nutcracker would pick) and
// RDBFile. On a single target the stream can be exactly once (checkpoint.go).
//
// The RDB phase spreads keys over several connections; the oplog phase keeps one ordered
// pipeline and reports the replication offset whose reply came back:
//
//	w, err := target.NewSingle(ctx, target.SingleOptions{Conn: target.Options{Addr: "127.0.0.1:6379"}})
//	for dec.Next(&e) == nil {
//		err := w.Restore(&e)            // RESTORE, or native commands when RESTORE cannot carry it
//		if errors.Is(err, target.ErrNeedsRewrite) {
//			err = w.Rewrite(&e, valueReader) // a value the decoder did not hold, read element by element
//		}
//	}
//	err = w.WaitRDB(ctx)                // every RESTORE reply is in
//	for cmd, end := range oplog {
//		err = w.Apply(&cmd, end)        // raw bytes, in order, pipelined
//	}
//	off, db := w.Applied()              // checkpoint: last acknowledged offset and its db
//
// Error replies leave a connection usable and are counted by reason (their prefix: ERR,
// WRONGTYPE, OOM, ...); I/O and protocol errors break it and fail every request still in flight.
package target
