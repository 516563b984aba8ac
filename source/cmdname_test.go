package source

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
)

// TestFakeMasterRenamedCommands: with LinkOptions.PSyncCommand and ReplconfCommand set, the
// handshake, PSYNC and every ACK use those names; a GETACK the master sends by its own name
// (REPLCONF) still gets its ACK.
func TestFakeMasterRenamedCommands(t *testing.T) {
	payload := randomBytes(3, 300)
	l, fm := newFakeLink(t, LinkOptions{PSyncCommand: "PSYNC-AWS", ReplconfCommand: "REPLCONF-AWS", AckInterval: time.Hour})
	runLink(t, l)
	fc := fm.accept()
	fc.expect("+PONG\r\n", "PING")
	fc.expect("+OK\r\n", "REPLCONF-AWS", "listening-port", "0")
	fc.expect("+OK\r\n", "REPLCONF-AWS", "capa", "eof", "capa", "psync2")
	fc.expect("+FULLRESYNC "+testReplid+" 0\r\n$"+strconv.Itoa(len(payload))+"\r\n", "PSYNC-AWS", "?", "-1")
	getack := cmd("REPLCONF", "GETACK", "*")
	fc.write(string(payload) + getack)
	if ev, ok := nextEvent(t, l).(FullSync); !ok {
		t.Fatalf("event %#v", ev)
	}
	// The first ACK goes as the stream starts, then one for the GETACK, both by the new name.
	want := "REPLCONF-AWS ACK " + strconv.Itoa(len(getack))
	for {
		got := strings.Join(fc.next(false), " ")
		if got == want {
			break
		}
		if got != "REPLCONF-AWS ACK 0" {
			t.Fatalf("link sent %q, want %q", got, want)
		}
	}
}

// TestFakeMasterUnknownReplconf: a master that does not know REPLCONF by the name sent (it was
// renamed) fails the handshake with a message naming source.replconf_command, instead of going
// on to a link the master drops at its repl-timeout for want of ACKs.
func TestFakeMasterUnknownReplconf(t *testing.T) {
	l, fm := newFakeLink(t, LinkOptions{})
	runLink(t, l)
	fc := fm.accept()
	fc.expect("+PONG\r\n", "PING")
	fc.expect("-ERR unknown command 'REPLCONF', with args beginning with: 'listening-port' '0' \r\n", "REPLCONF", "listening-port", "0")
	if ev, ok := nextEvent(t, l).(Disconnected); !ok || !strings.Contains(fmt.Sprint(ev.Err), "source.replconf_command") {
		t.Fatalf("event %#v", ev)
	}
}

// TestLinkRenamedPSYNC: a real master with PSYNC and REPLCONF renamed, as some managed services
// do. Without the names the link fails with a message saying which setting to use. With them
// it makes a full sync, streams, and its ACKs reach the master. Redis serves a renamed PSYNC as
// SYNC (it tells them apart by name): the answer is the RDB without +FULLRESYNC, and the link's
// stream gets a replication ID of its own, counted from 0.
func TestLinkRenamedPSYNC(t *testing.T) {
	r := startRedis(t, 0, "", "--repl-diskless-sync-delay", "0",
		"--rename-command", "PSYNC", "PSYNC-AWS", "--rename-command", "REPLCONF", "REPLCONF-AWS",
		"--rename-command", "SYNC", `""`)
	c := r.client(t)
	c.must(t, "SET", "before", "1")

	plain := NewLink(LinkOptions{Addr: r.addr, Dir: t.TempDir(), Timeout: 5 * time.Second, ReplconfCommand: "REPLCONF-AWS"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- plain.Run(ctx) }()
	redistest.WaitFor(t, 10*time.Second, func() error {
		if e := plain.Stats().LastError; !strings.Contains(e, "source.psync_command") {
			return fmt.Errorf("last error %q", e)
		}
		return nil
	})
	cancel()
	<-done
	plain.Close()

	l := NewLink(LinkOptions{Addr: r.addr, Dir: t.TempDir(), Timeout: 5 * time.Second,
		PSyncCommand: "PSYNC-AWS", ReplconfCommand: "REPLCONF-AWS", AckInterval: 50 * time.Millisecond})
	runLink(t, l)
	ev, ok := nextEvent(t, l).(FullSync)
	if !ok || !validReplid(ev.Replid) || ev.Offset != 0 {
		t.Fatalf("event %#v", ev)
	}
	c.must(t, "SET", "after", "2")
	redistest.WaitFor(t, 10*time.Second, func() error {
		st := l.Stats()
		slave := c.infoField(t, "replication", "slave0")
		if st.ReceivedOffset == 0 || !strings.Contains(slave, "state=online,offset="+strconv.FormatInt(st.ReceivedOffset, 10)+",") {
			return fmt.Errorf("link received %d, master sees %q", st.ReceivedOffset, slave)
		}
		return nil
	})
	if got := spooled(t, l.Spool(), 0, int(l.Stats().ReceivedOffset)); !strings.Contains(string(got), cmd("SET", "after", "2")) {
		t.Fatalf("spool holds %q", got)
	}
}
