package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/redcon"
	"go.uber.org/zap"

	"github.com/rmt-project/rmt/daemon/status"
)

// The admin port as Sentinels see it. A Sentinel that watches a source master finds rmtd in
// the master's INFO (rmtd announces its admin port as its listening port) and talks to it as to
// any replica: INFO every 10 s (every second during a failover), PING every second, a hello on
// __sentinel__:hello every 2 s, a SUBSCRIBE to that channel on a second connection, and during
// a failover SLAVEOF <new master> in a MULTI with CONFIG REWRITE and CLIENT KILL. So rmtd
// answers as a replica that must never be promoted (role:slave, slave_priority:0 and
// replica_priority:0, its offset, a run_id), keeps the pub/sub connection fed, and takes
// SLAVEOF as "your master moved": MasterMoved moves the source node that replicated the failed
// master's history to the new one (a partial resync), and the Sentinel's next INFO sees it done.
// A Sentinel that waited for rmtd to obey would end its failover only by timeout.
//
// Which master a Sentinel's connection is about (a job with several source masters may be
// watched by Sentinels of each) is learnt from its hello, which names the master, and from its
// SLAVEOF; until then INFO shows the first link.

// Upstream is one replica link of the job, as INFO replication and ROLE show it.
type Upstream struct {
	Name       string // the source node
	MasterAddr string // host:port the link replicates from now
	LinkUp     bool   // streaming (master_link_status:up)
	Syncing    bool   // a snapshot is arriving
	DownSince  time.Time
	LastIO     time.Time
	Offset     int64 // what rmtd has received (slave_repl_offset)
	Replid     string
}

// sentinelSession is what a connection told about itself as a Sentinel's.
type sentinelSession struct {
	hello   string // the master its hellos name
	slaveOf string // the master of its last SLAVEOF, which a hello sent before the Sentinel's own switch does not undo
}

// Defaults of the Sentinel side.
const (
	// masterMovedWait bounds a SLAVEOF: the check of the new master and the wait for the link
	// to stream from it. A Sentinel closes a command connection whose PING waits over half its
	// down-after period, so the reply must not wait long.
	masterMovedWait = 800 * time.Millisecond
	maxMultiQueue   = 64
	helloChannel    = "__sentinel__:hello"
)

// newRunID returns 40 random hex characters, as a Redis run_id.
func newRunID() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sentinelCommands are the rows of the command table for Sentinels (and scripts that read a
// replica's state): ROLE, SLAVEOF/REPLICAOF, MULTI/EXEC/DISCARD, CONFIG REWRITE, PUBLISH,
// SUBSCRIBE. Each may run without AUTH on a connection from a configured Sentinel's host.
func (a *Server) sentinelCommands() []*command {
	adm := []string{"@admin", "@slow", "@dangerous"}
	tx := []string{"@fast", "@transaction"}
	ps := []string{"@pubsub", "@slow"}
	return []*command{
		{name: "role", arity: 1, run: a.cmdRole, sentinel: true, acl: []string{"@admin", "@fast", "@dangerous"},
			flags: []string{"noscript", "loading", "stale", "fast"}},
		{name: "slaveof", arity: 3, run: a.cmdSlaveOf, sentinel: true, acl: adm,
			flags: []string{"admin", "noscript", "stale", "no_async_loading"}},
		{name: "replicaof", arity: 3, run: a.cmdSlaveOf, sentinel: true, acl: adm,
			flags: []string{"admin", "noscript", "stale", "no_async_loading"}},
		{name: "multi", arity: 1, run: a.cmdMulti, sentinel: true, acl: tx, inMulti: true,
			flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}},
		{name: "exec", arity: 1, run: a.cmdExec, sentinel: true, acl: []string{"@slow", "@transaction"}, inMulti: true,
			flags: []string{"noscript", "loading", "stale", "skip_slowlog"}},
		{name: "discard", arity: 1, run: a.cmdDiscard, sentinel: true, acl: tx, inMulti: true,
			flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}},
		{name: "config", arity: -2, acl: []string{"@slow"}, subs: map[string]*command{
			"rewrite": {name: "rewrite", parent: "config", arity: 2, run: a.cmdConfigRewrite, sentinel: true, acl: adm,
				flags: []string{"admin", "noscript", "loading", "stale"}},
		}},
		{name: "publish", arity: 3, run: a.cmdPublish, sentinel: true, acl: []string{"@pubsub", "@fast"},
			flags: []string{"pubsub", "loading", "stale", "fast", "may_replicate"}},
		{name: "subscribe", arity: -2, run: a.cmdSubscribe, sentinel: true, acl: ps,
			flags: []string{"pubsub", "noscript", "loading", "stale"}},
	}
}

// fromSentinel reports whether the connection comes from the host of a configured Sentinel.
func (a *Server) fromSentinel(c redcon.Conn) bool {
	if a.opts.SentinelHosts == nil {
		return false
	}
	host := clientHost(c.RemoteAddr())
	for _, h := range a.opts.SentinelHosts() {
		if h == host {
			return true
		}
	}
	return false
}

// sentinelTrusted reports whether the connection may run a Sentinel's commands without AUTH:
// it comes from a configured Sentinel's host.
func (a *Server) sentinelTrusted(c redcon.Conn, sess *session) bool {
	if !sess.fromSent && a.fromSentinel(c) {
		sess.fromSent = true
	}
	return sess.fromSent
}

// upstreams are the job's replica links now.
func (a *Server) upstreams() []Upstream {
	if a.opts.Replication == nil {
		return nil
	}
	return a.opts.Replication()
}

// upstreamFor is the link a connection asks about: the one from the master it named, else the
// first.
func (a *Server) upstreamFor(sess *session) (Upstream, bool) {
	ups := a.upstreams()
	if len(ups) == 0 {
		return Upstream{}, false
	}
	if sess != nil && sess.sentinel != nil {
		for _, m := range []string{sess.sentinel.slaveOf, sess.sentinel.hello} {
			for _, u := range ups {
				if m != "" && u.MasterAddr == m {
					return u, true
				}
			}
		}
	}
	return ups[0], true
}

// renderInfo is INFO: the status sections, with run_id in Server and a Replication section
// after Stats (its place in Redis's INFO), selected as RenderInfo selects.
func (a *Server) renderInfo(sess *session, args []string) string {
	snap := a.snapshot()
	all := len(args) == 0
	want := map[string]bool{}
	for _, s := range args {
		s = strings.ToLower(s)
		if s == "default" || s == "all" || s == "everything" {
			all = true
		}
		want[s] = true
	}
	var parts []string
	for _, name := range []string{"server", "clients", "memory", "group", "stats", "replication",
		"sources", "targets", "errors", "progress"} {
		if !all && !want[name] {
			continue
		}
		var text string
		switch name {
		case "replication":
			text = a.replicationSection(sess)
		case "server":
			text = status.RenderInfo(snap, []string{name}) + "run_id:" + a.runID + "\r\n"
		default:
			text = status.RenderInfo(snap, []string{name})
		}
		parts = append(parts, text)
	}
	return strings.Join(parts, "\r\n")
}

// replicationSection is INFO replication as a Redis replica words it, with priority 0.
func (a *Server) replicationSection(sess *session) string {
	var b strings.Builder
	line := func(k, v string) {
		b.WriteString(k)
		b.WriteByte(':')
		b.WriteString(v)
		b.WriteString("\r\n")
	}
	num := func(k string, v int64) { line(k, strconv.FormatInt(v, 10)) }
	b.WriteString("# Replication\r\n")
	line("role", "slave")
	u, ok := a.upstreamFor(sess)
	now := time.Now()
	if ok {
		host, port, _ := net.SplitHostPort(u.MasterAddr)
		line("master_host", host)
		line("master_port", port)
		if u.LinkUp {
			line("master_link_status", "up")
		} else {
			line("master_link_status", "down")
		}
		last := int64(-1)
		if !u.LastIO.IsZero() {
			last = int64(now.Sub(u.LastIO).Seconds())
		}
		num("master_last_io_seconds_ago", last)
		if u.Syncing {
			num("master_sync_in_progress", 1)
		} else {
			num("master_sync_in_progress", 0)
		}
		num("slave_read_repl_offset", u.Offset)
		num("slave_repl_offset", u.Offset)
		if !u.LinkUp {
			down := int64(-1)
			if !u.DownSince.IsZero() {
				down = int64(now.Sub(u.DownSince).Seconds())
			}
			num("master_link_down_since_seconds", down)
		}
	}
	num("slave_priority", 0)
	num("replica_priority", 0)
	num("slave_read_only", 1)
	num("replica_announced", 1)
	num("connected_slaves", 0)
	line("master_failover_state", "no-failover")
	replid := u.Replid
	if replid == "" {
		replid = strings.Repeat("0", 40)
	}
	line("master_replid", replid)
	line("master_replid2", strings.Repeat("0", 40))
	num("master_repl_offset", u.Offset)
	num("second_repl_offset", -1)
	num("repl_backlog_active", 0)
	num("repl_backlog_size", 0)
	num("repl_backlog_first_byte_offset", 0)
	num("repl_backlog_histlen", 0)
	return b.String()
}

// cmdRole is ROLE as a replica answers it: slave, master host, port, state, offset.
func (a *Server) cmdRole(c redcon.Conn, _ [][]byte, sess *session) {
	u, ok := a.upstreamFor(sess)
	host, port, _ := net.SplitHostPort(u.MasterAddr)
	p, _ := strconv.Atoi(port)
	state := "connect"
	switch {
	case !ok:
		state = "none"
	case u.LinkUp:
		state = "connected"
	case u.Syncing:
		state = "sync"
	}
	c.WriteArray(5)
	c.WriteBulkString("slave")
	c.WriteBulkString(host)
	c.WriteInt(p)
	c.WriteBulkString(state)
	c.WriteInt64(u.Offset)
}

// cmdSlaveOf is SLAVEOF/REPLICAOF host port: the master moved. NO ONE is refused: rmtd is
// never promoted.
func (a *Server) cmdSlaveOf(c redcon.Conn, args [][]byte, sess *session) {
	host, port := string(args[1]), string(args[2])
	if strings.EqualFold(host, "no") && strings.EqualFold(port, "one") {
		c.WriteError("ERR rmtd is not a Redis replica and is never promoted (its slave_priority is 0)")
		return
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 || host == "" || strings.ContainsAny(host, " \r\n") {
		c.WriteError("ERR Invalid master port")
		return
	}
	if a.opts.MasterMoved == nil {
		c.WriteError("ERR SLAVEOF is not available on this admin port")
		return
	}
	addr := net.JoinHostPort(host, port)
	ctx, cancel := context.WithTimeout(context.Background(), masterMovedWait)
	defer cancel()
	err = a.opts.MasterMoved(ctx, addr)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		a.log.Warn("SLAVEOF refused: no source link replicates that master's history", zap.String("client", c.RemoteAddr()),
			zap.String("master", addr), zap.Error(err))
		c.WriteError("ERR " + noNewlines(err.Error()))
		return
	}
	a.log.Info("SLAVEOF: the source master moved", zap.String("client", c.RemoteAddr()), zap.String("master", addr))
	if sess.sentinel == nil {
		sess.sentinel = &sentinelSession{}
	}
	sess.sentinel.slaveOf = addr
	c.WriteString("OK")
}

// cmdConfigRewrite answers OK: rmtd's config is its file, which it never rewrites.
func (a *Server) cmdConfigRewrite(c redcon.Conn, _ [][]byte, _ *session) { c.WriteString("OK") }

// cmdClientKill answers that no client was killed: a Sentinel kills a reconfigured replica's
// clients so that they reconnect to the new master, which rmtd's clients (operators) need not.
func (a *Server) cmdClientKill(c redcon.Conn, args [][]byte, _ *session) {
	if len(args) == 3 { // CLIENT KILL addr:port, the old form, answers OK or an error
		c.WriteError("ERR No such client")
		return
	}
	c.WriteInt(0)
}

// queued is a command of a MULTI, its arguments copied out of redcon's buffer.
type queued struct {
	cmd  *command
	args [][]byte
}

func (a *Server) cmdMulti(c redcon.Conn, _ [][]byte, sess *session) {
	if sess.multi != nil {
		c.WriteError("ERR MULTI calls can not be nested")
		return
	}
	sess.multi = []queued{}
	c.WriteString("OK")
}

func (a *Server) cmdDiscard(c redcon.Conn, _ [][]byte, sess *session) {
	if sess.multi == nil {
		c.WriteError("ERR DISCARD without MULTI")
		return
	}
	sess.multi, sess.multiErr = nil, false
	c.WriteString("OK")
}

func (a *Server) cmdExec(c redcon.Conn, _ [][]byte, sess *session) {
	if sess.multi == nil {
		c.WriteError("ERR EXEC without MULTI")
		return
	}
	q, bad := sess.multi, sess.multiErr
	sess.multi, sess.multiErr = nil, false
	if bad {
		c.WriteError("EXECABORT Transaction discarded because of previous errors.")
		return
	}
	c.WriteArray(len(q))
	for _, e := range q {
		e.cmd.run(c, e.args, sess)
	}
}

// queue adds a command to the open MULTI, or refuses it (the EXEC then aborts).
func (a *Server) queue(c redcon.Conn, ac *command, args [][]byte, sess *session) {
	if len(sess.multi) >= maxMultiQueue || ac.run == nil || ac.name == "subscribe" {
		sess.multiErr = true
		c.WriteError("ERR command not allowed in a transaction here")
		return
	}
	cp := make([][]byte, len(args))
	for i, arg := range args {
		cp[i] = append([]byte(nil), arg...)
	}
	sess.multi = append(sess.multi, queued{cmd: ac, args: cp})
	c.WriteString("QUEUED")
}

// cmdPublish delivers a message to the subscribers of its channel; a Sentinel's hello also
// tells which master its connection is about.
func (a *Server) cmdPublish(c redcon.Conn, args [][]byte, sess *session) {
	channel, msg := string(args[1]), string(args[2])
	if channel == helloChannel {
		// ip,port,runid,epoch,master_name,master_ip,master_port,master_epoch
		if f := strings.Split(msg, ","); len(f) == 8 {
			if _, err := strconv.Atoi(f[6]); err == nil {
				if sess.sentinel == nil {
					sess.sentinel = &sentinelSession{}
				}
				sess.sentinel.hello = net.JoinHostPort(f[5], f[6])
			}
		}
	}
	c.WriteInt(a.pubsub.publish(channel, msg))
}
