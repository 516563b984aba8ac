package source

import (
	"context"
	"errors"
	"io"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/rdb"
)

// fileNode is an `rdb file` or an `aof file` source: one snapshot (the RDB, or the AOF's RDB
// preamble, maybe empty), then for an AOF its commands, and the end.
type fileNode struct {
	path   string
	isAOF  bool
	events chan Event
}

func newFileNode(path string, isAOF bool) *fileNode {
	return &fileNode{path: path, isAOF: isAOF, events: make(chan Event, 1)}
}

func (n *fileNode) Name() string                 { return n.path }
func (n *fileNode) Finite() bool                 { return true }
func (n *fileNode) FollowsFailovers() bool       { return false }
func (n *fileNode) Events() <-chan Event         { return n.events }
func (n *fileNode) Filter(int) Filter            { return nil }
func (n *fileNode) Owns() func(int, []byte) bool { return nil }
func (n *fileNode) Resync(error) bool            { return false }
func (n *fileNode) Trim(int64) error             { return nil }
func (n *fileNode) Close() error                 { return nil }
func (n *fileNode) Stats() NodeStats             { return NodeStats{Name: n.path, Addr: n.path, Detail: "file"} }
func (n *fileNode) open() (*aof.File, error)     { return aof.OpenFile(n.path) }

// Run offers the file's snapshot, whole at once, and returns.
func (n *fileNode) Run(ctx context.Context, _ *ResumePoint) error {
	defer close(n.events)
	whole := make(chan struct{})
	close(whole)
	ev := SnapshotReady{Name: n.path, Whole: whole, Done: func() error { return nil }}
	if n.isAOF {
		ev.Open = func(_ context.Context, maxRaw int64) (Entries, error) {
			f, err := n.open()
			if err != nil {
				return nil, err
			}
			if dec := f.Decoder(); dec != nil {
				dec.SetMaxRaw(maxRaw)
			}
			return &aofEntries{f: f}, nil
		}
	} else {
		ev.Open = func(_ context.Context, maxRaw int64) (Entries, error) { return openRDBFile(n.path, maxRaw) }
	}
	select {
	case n.events <- ev:
	case <-ctx.Done():
	}
	return nil
}

// Stream is an AOF's commands after offset from (the bytes of its commands, counted from the
// first after the RDB part); an rdb file's stream is empty.
func (n *fileNode) Stream(_ context.Context, from int64) (Commands, error) {
	if !n.isAOF {
		return emptyCommands{}, nil
	}
	f, err := n.open()
	if err != nil {
		return nil, err
	}
	// Big-command mode, as a replica link's stream: a command of any size comes out with at
	// most a few MiB of it held, its Input the part it is in (open until Close).
	f.SetHold(aof.DefaultHoldBytes)
	f.SetLimits(aof.StreamMaxArgs, aof.StreamMaxBulk)
	if dec := f.Decoder(); dec != nil {
		dec.SetMaxRaw(0) // the RDB part is only passed over here: hold none of its values
	}
	var e rdb.Entry
	for {
		err := f.NextEntry(&e)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			f.Close()
			return nil, err
		}
	}
	c := &aofCommands{f: f}
	var cmd aof.Command
	for c.off < from {
		if err := c.Next(&cmd); err != nil {
			f.Close()
			if errors.Is(err, io.EOF) {
				return nil, io.ErrUnexpectedEOF // the file is shorter than what was applied of it
			}
			return nil, err
		}
	}
	return c, nil
}

// aofEntries are the entries of an AOF's RDB part; none when it has no preamble.
type aofEntries struct{ f *aof.File }

func (a *aofEntries) Next(e *rdb.Entry) error { return a.f.NextEntry(e) }

func (a *aofEntries) Value(e *rdb.Entry) io.Reader {
	return io.NewSectionReader(a.f.RDBFile(), e.ValueOffset, e.ValueLen)
}

func (a *aofEntries) Version() int {
	if dec := a.f.Decoder(); dec != nil {
		return dec.Version()
	}
	return 0
}

func (a *aofEntries) Progress() (int64, int64) {
	if dec := a.f.Decoder(); dec != nil {
		return dec.Offset(), -1
	}
	return 0, 0
}

func (a *aofEntries) Close() error { return a.f.Close() }

// aofCommands are an AOF's commands, their offsets counting their bytes.
type aofCommands struct {
	f   *aof.File
	off int64
}

func (c *aofCommands) Next(cmd *aof.Command) error {
	if err := c.f.Next(cmd); err != nil {
		return err
	}
	c.off += cmd.N
	return nil
}

// Buffered is 1: a file never makes its reader wait, so there is always more to batch with,
// until io.EOF.
func (c *aofCommands) Buffered() int { return 1 }
func (c *aofCommands) Close() error  { return c.f.Close() }

// emptyCommands is the stream of an rdb file.
type emptyCommands struct{}

func (emptyCommands) Next(*aof.Command) error { return io.EOF }
func (emptyCommands) Buffered() int           { return 0 }
func (emptyCommands) Close() error            { return nil }
