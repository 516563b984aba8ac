package source

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/mediocregopher/radix/v4"
	"go.uber.org/zap"
)

// ErrNotMoved is wrapped by MasterMoved's errors when no node of the source is a replica of
// the history the address serves: the request is refused.
var ErrNotMoved = errors.New("no source node replicates the history of that master")

// MasterMoved is a Sentinel's SLAVEOF host port on the admin port: "your master moved to
// addr". The node whose link replicates the history addr serves (its replid is addr's
// master_replid or master_replid2: addr is the promoted replica of that node's master, or the
// master itself) follows it, with a partial resync of the same replid and offset; addr must
// say it is a master. It waits, within ctx, for the link to stream from addr, so that the
// Sentinel's next INFO sees it up. It returns the node's name. A node whose link is already on
// addr is left as it is. Nodes that are not replica links (files) never move. The only node of
// a source, before its first snapshot is whole (it has no history yet) and with its link
// down, follows too: its master failed during the transfer.
func (s *Source) MasterMoved(ctx context.Context, addr string) (string, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", fmt.Errorf("source: master moved to %q: %w", addr, err)
	}
	var nodes []*replicaNode
	for _, n := range s.Nodes {
		if r, ok := n.(*replicaNode); ok {
			if l := r.getLink(); l != nil && l.Addr() == addr {
				return r.name, nil
			}
			nodes = append(nodes, r)
		}
	}
	role, ids, err := s.history(ctx, addr)
	if err != nil {
		return "", fmt.Errorf("source: master moved to %s: %w", addr, err)
	}
	if role != "master" {
		return "", fmt.Errorf("source: master moved to %s: it says role %q: %w", addr, role, ErrNotMoved)
	}
	var match *replicaNode
	for _, n := range nodes {
		l := n.getLink()
		if l == nil {
			continue
		}
		if id := l.Stats().Replid; id != "" && (id == ids[0] || id == ids[1]) {
			if match != nil {
				return "", fmt.Errorf("source: master moved to %s: nodes %s and %s both replicate its history", addr, match.name, n.name)
			}
			match = n
		}
	}
	if match == nil && len(nodes) == 1 {
		// The only node, whose first snapshot is not whole yet (no replid to compare): its
		// master failed during the transfer, and the snapshot must come from the new one.
		if l := nodes[0].getLink(); l != nil {
			if st := l.Stats(); st.Replid == "" && !st.MasterLinkUp {
				match = nodes[0]
			}
		}
	}
	if match == nil {
		return "", fmt.Errorf("source: master moved to %s (replids %s, %s): %w", addr, ids[0], ids[1], ErrNotMoved)
	}
	match.log.Warn("told that the master moved (SLAVEOF on the admin port): following it", zap.String("to", addr))
	l := match.getLink()
	before := l.Stats()
	match.followIfMoved(addr)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		// Up again after a new sync: the old session's state does not count.
		if st := l.Stats(); st.Addr == addr && st.MasterLinkUp &&
			st.PartialSyncs+st.FullSyncs > before.PartialSyncs+before.FullSyncs {
			return match.name, nil
		}
		select {
		case <-ctx.Done():
			return match.name, nil // moving; the link comes up by itself
		case <-t.C:
		}
	}
}

// history asks addr for its role and replication IDs (INFO replication).
func (s *Source) history(ctx context.Context, addr string) (role string, ids [2]string, err error) {
	c, err := s.cfg.Dialer.Dial(ctx, "tcp", addr)
	if err != nil {
		return "", ids, err
	}
	defer c.Close()
	var info string
	if err := c.Do(ctx, radix.Cmd(&info, "INFO", "replication")); err != nil {
		return "", ids, fmt.Errorf("INFO replication: %w", err)
	}
	role = infoField(info, "role")
	for i, f := range []string{"master_replid", "master_replid2"} {
		if id := infoField(info, f); strings.Trim(id, "0") != "" {
			ids[i] = id
		}
	}
	return role, ids, nil
}

// infoField finds "name:value" in an INFO reply ("" when absent).
func infoField(info, name string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), name+":"); ok {
			return v
		}
	}
	return ""
}
