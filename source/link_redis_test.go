package source

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/redistest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func newRedisLink(t *testing.T, opts LinkOptions) *Link {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.BackoffMax == 0 {
		opts.BackoffMin, opts.BackoffMax = 20*time.Millisecond, 200*time.Millisecond
	}
	l := NewLink(opts)
	runLink(t, l)
	return l
}

// waitEvent returns the first event of type E, skipping Disconnected and RDBStarted ones.
func waitEvent[E Event](t *testing.T, l *Link, timeout time.Duration) E {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-l.Events():
			if e, ok := ev.(E); ok {
				return e
			}
			_, disconnected := ev.(Disconnected)
			_, started := ev.(RDBStarted)
			if !disconnected && !started {
				var zero E
				t.Fatalf("got %#v while waiting for %T", ev, zero)
			}
		case <-deadline:
			var zero E
			t.Fatalf("no %T event after %v (stats %+v)", zero, timeout, l.Stats())
		}
	}
}

// waitCaughtUp waits until the link has fsynced everything the master has written.
func waitCaughtUp(t *testing.T, l *Link, m *rclient) int64 {
	t.Helper()
	var want int64
	redistest.WaitFor(t, 20*time.Second, func() error {
		want, _ = strconv.ParseInt(m.infoField(t, "replication", "master_repl_offset"), 10, 64)
		if got := l.Stats().ReceivedOffset; got != want {
			return fmt.Errorf("received offset %d, master_repl_offset %d", got, want)
		}
		return nil
	})
	return want
}

// spooledCommands parses the spool between from and to, dropping PING and REPLCONF.
func spooledCommands(t *testing.T, sp *aof.Spool, from, to int64) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sr, err := sp.NewReader(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	defer sr.Close()
	r := aof.NewReader(io.LimitReader(sr, to-from))
	var (
		c   aof.Command
		out []string
	)
	for {
		if err := r.Next(&c); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("parsing the spool: %v", err)
		}
		name := strings.ToUpper(string(c.Args[0]))
		if name == "PING" || name == "REPLCONF" {
			continue
		}
		var parts []string
		for _, a := range c.Args {
			s := string(a)
			if len(s) > 20 {
				s = fmt.Sprintf("<%d bytes>", len(s))
			}
			parts = append(parts, s)
		}
		out = append(out, strings.Join(parts, " "))
	}
	if r.Offset() != to-from {
		t.Fatalf("parsed %d bytes of %d", r.Offset(), to-from)
	}
	return out
}

// checkRDBFile checks the spooled snapshot with redis-check-rdb and by loading it into another
// redis-server, whose keys must match the master's.
func checkRDBFile(t *testing.T, path string, master *rclient, keys map[int][]string) {
	t.Helper()
	out, err := exec.Command(redistest.NeedBinary(t, "redis-check-rdb"), path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "RDB looks OK") {
		t.Fatalf("redis-check-rdb %s: %v\n%s", path, err, out)
	}
	dir := t.TempDir()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dump.rdb"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	copyProc := startRedis(t, 0, dir, "--dbfilename", "dump.rdb")
	cp := copyProc.client(t)
	for db, ks := range keys {
		master.must(t, "SELECT", strconv.Itoa(db))
		cp.must(t, "SELECT", strconv.Itoa(db))
		if a, b := master.must(t, "DBSIZE"), cp.must(t, "DBSIZE"); a != b {
			t.Fatalf("db %d: DBSIZE %s on the master, %s from the spooled RDB", db, a, b)
		}
		for _, k := range ks {
			if a, b := master.must(t, "DUMP", k), cp.must(t, "DUMP", k); a != b {
				t.Fatalf("db %d key %q differs", db, k)
			}
		}
	}
	master.must(t, "SELECT", "0")
}

// TestLinkRedisFullSync: full sync from a real redis-server, disk and diskless; the RDB on disk
// loads into another server with the master's keys; writes made afterwards are spooled as the
// same commands; the received offset reaches master_repl_offset; the master sees an online
// replica and WAIT 1 gets 1 (GETACK answered).
func TestLinkRedisFullSync(t *testing.T) {
	for _, diskless := range []string{"no", "yes"} {
		t.Run("diskless="+diskless, func(t *testing.T) {
			master := startRedis(t, 0, "", "--repl-diskless-sync", diskless)
			m := master.client(t)
			m.must(t, "DEBUG", "POPULATE", "20000", "key", "100")
			m.must(t, "RPUSH", "list", "a", "b", "c")
			m.must(t, "HSET", "hash", "f", "v", "g", "w")
			m.must(t, "ZADD", "zset", "1.5", "m", "2", "n")
			m.must(t, "SET", "big", strings.Repeat("x", 300<<10))
			m.must(t, "SET", "ttl", "v", "PX", "3600000")
			m.must(t, "SELECT", "2")
			m.must(t, "SET", "db2key", "hello")
			m.must(t, "SELECT", "0")

			l := newRedisLink(t, LinkOptions{Addr: master.addr, ListeningPort: 4242})
			fs := waitEvent[FullSync](t, l, 20*time.Second)
			if st, err := os.Stat(fs.RDBPath); err != nil || st.Size() != fs.RDBSize {
				t.Fatalf("RDB file %s: %v (event size %d)", fs.RDBPath, err, fs.RDBSize)
			}
			if want := m.infoField(t, "replication", "master_replid"); fs.Replid != want {
				t.Fatalf("replid %s, master has %s", fs.Replid, want)
			}
			st := l.Stats()
			if st.RDBTotal != fs.RDBSize || st.RDBBytes != fs.RDBSize || st.FullSyncs != 1 {
				t.Fatalf("stats %+v after a %d-byte RDB", st, fs.RDBSize)
			}
			checkRDBFile(t, fs.RDBPath, m, map[int][]string{0: {"list", "hash", "zset", "big", "ttl", "key:0", "key:19999"}, 2: {"db2key"}})

			m.must(t, "SET", "a", "1")
			m.must(t, "INCR", "a")
			m.must(t, "LPUSH", "list", "x")
			m.must(t, "SELECT", "2")
			m.must(t, "DEL", "db2key")
			m.must(t, "SET", "big2", strings.Repeat("y", 100<<10))
			end := waitCaughtUp(t, l, m)
			got := spooledCommands(t, l.Spool(), fs.Offset, end)
			want := []string{"SELECT 0", "SET a 1", "INCR a", "LPUSH list x", "SELECT 2", "DEL db2key", "SET big2 <102400 bytes>"}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("spooled commands\n got %q\nwant %q", got, want)
			}

			redistest.WaitFor(t, 10*time.Second, func() error {
				s := m.infoField(t, "replication", "slave0")
				if !strings.Contains(s, "state=online") || !strings.Contains(s, "port=4242") {
					return fmt.Errorf("slave0:%s", s)
				}
				return nil
			})
			m.must(t, "SET", "w", "1")
			if n := m.must(t, "WAIT", "1", "2000"); n != "1" {
				t.Fatalf("WAIT 1 2000 = %s", n)
			}
			end = waitCaughtUp(t, l, m)
			if st := l.Stats(); st.State != StateStreaming || !st.MasterLinkUp || st.LastIOUnixMs == 0 || st.ReceivedOffset != end {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestLinkRedisWrongPassword: a wrong password is a clear error in Stats and the log, never
// showing the password; the link keeps retrying and syncs once the password is right.
func TestLinkRedisWrongPassword(t *testing.T) {
	const bad = "Bad-Pw-7c1e"
	tests := []struct {
		name string
		user string
		fix  []string // run on the master (as admin) to make `bad` the right password
	}{
		{name: "requirepass", fix: []string{"CONFIG", "SET", "requirepass", bad}},
		{name: "acl_user", user: "repl", fix: []string{"ACL", "SETUSER", "repl", "on", ">" + bad, "~*", "&*", "+@all"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			master := startRedis(t, 0, "", "--requirepass", "good-pw")
			m := master.client(t, "good-pw")
			if tt.user != "" {
				m.must(t, "ACL", "SETUSER", tt.user, "on", ">other-pw", "~*", "&*", "+@all")
			}
			core, logs := observer.New(zap.DebugLevel)
			l := newRedisLink(t, LinkOptions{Addr: master.addr, Username: tt.user, Password: bad, Logger: zap.New(core)})
			redistest.WaitFor(t, 10*time.Second, func() error {
				st := l.Stats()
				if !strings.Contains(st.LastError, "WRONGPASS") || st.Reconnects < 2 {
					return fmt.Errorf("stats %+v", st)
				}
				return nil
			})
			if st := l.Stats(); strings.Contains(st.LastError, bad) || !strings.Contains(st.LastError, "AUTH") || st.MasterLinkUp {
				t.Fatalf("stats %+v", st)
			}
			m.must(t, tt.fix...)
			waitEvent[FullSync](t, l, 20*time.Second)
			redistest.WaitFor(t, 10*time.Second, func() error {
				if st := l.Stats(); st.LastError != "" || !st.MasterLinkUp {
					return fmt.Errorf("stats %+v", st)
				}
				return nil
			})
			sawAuthError := false
			for _, e := range logs.All() {
				line := e.Message + fmt.Sprint(e.ContextMap())
				if strings.Contains(line, bad) {
					t.Fatalf("password in the log: %s", line)
				}
				sawAuthError = sawAuthError || strings.Contains(line, "WRONGPASS")
			}
			if !sawAuthError {
				t.Fatal("no WRONGPASS in the log")
			}
		})
	}
}

// TestLinkRedisMasterRestart: the master is killed and restarted on the same port. Without
// persistence it comes back with a new replid and the link full-syncs again with a new
// FullSync event; restarted from its own RDB (SHUTDOWN SAVE), a 7.0 master accepts the old
// replid and offset (+CONTINUE with its new replid) and the link appends to the same spool.
func TestLinkRedisMasterRestart(t *testing.T) {
	tests := []struct {
		name    string
		persist bool
	}{
		{name: "kill", persist: false},
		{name: "shutdown_save", persist: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			master := startRedis(t, 0, "")
			m := master.client(t)
			m.must(t, "SET", "k", "1")
			l := newRedisLink(t, LinkOptions{Addr: master.addr})
			fs := waitEvent[FullSync](t, l, 20*time.Second)
			m.must(t, "SET", "k", "2")
			end := waitCaughtUp(t, l, m)

			if tt.persist {
				m.do("SHUTDOWN", "SAVE") // the connection drops; no reply
				<-master.exited
			} else {
				master.kill()
			}
			waitEvent[Disconnected](t, l, 10*time.Second)
			if got := l.Stats().ReceivedOffset; got < end {
				t.Fatalf("received offset %d after the drop, before it %d", got, end)
			} else {
				end = got // a master that shuts down sends GETACKs first
			}
			master = startRedis(t, master.port, master.dir)
			m = master.client(t)
			var ev Event
			for ev == nil {
				switch e := nextEvent(t, l).(type) {
				case Disconnected:
				default:
					ev = e
				}
			}
			// A master changes its replid when it creates its backlog: read it after the sync.
			replid := m.infoField(t, "replication", "master_replid")
			switch e := ev.(type) {
			case Continue:
				if !tt.persist || e.Replid != replid || e.Offset != end {
					t.Fatalf("%+v, want a partial resync at offset %d (master replid %s, persisted %v)", e, end, replid, tt.persist)
				}
				if n := m.infoField(t, "stats", "sync_partial_ok"); n != "1" {
					t.Fatalf("sync_partial_ok:%s", n)
				}
			case FullSync:
				if tt.persist || e.Replid != replid || e.Replid == fs.Replid {
					t.Fatalf("second full sync %+v, master replid %s, first %s, persisted %v", e, replid, fs.Replid, tt.persist)
				}
				if _, err := os.Stat(fs.RDBPath); !os.IsNotExist(err) {
					t.Fatalf("old snapshot %s still there: %v", fs.RDBPath, err)
				}
			default:
				t.Fatalf("event %#v", ev)
			}
			m.must(t, "SET", "k", "3")
			last := waitCaughtUp(t, l, m)
			if _, ok := ev.(Continue); ok {
				got := spooledCommands(t, l.Spool(), fs.Offset, last)
				// The restarted master does not know which db its replicas are in: it sends SELECT again.
				if want := "SELECT 0|SET k 2|SELECT 0|SET k 3"; strings.Join(got, "|") != want {
					t.Fatalf("spool after the partial resync: %q, want %q", got, want)
				}
			}
			if st := l.Stats(); st.Reconnects < 1 || !st.MasterLinkUp {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestLinkRedisResume: rmtd restarts. A new link on the same directory, given the replid and
// an offset its spool covers, asks PSYNC <replid> <spool end+1>, gets +CONTINUE and appends what
// the master wrote meanwhile; with its spool lost it restarts the spool at the resume offset.
func TestLinkRedisResume(t *testing.T) {
	tests := []struct {
		name      string
		loseSpool bool
	}{
		{name: "spool_kept"},
		{name: "spool_lost", loseSpool: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			master := startRedis(t, 0, "")
			m := master.client(t)
			dir := t.TempDir()
			l1 := NewLink(LinkOptions{Addr: master.addr, Dir: dir, Timeout: 10 * time.Second})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- l1.Run(ctx) }()
			fs := waitEvent[FullSync](t, l1, 20*time.Second)
			m.must(t, "SET", "before", "1")
			end1 := waitCaughtUp(t, l1, m)
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if err := l1.Close(); err != nil {
				t.Fatal(err)
			}
			resume := &ResumePoint{Replid: fs.Replid, Offset: fs.Offset}
			if tt.loseSpool {
				if err := os.RemoveAll(filepath.Join(dir, "oplog")); err != nil {
					t.Fatal(err)
				}
				resume.Offset = end1
			}
			m.must(t, "SET", "while_down", "1")

			l2 := newRedisLink(t, LinkOptions{Addr: master.addr, Dir: dir, Resume: resume})
			c := waitEvent[Continue](t, l2, 20*time.Second)
			if c.Replid != fs.Replid || c.Offset != end1 {
				t.Fatalf("continue %+v, want replid %s offset %d", c, fs.Replid, end1)
			}
			m.must(t, "SET", "after", "1")
			end2 := waitCaughtUp(t, l2, m)
			if n := m.infoField(t, "stats", "sync_partial_ok"); n != "1" {
				t.Fatalf("sync_partial_ok:%s", n)
			}
			from, want := fs.Offset, "SELECT 0|SET before 1|SET while_down 1|SET after 1"
			if tt.loseSpool {
				from, want = end1, "SET while_down 1|SET after 1"
			}
			if got := spooledCommands(t, l2.Spool(), from, end2); strings.Join(got, "|") != want {
				t.Fatalf("spool %q, want %q", got, want)
			}
		})
	}
}

// TestLinkRedisFollow: the master dies and its replica is promoted; Follow moves the link to the
// replica, which grants a partial resync from the old master's replication ID and offset (its
// replid2): no second snapshot, and the stream goes on where it stopped.
func TestLinkRedisFollow(t *testing.T) {
	master := startRedis(t, 0, "")
	replica := startRedis(t, 0, "", "--replicaof", "127.0.0.1", strconv.Itoa(master.port))
	m, r := master.client(t), replica.client(t)
	m.must(t, "SET", "k", "1")
	l := newRedisLink(t, LinkOptions{Addr: master.addr})
	fs := waitEvent[FullSync](t, l, 20*time.Second)
	m.must(t, "SET", "k", "2")
	end := waitCaughtUp(t, l, m)
	redistest.WaitFor(t, 10*time.Second, func() error {
		if got := r.infoField(t, "replication", "master_repl_offset"); got != strconv.FormatInt(end, 10) {
			return fmt.Errorf("replica at %s, master at %d", got, end)
		}
		return nil
	})

	master.kill()
	waitEvent[Disconnected](t, l, 10*time.Second)
	r.must(t, "REPLICAOF", "NO", "ONE")
	l.Follow(replica.addr)
	var ev Event
	for ev == nil {
		if e := nextEvent(t, l); !isDisconnected(e) {
			ev = e
		}
	}
	c, ok := ev.(Continue)
	if !ok || c.Offset != end || c.Replid != r.infoField(t, "replication", "master_replid") {
		t.Fatalf("event %#v, want a partial resync at %d", ev, end)
	}
	r.must(t, "SET", "k", "3")
	last := waitCaughtUp(t, l, r)
	got := spooledCommands(t, l.Spool(), fs.Offset, last)
	if want := "SELECT 0|SET k 2|SELECT 0|SET k 3"; strings.Join(got, "|") != want {
		t.Fatalf("spool after following: %q, want %q", got, want)
	}
	if st := l.Stats(); st.Addr != replica.addr || st.FullSyncs != 1 || st.PartialSyncs != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func isDisconnected(e Event) bool { _, ok := e.(Disconnected); return ok }

// TestLinkFollowInterruptsDial: the old master's host is gone and a dial to it hangs (its
// timeout is long); Follow cuts that dial short instead of waiting it out.
func TestLinkFollowInterruptsDial(t *testing.T) {
	master := startRedis(t, 0, "")
	l := NewLink(LinkOptions{Addr: "192.0.2.1:6379", Dir: t.TempDir(), Timeout: 10 * time.Minute,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	hung := make(chan struct{}, 1)
	l.dial = func(ctx context.Context) (net.Conn, error) {
		if l.Addr() != master.addr {
			hung <- struct{}{}
			<-ctx.Done() // as a dial to a host that does not answer, until cancelled
			return nil, ctx.Err()
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", master.addr)
	}
	runLink(t, l)
	select {
	case <-hung:
	case <-time.After(10 * time.Second):
		t.Fatal("the link never dialed")
	}
	l.Follow(master.addr)
	if fs := waitEvent[FullSync](t, l, 10*time.Second); fs.Replid == "" {
		t.Fatalf("full sync %+v", fs)
	}
	if st := l.Stats(); st.Addr != master.addr {
		t.Fatalf("stats %+v", st)
	}
}
