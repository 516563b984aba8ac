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

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/target"
	"go.uber.org/zap"
)

// What rmtd remembers, in its dir, of what it wrote into the target, to know at the next start
// which keys there are its own:
//
//   - dir/job.json says this job (its source and target) began writing into the target: keys
//     found there at a later start are an earlier run's, not someone else's;
//   - dir/<node>/target.json says what one source node loaded: "loading" while a snapshot goes
//     in (a crash leaves it so: the keys of a load cut short are on the target), "loaded" with
//     its key count once it is in (the guard compares a new snapshot with it).

// jobMarker is dir/job.json.
type jobMarker struct {
	Source  string    `json:"source"`
	Target  string    `json:"target"`
	Started time.Time `json:"started"`
}

// nodeMarker is dir/<node>/target.json.
type nodeMarker struct {
	Target  string    `json:"target"`
	State   string    `json:"state"` // markerLoading or markerLoaded
	Keys    int64     `json:"keys"`  // loaded, once loaded
	Replid  string    `json:"replid"`
	Updated time.Time `json:"updated"`
}

const (
	markerLoading = "loading"
	markerLoaded  = "loaded"
)

// poolIdentity names a pool for the markers: its type and servers.
func poolIdentity(typ string, servers []string) string {
	return typ + " " + strings.Join(servers, ",")
}

func (d *Daemon) jobIdentity() jobMarker {
	return jobMarker{Source: poolIdentity(d.cfg.Source.Type, d.cfg.Source.Servers),
		Target: poolIdentity(d.cfg.Target.Type, d.cfg.Target.Servers)}
}

// readJSON reads a marker; false when there is none (or it does not parse: a marker is only
// ever written whole, by writeFileAtomic).
func readJSON(path string, v any) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	return json.Unmarshal(b, v) == nil
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// earlierRun reports whether an earlier run of this same job wrote into the target.
func (d *Daemon) earlierRun() bool {
	var m jobMarker
	want := d.jobIdentity()
	return readJSON(filepath.Join(d.cfg.Common.Dir, "job.json"), &m) && m.Source == want.Source && m.Target == want.Target
}

func (d *Daemon) writeJobMarker() error {
	m := d.jobIdentity()
	m.Started = time.Now().UTC()
	return writeJSON(filepath.Join(d.cfg.Common.Dir, "job.json"), m)
}

// marker is this node's, when it is about this target.
func (p *pipeline) marker() (nodeMarker, bool) {
	var m nodeMarker
	if !readJSON(filepath.Join(p.dir, "target.json"), &m) || m.Target != p.d.jobIdentity().Target {
		return nodeMarker{}, false
	}
	return m, true
}

func (p *pipeline) writeMarker(state string, keys int64) {
	m := nodeMarker{Target: p.d.jobIdentity().Target, State: state, Keys: keys, Replid: p.replid(), Updated: time.Now().UTC()}
	if err := writeJSON(filepath.Join(p.dir, "target.json"), m); err != nil {
		p.log.Warn("cannot write the node's target marker", zap.Error(err))
	}
}

// errTargetNotEmpty is the refusal of common.target_not_empty: refuse.
var errTargetNotEmpty = errors.New("the target is not empty")

// prepareTarget applies common.target_not_empty before anything is loaded: a target that holds
// keys rmtd did not write (no earlier run of this job wrote into it) is refused, loaded over
// (merge) or emptied (flush). It retries while the target cannot be reached.
func (d *Daemon) prepareTarget(ctx context.Context) error {
	own := d.cfg.Common.CheckpointKey
	owns := d.shardOwns()
	bo := newBackoff()
	for {
		inv, err := d.target.Inventory(ctx, owns, own)
		if err == nil {
			return d.applyNotEmptyRule(ctx, inv)
		}
		d.log.Warn("cannot look at what the target holds; retrying", zap.Error(err))
		if !bo.wait(ctx) {
			return ctx.Err()
		}
	}
}

// shardOwns is, for a process of a sharded job (common.shard i/n, n > 1), which keys are its
// source nodes' (the other processes write the rest into the same target); nil — every key —
// otherwise, or where a node cannot tell its keys from others' (a file).
func (d *Daemon) shardOwns() func(db int, key []byte) bool {
	if _, n := d.cfg.Common.ShardRule(); n == 1 {
		return nil
	}
	var all []func(int, []byte) bool
	for _, p := range d.pipelines() {
		o := p.node.Owns()
		if o == nil {
			d.log.Warn("common.shard: a source node cannot tell its keys from the other processes'; "+
				"the target's keys all count for common.target_not_empty", zap.String("node", p.name))
			return nil
		}
		all = append(all, o)
	}
	return func(db int, key []byte) bool {
		for _, o := range all {
			if o(db, key) {
				return true
			}
		}
		return false
	}
}

func (d *Daemon) applyNotEmptyRule(ctx context.Context, inv target.Inventory) error {
	own := d.cfg.Common.CheckpointKey
	if inv.Keys == 0 {
		return d.writeJobMarker()
	}
	fields := []zap.Field{zap.Int64("keys", inv.Keys), zap.Strings("for_example", inv.Sample)}
	if d.earlierRun() {
		d.log.Info("the target holds keys of an earlier run of this job: going on", fields...)
		return nil
	}
	switch d.cfg.Common.TargetNotEmpty {
	case conf.TargetNotEmptyMerge:
		d.log.Warn("the target holds keys rmtd did not write: loading over them (common.target_not_empty: merge); "+
			"keys of the same name are replaced, the others stay", fields...)
	case conf.TargetNotEmptyFlush:
		n, err := d.target.DeleteKeys(ctx, d.shardOwns(), own)
		if err != nil {
			return fmt.Errorf("common.target_not_empty: flush: %w", err)
		}
		d.log.Warn("the target held keys rmtd did not write: emptied (common.target_not_empty: flush)", zap.Int64("removed", n))
	default:
		return fmt.Errorf("%w: it holds %d keys rmtd did not write (for example %s); rmtd loads only into an empty "+
			"target unless told otherwise: empty it, or set common.target_not_empty to merge (load over them: keys "+
			"of the same name are replaced, the others stay) or flush (empty the target first)",
			errTargetNotEmpty, inv.Keys, strings.Join(inv.Sample, ", "))
	}
	return d.writeJobMarker()
}
