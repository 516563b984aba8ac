package target

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/internal/shard"
)

// fakeSentinel answers SENTINEL GET-MASTER-ADDR-BY-NAME with whatever master it is told, so
// that a test decides when "the failover" happens.
type fakeSentinel struct {
	ln     net.Listener
	mu     sync.Mutex
	master string
}

func startFakeSentinel(t *testing.T, master string) *fakeSentinel {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSentinel{ln: ln, master: master}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f
}

func (f *fakeSentinel) set(master string) {
	f.mu.Lock()
	f.master = master
	f.mu.Unlock()
}

func (f *fakeSentinel) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n') // *N
		if err != nil || !strings.HasPrefix(line, "*") {
			return
		}
		var n int
		fmt.Sscanf(line, "*%d", &n)
		var args []string
		for range n {
			if _, err := br.ReadString('\n'); err != nil { // $len
				return
			}
			a, err := br.ReadString('\n')
			if err != nil {
				return
			}
			args = append(args, strings.TrimRight(a, "\r\n"))
		}
		switch {
		case len(args) == 3 && strings.EqualFold(args[1], "GET-MASTER-ADDR-BY-NAME"):
			f.mu.Lock()
			host, port, _ := net.SplitHostPort(f.master)
			f.mu.Unlock()
			fmt.Fprintf(c, "*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(host), host, len(port), port)
		case len(args) == 3 && strings.EqualFold(args[1], "SENTINELS"):
			c.Write([]byte("*0\r\n"))
		default:
			c.Write([]byte("-ERR unknown\r\n"))
		}
	}
}

// TestSentinelTargetResendsFromNewMastersCheckpoint: the master the Sentinels name after a
// failover is behind the old one (it lacks the last batch the old master acknowledged):
// Reconnect finds it, resends from the checkpoint it holds, and each INCR counts once.
func TestSentinelTargetResendsFromNewMastersCheckpoint(t *testing.T) {
	old := redistest.StartRedis(t)
	next := redistest.StartRedis(t)
	fs := startFakeSentinel(t, old.Addr)
	tg, err := New(KindSentinel, Config{Servers: []shard.Server{{Addr: fs.ln.Addr().String()}}, MasterName: "m",
		Conn: Options{Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	replid := strings.Repeat("r", 40)
	w, err := tg.Writer(ctx, WriterOptions{Name: "src", SourceRDBVersion: 10, CheckpointKey: "rmt:checkpoint:src",
		Replid: func() string { return replid }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.StartOplog(ctx, 100, 0); err != nil {
		t.Fatal(err)
	}
	if cp, ok, err := tg.ReadCheckpoint(ctx, "rmt:checkpoint:src"); err != nil || !ok || cp.Offset != 100 {
		t.Fatalf("checkpoint at the stream's start: %+v %v %v", cp, ok, err)
	}
	end := int64(100)
	batch := func(n int) {
		for range n {
			cmd := rawCmd("INCR", "c")
			end += cmd.N
			if err := w.Apply(cmd, end); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := w.WaitOplog(ctx); err != nil {
			t.Fatal(err)
		}
	}
	batch(10)
	first := end
	// The replica gets everything up to here, then is promoted: it will lack the next batch.
	next.ReplicaOf(t, old)
	next.Do(t, "REPLICAOF", "NO", "ONE")
	batch(5)
	if off, _ := w.Applied(); off != end {
		t.Fatalf("applied %d, want %d", off, end)
	}
	old.Kill()
	fs.set(next.Addr)
	cmd := rawCmd("INCR", "c")
	if err := w.Apply(cmd, end+cmd.N); err == nil {
		err = w.Flush()
		if err == nil {
			err = w.WaitOplog(ctx)
		}
		if !errors.Is(err, ErrBroken) && err != nil {
			t.Fatalf("after the kill: %v", err)
		}
	}
	off, db, err := w.Reconnect(ctx)
	if err != nil || off != first || db != 0 {
		t.Fatalf("Reconnect: %d %d %v; want the new master's checkpoint %d", off, db, err, first)
	}
	// The daemon resends from there: the 5 INCRs of the lost batch, and the new one.
	end = first
	batch(6)
	if v := next.DoString(t, "GET", "c"); v != "16" {
		t.Errorf("c on the new master: %s, want 16", v)
	}
	if st := w.Stats(); st.Addr != next.Addr {
		t.Errorf("Stats on %s, want %s", st.Addr, next.Addr)
	}
}

// TestPublishHelloNotApplied: a Sentinel's hello published on a source master is in its stream;
// the target skips it as pub/sub, like every PUBLISH.
func TestPublishHelloNotApplied(t *testing.T) {
	dst := redistest.StartRedis(t)
	s := newSingle(t, dst.Addr, SingleOptions{})
	ctx := context.Background()
	if err := s.StartOplog(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	before := dst.Info(t, "stats")["total_commands_processed"]
	hello := rawCmd("PUBLISH", "__sentinel__:hello", "127.0.0.1,26379,"+strings.Repeat("a", 40)+",1,mymaster,127.0.0.1,6379,1")
	if err := s.Apply(hello, hello.N); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitOplog(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().Skipped[SkipPubSub]; got != 1 {
		t.Errorf("skipped pubsub %d, want 1", got)
	}
	if off, _ := s.Applied(); off != hello.N {
		t.Errorf("applied %d, want %d", off, hello.N)
	}
	// INFO itself is the only command the target ran since.
	if got := dst.Info(t, "stats")["total_commands_processed"]; got != plusOne(before) {
		t.Errorf("the target ran commands: %s then %s", before, got)
	}
}

func plusOne(s string) string {
	var n int
	fmt.Sscanf(s, "%d", &n)
	return fmt.Sprint(n + 1)
}
