package redistest

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// stream reads a stream's entries (XRANGE pages), its XINFO STREAM metadata, its groups
// (XINFO GROUPS), each group's consumers (XINFO CONSUMERS) and PEL (XPENDING pages).
func (dm *dumper) stream(k string, v *Value, first interface{}) error {
	s := &Stream{}
	page := replyArr(first)
	for {
		for _, e := range page {
			pair := replyArr(e)
			if len(pair) != 2 {
				return fmt.Errorf("XRANGE: entry of %d elements", len(pair))
			}
			s.Entries = append(s.Entries, StreamEntry{ID: replyStr(pair[0]), Fields: replyStrs(pair[1])})
		}
		if len(page) < dumpPage {
			break
		}
		next, err := nextStreamID(s.Entries[len(s.Entries)-1].ID)
		if err != nil {
			return err
		}
		page = nil
		if err := dm.do(&page, "XRANGE", k, next, "+", "COUNT", strconv.Itoa(dumpPage)); err != nil {
			return err
		}
	}
	var info, groups []interface{}
	if err := dm.do(&info, "XINFO", "STREAM", k); err != nil {
		return err
	}
	m := replyMap(info)
	s.Length = replyInt(m["length"])
	s.LastGeneratedID = replyStr(m["last-generated-id"])
	s.MaxDeletedID = replyStr(m["max-deleted-entry-id"])
	s.EntriesAdded = replyInt(m["entries-added"])
	if err := dm.do(&groups, "XINFO", "GROUPS", k); err != nil {
		return err
	}
	for _, g := range groups {
		gm := replyMap(g)
		grp := StreamGroup{
			Name:            replyStr(gm["name"]),
			LastDeliveredID: replyStr(gm["last-delivered-id"]),
			Pending:         replyInt(gm["pending"]),
			ConsumerCount:   replyInt(gm["consumers"]),
			EntriesRead:     "nil",
		}
		if er := gm["entries-read"]; !replyNil(er) {
			grp.EntriesRead = replyStr(er)
		}
		if err := dm.group(k, &grp); err != nil {
			return fmt.Errorf("group %s: %w", Escape(grp.Name), err)
		}
		s.Groups = append(s.Groups, grp)
	}
	sort.Slice(s.Groups, func(i, j int) bool { return s.Groups[i].Name < s.Groups[j].Name })
	v.Stream = s
	return nil
}

// group reads one group's consumers and PEL.
func (dm *dumper) group(k string, g *StreamGroup) error {
	var consumers []interface{}
	if err := dm.do(&consumers, "XINFO", "CONSUMERS", k, g.Name); err != nil {
		return err
	}
	for _, c := range consumers {
		cm := replyMap(c)
		g.Consumers = append(g.Consumers, StreamConsumer{Name: replyStr(cm["name"]), Pending: replyInt(cm["pending"])})
	}
	sort.Slice(g.Consumers, func(i, j int) bool { return g.Consumers[i].Name < g.Consumers[j].Name })
	start := "-"
	for {
		var page []interface{}
		if err := dm.do(&page, "XPENDING", k, g.Name, start, "+", strconv.Itoa(dumpPage)); err != nil {
			return err
		}
		for _, p := range page {
			e := replyArr(p)
			if len(e) != 4 {
				return fmt.Errorf("XPENDING: entry of %d elements", len(e))
			}
			g.PEL = append(g.PEL, StreamPending{ID: replyStr(e[0]), Consumer: replyStr(e[1]), Deliveries: replyInt(e[3])})
		}
		if len(page) < dumpPage {
			return nil
		}
		next, err := nextStreamID(g.PEL[len(g.PEL)-1].ID)
		if err != nil {
			return err
		}
		start = next
	}
}

// nextStreamID returns the smallest ID after id ("5-3" → "5-4", "5-18446744073709551615" →
// "6-0"), which works on every Redis version, unlike the exclusive "(" form of 6.2+.
func nextStreamID(id string) (string, error) {
	msS, seqS, ok := strings.Cut(id, "-")
	ms, err1 := strconv.ParseUint(msS, 10, 64)
	seq, err2 := strconv.ParseUint(seqS, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return "", fmt.Errorf("bad stream id %q", id)
	}
	if seq == ^uint64(0) {
		return fmt.Sprintf("%d-0", ms+1), nil
	}
	return fmt.Sprintf("%d-%d", ms, seq+1), nil
}
