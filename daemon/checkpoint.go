package daemon

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/target"
)

// The target holds each node's checkpoint (see target/checkpoint.go): the truth for a restart.
// dir/<node>/checkpoint mirrors it for the operator, written atomically once a second.

// checkpointKey is where the target keeps this node's position; "" when exactly-once is off.
func (j *nodeJob) checkpointKey() string {
	prefix := j.d.cfg.Common.CheckpointKey
	// File sources are loaded whole and a file target takes no stream; on a cluster or twemproxy
	// target one key cannot hold a position over several nodes' transactions, so those resume
	// at least once (a restart there is a full sync).
	if prefix == "" || j.file || j.d.cfg.Target.Type != conf.TypeSingle {
		return ""
	}
	return prefix + ":" + j.server
}

// replid is the source's current replication ID, stored with each checkpoint.
func (j *nodeJob) replid() string {
	if link := j.getLink(); link != nil {
		return link.Stats().Replid
	}
	return ""
}

// resumePoint reads the target's checkpoint of this node, retrying while the target is
// unreachable: starting over with a full sync because the target was down a moment would throw
// away a resumable stream. nil means start with a full sync.
func (j *nodeJob) resumePoint(ctx context.Context) (*target.Checkpoint, error) {
	key := j.checkpointKey()
	if key == "" {
		return nil, nil
	}
	bo := newBackoff()
	for {
		cp, ok, err := target.ReadCheckpoint(ctx, j.targetOptions(), key)
		if err == nil {
			if !ok {
				j.log.Info("no checkpoint on the target: full sync", zap.String("key", key))
				return nil, nil
			}
			j.log.Info("checkpoint on the target", zap.String("key", key), zap.String("replid", cp.Replid),
				zap.Int64("offset", cp.Offset), zap.Int("db", cp.DB))
			return &cp, nil
		}
		j.fail("target_conn", err)
		if !bo.wait(ctx) {
			return nil, ctx.Err()
		}
	}
}

// clearCheckpoint removes this node's checkpoint from the target before a snapshot is loaded.
func (j *nodeJob) clearCheckpoint(ctx context.Context) error {
	key := j.checkpointKey()
	if key == "" {
		return nil
	}
	return target.ClearCheckpoint(ctx, j.targetOptions(), key)
}

// targetOptions are the connection settings of the (first) target server; cluster and
// twemproxy writers take the same for every node they reach.
func (j *nodeJob) targetOptions() target.Options {
	cfg := j.d.cfg
	user, pass := cfg.Target.Auth()
	return target.Options{Addr: cfg.Target.Servers[0], Username: user, Password: pass,
		Timeout: cfg.Target.Timeout, TLS: j.d.targetTLS, Logger: j.log.Named("target")}
}

// localCheckpoint is dir/<node>/checkpoint.
type localCheckpoint struct {
	Replid  string    `json:"replid"`
	Applied int64     `json:"applied_offset"`
	DB      int       `json:"db"`
	Updated time.Time `json:"updated"`
}

// saveCheckpoint writes what the target has acknowledged to dir/<node>/checkpoint: temp file,
// fsync, rename.
func (j *nodeJob) saveCheckpoint() {
	w := j.currentWriter()
	if w == nil || phase(j.phase.Load()) != phaseOplog {
		return
	}
	off, db := w.Applied()
	b, err := json.Marshal(localCheckpoint{Replid: j.replid(), Applied: off, DB: db, Updated: time.Now().UTC()})
	if err != nil {
		return
	}
	path := filepath.Join(j.dir, "checkpoint")
	if err := writeFileAtomic(path, append(b, '\n')); err != nil {
		j.log.Warn("cannot write the local checkpoint", zap.String("file", path), zap.Error(err))
	}
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// flushForResync empties the target before a snapshot that replaces an earlier one, so that keys
// the master deleted in between do not stay behind: only when this node is the job's only source
// on a single target, since another source's keys must never be wiped (design rule 6). With
// several sources, the keys the master deleted meanwhile may remain; that is counted.
func (j *nodeJob) flushForResync(ctx context.Context) error {
	if len(j.d.nodeJobs()) != 1 || j.d.cfg.Target.Type != conf.TypeSingle {
		j.count("resync_stale_keys_possible")
		return nil
	}
	o := j.targetOptions()
	o.Name = "resync"
	c, err := target.Dial(ctx, o)
	if err != nil {
		return err
	}
	defer c.Close()
	r, err := c.Do(ctx, "FLUSHALL")
	if err != nil {
		return err
	}
	if r.Kind == target.KindError {
		return r.Err
	}
	j.count("resync_flushall")
	j.log.Warn("target flushed before loading the new snapshot (FLUSHALL)")
	return nil
}
