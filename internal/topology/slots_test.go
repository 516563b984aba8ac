package topology

import (
	"reflect"
	"strings"
	"testing"
)

func b(s string) []byte { return []byte(s) }

// slots7 is CLUSTER SLOTS as radix decodes redis-server 7.0.15's reply (ids shortened), with a
// replica added to the first range and a second range of the same master.
var slots7 = []any{
	[]any{int64(0), int64(8000), []any{b("127.0.0.1"), int64(23001), b("aaaa"), []any{}},
		[]any{b("127.0.0.1"), int64(23003), b("cccc"), []any{}}},
	[]any{int64(8001), int64(16000), []any{b(""), int64(23002), b("bbbb"), []any{b("hostname"), b("node-b")}}},
	[]any{int64(16001), int64(16383), []any{b("127.0.0.1"), int64(23001), b("aaaa"), []any{}},
		[]any{b("127.0.0.1"), int64(23003), b("cccc"), []any{}}},
}

func TestParseSlots(t *testing.T) {
	m, err := ParseSlots(slots7, Options{DefaultHost: "10.0.0.9"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Master{
		{Node: Node{ID: "aaaa", Addr: "127.0.0.1:23001", Flags: FlagMaster}, Slots: []Range{{0, 8000}, {16001, 16383}},
			Replicas: []Node{{ID: "cccc", Addr: "127.0.0.1:23003", Flags: FlagReplica}}},
		{Node: Node{ID: "bbbb", Addr: "10.0.0.9:23002", Hostname: "node-b", Flags: FlagMaster}, Slots: []Range{{8001, 16000}}},
	}
	if !reflect.DeepEqual(m.Masters, want) {
		t.Fatalf("masters:\n%+v\nwant\n%+v", m.Masters, want)
	}
	if m.Unserved() != -1 || m.Table()[16383] != "127.0.0.1:23001" {
		t.Errorf("unserved %d, table[16383] %q", m.Unserved(), m.Table()[16383])
	}
	// Before Redis 4 there was no id: the master is known by its address.
	old := []any{
		[]any{int64(0), int64(10), []any{"127.0.0.1", int64(1)}},
		[]any{int64(11), int64(16383), []any{"127.0.0.1", int64(1)}},
	}
	if m, err := ParseSlots(old, Options{}); err != nil || len(m.Masters) != 1 || len(m.Masters[0].Slots) != 2 || m.Unserved() != -1 {
		t.Fatalf("old reply: %+v, %v", m, err)
	}
}

func TestParseSlotsHostile(t *testing.T) {
	node := []any{b("127.0.0.1"), int64(1), b("id")}
	for _, tt := range []struct {
		name  string
		reply []any
		want  string
	}{
		{"not an array", []any{b("x")}, "entry 0"},
		{"too short", []any{[]any{int64(0), int64(1)}}, "entry 0"},
		{"slot not an integer", []any{[]any{b("0"), int64(1), node}}, "not integers"},
		{"past the end", []any{[]any{int64(0), int64(16384), node}}, "16384"},
		{"reversed", []any{[]any{int64(9), int64(3), node}}, "9-3"},
		{"negative", []any{[]any{int64(-1), int64(3), node}}, "-1"},
		{"overlap", []any{[]any{int64(0), int64(10), node}, []any{int64(10), int64(20), node}}, "entry 1: slot 10 is listed twice"},
		{"master not an array", []any{[]any{int64(0), int64(1), b("x")}}, "master"},
		{"master without port", []any{[]any{int64(0), int64(1), []any{b("127.0.0.1")}}}, "master"},
		{"port zero", []any{[]any{int64(0), int64(1), []any{b("h"), int64(0)}}}, "port"},
		{"port too big", []any{[]any{int64(0), int64(1), []any{b("h"), int64(70000)}}}, "port"},
		{"id not a string", []any{[]any{int64(0), int64(1), []any{b("h"), int64(1), int64(5)}}}, "id"},
		{"bad replica", []any{[]any{int64(0), int64(1), node, b("r")}}, "replica 0"},
		{"nil element", []any{nil}, "entry 0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSlots(tt.reply, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "CLUSTER SLOTS entry") {
				t.Fatalf("err = %v, want one naming the entry and %q", err, tt.want)
			}
		})
	}
}

// shards7 is CLUSTER SHARDS as radix decodes redis-server 7.0.15's reply (RESP2: maps as flat
// arrays), the replica loading, with a shard whose master failed.
var shards7 = []any{
	[]any{b("slots"), []any{int64(0), int64(8000)}, b("nodes"), []any{
		[]any{b("id"), b("aaaa"), b("port"), int64(23001), b("ip"), b("127.0.0.1"), b("endpoint"), b("127.0.0.1"),
			b("role"), b("master"), b("replication-offset"), int64(14), b("health"), b("online")},
		[]any{b("id"), b("cccc"), b("port"), int64(23003), b("ip"), b("127.0.0.1"), b("endpoint"), b("127.0.0.1"),
			b("role"), b("replica"), b("replication-offset"), int64(0), b("health"), b("loading")},
	}},
	[]any{b("slots"), []any{int64(8001), int64(16383)}, b("nodes"), []any{
		[]any{b("id"), b("bbbb"), b("port"), int64(23002), b("ip"), b("127.0.0.1"), b("hostname"), b("node-b"),
			b("role"), b("master"), b("health"), b("failed")},
	}},
	map[string]any{"slots": []any{}, "nodes": []any{}}, // a shard with nothing yet
}

func TestParseShards(t *testing.T) {
	m, err := ParseShards(shards7, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Master{
		{Node: Node{ID: "aaaa", Addr: "127.0.0.1:23001", Flags: FlagMaster}, Slots: []Range{{0, 8000}},
			Replicas: []Node{{ID: "cccc", Addr: "127.0.0.1:23003", Flags: FlagReplica}}},
		{Node: Node{ID: "bbbb", Addr: "127.0.0.1:23002", Hostname: "node-b", Flags: FlagMaster | FlagFail}, Slots: []Range{{8001, 16383}}},
	}
	if !reflect.DeepEqual(m.Masters, want) {
		t.Fatalf("masters:\n%+v\nwant\n%+v", m.Masters, want)
	}
	if s := m.Unserved(); s != 8001 {
		t.Errorf("unserved %d, want 8001 (its master failed)", s)
	}
	for _, tt := range []struct {
		name  string
		reply []any
		want  string
	}{
		{"not a map", []any{b("x")}, "shard 0"},
		{"odd map", []any{[]any{b("slots")}}, "shard 0"},
		{"odd slots", []any{[]any{b("slots"), []any{int64(1)}, b("nodes"), []any{}}}, "slots"},
		{"no nodes", []any{[]any{b("slots"), []any{}}}, "nodes"},
		{"bad role", []any{[]any{b("slots"), []any{}, b("nodes"), []any{[]any{b("port"), int64(1), b("role"), b("boss")}}}}, "role"},
		{"two masters", []any{[]any{b("slots"), []any{}, b("nodes"), []any{
			[]any{b("port"), int64(1), b("role"), b("master")}, []any{b("port"), int64(2), b("role"), b("master")}}}}, "two masters"},
		{"overlap", []any{
			[]any{b("slots"), []any{int64(0), int64(5)}, b("nodes"), []any{[]any{b("port"), int64(1), b("role"), b("master")}}},
			[]any{b("slots"), []any{int64(5), int64(9)}, b("nodes"), []any{[]any{b("port"), int64(2), b("role"), b("master")}}},
		}, "shard 1: slot 5 is listed twice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseShards(tt.reply, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "CLUSTER SHARDS") {
				t.Fatalf("err = %v, want one naming the shard and %q", err, tt.want)
			}
		})
	}
}
