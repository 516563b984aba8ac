package topology

import (
	"net"
	"testing"
)

// FuzzParseNodes: no text panics ParseNodes, and what it accepts is consistent: every address
// dials as host:port, every slot range is within the slots and no slot has two masters.
func FuzzParseNodes(f *testing.F) {
	f.Add(nodes7)
	f.Add(nodesThreeMasters)
	f.Add("292f :30003@31003 myself,master - 0 0 3 connected 10923-16383\n")
	f.Add("a 127.0.0.1:1@2 master - 0 0 1 connected 0-16384\n")
	f.Add("a ::1:7000@17000,host,shard-id=x master,noaddr - 0 0 1 connected [5->-b] [6-<-c] 7\n")
	f.Fuzz(func(t *testing.T, text string) {
		m, err := ParseNodes([]byte(text), Options{DefaultHost: "127.0.0.1"})
		if err != nil {
			return
		}
		var seen SlotSet
		for _, ms := range m.Masters {
			if ms.Addr != "" {
				if _, _, err := net.SplitHostPort(ms.Addr); err != nil {
					t.Fatalf("master address %q: %v", ms.Addr, err)
				}
			}
			for _, r := range ms.Slots {
				if r.Lo < 0 || r.Hi >= SlotCount || r.Lo > r.Hi {
					t.Fatalf("range %v", r)
				}
				for s := r.Lo; s <= r.Hi; s++ {
					if seen.Has(s) {
						t.Fatalf("slot %d served twice", s)
					}
					seen.Add(s)
				}
			}
		}
		for _, ms := range m.Serving() {
			if keys := ms.SlotSet(true); keys.Empty() || !ms.Usable() {
				t.Fatalf("serving master %q: slots %s, usable %v", ms.Addr, keys.String(), ms.Usable())
			}
		}
		if got := len(m.Table()); got != SlotCount {
			t.Fatalf("table of %d slots", got)
		}
	})
}
