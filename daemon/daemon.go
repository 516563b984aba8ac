package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/mediocregopher/radix/v4"
	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/daemon/admin"
	"github.com/rmt-project/rmt/source"
	"github.com/rmt-project/rmt/target"
)

// Options are what a Daemon needs besides its config.
type Options struct {
	Logger     *zap.Logger
	ConfigFile string // shown in INFO
	Version    string // shown in INFO
	// QuietProgress leaves out the log lines of a snapshot load's progress (the terminal
	// shows bars instead).
	QuietProgress bool
}

// Daemon runs one migration job: a node job per source node, and the admin port.
type Daemon struct {
	cfg   *conf.Config
	opts  Options
	log   *zap.Logger
	start time.Time

	admin    *admin.Server
	metrics  *admin.HTTP // common.metrics_listen; nil when off
	shutdown chan shutdownRequest

	sourceTLS, targetTLS *tls.Config   // nil: plain TCP
	sourceDialer         *radix.Dialer // control-plane connections to source nodes, once Run has begun

	mu     sync.Mutex
	nodes  []*pipeline    // set once Run has bound the admin port, whose number the links announce
	source *source.Source // the source's nodes, once Run has opened it

	target  target.Target // makes every node's writer (writer.go)
	loads   loadGate      // common.threads snapshot loads at a time
	resyncs *releaser     // RESYNC from the admin port releases held nodes
}

type shutdownRequest struct {
	wait time.Duration
	asap bool
}

// New checks that the job is one this build can run and prepares it; Run starts it.
func New(cfg *conf.Config, opts Options) (*Daemon, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if !slices.Contains(source.Kinds(), cfg.Source.Type) {
		return nil, fmt.Errorf("source type %q is not supported yet", cfg.Source.Type)
	}
	if modes := source.Modes(cfg.Source.Type); !slices.Contains(modes, cfg.Source.Mode) {
		return nil, fmt.Errorf("source type %q is not read in mode %q yet (only %s)", cfg.Source.Type, cfg.Source.Mode,
			strings.Join(modes, ", "))
	}
	if err := notYet(cfg); err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, opts: opts, log: opts.Logger, start: time.Now(), shutdown: make(chan shutdownRequest, 1),
		loads: newLoadGate(cfg.Common.Threads), resyncs: newReleaser()}
	var err error
	if d.sourceTLS, err = cfg.Source.TLS.ClientConfig(); err != nil {
		return nil, fmt.Errorf("source.tls: %w", err)
	}
	if d.targetTLS, err = cfg.Target.TLS.ClientConfig(); err != nil {
		return nil, fmt.Errorf("target.tls: %w", err)
	}
	tc, err := d.targetConfig()
	if err != nil {
		return nil, err
	}
	if d.target, err = target.New(cfg.Target.Type, tc); err != nil {
		return nil, fmt.Errorf("target type %q: %w", cfg.Target.Type, err)
	}
	d.admin = admin.New(admin.Options{
		Addr:        d.cfg.Common.Listen,
		RequirePass: d.cfg.Common.RequirePass,
		MaxClients:  d.cfg.Common.MaxClients,
		Snapshot:    d.Snapshot,
		Shutdown:    d.Shutdown,
		Resync:      d.Resync,
		Logger:      d.log.Named("admin"),
		// Sentinels that watch a source master see rmtd as its replica (admin/sentinel.go).
		Replication:   d.replicaLinks,
		MasterMoved:   d.masterMoved,
		SentinelHosts: d.sentinelHosts,
	})
	return d, nil
}

// replicaLinks are the source's replica links, as the admin port shows them to Sentinels.
func (d *Daemon) replicaLinks() []admin.Upstream {
	var out []admin.Upstream
	for _, p := range d.pipelines() {
		st := p.node.Stats()
		if !st.Live {
			continue
		}
		l := st.Link
		u := admin.Upstream{Name: st.Name, MasterAddr: st.Addr, LinkUp: l.MasterLinkUp, Syncing: l.State == source.StateRDBTransfer,
			Offset: l.ReceivedOffset, Replid: l.Replid}
		if l.DownSinceUnixMs > 0 {
			u.DownSince = time.UnixMilli(l.DownSinceUnixMs)
		}
		if l.LastIOUnixMs > 0 {
			u.LastIO = time.UnixMilli(l.LastIOUnixMs)
		}
		out = append(out, u)
	}
	return out
}

// masterMoved is a Sentinel's SLAVEOF on the admin port: the source node that replicated the
// history addr serves follows it there (source.Source.MasterMoved).
func (d *Daemon) masterMoved(ctx context.Context, addr string) error {
	d.mu.Lock()
	src := d.source
	d.mu.Unlock()
	if src == nil {
		return errors.New("the source is not open yet")
	}
	_, err := src.MasterMoved(ctx, addr)
	return err
}

// sentinelHosts are the hosts of the Sentinels the config names (a sentinel source's or
// target's servers): their connections may send the admin port a Sentinel's commands.
func (d *Daemon) sentinelHosts() []string {
	var out []string
	for _, p := range []conf.Pool{d.cfg.Source, d.cfg.Target} {
		for _, s := range p.Sentinels() {
			if h, _, err := net.SplitHostPort(s); err == nil {
				out = append(out, h)
			}
		}
	}
	return out
}

// Run serves the admin port and migrates until ctx is cancelled, SHUTDOWN arrives, or (file
// sources) everything is applied. It returns nil after a clean stop.
func (d *Daemon) Run(ctx context.Context) error {
	if err := os.MkdirAll(d.cfg.Common.Dir, 0o755); err != nil {
		return fmt.Errorf("dir %s: %w", d.cfg.Common.Dir, err)
	}
	if err := d.admin.Start(); err != nil {
		return fmt.Errorf("admin port %s: %w", d.cfg.Common.Listen, err)
	}
	defer d.admin.Close()
	defer d.target.Close()
	if addr := d.cfg.Common.MetricsListen; addr != "" {
		h := admin.NewHTTP(admin.HTTPOptions{Addr: addr, Snapshot: d.Snapshot, Logger: d.log.Named("metrics")})
		if err := h.Start(); err != nil {
			return err
		}
		defer h.Close()
		d.mu.Lock()
		d.metrics = h
		d.mu.Unlock()
	}
	d.log.Info("rmtd started", zap.String("admin", d.admin.Addr()), zap.String("source", d.cfg.Source.Type),
		zap.Strings("source_servers", d.cfg.Source.Servers), zap.String("target", d.cfg.Target.Type),
		zap.Strings("target_servers", d.cfg.Target.Servers))
	for _, w := range append(slices.Clone(d.cfg.Warnings), d.cfg.Inert()...) {
		d.log.Warn("config: ignored", zap.String("what", w))
	}

	sc, err := d.sourceConfig(listenPort(d.admin.Addr()))
	if err != nil {
		return err
	}
	d.sourceDialer = &sc.Dialer
	src, err := source.Open(ctx, sc) // a cluster's masters, a pool's backends, the files
	if err != nil {
		return err
	}
	nodes := d.shardOf(src.Nodes)
	pipes := make([]*pipeline, 0, len(nodes))
	for _, n := range nodes {
		pipes = append(pipes, newPipeline(d, n))
	}
	d.mu.Lock()
	d.nodes, d.source = pipes, src
	d.mu.Unlock()
	if err := d.prepareTarget(ctx); err != nil { // common.target_not_empty
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	jobCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go src.Watch(jobCtx) // a cluster's slot map
	var wg sync.WaitGroup
	errs := make([]error, len(pipes))
	done := make(chan struct{})
	for i, j := range pipes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = j.run(jobCtx)
		}()
	}
	go func() { wg.Wait(); close(done) }()

	select {
	case <-ctx.Done():
		d.log.Info("stopping on signal")
	case req := <-d.shutdown:
		if !req.asap {
			d.drain(req.wait)
		}
		d.log.Info("stopping on SHUTDOWN")
	case <-done:
		if err := errors.Join(errs...); err != nil {
			return err
		}
		d.log.Info("every source is applied; exiting")
		return nil
	}
	cancel()
	<-done
	return nil
}

// Shutdown asks Run to stop: after up to wait for what is spooled to reach the target, or at once.
func (d *Daemon) Shutdown(wait time.Duration, asap bool) {
	select {
	case d.shutdown <- shutdownRequest{wait: wait, asap: asap}:
	default:
	}
}

// drain waits until every node has applied what it had received when called, or wait has passed.
func (d *Daemon) drain(wait time.Duration) {
	deadline := time.Now().Add(wait)
	nodes := d.pipelines()
	goal := make([]int64, len(nodes))
	for i, j := range nodes {
		goal[i] = j.received()
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		caught := true
		for i, j := range nodes {
			if j.applied() < goal[i] {
				caught = false
			}
		}
		if caught {
			return
		}
		<-tick.C
	}
	d.log.Warn("shutdown: stopped waiting for queued data", zap.Duration("waited", wait))
}

func (d *Daemon) pipelines() []*pipeline {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.nodes
}

// notFollowed is the number of source masters that serve slots no node follows.
func (d *Daemon) notFollowed() int {
	d.mu.Lock()
	src := d.source
	d.mu.Unlock()
	if src == nil {
		return 0
	}
	return src.NotFollowed()
}

// MetricsAddr is the bound address of the metrics endpoint, "" when it is off or not started.
func (d *Daemon) MetricsAddr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.metrics == nil {
		return ""
	}
	return d.metrics.Addr()
}

// AdminAddr is the admin port's bound address (useful with listen 127.0.0.1:0).
func (d *Daemon) AdminAddr() string {
	return d.admin.Addr()
}

// listenPort is the admin port number, which the links announce with REPLCONF listening-port.
func listenPort(listen string) int {
	_, p, err := net.SplitHostPort(listen)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// notYet refuses the settings this build accepts in its config but cannot honour yet, rather
// than run a job that would do less than the config says.
func notYet(cfg *conf.Config) error {
	for _, c := range []struct {
		set  bool
		what string
	}{} {
		if c.set {
			return fmt.Errorf("%s is not supported yet", c.what)
		}
	}
	return nil
}
