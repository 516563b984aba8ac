package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/rmt-project/rmt/daemon/status"
)

// barSteps is a bar's full length: tenths of a percent.
const barSteps = 1000

// progressBars draws, on a terminal, one bar per source node while its snapshot loads, from
// the daemon's own figures (INFO's rdb_percent, eta_s, rdb_keys_loaded). The bars exist only
// while some node loads; meanwhile log lines written through Log print above them.
type progressBars struct {
	out   io.Writer
	opts  []mpb.ContainerOption
	mu    sync.Mutex    // guards bars against Log
	bars  *mpb.Progress // nil while no node loads
	nodes map[string]*nodeBar
}

// nodeBar is one node's bar and what its text shows.
type nodeBar struct {
	bar       *mpb.Bar
	mu        sync.Mutex
	text      string
	lastBytes int64
	lastAt    time.Time
}

func newProgressBars(out io.Writer, opts ...mpb.ContainerOption) *progressBars {
	return &progressBars{out: out, opts: opts, nodes: map[string]*nodeBar{}}
}

// Log is where the log goes while bars may be drawn: above them, or straight out.
func (b *progressBars) Log() io.Writer { return logThrough{b} }

type logThrough struct{ b *progressBars }

func (l logThrough) Write(p []byte) (int, error) {
	l.b.mu.Lock()
	defer l.b.mu.Unlock()
	if l.b.bars != nil {
		if n, err := l.b.bars.Write(p); err == nil {
			return n, nil
		}
	}
	return l.b.out.Write(p)
}

// run updates the bars from snap every refresh until ctx ends, and once more then: the loads
// that ended show so.
func (b *progressBars) run(ctx context.Context, snap func() *status.Snapshot, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	defer b.finish()
	for {
		select {
		case <-ctx.Done():
			if s := snap(); s != nil {
				b.update(s, time.Now())
			}
			return
		case now := <-tick.C:
			if s := snap(); s != nil {
				b.update(s, now)
			}
		}
	}
}

// update draws s: a bar for each node that loads, completed once its load is.
func (b *progressBars) update(s *status.Snapshot, now time.Time) {
	loading := 0
	for i, n := range s.Sources {
		key := fmt.Sprintf("source%d", i)
		nb := b.nodes[key]
		if n.State == "rdb" {
			loading++
			if nb == nil {
				nb = b.add(key, n, now)
			}
			nb.show(n, now)
			continue
		}
		if nb == nil {
			continue
		}
		if n.RDBPercent == 100 {
			nb.setText(fmt.Sprintf("loaded, %d keys", n.RDBKeysLoaded))
			nb.bar.SetCurrent(barSteps)
		} else {
			nb.bar.Abort(false) // the load did not end (a new snapshot comes): a new bar then
		}
		delete(b.nodes, key)
	}
	if loading == 0 && len(b.nodes) == 0 {
		b.finish()
	}
}

// add starts the bar of a node that began loading, and the bars themselves if none was drawn.
func (b *progressBars) add(key string, n status.SourceNode, now time.Time) *nodeBar {
	b.mu.Lock()
	if b.bars == nil {
		b.bars = mpb.New(append([]mpb.ContainerOption{mpb.WithOutput(b.out)}, b.opts...)...)
	}
	bars := b.bars
	b.mu.Unlock()
	name := key + " " + n.Addr
	if n.Name != "" && n.Name != n.Addr {
		name += " (" + n.Name + ")"
	}
	nb := &nodeBar{lastBytes: n.RDBLoadedBytes, lastAt: now}
	nb.bar = bars.New(barSteps, mpb.BarStyle(),
		mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return nb.getText() })))
	b.nodes[key] = nb
	return nb
}

// show sets a loading node's bar: its percent, keys, MB/s since the last update, and ETA.
func (nb *nodeBar) show(n status.SourceNode, now time.Time) {
	pct := "?%"
	if n.RDBPercent >= 0 {
		pct = fmt.Sprintf("%.1f%%", n.RDBPercent)
		nb.bar.SetCurrent(min(int64(math.Round(n.RDBPercent*10)), barSteps-1))
	}
	text := fmt.Sprintf("%s  %d keys", pct, n.RDBKeysLoaded)
	if d := now.Sub(nb.lastAt).Seconds(); d > 0 {
		text += fmt.Sprintf("  %.1f MB/s", float64(n.RDBLoadedBytes-nb.lastBytes)/d/(1<<20))
	}
	nb.lastBytes, nb.lastAt = n.RDBLoadedBytes, now
	if n.RDBEtaS >= 0 {
		text += "  ETA " + (time.Duration(n.RDBEtaS) * time.Second).String()
	}
	nb.setText(text)
}

func (nb *nodeBar) setText(s string) {
	nb.mu.Lock()
	nb.text = s
	nb.mu.Unlock()
}

func (nb *nodeBar) getText() string {
	nb.mu.Lock()
	defer nb.mu.Unlock()
	return nb.text
}

// finish ends the bars (the last frame stays on the terminal); the log goes straight out again.
func (b *progressBars) finish() {
	for key, nb := range b.nodes {
		nb.bar.Abort(false)
		delete(b.nodes, key)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bars != nil {
		b.bars.Wait()
		b.bars = nil
	}
}
