package topology

import (
	"reflect"
	"strings"
	"testing"
)

// nodes7 is CLUSTER NODES as redis-server 7.0.15 answered it on 127.0.0.1:23002, while slot
// 100 moved from 23001 to 23002 (SETSLOT IMPORTING/MIGRATING) and 23003 replicated 23001; then
// two lines the same cluster would show with a failed master and a node in its handshake.
const nodes7 = `ae7f8b6c28a6d1f185e50c51fa473ff0cea96d60 127.0.0.1:23001@33001 master - 0 1796220766130 1 connected 0-8000 [100->-e823dc984ed2ed556ce3a8c84e218e680491695c]
e823dc984ed2ed556ce3a8c84e218e680491695c 127.0.0.1:23002@33002 myself,master - 0 1796220765000 0 connected 8001-16383 [100-<-ae7f8b6c28a6d1f185e50c51fa473ff0cea96d60]
4fc06a45a12111ef2224b7f606baa6ceae58becd 127.0.0.1:23003@33003 slave ae7f8b6c28a6d1f185e50c51fa473ff0cea96d60 0 1796220765125 1 connected
6ec2 127.0.0.1:23005@33005,host.example master,fail - 1426238316232 1426238315228 5 connected
77aa 127.0.0.1:23006@33006 handshake - 0 0 0 connected
`

const (
	id1 = "ae7f8b6c28a6d1f185e50c51fa473ff0cea96d60"
	id2 = "e823dc984ed2ed556ce3a8c84e218e680491695c"
	id3 = "4fc06a45a12111ef2224b7f606baa6ceae58becd"
)

func TestParseNodes(t *testing.T) {
	m, err := ParseNodes([]byte(nodes7), Options{DefaultHost: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Master{
		{Node: Node{ID: id1, Addr: "127.0.0.1:23001", Flags: FlagMaster}, Slots: []Range{{0, 8000}},
			Migrating: []Move{{100, id2}},
			Replicas:  []Node{{ID: id3, Addr: "127.0.0.1:23003", Flags: FlagReplica}}},
		{Node: Node{ID: id2, Addr: "127.0.0.1:23002", Flags: FlagMyself | FlagMaster}, Slots: []Range{{8001, 16383}},
			Importing: []Move{{100, id1}}},
		{Node: Node{ID: "6ec2", Addr: "127.0.0.1:23005", Hostname: "host.example", Flags: FlagMaster | FlagFail}},
	}
	if !reflect.DeepEqual(m.Masters, want) {
		t.Fatalf("masters:\n%+v\nwant\n%+v", m.Masters, want)
	}
	if s := m.Serving(); len(s) != 2 || s[0].ID != id1 || s[1].ID != id2 {
		t.Errorf("serving %+v", s)
	}
	table := m.Table()
	for slot, addr := range map[int]string{0: "127.0.0.1:23001", 100: "127.0.0.1:23001", 8000: "127.0.0.1:23001",
		8001: "127.0.0.1:23002", 16383: "127.0.0.1:23002"} {
		if table[slot] != addr {
			t.Errorf("slot %d: %q, want %q", slot, table[slot], addr)
		}
	}
	if s := m.Unserved(); s != -1 {
		t.Errorf("unserved %d", s)
	}
	keys := m.Masters[1].SlotSet(true)
	if !keys.Has(100) || !keys.Has(8001) || keys.Has(99) || keys.Len() != 16383-8001+2 {
		t.Errorf("importing master's keys: %s", keys.String())
	}
	if served := m.Masters[1].SlotSet(false); served.Has(100) || served.String() != "8001-16383" {
		t.Errorf("importing master serves %s", served.String())
	}
}

func TestParseNodesAddresses(t *testing.T) {
	for _, tt := range []struct {
		name, field, flags, defHost string
		want                        string
	}{
		{"plain", "10.0.0.1:7000@17000", "master", "", "10.0.0.1:7000"},
		{"before Redis 4: no bus port", "10.0.0.1:7000", "master", "", "10.0.0.1:7000"},
		{"hostname and aux fields (7.2)", "10.0.0.1:7000@17000,node-a,shard-id=abc", "master", "", "10.0.0.1:7000"},
		{"myself without its IP", ":7000@17000", "myself,master", "10.0.0.9", "10.0.0.9:7000"},
		{"no IP, no default", ":7000@17000", "myself,master", "", ""},
		{"unknown endpoint", "?:7000@17000", "master", "10.0.0.9", "10.0.0.9:7000"},
		{"noaddr", ":0@0", "master,noaddr", "10.0.0.9", ""},
		{"IPv6", "::1:7000@17000", "master", "", "[::1]:7000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			line := "id " + tt.field + " " + tt.flags + " - 0 0 1 connected 0-16383\n"
			m, err := ParseNodes([]byte(line), Options{DefaultHost: tt.defHost})
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Masters[0].Addr; got != tt.want {
				t.Errorf("addr %q, want %q", got, tt.want)
			}
			if usable := m.Masters[0].Usable(); usable != (tt.want != "") {
				t.Errorf("usable %v", usable)
			}
		})
	}
}

// TestParseNodesHostile: replies no Redis sends are errors that name the line, never panics or
// silent guesses.
func TestParseNodesHostile(t *testing.T) {
	for _, tt := range []struct {
		name, text, want string
	}{
		{"short line", "a 127.0.0.1:1@2 master\n", "line 1"},
		{"short line after a good one", "a 127.0.0.1:1@2 master - 0 0 1 connected 0\nb x\n", "line 2"},
		{"slot past the end", "a 127.0.0.1:1@2 master - 0 0 1 connected 0-16384\n", "16384"},
		{"reversed range", "a 127.0.0.1:1@2 master - 0 0 1 connected 5-3\n", "5-3"},
		{"not a slot", "a 127.0.0.1:1@2 master - 0 0 1 connected x\n", `"x"`},
		{"negative", "a 127.0.0.1:1@2 master - 0 0 1 connected -1\n", `"-1"`},
		{"huge number", "a 127.0.0.1:1@2 master - 0 0 1 connected 99999999999999999999\n", "slot field"},
		{"no port", "a nohost master - 0 0 1 connected 1\n", "no port"},
		{"port zero", "a 127.0.0.1:0@2 master - 0 0 1 connected 1\n", "port"},
		{"port too big", "a 127.0.0.1:65536@2 master - 0 0 1 connected 1\n", "port"},
		{"port not a number", "a 127.0.0.1:x@2 master - 0 0 1 connected 1\n", "port"},
		{"slot twice", "a 127.0.0.1:1@2 master - 0 0 1 connected 0-10\nb 127.0.0.1:2@3 master - 0 0 1 connected 10\n", "slot 10 is listed twice"},
		{"master twice", "a 127.0.0.1:1@2 master - 0 0 1 connected\na 127.0.0.1:2@3 master - 0 0 1 connected\n", "listed twice"},
		{"bad move", "a 127.0.0.1:1@2 master - 0 0 1 connected [5-?-b]\n", "slot field"},
		{"move without id", "a 127.0.0.1:1@2 master - 0 0 1 connected [5->-]\n", "slot field"},
		{"move unclosed", "a 127.0.0.1:1@2 master - 0 0 1 connected [5->-b\n", "slot field"},
		{"move past the end", "a 127.0.0.1:1@2 master - 0 0 1 connected [16384-<-b]\n", "slot field"},
		{"move of no slot", "a 127.0.0.1:1@2 master - 0 0 1 connected 0-16383 [x-<-y]\n", "slot field"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseNodes([]byte(tt.text), Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "CLUSTER NODES line") {
				t.Fatalf("err = %v, want one naming the line and %q", err, tt.want)
			}
		})
	}
}

func TestParseNodesLenient(t *testing.T) {
	// Blank lines, CRLF, unknown flags and a replica of a master the reply does not list are
	// not errors; the replica is left out.
	text := "\r\n a 127.0.0.1:1@2 myself,master,nofailover,newflag - 0 0 1 connected 0-16383\r\n" +
		"b 127.0.0.1:2@3 slave zzz 0 0 1 connected\n\n" +
		"c 127.0.0.1:3@4 noflags - 0 0 1 connected\n"
	m, err := ParseNodes([]byte(text), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Masters) != 1 || m.Masters[0].Flags != FlagMyself|FlagMaster|FlagNoFailover || len(m.Masters[0].Replicas) != 0 {
		t.Fatalf("%+v", m.Masters)
	}
	if f := m.Masters[0].Flags.String(); f != "myself,master,nofailover" {
		t.Errorf("flags %q", f)
	}
	if m, err := ParseNodes(nil, Options{}); err != nil || len(m.Masters) != 0 || m.Unserved() != 0 {
		t.Errorf("empty reply: %+v, %v", m, err)
	}
}

func TestUnservedSkipsFailedMasters(t *testing.T) {
	text := "a 127.0.0.1:1@2 master - 0 0 1 connected 0-100\n" +
		"b 127.0.0.1:2@3 master,fail - 0 0 1 connected 101-16383\n"
	m, err := ParseNodes([]byte(text), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s := m.Unserved(); s != 101 {
		t.Errorf("unserved %d, want 101", s)
	}
	if tab := m.Table(); tab[100] != "127.0.0.1:1" || tab[101] != "" {
		t.Errorf("table: %q %q", tab[100], tab[101])
	}
}

func TestSlotSet(t *testing.T) {
	var s SlotSet
	if !s.Empty() || s.FirstMissing() != 0 || s.String() != "none" {
		t.Fatalf("zero set: %s", s.String())
	}
	s.AddRange(0, 5460)
	s.Add(6000)
	s.Add(-1)
	s.Add(SlotCount)
	if s.String() != "0-5460,6000" || s.Len() != 5462 || s.FirstMissing() != 5461 || !s.Has(6000) || s.Has(6001) {
		t.Fatalf("set %s, len %d, first missing %d", s.String(), s.Len(), s.FirstMissing())
	}
	if s.Has(-1) || s.Has(SlotCount) {
		t.Fatal("a slot out of range is in the set")
	}
	var edges SlotSet
	edges.AddRange(0, 3)
	edges.Add(5)
	edges.AddRange(SlotCount-4, SlotCount-1)
	if got := edges.String(); got != "0-3,5,16380-16383" || !edges.Has(SlotCount-1) || edges.Has(4) {
		t.Fatalf("set %s", got)
	}
	var all SlotSet
	all.AddRange(-5, SlotCount+5)
	if all.FirstMissing() != -1 || all.Len() != SlotCount || !s.SubsetOf(&all) || all.SubsetOf(&s) {
		t.Fatalf("full set: %d slots", all.Len())
	}
}

// nodesThreeMasters is CLUSTER NODES with a replica listed before its master, a master that
// announces a hostname and imports a slot, one that never learned its own IP, a failed master
// and a healthy one without slots (from the daemon's cluster tests of before internal/topology).
const nodesThreeMasters = `07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003,host3 master - 0 1426238318243 3 connected 10923-16383 [100-<-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca :30001@31001 myself,master - 0 0 1 connected 0-5460 [200->-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]
aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 127.0.0.1:30009@31009 master,fail - 0 0 9 disconnected
bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb 127.0.0.1:30010@31010 master - 0 0 10 connected
`

// TestParseNodesServing: the masters a cluster source links to, in the reply's order, each with
// the slots whose keys its stream carries; failed and slotless masters are left out.
func TestParseNodesServing(t *testing.T) {
	m, err := ParseNodes([]byte(nodesThreeMasters), Options{DefaultHost: "10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ms := range m.Serving() {
		keys := ms.SlotSet(true)
		got = append(got, ms.Addr+":"+keys.String())
	}
	want := "127.0.0.1:30002:5461-10922 127.0.0.1:30003:100,10923-16383 10.0.0.1:30001:0-5460"
	if s := strings.Join(got, " "); s != want {
		t.Fatalf("serving\n got %s\nwant %s", s, want)
	}
	if id := m.Serving()[0].ID; id != "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1" {
		t.Errorf("id %q", id)
	}
	if r := m.Serving()[2].Replicas; len(r) != 1 || r[0].Addr != "127.0.0.1:30004" {
		t.Errorf("replica listed before its master: %+v", r)
	}
	if m.Unserved() != -1 {
		t.Errorf("unserved %d", m.Unserved())
	}
	// A slot no master serves is not a parse error: Unserved names it.
	m, err = ParseNodes([]byte("x 127.0.0.1:1@2 master - 0 0 1 connected 0-16382\n"), Options{})
	if err != nil || m.Unserved() != 16383 {
		t.Fatalf("slot 16383 unserved: %d, %v", m.Unserved(), err)
	}
}
