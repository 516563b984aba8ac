// Package target is where data goes. One Writer interface (target.go), every method required and
// checked at compile time, is the door of every kind of target; one registry (New) makes a job's
// Target of a kind from the config, and the Target makes the Writer of each source node:
//
//   - single (writer.go, oplog.go, checkpoint.go): one Redis; RESTOREs over several connections,
//     the stream over one ordered pipeline, exactly once with a checkpoint key;
//   - redis cluster (cluster.go) and twemproxy (twemproxy.go): one sharded writer (sharded.go,
//     sharded_oplog.go) with a router: the slot map with MOVED/ASK, or the pool's ring, each key
//     straight to the backend nutcracker would pick;
//   - rdb file (rdbfile.go): every source node's snapshot into one file.
//
// Under them: a pipelined connection with a bounded in-flight window and per-reply checking
// (Conn), RDB entry → RESTORE or native commands (rewrite.go).
//
//	tg, err := target.New(target.KindSingle, target.Config{Servers: servers, Conn: target.Options{Password: pw}})
//	w, err := tg.Writer(ctx, target.WriterOptions{Name: "10.0.0.1:6379", SourceRDBVersion: dec.Version()})
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
// What a kind does, the daemon asks its Target (Traits: takes the stream? keeps checkpoints?;
// FlushAll; Abandon) instead of testing its name.
//
// Error replies leave a connection usable and are counted by reason (their prefix: ERR,
// WRONGTYPE, OOM, ...); I/O and protocol errors break it and fail every request still in flight.
package target
