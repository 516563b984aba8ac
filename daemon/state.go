package daemon

import (
	"time"

	"github.com/rmt-project/rmt/daemon/status"
	"github.com/rmt-project/rmt/target"
)

// Snapshot gathers every component's Stats into one value for INFO. It takes no lock of the data
// path: links, writers and node jobs hand out copies.
func (d *Daemon) Snapshot() *status.Snapshot {
	now := time.Now()
	nodes := d.pipelines()
	s := &status.Snapshot{
		Server:  status.CurrentServerInfo(d.opts.Version, d.opts.ConfigFile, listenPort(d.AdminAddr()), d.start),
		Memory:  status.CurrentMemory(),
		Group:   status.GroupInfo{SourceNodes: len(nodes), TargetNodes: len(d.cfg.Target.Servers)},
		Errors:  map[string]int64{},
		Skipped: map[string]int64{},
	}
	if n := d.notFollowed(); n > 0 {
		s.Errors[status.ReasonMasterNotFollowed.String()] = int64(n)
	}
	allReceived, allParsed := true, true
	minPhase := phaseDone
	targets := targetNodes{}
	for _, j := range nodes {
		src, tgt := j.status(now)
		s.Sources = append(s.Sources, src.node)
		if tgt != nil {
			targets.add(tgt)
			for reason, n := range tgt.Errors {
				s.Errors[reason] += int64(n)
			}
			for reason, n := range tgt.Skipped {
				s.Skipped[reason] += int64(n)
			}
			s.Progress.KeysRestored += int64(tgt.Restored + tgt.Rewritten)
			s.Progress.ExpiredSkipped += int64(tgt.Expired)
			s.Progress.RestoresFromFile += int64(tgt.RestoresFromFile)
			s.Progress.BigStreamed += int64(tgt.BigStreamed)
			s.Progress.BigChunked += int64(tgt.BigChunked)
			s.Progress.BigChunks += int64(tgt.BigChunks)
			for _, c := range tgt.Conns {
				s.Stats.TotalMsgsSent += int64(c.Sent)
				s.Stats.TotalNetOutputBytes += int64(c.SentBytes)
				s.Stats.TotalMsgsOutqueue += int64(c.InFlight)
			}
		}
		for reason, n := range src.errs {
			s.Errors[reason] += n
		}
		for reason, n := range src.skips {
			s.Skipped[reason] += n
		}
		if src.received {
			s.Stats.RDBReceivedCount++
		} else {
			allReceived = false
		}
		if src.parsed {
			s.Stats.RDBParsedCount++
		} else {
			allParsed = false
		}
		s.Stats.TotalMsgsRecv += src.msgsRecv
		s.Stats.TotalNetInputBytes += src.inputBytes
		s.Stats.TotalMbufsInqueue += src.node.LagBytes / int64(max(d.cfg.Common.MbufSize, 1))
		if src.phase < minPhase {
			minPhase = src.phase
		}
	}
	s.Targets = targets.list
	if len(s.Targets) > 0 { // a cluster's masters or a pool's backends, once connected
		s.Group.TargetNodes = len(s.Targets)
	}
	if len(nodes) == 0 { // before Run has discovered the source's nodes
		s.Group.SourceNodes = len(d.cfg.Source.Servers)
	}
	s.Stats.AllRDBReceived = allReceived && len(nodes) > 0
	s.Stats.AllRDBParsed = allParsed && len(nodes) > 0
	s.Progress.Phase = minPhase.String()
	return s
}

// nodeStatus is one node's part of a Snapshot.
type nodeStatus struct {
	node       status.SourceNode
	phase      phase
	received   bool // its RDB is on disk
	parsed     bool // its RDB is loaded
	msgsRecv   int64
	inputBytes int64
	errs       map[string]int64
	skips      map[string]int64
}

func (p *pipeline) status(now time.Time) (nodeStatus, *target.Stats) {
	ph := phase(p.phase.Load())
	st := nodeStatus{phase: ph, parsed: p.rdbLoads.Load() > 0, msgsRecv: p.recvCmds.Load()}
	ns := p.node.Stats()
	n := status.SourceNode{Addr: ns.Addr, State: ph.String()}
	n.Link = "none"
	var downFor time.Duration
	linkTotal := int64(-1)
	if ns.Name != ns.Addr {
		n.Name = ns.Name // what the node stands for (a Sentinel's master name, a cluster master) when its link is elsewhere
	}
	if ns.Live {
		ls := ns.Link
		if ph == phaseSync {
			n.State = ls.State.String()
		}
		n.Link = "down"
		if ls.MasterLinkUp {
			n.Link = "up"
		}
		downFor = ls.DownFor(now)
		n.LinkDownMs = downFor.Milliseconds()
		n.LastIOMs = ls.LastIOAge(now).Milliseconds()
		n.Replid = ls.Replid
		n.ReceivedOffset = ls.ReceivedOffset
		n.RDBBytes = ls.RDBBytes
		n.RDBTotal = ls.RDBTotal
		linkTotal = ls.RDBTotal
		n.FullSyncs = ls.FullSyncs
		n.PartialSyncs = ls.PartialSyncs
		n.Reconnects = ls.Reconnects
		n.LastError = ls.LastError
		st.received = ls.FullSyncs > 0
		st.inputBytes = ls.RDBBytes + p.recvBytes.Load()
	} else {
		n.RDBBytes = p.rdbDecoded.Load()
		n.RDBTotal = p.rdbSize.Load()
		st.received = true
		st.inputBytes = n.RDBBytes + p.recvBytes.Load()
	}
	if sc := ns.Scan; sc != nil {
		n.Scan = status.ScanNode{Mode: sc.Mode, Passes: sc.Passes, KeysScanned: sc.KeysScanned, Progress: sc.Progress(),
			BigKeys: sc.BigKeys, ChangedDuringRead: sc.ChangedDuringRead, Notify: sc.Notify, SubscriptionUp: sc.SubscriptionUp,
			Notifications: sc.Notifications, Coalesced: sc.Coalesced, Rereads: sc.Rereads, Pending: sc.Pending,
			BigRereads: sc.BigRereads, BigRereadBytes: sc.BigRereadBytes, SubscriptionDrops: sc.SubscriptionDrops,
			Rescans: sc.Rescans, FlushesDetected: sc.FlushesDetected, PendingOverflows: sc.PendingOverflows,
			StreamRefreshes: sc.StreamRefreshes}
	}
	var ts *target.Stats
	if w := p.currentWriter(); w != nil {
		s := w.Stats()
		ts = &s
		n.RDBKeysLoaded = int64(s.Restored + s.Rewritten)
		if ph == phaseOplog {
			n.AppliedOffset = s.AppliedOffset
		}
	}
	lp := p.progress(now, ph, linkTotal, ns.Scan, writerInFlight(ts))
	n.RDBPercent, n.RDBEtaS, n.RDBLoadedBytes = lp.Percent, lp.EtaS, lp.Bytes
	if ph == phaseOplog && n.ReceivedOffset > n.AppliedOffset {
		n.LagBytes = n.ReceivedOffset - n.AppliedOffset
	}
	if ph == phaseOplog {
		behind := n.LagBytes > 0
		n.LagMs = p.lag.lagMs(now, behind, downFor)
		if behind && p.lag.stalled(now) {
			n.State = "stalled"
		}
	}
	errs, skips, lastErr := p.counters()
	if n.LastError == "" {
		n.LastError = lastErr
	}
	if why := p.held.Load(); why != nil {
		n.State, n.LastError = "held", *why
	}
	st.errs, st.skips = errs, skips
	st.node = n
	return st, ts
}

// targetNodes folds the connections of every writer into one line per target node (a cluster
// master, a twemproxy backend, the single target), in the order first seen.
type targetNodes struct {
	list  []status.TargetNode
	index map[string]int
}

func (tn *targetNodes) node(addr string) *status.TargetNode {
	if tn.index == nil {
		tn.index = map[string]int{}
	}
	i, ok := tn.index[addr]
	if !ok {
		i = len(tn.list)
		tn.index[addr] = i
		tn.list = append(tn.list, status.TargetNode{Addr: addr, State: "connected"})
	}
	return &tn.list[i]
}

func (tn *targetNodes) add(s *target.Stats) {
	if len(s.Conns) == 0 { // an rdb file target: no connection
		t := tn.node(s.Addr)
		t.State = "file"
		if s.LastError != "" {
			t.LastError = s.LastError
		}
		return
	}
	for _, c := range s.Conns {
		t := tn.node(c.Addr)
		t.Inflight += int64(c.InFlight)
		t.InflightBytes += c.InFlightBytes
		t.SentCmds += int64(c.Sent)
		t.SentBytes += int64(c.SentBytes)
		t.Replies += int64(c.Replies)
		t.ErrorCount += int64(c.ErrorReplies)
		if c.Broken {
			t.State = "down"
		}
		if s.LastError != "" {
			t.LastError = s.LastError
		}
	}
}
