package topology

import (
	"fmt"
	"strconv"
)

// ParseSlots reads a CLUSTER SLOTS reply: one entry per range of slots,
//
//	[start, end, [ip, port, id, {metadata}], [replica ip, port, id, ...], ...]
//
// (the id since Redis 4, the metadata since 7). A master serving several ranges is one Master
// (known by its id, or its address without one), in the order of its first range; its Slots are
// its ranges in the reply's order. CLUSTER SLOTS lists no flags, importing or migrating slots:
// masters get FlagMaster, replicas FlagReplica. An error names the entry.
func ParseSlots(reply []any, o Options) (*Map, error) {
	m := &Map{}
	var marks slotMarks
	index := map[string]int{} // id (or address) → index in m.Masters
	for i, r := range reply {
		fail := func(format string, args ...any) error {
			return fmt.Errorf("topology: CLUSTER SLOTS entry %d: %s", i, fmt.Sprintf(format, args...))
		}
		rng, ok := r.([]any)
		if !ok || len(rng) < 3 {
			return nil, fail("want [start end master ...], got %s", describe(r))
		}
		lo, ok1 := asInt(rng[0])
		hi, ok2 := asInt(rng[1])
		if !ok1 || !ok2 {
			return nil, fail("slots %s..%s are not integers", describe(rng[0]), describe(rng[1]))
		}
		rg, err := slotRange(lo, hi)
		if err == nil {
			err = marks.mark(rg.Lo, rg.Hi)
		}
		if err != nil {
			return nil, fail("%v", err)
		}
		node, err := slotsNode(rng[2], FlagMaster, o)
		if err != nil {
			return nil, fail("master: %v", err)
		}
		key := node.ID
		if key == "" {
			key = node.Addr
		}
		j, ok := index[key]
		if !ok {
			j = len(m.Masters)
			index[key] = j
			m.Masters = append(m.Masters, Master{Node: node})
		}
		ms := &m.Masters[j]
		ms.Slots = append(ms.Slots, rg)
		for k, e := range rng[3:] {
			rep, err := slotsNode(e, FlagReplica, o)
			if err != nil {
				return nil, fail("replica %d: %v", k, err)
			}
			if !hasNode(ms.Replicas, rep) {
				ms.Replicas = append(ms.Replicas, rep)
			}
		}
	}
	return m, nil
}

// slotsNode reads one node of a CLUSTER SLOTS entry: [ip, port, id, ...].
func slotsNode(v any, flags Flags, o Options) (Node, error) {
	e, ok := v.([]any)
	if !ok || len(e) < 2 {
		return Node{}, fmt.Errorf("want [ip port ...], got %s", describe(v))
	}
	ip, ok1 := asString(e[0])
	port, ok2 := asInt(e[1])
	if !ok1 || !ok2 {
		return Node{}, fmt.Errorf("want [ip port ...], got %s", describe(v))
	}
	addr, err := nodeAddr(ip, strconv.FormatInt(port, 10), o)
	if err != nil {
		return Node{}, err
	}
	n := Node{Addr: addr, Flags: flags}
	if len(e) > 2 {
		if n.ID, ok = asString(e[2]); !ok {
			return Node{}, fmt.Errorf("id %s is not a string", describe(e[2]))
		}
	}
	if len(e) > 3 {
		if meta, ok := asMap(e[3]); ok {
			n.Hostname, _ = asString(meta["hostname"])
		}
	}
	return n, nil
}

func hasNode(ns []Node, n Node) bool {
	for _, x := range ns {
		if x.Addr == n.Addr && x.ID == n.ID {
			return true
		}
	}
	return false
}

// ParseShards reads a CLUSTER SHARDS reply (Redis 7): one map per shard (RESP2 sends a map as a
// flat array of keys and values; a map[string]any is read too),
//
//	{slots: [start, end, start, end, ...], nodes: [{id, port, ip, endpoint, hostname, role, health, ...}, ...]}
//
// The shard's node of role master is its Master, with the shard's slots; the others are its
// replicas. A node whose health is "failed" gets FlagFail. A shard without a master serves no slot.
// An error names the shard.
func ParseShards(reply []any, o Options) (*Map, error) {
	m := &Map{}
	var marks slotMarks
	for i, r := range reply {
		fail := func(format string, args ...any) error {
			return fmt.Errorf("topology: CLUSTER SHARDS shard %d: %s", i, fmt.Sprintf(format, args...))
		}
		sh, ok := asMap(r)
		if !ok {
			return nil, fail("want a map, got %s", describe(r))
		}
		slots, ok := sh["slots"].([]any)
		if !ok || len(slots)%2 != 0 {
			return nil, fail("slots %s: want [start end ...]", describe(sh["slots"]))
		}
		var ranges []Range
		for k := 0; k < len(slots); k += 2 {
			lo, ok1 := asInt(slots[k])
			hi, ok2 := asInt(slots[k+1])
			if !ok1 || !ok2 {
				return nil, fail("slots %s..%s are not integers", describe(slots[k]), describe(slots[k+1]))
			}
			rg, err := slotRange(lo, hi)
			if err != nil {
				return nil, fail("%v", err)
			}
			ranges = append(ranges, rg)
		}
		nodes, ok := sh["nodes"].([]any)
		if !ok {
			return nil, fail("nodes %s: want an array", describe(sh["nodes"]))
		}
		var master *Master
		var replicas []Node
		for k, v := range nodes {
			n, isMaster, err := shardsNode(v, o)
			if err != nil {
				return nil, fail("node %d: %v", k, err)
			}
			switch {
			case !isMaster:
				replicas = append(replicas, n)
			case master != nil:
				return nil, fail("two masters, %s and %s", clip(master.ID), clip(n.ID))
			default:
				master = &Master{Node: n}
			}
		}
		if master == nil {
			continue // its slots are served by no one
		}
		for _, rg := range ranges {
			if err := marks.mark(rg.Lo, rg.Hi); err != nil {
				return nil, fail("%v", err)
			}
		}
		master.Slots, master.Replicas = ranges, replicas
		m.Masters = append(m.Masters, *master)
	}
	return m, nil
}

// shardsNode reads one node map of a CLUSTER SHARDS shard.
func shardsNode(v any, o Options) (n Node, isMaster bool, err error) {
	f, ok := asMap(v)
	if !ok {
		return Node{}, false, fmt.Errorf("want a map, got %s", describe(v))
	}
	ip, _ := asString(f["ip"])
	port, ok := asInt(f["port"])
	if !ok || port == 0 {
		port, ok = asInt(f["tls-port"]) // a TLS-only node
	}
	if !ok {
		return Node{}, false, fmt.Errorf("port %s is not an integer", describe(f["port"]))
	}
	if n.Addr, err = nodeAddr(ip, strconv.FormatInt(port, 10), o); err != nil {
		return Node{}, false, err
	}
	n.ID, _ = asString(f["id"])
	n.Hostname, _ = asString(f["hostname"])
	role, _ := asString(f["role"])
	switch role {
	case "master":
		n.Flags, isMaster = FlagMaster, true
	case "replica", "slave":
		n.Flags = FlagReplica
	default:
		return Node{}, false, fmt.Errorf("role %q", clip(role))
	}
	if health, _ := asString(f["health"]); health == "failed" {
		n.Flags |= FlagFail
	}
	return n, isMaster, nil
}

// slotRange checks the slots lo to hi of a reply.
func slotRange(lo, hi int64) (Range, error) {
	if lo < 0 || hi >= SlotCount || lo > hi {
		return Range{}, fmt.Errorf("slot range %d-%d is not within 0-%d", lo, hi, SlotCount-1)
	}
	return Range{int(lo), int(hi)}, nil
}

// asInt reads a RESP integer.
func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	}
	return 0, false
}

// asString reads a RESP string, bulk or simple.
func asString(v any) (string, bool) {
	switch x := v.(type) {
	case []byte:
		return string(x), true
	case string:
		return x, true
	}
	return "", false
}

// asMap reads a RESP3 map, or a RESP2 flat array of keys and values; keys must be strings.
func asMap(v any) (map[string]any, bool) {
	switch x := v.(type) {
	case map[string]any:
		return x, true
	case []any:
		if len(x)%2 != 0 {
			return nil, false
		}
		out := make(map[string]any, len(x)/2)
		for i := 0; i < len(x); i += 2 {
			k, ok := asString(x[i])
			if !ok {
				return nil, false
			}
			out[k] = x[i+1]
		}
		return out, true
	}
	return nil, false
}

// describe shows a reply element in an error, cut short.
func describe(v any) string {
	switch x := v.(type) {
	case []byte:
		return strconv.Quote(clip(string(x)))
	case string:
		return strconv.Quote(clip(x))
	case []any:
		return "an array of " + strconv.Itoa(len(x))
	case nil:
		return "nothing"
	}
	return clip(fmt.Sprintf("%T %v", v, v))
}
