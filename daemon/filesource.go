package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/redisfmt"
	"github.com/rmt-project/rmt/rdb"
	"github.com/rmt-project/rmt/target"
)

// maxAOFRetries bounds how many times an AOF source reconnects to a target that broke or
// refused a command for now, before the job fails.
const maxAOFRetries = 20

// runAOF applies one AOF source (a plain file, one with an RDB preamble, or a Redis 7
// multi-part directory) to the target: the RDB part's keys as in an RDB load, then every
// command in order, the offsets counting the commands' bytes. A command cut short at the end
// fails the job after everything before it is applied; its error names the file and offset.
func (j *nodeJob) runAOF(ctx context.Context) error {
	w, err := j.applyAOF(ctx)
	if w != nil {
		if err != nil {
			w.Abort() // an rdb file target is then not renamed into place
		}
		if cerr := w.Close(); cerr != nil && err == nil {
			j.fail("target_close", cerr)
			err = cerr
		}
	}
	if err != nil {
		j.phase.Store(int32(phaseFailed))
		return fmt.Errorf("%s: %w", j.server, err)
	}
	j.phase.Store(int32(phaseDone))
	return nil
}

func (j *nodeJob) applyAOF(ctx context.Context) (target.Writer, error) {
	j.phase.Store(int32(phaseRDBLoading))
	j.loadStarted.Store(time.Now().UnixMilli())
	f, err := aof.OpenFile(j.server)
	if err != nil {
		j.fail("aof_open", err)
		j.d.target.Abandon() // a target that waits for every node (an rdb file) stops waiting
		return nil, err
	}
	defer func() { f.Close() }() // f is reopened to resend
	w, err := j.aofRDBPart(ctx, f)
	if err != nil {
		if w == nil {
			j.d.target.Abandon()
		}
		return w, err
	}
	j.phase.Store(int32(phaseOplog))
	if err := w.StartOplog(ctx, 0, 0); err != nil {
		if errors.Is(err, target.ErrNoOplog) {
			// A file target takes an AOF that is all RDB preamble, nothing more.
			var c aof.Command
			if nerr := f.Next(&c); errors.Is(nerr, io.EOF) {
				return w, nil
			}
			err = fmt.Errorf("an rdb file target cannot take the commands of an AOF: %w", err)
		}
		j.fail("target_conn", err)
		return w, err
	}
	var end int64
	for attempt := 0; ; attempt++ {
		var werr error
		end, werr, err = j.aofCommands(ctx, f, w, end)
		if err != nil {
			// The file cannot be read on: wait for what was sent, then fail with the file's place.
			if werr := w.WaitOplog(ctx); werr != nil {
				j.fail("target_conn", werr)
			}
			reason := "aof_corrupt"
			if errors.Is(err, io.ErrUnexpectedEOF) {
				reason = "aof_truncated"
			}
			j.fail(reason, err)
			return w, err
		}
		if werr == nil {
			break
		}
		if ctx.Err() != nil {
			return w, ctx.Err()
		}
		j.fail("target_conn", werr)
		if attempt >= maxAOFRetries {
			return w, werr
		}
		from, rerr := j.reconnectAOF(ctx, w)
		if rerr != nil {
			return w, rerr
		}
		nf, err := j.reopenAOF()
		if err != nil {
			j.fail("aof_open", err)
			return w, err
		}
		f.Close()
		f, end = nf, from
	}
	if err := w.WaitOplog(ctx); err != nil {
		j.fail("target_conn", err)
		return w, err
	}
	st := w.Stats()
	j.log.Info("AOF applied", zap.String("file", j.server), zap.Int64("commands", j.recvCmds.Load()),
		zap.Int64("bytes", end), zap.Uint64("keys", st.Restored+st.Rewritten))
	return w, nil
}

// aofRDBPart loads the AOF's RDB preamble, if any, and returns the writer, ready for the
// commands.
func (j *nodeJob) aofRDBPart(ctx context.Context, f *aof.File) (target.Writer, error) {
	version := 0
	dec := f.Decoder()
	if dec != nil {
		dec.SetMaxRaw(j.d.cfg.Common.BigKeyBytes)
	}
	var w target.Writer
	var e rdb.Entry
	for {
		err := f.NextEntry(&e)
		if dec != nil {
			j.rdbDecoded.Store(dec.Offset())
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			j.fail("rdb_load", err)
			return w, err
		}
		if w == nil {
			version = dec.Version()
			j.rdbVersion.Store(int64(version))
			if w, err = j.newWriter(ctx, version); err != nil {
				j.fail("target_conn", err)
				return nil, err
			}
		}
		if e.Kind != rdb.KindKey && e.Kind != rdb.KindFunction {
			continue
		}
		err = w.Restore(&e)
		if errors.Is(err, target.ErrNeedsRewrite) {
			err = w.Rewrite(&e, io.NewSectionReader(f.RDBFile(), e.ValueOffset, e.ValueLen))
		}
		if err != nil {
			err = fmt.Errorf("RDB preamble: key %s: %w", redisfmt.Quote(string(e.Key)), err)
			j.fail("rdb_load", err)
			return w, err
		}
	}
	if w == nil {
		var err error
		if w, err = j.newWriter(ctx, version); err != nil {
			j.fail("target_conn", err)
			return nil, err
		}
	}
	if err := w.WaitRDB(ctx); err != nil {
		j.fail("target_conn", err)
		return w, err
	}
	if dec != nil {
		j.rdbLoads.Add(1)
	}
	j.loadEnded.Store(time.Now().UnixMilli())
	return w, nil
}

// aofCommands applies the commands of f whose end offset is past from. It returns the offset
// reached, the writer's error (the target broke or refused for now: reconnect and resend),
// or the file's (it cannot be read on).
func (j *nodeJob) aofCommands(ctx context.Context, f *aof.File, w target.Writer, from int64) (end int64, werr, ferr error) {
	var c aof.Command
	for {
		if err := ctx.Err(); err != nil {
			return end, err, nil
		}
		err := f.Next(&c)
		if errors.Is(err, io.EOF) {
			return end, nil, nil
		}
		if err != nil {
			return end, nil, err
		}
		end += c.N
		if end <= from {
			continue
		}
		j.recvCmds.Add(1)
		j.recvBytes.Add(c.N)
		if err := w.Apply(&c, end); err != nil {
			return end - c.N, err, nil
		}
	}
}

// reconnectAOF reconnects the writer with backoff and returns the offset to resend from.
func (j *nodeJob) reconnectAOF(ctx context.Context, w target.Writer) (int64, error) {
	bo := newBackoff()
	for attempt := 0; ; attempt++ {
		if !bo.wait(ctx) {
			return 0, ctx.Err()
		}
		from, db, err := w.Reconnect(ctx)
		if err == nil {
			j.log.Info("target reconnected; resending the AOF", zap.Int64("from", from), zap.Int("db", db))
			return from, nil
		}
		j.fail("target_conn", err)
		if attempt >= maxAOFRetries {
			return 0, err
		}
	}
}

// reopenAOF opens the AOF again past its RDB part, to resend commands from an offset.
func (j *nodeJob) reopenAOF() (*aof.File, error) {
	f, err := aof.OpenFile(j.server)
	if err != nil {
		return nil, err
	}
	var e rdb.Entry
	for {
		err := f.NextEntry(&e)
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		if err != nil {
			f.Close()
			return nil, err
		}
	}
}
