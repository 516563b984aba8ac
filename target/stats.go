package target

import "maps"

// Stats is a snapshot of a writer's counters; it shares nothing with the live writer.
type Stats struct {
	Addr        string
	Version     string // the target's redis_version
	RDBVersion  int    // the newest RDB version the target restores
	Conns       []ConnStats
	Errors      map[string]uint64 // error replies by prefix (ERR, WRONGTYPE, OOM, ...) and "broken"
	Skipped     map[string]uint64 // control, pubsub, expired_skipped, ...
	Restored    uint64            // keys RESTOREd with an OK reply
	Rewritten   uint64            // keys sent as native commands (Rewrite)
	RewriteCmds uint64            // native commands of rewritten keys answered without error
	Expired     uint64            // keys skipped because their expiry had passed (expired_skipped)
	Functions   uint64            // function libraries loaded
	Retried     uint64            // RESTOREs resent after LOADING/BUSY/TRYAGAIN
	// RestoresFromFile counts RESTOREs of values the decoder did not hold, their payload copied
	// from the snapshot file to the socket.
	RestoresFromFile uint64
	// BigStreamed and BigChunked count big commands of the stream (aof.Command.Big) sent whole
	// from the spool and re-chunked; BigChunks the chunks these made.
	BigStreamed, BigChunked, BigChunks uint64
	AppliedOffset                      int64
	AppliedDB                          int
	LastError                          string
}

// addCounts adds o's key and command counters (not its maps, connections or position) to s.
func (s *Stats) addCounts(o Stats) {
	s.Restored += o.Restored
	s.Rewritten += o.Rewritten
	s.RewriteCmds += o.RewriteCmds
	s.Expired += o.Expired
	s.Functions += o.Functions
	s.Retried += o.Retried
	s.RestoresFromFile += o.RestoresFromFile
	s.BigStreamed += o.BigStreamed
	s.BigChunked += o.BigChunked
	s.BigChunks += o.BigChunks
}

// Stats returns a snapshot of the writer's counters.
func (s *Single) Stats() Stats {
	st := Stats{
		Addr:        s.opts.Conn.Addr,
		Version:     s.info.Version,
		RDBVersion:  s.info.RDBVersion,
		Restored:    s.restored.Load(),
		Rewritten:   s.rewritten.Load(),
		RewriteCmds: s.rewriteReplies.Load(),
		Expired:     s.expired.Load(),
		Functions:   s.functions.Load(),
		Retried:     s.retried.Load(),

		RestoresFromFile: s.streamedRestores.Load(),
		BigStreamed:      s.bigStreamed.Load(),
		BigChunked:       s.bigChunked.Load(),
		BigChunks:        s.bigChunks.Load(),
	}
	for _, rc := range s.rdbConns {
		st.Conns = append(st.Conns, rc.c.Stats())
	}
	s.mu.Lock()
	if s.oplog != nil {
		st.Conns = append(st.Conns, s.oplog.Stats())
	}
	st.Errors = maps.Clone(s.errs)
	st.Skipped = maps.Clone(s.skipped)
	st.AppliedOffset, st.AppliedDB = s.applied, s.appliedDB
	st.LastError = s.lastErr
	s.mu.Unlock()
	if st.Expired > 0 {
		st.Skipped[SkipExpired] = st.Expired
	}
	return st
}
