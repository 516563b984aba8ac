package topology_test

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/internal/topology"
)

// TestSentinelsFollowFailover: from one of 3 Sentinels the others are learnt, the master and
// its replica are found, and Watch reports the promoted replica after the master is killed.
func TestSentinelsFollowFailover(t *testing.T) {
	g := redistest.StartSentinelGroup(t, 1, 3, redistest.SentinelOptions{})
	s, err := topology.NewSentinels(topology.SentinelConfig{MasterName: g.Name, Sentinels: g.SentinelAddrs()[:1]})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	addr, err := s.Master(ctx)
	if err != nil || addr != g.Master.Addr {
		t.Fatalf("Master: %q, %v; want %s", addr, err, g.Master.Addr)
	}
	if got := s.Addrs(); len(got) != 3 || got[0] != g.Sentinels[0].Addr {
		t.Fatalf("Sentinels after a look-up: %v, want the 3 with %s first", got, g.Sentinels[0].Addr)
	}
	reps, err := s.Replicas(ctx)
	if err != nil || len(reps) != 1 || reps[0].Addr != g.Replicas[0].Addr || !reps[0].Healthy() ||
		reps[0].MasterAddr != g.Master.Addr {
		t.Fatalf("Replicas: %+v, %v", reps, err)
	}
	moved := make(chan string, 4)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// A long interval: only the +switch-master message can report the failover in time.
		s.Watch(wctx, addr, time.Hour, func(a string) { moved <- a })
	}()
	killed := redistest.KillMasterQuiet(t, g.Master, 10*time.Second)
	select {
	case a := <-moved:
		if a != g.Replicas[0].Addr {
			t.Fatalf("Watch: master moved to %s, want %s", a, g.Replicas[0].Addr)
		}
		t.Logf("Watch reported the new master %v after the kill", time.Since(killed))
	case <-time.After(30 * time.Second):
		t.Fatal("Watch reported no failover within 30 s")
	}
	stop()
	<-done
}

// TestSentinelRefusesNonMaster: a Sentinel that names a node whose ROLE is not master (a
// failover in progress) is not believed.
func TestSentinelRefusesNonMaster(t *testing.T) {
	g := redistest.StartSentinelGroup(t, 1, 1, redistest.SentinelOptions{Quorum: 1})
	// Make the master a replica of its replica behind the Sentinel's back.
	g.Replicas[0].Do(t, "REPLICAOF", "NO", "ONE")
	g.Master.Do(t, "REPLICAOF", "127.0.0.1", g.Replicas[0].Port)
	s, err := topology.NewSentinels(topology.SentinelConfig{MasterName: g.Name, Sentinels: g.SentinelAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The Sentinel may notice at any time; until it does it names the old master.
	if addr, err := s.Master(ctx); err == nil && addr == g.Master.Addr {
		t.Fatalf("Master: %s, which says it is a replica", addr)
	}
}

// TestSentinelBadReplies: lengths a hostile Sentinel sends are refused, not allocated.
func TestSentinelBadReplies(t *testing.T) {
	for _, reply := range []string{
		"$99999999999\r\n", "*99999999\r\n", "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", "$-5\r\n",
		":x\r\n", "?\r\n", "+" + strings.Repeat("a", 100<<10) + "\r\n", "$3\r\nabcd\r\n",
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if strings.HasPrefix(line, "GET-MASTER") || strings.Contains(line, "GET-MASTER") {
					c.Write([]byte(reply))
				}
			}
		}()
		s, _ := topology.NewSentinels(topology.SentinelConfig{MasterName: "m", Sentinels: []string{ln.Addr().String()},
			Timeout: time.Second})
		if addr, err := s.Master(context.Background()); err == nil {
			t.Errorf("reply %q: master %q, want an error", reply[:min(len(reply), 20)], addr)
		}
		ln.Close()
	}
}
