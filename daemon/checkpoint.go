package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mediocregopher/radix/v4"
	"go.uber.org/zap"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/daemon/status"
	"github.com/rmt-project/rmt/internal/confpool"
	"github.com/rmt-project/rmt/internal/redisctl"
	"github.com/rmt-project/rmt/target"
)

// The target holds each node's checkpoint (see target/checkpoint.go): the truth for a restart.
// dir/<node>/checkpoint mirrors it for the operator, written atomically once a second.

// checkpointKey is where the target keeps this node's position; "" when exactly-once is off.
func (p *pipeline) checkpointKey() string {
	prefix := p.d.cfg.Common.CheckpointKey
	// File sources are loaded whole; a target without checkpoints (a file: no stream) begins a
	// restarted job with a full sync. A twemproxy pool keeps one per backend (this key and the
	// backend's index), a cluster one per slot (this key and the slot's hash tag) and a base
	// under this key.
	if prefix == "" || p.node.Finite() || !p.d.target.Traits().Checkpoint {
		return ""
	}
	return prefix + ":" + p.name
}

// resumePoint reads the target's checkpoint of this node, retrying while the target is
// unreachable: starting over with a full sync because the target was down a moment would throw
// away a resumable stream. nil means start with a full sync.
func (p *pipeline) resumePoint(ctx context.Context) (*target.Checkpoint, error) {
	key := p.checkpointKey()
	if key == "" {
		return nil, nil
	}
	bo := newBackoff()
	for {
		cp, ok, err := p.d.target.ReadCheckpoint(ctx, key)
		if errors.Is(err, target.ErrBadCheckpoint) {
			p.log.Warn("checkpoint on the target not usable: full sync", zap.String("key", key), zap.Error(err))
			return nil, nil
		}
		if err == nil && !ok && p.node.FollowsFailovers() && !p.d.target.Traits().CheckpointUnits {
			// (A target keeping a checkpoint per node holds several keys per source node: none is
			// adopted, and a failed-over master begins with a full sync.)
			// Not finding one (an error, a target too big to scan in time) only costs a full sync.
			if adopted, aerr := p.adoptCheckpoint(ctx, key); aerr != nil {
				p.log.Warn("looking for the checkpoint of a failed-over master", zap.Error(aerr))
			} else if adopted != nil {
				cp, ok = *adopted, true
			}
		}
		if err == nil {
			if !ok {
				if m, had := p.marker(); had && m.State == markerLoaded {
					// An earlier run had loaded this node and kept its checkpoint there.
					p.fail(status.ReasonTargetDataLost, fmt.Errorf("target: the checkpoint %s of a node loaded "+
						"before (%d keys) is gone: the target lost data; full sync", key, m.Keys))
				}
				p.log.Info("no checkpoint on the target: full sync", zap.String("key", key))
				return nil, nil
			}
			p.log.Info("checkpoint on the target", zap.String("key", key), zap.String("replid", cp.Replid),
				zap.Int64("offset", cp.Offset), zap.Int("db", cp.DB))
			return &cp, nil
		}
		p.fail(status.ReasonTargetConn, err)
		if !bo.wait(ctx) {
			return nil, ctx.Err()
		}
	}
}

// adoptCheckpoint looks, for a cluster source's master without a checkpoint, for one a previous
// run kept under another master's name for the same replication history: checkpoints are named
// after addresses, and this master may be the promoted replica of one that run followed (a
// failover). A checkpoint whose replid is this master's replid or replid2 is renamed to key
// and returned; the link's PSYNC then tells whether the master can still continue from it. nil
// when there is none.
func (p *pipeline) adoptCheckpoint(ctx context.Context, key string) (*target.Checkpoint, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cfg := p.d.cfg
	sd, err := confpool.Dialer(cfg.Source)
	if err != nil {
		return nil, err
	}
	sc, err := sd.Dial(ctx, "tcp", p.name)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", p.name, err)
	}
	var info string
	err = sc.Do(ctx, radix.Cmd(&info, "INFO", "replication"))
	sc.Close()
	if err != nil {
		return nil, fmt.Errorf("source %s: INFO replication: %w", p.name, err)
	}
	history := map[string]bool{}
	for _, field := range []string{"master_replid", "master_replid2"} {
		if id, ok := redisctl.InfoField(info, field); ok && strings.Trim(id, "0") != "" {
			history[id] = true
		}
	}
	td, err := confpool.Dialer(cfg.Target)
	if err != nil {
		return nil, err
	}
	c, err := td.Dial(ctx, "tcp", cfg.Target.Servers[0])
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", cfg.Target.Servers[0], err)
	}
	defer c.Close()
	// Every match is read first: a failed adoption, or an older run, can leave stale keys of the
	// same history, and only the furthest is this stream's position.
	var best *target.Checkpoint
	var bestKey string
	var stale []string
	cursor := "0"
	for {
		next, keys, err := redisctl.ScanKeys(func(a radix.Action) error { return c.Do(ctx, a) }, cursor,
			cfg.Common.CheckpointKey+":*")
		if err != nil {
			return nil, fmt.Errorf("target: SCAN for checkpoints: %w", err)
		}
		cursor = next
		for _, other := range keys {
			var val string
			if other == key || c.Do(ctx, radix.Cmd(&val, "GET", other)) != nil {
				continue
			}
			cp, err := target.ParseCheckpoint(val)
			if err != nil || !history[cp.Replid] {
				continue
			}
			if best == nil || cp.Offset > best.Offset {
				if best != nil {
					stale = append(stale, bestKey)
				}
				best, bestKey = &cp, other
			} else {
				stale = append(stale, other)
			}
		}
		if cursor == "0" {
			break
		}
	}
	if best == nil {
		return nil, nil
	}
	var renamed int
	if err := c.Do(ctx, radix.Cmd(&renamed, "RENAMENX", bestKey, key)); err != nil || renamed != 1 {
		return nil, fmt.Errorf("target: RENAMENX %s %s: %d, %v", bestKey, key, renamed, err)
	}
	p.log.Warn("checkpoint of the same replication history found under another master's name "+
		"(a failover): renamed and resumed from", zap.String("was", bestKey), zap.String("key", key),
		zap.String("replid", best.Replid), zap.Int64("offset", best.Offset), zap.Strings("stale_removed", stale))
	for _, k := range stale {
		if err := c.Do(ctx, radix.Cmd(nil, "DEL", k)); err != nil {
			p.log.Warn("removing a stale checkpoint", zap.String("key", k), zap.Error(err))
		}
	}
	return best, nil
}

// clearCheckpoint removes this node's checkpoint from the target before a snapshot is loaded.
func (p *pipeline) clearCheckpoint(ctx context.Context) error {
	key := p.checkpointKey()
	if key == "" {
		return nil
	}
	return p.d.target.ClearCheckpoint(ctx, key)
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
func (p *pipeline) saveCheckpoint() {
	w := p.currentWriter()
	if w == nil || phase(p.phase.Load()) != phaseOplog {
		return
	}
	off, db := w.Applied()
	b, err := json.Marshal(localCheckpoint{Replid: p.replid(), Applied: off, DB: db, Updated: time.Now().UTC()})
	if err != nil {
		return
	}
	path := filepath.Join(p.dir, "checkpoint")
	if err := writeFileAtomic(path, append(b, '\n')); err != nil {
		p.log.Warn("cannot write the local checkpoint", zap.String("file", path), zap.Error(err))
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

// loadedBefore reports whether keys of this node may be on the target already: a load began in
// this run, or an earlier run's marker says so.
func (p *pipeline) loadedBefore() bool {
	if p.loadsStarted.Load() > 0 {
		return true
	}
	_, had := p.marker()
	return had
}

// removePrevious removes from the target what this node loaded before (a load cut short by a
// crash, or one a new snapshot replaces), unless common.target_not_empty is merge (the target
// may hold keys rmtd did not write, which it must not touch) or the node cannot tell its keys
// from other nodes' (then keys deleted on the source meanwhile may stay: counted). The job's
// only source node empties the target (FLUSHALL); one of several removes only the keys it owns
// (its slots, its share of the ring), by SCAN (design rule 6).
func (p *pipeline) removePrevious(ctx context.Context) error {
	if !p.loadedBefore() {
		return nil
	}
	if p.d.cfg.Common.TargetNotEmpty == conf.TargetNotEmptyMerge {
		p.count(status.ReasonResyncStaleKeys)
		p.log.Warn("a new snapshot loads over an earlier one: with target_not_empty merge its keys are not removed " +
			"first, so keys the source deleted meanwhile may stay")
		return nil
	}
	owns, alone := p.node.Owns(), p.d.onlySourceNode()
	if owns == nil && !alone {
		p.count(status.ReasonResyncStaleKeys)
		p.log.Warn("a new snapshot loads over an earlier one: this node's keys cannot be told from the other nodes', " +
			"so keys the source deleted meanwhile may stay")
		return nil
	}
	if alone {
		owns = nil // every key of the target is this node's: FLUSHALL
	}
	n, err := p.d.target.DeleteKeys(ctx, owns, p.d.cfg.Common.CheckpointKey)
	if err != nil {
		return err
	}
	if alone {
		p.count(status.ReasonResyncFlushAll)
	}
	p.count(status.ReasonOwnKeysRemoved)
	p.log.Warn("removed what this node loaded before, ahead of a new snapshot", zap.Int64("keys", n), zap.Bool("flushall", alone))
	return nil
}
