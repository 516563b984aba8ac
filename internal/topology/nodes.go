package topology

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseNodes reads the text of CLUSTER NODES: one line per node,
//
//	<id> <ip:port@cport[,hostname[,aux=value...]]> <flags> <master id|-> <ping> <pong> <epoch> <link> [<slot>...]
//
// where a slot field is "N", "N-M", "[N->-id]" (migrating to id) or "[N-<-id]" (importing from
// id). Every master is kept, with its flags (see Map.Serving and Node.Usable); replicas go under
// their master. A node without an address is shown ":0" with noaddr (its Addr is ""), or ":port"
// when it never learned its own IP (o.DefaultHost then stands for it). Blank lines are ignored.
// An error names the line and what is wrong: fewer than 8 fields, an address without a port, a
// bad slot field, a slot served twice.
func ParseNodes(text []byte, o Options) (*Map, error) {
	m := &Map{}
	var marks slotMarks
	type replica struct {
		node   Node
		master string
	}
	var replicas []replica
	index := map[string]int{} // master id → index in m.Masters
	for n, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		fail := func(format string, args ...any) error {
			return fmt.Errorf("topology: CLUSTER NODES line %d (%q): %s", n+1, clip(line), fmt.Sprintf(format, args...))
		}
		f := strings.Fields(line)
		if len(f) < 8 {
			return nil, fail("%d fields, want at least 8", len(f))
		}
		node := Node{ID: f[0], Flags: parseFlags(f[2])}
		var err error
		if node.Addr, node.Hostname, err = parseNodeAddr(f[1], node.Flags, o); err != nil {
			return nil, fail("address %q: %v", clip(f[1]), err)
		}
		switch {
		case node.Flags&FlagMaster != 0:
			if _, dup := index[node.ID]; dup {
				return nil, fail("node %s is listed twice", clip(node.ID))
			}
			ms := Master{Node: node}
			for _, s := range f[8:] {
				if err := ms.addSlotField(s, &marks); err != nil {
					return nil, fail("slot field %q: %v", clip(s), err)
				}
			}
			index[node.ID] = len(m.Masters)
			m.Masters = append(m.Masters, ms)
		case node.Flags&FlagReplica != 0 && f[3] != "-":
			replicas = append(replicas, replica{node, f[3]})
		}
	}
	for _, r := range replicas {
		if i, ok := index[r.master]; ok {
			m.Masters[i].Replicas = append(m.Masters[i].Replicas, r.node)
		}
	}
	return m, nil
}

// parseNodeAddr reads "ip:port@cport[,hostname[,aux=value...]]" (before Redis 4: "ip:port").
func parseNodeAddr(field string, flags Flags, o Options) (addr, hostname string, err error) {
	a, rest, _ := strings.Cut(field, "@")
	if _, extra, ok := strings.Cut(rest, ","); ok {
		hostname, _, _ = strings.Cut(extra, ",")
		if strings.Contains(hostname, "=") { // an auxiliary field: no hostname
			hostname = ""
		}
	}
	i := strings.LastIndexByte(a, ':')
	if i < 0 {
		return "", "", fmt.Errorf("no port")
	}
	if a[i+1:] == "0" && flags&FlagNoAddr != 0 {
		return "", hostname, nil
	}
	addr, err = nodeAddr(a[:i], a[i+1:], o)
	return addr, hostname, err
}

// addSlotField adds one slot field of a CLUSTER NODES line to m.
func (m *Master) addSlotField(s string, marks *slotMarks) error {
	if strings.HasPrefix(s, "[") {
		body, ok := strings.CutSuffix(s[1:], "]")
		num, rest, ok2 := strings.Cut(body, "-")
		slot, err := strconv.Atoi(num)
		if !ok || !ok2 || err != nil || slot < 0 || slot >= SlotCount || len(num) > 5 {
			return fmt.Errorf("want [slot->-id] or [slot-<-id]")
		}
		switch {
		case strings.HasPrefix(rest, ">-") && len(rest) > 2:
			m.Migrating = append(m.Migrating, Move{Slot: slot, Node: rest[2:]})
		case strings.HasPrefix(rest, "<-") && len(rest) > 2:
			m.Importing = append(m.Importing, Move{Slot: slot, Node: rest[2:]})
		default:
			return fmt.Errorf("want [slot->-id] or [slot-<-id]")
		}
		return nil
	}
	loS, hiS, isRange := strings.Cut(s, "-")
	lo, err := parseSlot(loS)
	hi := lo
	if err == nil && isRange {
		hi, err = parseSlot(hiS)
	}
	if err != nil {
		return err
	}
	if err := marks.mark(lo, hi); err != nil {
		return err
	}
	m.Slots = append(m.Slots, Range{lo, hi})
	return nil
}

func parseSlot(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || len(s) > 5 || n < 0 || n >= SlotCount {
		return 0, fmt.Errorf("%q is not a slot in 0-%d", clip(s), SlotCount-1)
	}
	return n, nil
}
