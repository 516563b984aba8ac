package source

import (
	"testing"

	"github.com/rmt-project/rmt/internal/topology"
)

// TestReplicaLink: where a prefer_replica node links, given its master's replicas.
func TestReplicaLink(t *testing.T) {
	ms := topology.Master{Node: topology.Node{Addr: "m:1", Flags: topology.FlagMaster}, Replicas: []topology.Node{
		{Addr: "r:1", Flags: topology.FlagReplica | topology.FlagFail},
		{Addr: "r:2", Flags: topology.FlagReplica | topology.FlagPFail},
		{Addr: "r:3", Flags: topology.FlagReplica},
		{Addr: "r:4", Flags: topology.FlagReplica},
	}}
	for _, tt := range []struct{ cur, want string }{
		{"", "r:3"},    // the first usable replica
		{"r:4", "r:4"}, // a usable replica is kept
		{"r:1", "r:3"}, // a failed one is left
		{"r:2", "r:3"}, // and one in doubt
		{"m:1", "m:1"}, // the master itself (a promoted replica) is kept
		{"x:9", "r:3"}, // a node of another master is left
	} {
		if got := replicaLink(ms, tt.cur); got != tt.want {
			t.Errorf("link at %q: %q, want %q", tt.cur, got, tt.want)
		}
	}
	if got := replicaLink(topology.Master{Node: topology.Node{Addr: "m:1"}}, "r:9"); got != "m:1" {
		t.Errorf("no replica: %q, want the master", got)
	}
}
