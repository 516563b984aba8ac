package source

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"

	"github.com/rmt-project/rmt/internal/redistest"
)

// TestMasterMoved: "your master moved" (a Sentinel's SLAVEOF) moves the node whose history the
// new address serves, with a partial resync; an address of another history, or a replica, is
// refused and the link stays.
func TestMasterMoved(t *testing.T) {
	master := redistest.StartRedis(t)
	replica := redistest.StartRedis(t)
	replica.ReplicaOf(t, master)
	other := redistest.StartRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Open(ctx, Config{Kind: KindSingle, Servers: []string{master.Addr}, Dir: filepath.Join(t.TempDir(), "d"),
		Dialer: radix.Dialer{}})
	if err != nil {
		t.Fatal(err)
	}
	n := s.Nodes[0]
	go func() {
		for range n.Events() {
		}
	}()
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx, nil) }()
	defer func() { cancel(); <-done; n.Close() }()
	streaming := func(addr string) func() error {
		return func() error {
			if st := n.Stats(); !st.Link.MasterLinkUp || st.Addr != addr {
				return fmt.Errorf("link on %s, up %v; want up on %s", st.Addr, st.Link.MasterLinkUp, addr)
			}
			return nil
		}
	}
	redistest.WaitFor(t, 20*time.Second, streaming(master.Addr))
	master.Do(t, "SET", "k", "v")

	for _, addr := range []string{other.Addr, replica.Addr} {
		if _, err := s.MasterMoved(ctx, addr); !errors.Is(err, ErrNotMoved) {
			t.Errorf("moved to %s: %v, want ErrNotMoved", addr, err)
		}
	}
	if name, err := s.MasterMoved(ctx, master.Addr); err != nil || name != master.Addr {
		t.Errorf("moved to where it is: %q, %v", name, err)
	}
	if st := n.Stats(); st.Addr != master.Addr {
		t.Fatalf("the link moved to %s", st.Addr)
	}

	redistest.WaitReplicaSynced(t, master, replica, 10*time.Second)
	partial := replica.Info(t, "stats")["sync_partial_ok"]
	replica.Do(t, "REPLICAOF", "NO", "ONE") // promoted: its replid2 is the master's replid
	mctx, mcancel := context.WithTimeout(ctx, 5*time.Second)
	defer mcancel()
	if name, err := s.MasterMoved(mctx, replica.Addr); err != nil || name != master.Addr || mctx.Err() != nil {
		t.Fatalf("moved to the promoted replica: %q, %v (waited for the link: %v)", name, err, mctx.Err())
	}
	// MasterMoved returned once the link streamed from there again.
	if err := streaming(replica.Addr)(); err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(partial)
	if got := replica.Info(t, "stats")["sync_partial_ok"]; got != strconv.Itoa(p+1) {
		t.Errorf("promoted replica's sync_partial_ok %s, want %d", got, p+1)
	}
	if st := n.Stats(); st.Link.FullSyncs != 1 || st.Link.PartialSyncs != 1 {
		t.Errorf("link: %d full syncs, %d partial, want 1 and 1", st.Link.FullSyncs, st.Link.PartialSyncs)
	}
}
