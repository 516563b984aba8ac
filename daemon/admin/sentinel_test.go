package admin

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
)

// sentinelTestStart is an admin port with two replica links and a MasterMoved that records
// its calls (and refuses addresses starting with "10.").
func sentinelTestStart(t *testing.T, o Options) (*Server, *[]string) {
	t.Helper()
	var mu sync.Mutex
	var moved []string
	ups := []Upstream{
		{Name: "a", MasterAddr: "127.0.0.1:6379", LinkUp: true, Offset: 1234, Replid: strings.Repeat("a", 40)},
		{Name: "b", MasterAddr: "127.0.0.1:6380", Offset: 99, DownSince: time.Now().Add(-3 * time.Second)},
	}
	o.Replication = func() []Upstream {
		mu.Lock()
		defer mu.Unlock()
		return append([]Upstream(nil), ups...)
	}
	o.MasterMoved = func(_ context.Context, addr string) error {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(addr, "10.") {
			return errors.New("no source node replicates its history")
		}
		moved = append(moved, addr)
		ups[0].MasterAddr = addr
		return nil
	}
	return adminTestStart(t, o), &moved
}

func wantContains(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s: no %q in %q", what, w, got)
		}
	}
}

// TestAdminAnswersSentinels: INFO (the sections a Sentinel parses), ROLE, and the SLAVEOF a
// Sentinel sends during a failover, in its MULTI.
func TestAdminAnswersSentinels(t *testing.T) {
	a, moved := sentinelTestStart(t, Options{})
	r := adminTestRawDial(t, a.Addr())
	info := r.cmd("INFO")
	wantContains(t, "INFO", info, "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:6379\r\nmaster_link_status:up\r\n",
		"slave_repl_offset:1234\r\n", "slave_priority:0\r\n", "replica_priority:0\r\n", "master_replid:"+strings.Repeat("a", 40),
		"# Sources\r\n")
	if !regexp.MustCompile(`# Server\r\n(.*\r\n)*run_id:[0-9a-f]{40}\r\n`).MatchString(info) {
		t.Errorf("INFO: no run_id in the Server section: %q", info)
	}
	if i, j := strings.Index(info, "# Stats"), strings.Index(info, "# Replication"); i < 0 || j < i {
		t.Errorf("INFO: Replication is not after Stats")
	}
	if got := r.cmd("INFO", "replication"); !strings.HasPrefix(got, "$") || strings.Contains(got, "# Server") {
		t.Errorf("INFO replication: %q", got)
	}
	if got := r.cmd("ROLE"); got != "*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n$9\r\nconnected\r\n:1234\r\n" {
		t.Errorf("ROLE: %q", got)
	}
	// What a Sentinel sends to reconfigure a replica; its replies are discarded.
	for _, c := range [][]string{{"MULTI"}, {"SLAVEOF", "127.0.0.1", "7000"}, {"CONFIG", "REWRITE"},
		{"CLIENT", "KILL", "TYPE", "normal"}, {"CLIENT", "KILL", "TYPE", "pubsub"}} {
		want := "+QUEUED\r\n"
		if c[0] == "MULTI" {
			want = "+OK\r\n"
		}
		if got := r.cmd(c...); got != want {
			t.Fatalf("%v: %q, want %q", c, got, want)
		}
	}
	if len(*moved) != 0 {
		t.Fatal("SLAVEOF ran before EXEC")
	}
	if got := r.cmd("EXEC"); got != "*4\r\n+OK\r\n+OK\r\n:0\r\n:0\r\n" {
		t.Errorf("EXEC: %q", got)
	}
	if len(*moved) != 1 || (*moved)[0] != "127.0.0.1:7000" {
		t.Errorf("MasterMoved calls %v", *moved)
	}
	wantContains(t, "INFO after SLAVEOF", r.cmd("INFO", "replication"), "master_port:7000\r\n")
	if got := r.cmd("SLAVEOF", "10.0.0.1", "6379"); !strings.HasPrefix(got, "-ERR ") {
		t.Errorf("SLAVEOF to another history: %q", got)
	}
	for _, c := range [][]string{{"SLAVEOF", "NO", "ONE"}, {"REPLICAOF", "no", "one"}, {"SLAVEOF", "h", "0"}, {"EXEC"}, {"DISCARD"}} {
		if got := r.cmd(c...); !strings.HasPrefix(got, "-ERR ") {
			t.Errorf("%v: %q, want an error", c, got)
		}
	}
	if len(*moved) != 1 {
		t.Errorf("MasterMoved calls %v", *moved)
	}
}

// TestAdminSentinelAuth: with requirepass, a connection that did not AUTH may run the
// Sentinel's commands only from a configured Sentinel's host; other commands still need AUTH.
func TestAdminSentinelAuth(t *testing.T) {
	for _, fromSentinel := range []bool{false, true} {
		o := Options{RequirePass: "s3cret"}
		if fromSentinel {
			o.SentinelHosts = func() []string { return []string{"127.0.0.1"} }
		}
		a, moved := sentinelTestStart(t, o)
		r := adminTestRawDial(t, a.Addr())
		got := r.cmd("SLAVEOF", "127.0.0.1", "7001")
		if fromSentinel != (got == "+OK\r\n") || fromSentinel != (len(*moved) == 1) {
			t.Errorf("from a Sentinel's host %v: SLAVEOF %q, moved %v", fromSentinel, got, *moved)
		}
		if got := r.cmd("SHUTDOWN"); !strings.HasPrefix(got, "-NOAUTH") {
			t.Errorf("from a Sentinel's host %v: SHUTDOWN without AUTH: %q", fromSentinel, got)
		}
	}
}

// TestAdminSentinelPubSub: a Sentinel's hello, published on one connection, reaches the
// subscribers of __sentinel__:hello (so that a Sentinel keeps its subscription), and tells which
// master that Sentinel's connection is about.
func TestAdminSentinelPubSub(t *testing.T) {
	a, _ := sentinelTestStart(t, Options{MaxClients: 10})
	sub := adminTestRawDial(t, a.Addr())
	// As a Sentinel does: its name, then SUBSCRIBE, pipelined.
	sub.send("*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$15\r\nsentinel-pubsub\r\n*2\r\n$9\r\nSUBSCRIBE\r\n$18\r\n__sentinel__:hello\r\n")
	if got := sub.reply(); got != "+OK\r\n" {
		t.Fatalf("CLIENT SETNAME: %q", got)
	}
	if got := sub.reply(); got != "*3\r\n$9\r\nsubscribe\r\n$18\r\n__sentinel__:hello\r\n:1\r\n" {
		t.Fatalf("SUBSCRIBE: %q", got)
	}
	pub := adminTestRawDial(t, a.Addr())
	hello := "127.0.0.1,26379,0123456789012345678901234567890123456789,1,mymaster,127.0.0.1,6380,1"
	if got := pub.cmd("PUBLISH", "__sentinel__:hello", hello); got != ":1\r\n" {
		t.Fatalf("PUBLISH: %q", got)
	}
	if got := sub.reply(); got != "*3\r\n$7\r\nmessage\r\n$18\r\n__sentinel__:hello\r\n$"+strconv.Itoa(len(hello))+"\r\n"+hello+"\r\n" {
		t.Fatalf("message: %q", got)
	}
	// The hello named the master of link b: INFO on that connection is about it.
	wantContains(t, "INFO after a hello", pub.cmd("INFO", "replication"), "master_port:6380\r\n", "master_link_status:down\r\n",
		"master_link_down_since_seconds:")
	if got := sub.cmd("PING"); got != "*2\r\n$4\r\npong\r\n$0\r\n\r\n" {
		t.Errorf("PING while subscribed: %q", got)
	}
	if got := sub.cmd("INFO"); !strings.HasPrefix(got, "-ERR Can't execute 'INFO'") {
		t.Errorf("INFO while subscribed: %q", got)
	}
	// The subscriber still counts as a client.
	wantContains(t, "INFO clients", pub.cmd("INFO", "clients"), "connected_clients:2\r\n")
	if got := sub.cmd("UNSUBSCRIBE"); got != "*3\r\n$11\r\nunsubscribe\r\n$18\r\n__sentinel__:hello\r\n:0\r\n" {
		t.Errorf("UNSUBSCRIBE: %q", got)
	}
	if got := pub.cmd("PUBLISH", "__sentinel__:hello", hello); got != ":0\r\n" {
		t.Errorf("PUBLISH with no subscriber: %q", got)
	}
	sub.c.Close()
	redistest.WaitFor(t, 5*time.Second, func() error {
		if info := pub.cmd("INFO", "clients"); !strings.Contains(info, "connected_clients:1\r\n") {
			return fmt.Errorf("the closed subscriber is still counted: %q", info)
		}
		return nil
	})
}
