package admin

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/redcon"
	"go.uber.org/zap"

	"github.com/rmt-project/rmt/daemon/status"
)

// Options configures the admin port.
type Options struct {
	// Addr is the address to listen on, e.g. "127.0.0.1:8888"; port 0 picks
	// a free port (see Server.Addr).
	Addr string
	// RequirePass, when not empty, makes every command but AUTH and QUIT
	// answer NOAUTH until the connection has sent AUTH with it. It is never
	// logged.
	RequirePass string
	// MaxClients caps the connections open at once; one more is told
	// "-ERR max number of clients reached" and closed. 0 or less: no cap.
	MaxClients int
	// Snapshot returns the state INFO shows. It is called once per INFO,
	// on the connection's goroutine, so possibly from several connections
	// at once; the Snapshot it returns is only read, never written, and
	// may be shared between calls.
	// The admin port fills Clients and, when 0, Server.TCPPort itself.
	// Nil renders an empty Snapshot.
	Snapshot func() *status.Snapshot
	// Shutdown is called by SHUTDOWN after "+OK" has been written to the
	// client, on that connection's goroutine: wait is how long to let
	// queued data reach the targets (10 s by default), asap is true for
	// "SHUTDOWN asap" and "SHUTDOWN 0" (RMT exits at once for both, wait
	// is then 0). It may block and may call Server.Close. Nil: SHUTDOWN
	// answers an error.
	Shutdown func(wait time.Duration, asap bool)
	// Resync is RESYNC: release the source nodes held by the resync guard (whose new
	// snapshot would have emptied the target); it returns how many were held. Nil: RESYNC
	// answers an error.
	Resync func() int
	// Logger gets connection and command events; nil means zap.NewNop().
	Logger *zap.Logger
	// IdleTimeout closes a connection that is not trusted (not authenticated; without
	// RequirePass, one that has not run a command yet) when it takes this long to send a
	// command. 0: defaultIdle.
	IdleTimeout time.Duration
	// LogInterval is how often refused connections and AUTH failures are logged, as one
	// line per kind and client host with a count. 0: defaultLogInterval.
	LogInterval time.Duration

	// The Sentinel side (sentinel.go). Replication returns the job's replica links, for INFO
	// replication and ROLE; nil: none. MasterMoved is SLAVEOF/REPLICAOF host port, "your
	// master moved to addr": it moves the source node that replicated that master's history,
	// returning within ctx; nil: SLAVEOF answers an error. SentinelHosts are the hosts of the
	// configured Sentinels, whose connections may run the commands a Sentinel sends without
	// AUTH; nil: none. RunID is INFO's run_id; "": a random one.
	Replication   func() []Upstream
	MasterMoved   func(ctx context.Context, addr string) error
	SentinelHosts func() []string
	RunID         string
}

// Server is the admin port: a RESP server (redcon, one goroutine per
// connection) answering INFO, PING, ECHO, AUTH, COMMAND, CLIENT, QUIT and
// SHUTDOWN. Its handlers read only what Snapshot returns and never lock
// data-path state.
type Server struct {
	opts Options
	log  *zap.Logger
	cmds map[string]*command // by lower-case name

	connected atomic.Int64
	total     atomic.Int64
	rejected  atomic.Int64 // refused: max_clients reached and nobody to evict
	evicted   atomic.Int64 // untrusted connections closed to make room
	authFails atomic.Int64
	events    *eventLog

	// The delay of failed AUTHs (authDelayMin and authDelayMax; tests change them), and how
	// many replies it holds back now.
	authDelayMin, authDelayMax time.Duration
	authWaiting                atomic.Int64

	clientsMu sync.Mutex
	clients   map[*guardConn]struct{} // open connections, for max_clients

	runID  string // INFO's run_id, as a Sentinel reads it
	pubsub pubsub // SUBSCRIBE and PUBLISH, for Sentinels' hellos

	quit chan struct{} // closed by Close: ends AUTH delays and the event log

	mu     sync.Mutex
	ln     net.Listener
	srv    *redcon.Server
	done   chan struct{} // closed when the accept loop has returned
	closed bool
}

// defaultShutdownWait is RMT's default wait for SHUTDOWN without an
// argument.
const defaultShutdownWait = 10 * time.Second

// Defaults of Options.
const (
	defaultIdle        = 10 * time.Second
	defaultLogInterval = 10 * time.Second
)

// AUTH failures on one connection wait before their reply: authDelayMin, doubling up to
// authDelayMax, so a password cannot be guessed at wire speed.
const (
	authDelayMin = 100 * time.Millisecond
	authDelayMax = 2 * time.Second
)

// Reply texts, as Redis 7 words them.
const (
	errNoAuth     = "NOAUTH Authentication required."
	errWrongPass  = "WRONGPASS invalid username-password pair or user is disabled."
	errNoPassword = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
	errSyntax     = "ERR syntax error"
	errMaxClients = "ERR max number of clients reached"
)

// New returns an admin port configured by opts; Start binds it.
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = defaultIdle
	}
	if opts.LogInterval <= 0 {
		opts.LogInterval = defaultLogInterval
	}
	a := &Server{opts: opts, log: log.Named("admin"), clients: map[*guardConn]struct{}{}, quit: make(chan struct{}),
		runID: opts.RunID, authDelayMin: authDelayMin, authDelayMax: authDelayMax}
	if a.runID == "" {
		a.runID = newRunID()
	}
	a.events = newEventLog(a.log, opts.LogInterval)
	a.cmds = make(map[string]*command)
	for _, c := range a.commandTable() {
		a.cmds[c.name] = c
	}
	return a
}

// Start binds the address and serves in the background. It returns the bind
// error, if any; serving errors after that are logged.
func (a *Server) Start() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ln != nil || a.closed {
		return errors.New("daemon: admin port already started")
	}
	ln, err := net.Listen("tcp", a.opts.Addr)
	if err != nil {
		return fmt.Errorf("daemon: admin port listen on %q: %w", a.opts.Addr, err)
	}
	a.ln = ln
	// NewServer + Serve on our own listener: the bind error comes back
	// here, the bound address is known at once, and connections get an
	// input cap. redcon's Server.Close stops it, as with
	// ListenServeAndSignal.
	a.srv = redcon.NewServer(ln.Addr().String(), a.handle, a.accept, a.closedConn)
	a.done = make(chan struct{})
	srv, done := a.srv, a.done
	go a.events.run(a.quit)
	go func() {
		defer close(done)
		if err := srv.Serve(guardListener{ln, a.opts.IdleTimeout}); err != nil {
			a.log.Error("admin port stopped", zap.Error(err))
		}
	}()
	a.log.Info("admin port listening", zap.String("addr", ln.Addr().String()))
	return nil
}

// Addr returns the bound address ("127.0.0.1:41234"), or "" before Start.
func (a *Server) Addr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// Close stops listening, drops every connection and waits for the accept
// loop to end. It does not wait for running commands (a SHUTDOWN callback
// may be the caller). Closing twice, or before Start, is a no-op.
func (a *Server) Close() error {
	a.mu.Lock()
	if a.closed || a.ln == nil {
		a.closed = true
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	srv, ln, done := a.srv, a.ln, a.done
	a.mu.Unlock()

	close(a.quit)
	_ = srv.Close() // "not serving" if Serve has not set its listener yet
	err := ln.Close()
	<-done
	a.events.flush()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("daemon: admin port close: %w", err)
	}
	return nil
}

// Clients returns the connections open now and the connections accepted
// since Start (refused ones not counted).
func (a *Server) Clients() (connected, total int64) {
	return a.connected.Load(), a.total.Load()
}

// session is one connection's state.
type session struct {
	authed    bool
	name      string // CLIENT SETNAME, copied out of redcon's buffer
	authFails int    // failed AUTHs in a row, for their delay

	// Sentinel side (sentinel.go, pubsub.go).
	sentinel *sentinelSession // what a Sentinel's connection said of itself; nil: nothing
	fromSent bool             // from a configured Sentinel's host: may run its commands without AUTH
	multi    []queued         // an open MULTI's commands; nil: none open
	multiErr bool             // a command was refused while queueing: EXEC aborts
	detached bool             // a subscriber, served by its own goroutines (it leaves clients itself)
}

// Counters are the admin port's own counters, for INFO's Clients section.
type Counters struct {
	Rejected     int64 // connections refused: max_clients reached, nobody to evict
	Evicted      int64 // untrusted connections closed to make room for a new one
	AuthFailures int64
}

// Counters returns the admin port's counters.
func (a *Server) Counters() Counters {
	return Counters{Rejected: a.rejected.Load(), Evicted: a.evicted.Load(), AuthFailures: a.authFails.Load()}
}

// accept admits a connection. At max_clients, the oldest connection that is not trusted
// (not authenticated, or without requirepass one that has not run a command) makes room
// for it, so idle or hostile clients can never lock the operator out; when every
// connection is trusted, the new one is refused.
func (a *Server) accept(c redcon.Conn) bool {
	g, _ := c.NetConn().(*guardConn)
	if g == nil {
		return false // not from guardListener: never served unguarded
	}
	host := clientHost(c.RemoteAddr())
	a.clientsMu.Lock()
	if limit := a.opts.MaxClients; limit > 0 && len(a.clients) >= limit {
		var victim *guardConn
		for o := range a.clients {
			if !o.trusted.Load() && (victim == nil || o.started.Before(victim.started)) {
				victim = o
			}
		}
		if victim == nil {
			a.clientsMu.Unlock()
			a.rejected.Add(1)
			a.events.add("admin connections refused: max_clients reached, every client authenticated", host)
			c.WriteError(errMaxClients) // flushed by redcon's Close
			return false
		}
		delete(a.clients, victim)
		victim.evict()
		a.evicted.Add(1)
		a.events.add("admin connections evicted (not authenticated) to make room under max_clients",
			clientHost(victim.RemoteAddr().String()))
	}
	a.clients[g] = struct{}{}
	a.connected.Store(int64(len(a.clients)))
	a.clientsMu.Unlock()
	a.total.Add(1)
	sess := &session{authed: a.opts.RequirePass == ""}
	g.sess = sess
	c.SetContext(sess)
	a.log.Debug("admin connection", zap.String("client", c.RemoteAddr()))
	return true
}

func (a *Server) closedConn(c redcon.Conn, err error) {
	if sess, _ := c.Context().(*session); sess != nil && sess.detached {
		return // a subscriber: serveSubscriber ends it
	}
	if g, _ := c.NetConn().(*guardConn); g != nil {
		a.clientsMu.Lock()
		delete(a.clients, g)
		a.connected.Store(int64(len(a.clients)))
		a.clientsMu.Unlock()
		if errors.Is(err, errGuardIdle) {
			a.events.add("admin connections closed: idle before authenticating", clientHost(c.RemoteAddr()))
			return
		}
		if g.evicted.Load() {
			return
		}
	}
	var pe *guardError
	if errors.As(err, &pe) {
		a.events.add("admin connections closed on a protocol error", clientHost(c.RemoteAddr()))
		return
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		a.log.Debug("admin connection closed", zap.String("client", c.RemoteAddr()), zap.Error(err))
	}
}

// clientHost is the host part of a client address, which the aggregated logs group by.
func clientHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func (a *Server) handle(c redcon.Conn, cmd redcon.Command) {
	// A command that panics closes its own connection, never the daemon.
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("admin command panicked: connection closed", zap.Any("panic", r),
				zap.String("client", c.RemoteAddr()), zap.Stack("stack"))
			_ = c.Close()
		}
	}()
	sess, _ := c.Context().(*session)
	if sess == nil || len(cmd.Args) == 0 {
		return
	}
	if g, _ := c.NetConn().(*guardConn); g != nil {
		defer func() {
			if sess.authed || sess.fromSent {
				g.trusted.Store(true)
			}
		}()
	}
	args := cmd.Args
	ac := a.cmds[strings.ToLower(string(args[0]))]
	if ac == nil {
		// The name is not logged: it may be a password typed by mistake.
		a.refused(c, "unknown command", zap.Int("name_len", len(args[0])))
		c.WriteError(unknownCommand(args))
		return
	}
	if ac.subs != nil && len(args) >= 2 {
		sub := ac.subs[strings.ToLower(string(args[1]))]
		if sub == nil {
			a.refused(c, "unknown subcommand", zap.String("cmd", ac.name))
			c.WriteError(unknownSubcommand(args))
			return
		}
		ac = sub
	}
	if !ac.arityOK(len(args)) {
		a.refused(c, "wrong number of arguments", zap.String("cmd", ac.fullName()))
		c.WriteError("ERR wrong number of arguments for '" + ac.fullName() + "' command")
		return
	}
	if !sess.authed && !ac.noAuth && !(ac.sentinel && a.sentinelTrusted(c, sess)) {
		a.refused(c, "not authenticated", zap.String("cmd", ac.fullName()))
		c.WriteError(errNoAuth)
		return
	}
	if ac.run == nil { // a container without a subcommand: nothing to run
		return
	}
	if sess.multi != nil && !ac.inMulti {
		a.queue(c, ac, args, sess)
		return
	}
	if ce := a.log.Check(zap.DebugLevel, "admin command"); ce != nil {
		ce.Write(zap.String("cmd", ac.fullName()), zap.String("client", c.RemoteAddr()))
	}
	ac.run(c, args, sess)
}

// refused logs, at debug level, a command answered with an error before it
// ran. Arguments are never logged (AUTH's is a password).
func (a *Server) refused(c redcon.Conn, reason string, f zap.Field) {
	if ce := a.log.Check(zap.DebugLevel, "admin command refused"); ce != nil {
		ce.Write(zap.String("reason", reason), f, zap.String("client", c.RemoteAddr()))
	}
}

// unknownCommand words the reply to an unknown command exactly as
// Redis 7 (server.c, processCommand): the name cut at 128 bytes, then
// quoted arguments while the list is under 128 bytes, each cut to fit; C
// strings, so each stops at a NUL byte; CR and LF become spaces.
func unknownCommand(args [][]byte) string {
	var b strings.Builder
	b.WriteString("ERR unknown command '")
	b.WriteString(cString(args[0], 128))
	b.WriteString("', with args beginning with: ")
	n := 0
	for _, arg := range args[1:] {
		if n >= 128 {
			break
		}
		s := cString(arg, 128-n)
		b.WriteByte('\'')
		b.WriteString(s)
		b.WriteString("' ")
		n += len(s) + 3
	}
	return noNewlines(b.String())
}

// unknownSubcommand words an unknown subcommand as Redis 7:
// "ERR unknown subcommand 'x'. Try CLIENT HELP."
func unknownSubcommand(args [][]byte) string {
	return noNewlines("ERR unknown subcommand '" + cString(args[1], 128) +
		"'. Try " + strings.ToUpper(cString(args[0], math.MaxInt)) + " HELP.")
}

// cString is printf's "%.*s" of b: up to the first NUL, at most limit
// bytes.
func cString(b []byte, limit int) string {
	if i := slices.Index(b, 0); i >= 0 {
		b = b[:i]
	}
	if len(b) > limit {
		b = b[:limit]
	}
	return string(b)
}

func noNewlines(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

// snapshot returns what INFO renders: the owner's snapshot with the
// Clients section and the port filled in here.
func (a *Server) snapshot() *status.Snapshot {
	var s status.Snapshot
	if a.opts.Snapshot != nil {
		if p := a.opts.Snapshot(); p != nil {
			s = *p // shallow: slices and maps are only read
		}
	}
	connected, total := a.Clients()
	ctr := a.Counters()
	s.Clients = status.ClientsInfo{
		Connected:     connected,
		MaxClients:    int64(max(a.opts.MaxClients, 0)),
		TotalReceived: total,
		Rejected:      ctr.Rejected,
		Evicted:       ctr.Evicted,
		AuthFailures:  ctr.AuthFailures,
	}
	if s.Server.TCPPort == 0 {
		if _, p, err := net.SplitHostPort(a.Addr()); err == nil {
			s.Server.TCPPort, _ = strconv.Atoi(p)
		}
	}
	return &s
}

func (a *Server) cmdPing(c redcon.Conn, args [][]byte, _ *session) {
	if len(args) > 2 {
		c.WriteError("ERR wrong number of arguments for 'ping' command")
		return
	}
	if len(args) == 2 {
		c.WriteBulk(args[1])
		return
	}
	c.WriteString("PONG")
}

func (a *Server) cmdEcho(c redcon.Conn, args [][]byte, _ *session) {
	c.WriteBulk(args[1])
}

func (a *Server) cmdInfo(c redcon.Conn, args [][]byte, sess *session) {
	sections := make([]string, 0, len(args)-1)
	for _, s := range args[1:] {
		sections = append(sections, string(s))
	}
	c.WriteBulkString(a.renderInfo(sess, sections))
}

func (a *Server) cmdAuth(c redcon.Conn, args [][]byte, sess *session) {
	if len(args) > 3 {
		c.WriteError(errSyntax)
		return
	}
	user, pass := []byte("default"), args[len(args)-1]
	if len(args) == 3 {
		user = args[1]
	}
	if a.opts.RequirePass == "" {
		// Like Redis's "default" user with nopass: any password for
		// "default", nothing for anyone else.
		switch {
		case len(args) == 2:
			c.WriteError(errNoPassword)
		case string(user) == "default":
			c.WriteString("OK")
		default:
			c.WriteError(errWrongPass)
		}
		return
	}
	userOK := subtle.ConstantTimeCompare(user, []byte("default")) == 1
	passOK := subtle.ConstantTimeCompare(pass, []byte(a.opts.RequirePass)) == 1
	if !userOK || !passOK {
		a.authFails.Add(1)
		a.events.add("admin AUTH failed", clientHost(c.RemoteAddr()))
		sess.authFails++
		var gone <-chan struct{} // nil: never closed
		if g, _ := c.NetConn().(*guardConn); g != nil {
			gone = g.gone
		}
		a.authDelay(sess.authFails, gone)
		c.WriteError(errWrongPass)
		return
	}
	sess.authFails = 0
	sess.authed = true
	c.WriteString("OK")
}

func (a *Server) cmdQuit(c redcon.Conn, _ [][]byte, _ *session) {
	c.WriteString("OK")
	c.ReadPipeline() // drop what was pipelined after QUIT, as Redis does
	_ = c.Close()    // flushes +OK first
}

// cmdShutdown is RMT's SHUTDOWN [seconds|asap].
func (a *Server) cmdShutdown(c redcon.Conn, args [][]byte, _ *session) {
	if len(args) > 2 {
		c.WriteError(errSyntax)
		return
	}
	wait := defaultShutdownWait
	if len(args) == 2 {
		arg := string(args[1])
		switch {
		case strings.EqualFold(arg, "asap"):
			wait = 0
		case isDigits(arg):
			n, err := strconv.ParseInt(arg, 10, 64)
			if err != nil || n > math.MaxInt64/int64(time.Second) {
				c.WriteError(errSyntax)
				return
			}
			wait = time.Duration(n) * time.Second
		default:
			c.WriteError(errSyntax)
			return
		}
	}
	if a.opts.Shutdown == nil {
		c.WriteError("ERR SHUTDOWN is not available on this admin port")
		return
	}
	asap := wait == 0
	a.log.Info("SHUTDOWN requested", zap.String("client", c.RemoteAddr()),
		zap.Duration("wait", wait), zap.Bool("asap", asap))
	c.WriteString("OK")
	if w := redcon.BaseWriter(c); w != nil {
		_ = w.Flush() // the client has its +OK before the daemon stops
	}
	a.opts.Shutdown(wait, asap)
}

// cmdResync is RESYNC: the held nodes load their new snapshot. It answers how many were held.
func (a *Server) cmdResync(c redcon.Conn, _ [][]byte, _ *session) {
	if a.opts.Resync == nil {
		c.WriteError("ERR RESYNC is not available on this admin port")
		return
	}
	a.log.Info("RESYNC requested", zap.String("client", c.RemoteAddr()))
	c.WriteInt(a.opts.Resync())
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (a *Server) cmdClientSetname(c redcon.Conn, args [][]byte, sess *session) {
	if slices.ContainsFunc(args[2], func(b byte) bool { return b <= ' ' || b > '~' }) {
		c.WriteError("ERR Client names cannot contain spaces, newlines or special characters.")
		return
	}
	sess.name = string(args[2]) // a copy: args alias redcon's buffer
	c.WriteString("OK")
}

func (a *Server) cmdClientGetname(c redcon.Conn, _ [][]byte, sess *session) {
	if sess.name == "" {
		c.WriteNull()
		return
	}
	c.WriteBulkString(sess.name)
}

func (a *Server) cmdClientSetinfo(c redcon.Conn, _ [][]byte, _ *session) {
	c.WriteString("OK") // lib-name / lib-ver: accepted, not kept
}

// authDelay holds a failed AUTH's reply: authDelayMin after the first failure in a row,
// doubling up to authDelayMax; Close cuts it short, and so does the connection's eviction
// (gone closed). Otherwise a client sending one wrong AUTH per new connection would keep a
// goroutine and its buffers for each, evicted or not: as many as it opens in the delay.
func (a *Server) authDelay(fails int, gone <-chan struct{}) {
	a.authWaiting.Add(1)
	defer a.authWaiting.Add(-1)
	d := a.authDelayMin << min(fails-1, 8)
	t := time.NewTimer(min(d, a.authDelayMax))
	defer t.Stop()
	select {
	case <-t.C:
	case <-a.quit:
	case <-gone:
	}
}

// guardListener wraps every accepted connection in a guardConn (admin_guard.go).
type guardListener struct {
	net.Listener
	idle time.Duration
}

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newGuardConn(c, l.idle), nil
}

// command is one row of the command table: what COMMAND reports and
// what the dispatcher checks before running it.
type command struct {
	name   string   // lower case
	parent string   // container's name for a subcommand, else ""
	arity  int      // Redis's convention: n exact, -n at least n (name included)
	flags  []string // COMMAND's flags
	acl    []string // COMMAND's ACL categories
	noAuth bool     // allowed before AUTH
	// sentinel: allowed before AUTH from a configured Sentinel's host (sentinel.go); inMulti:
	// runs at once inside a MULTI (MULTI, EXEC, DISCARD) instead of being queued.
	sentinel, inMulti bool
	run               func(c redcon.Conn, args [][]byte, sess *session)
	subs              map[string]*command // by lower-case name; nil if none
}

func (ac *command) fullName() string {
	if ac.parent != "" {
		return ac.parent + "|" + ac.name
	}
	return ac.name
}

func (ac *command) arityOK(n int) bool {
	if ac.arity >= 0 {
		return n == ac.arity
	}
	return n >= -ac.arity
}

// commandTable is every command the admin port serves, the single list
// both the dispatcher and COMMAND read. HELLO is deliberately absent: its
// "unknown command" error makes clients fall back to RESP2, as with Redis
// before 6.
func (a *Server) commandTable() []*command {
	sub := func(parent string, cmds ...*command) map[string]*command {
		m := make(map[string]*command, len(cmds))
		for _, c := range cmds {
			c.parent = parent
			m[c.name] = c
		}
		return m
	}
	// Flags and ACL categories as Redis 7.0's COMMAND INFO gives them.
	var (
		fastConn = []string{"@fast", "@connection"}
		slowConn = []string{"@slow", "@connection"}
		ls       = []string{"loading", "stale"}
		nls      = []string{"noscript", "loading", "stale"}
	)
	return append([]*command{
		{name: "auth", arity: -2, noAuth: true, run: a.cmdAuth, acl: fastConn,
			flags: []string{"noscript", "loading", "stale", "fast", "no_auth", "allow_busy"}},
		{name: "client", arity: -2, acl: []string{"@slow"}, subs: sub("client",
			&command{name: "getname", arity: 2, run: a.cmdClientGetname, acl: slowConn, flags: nls},
			&command{name: "kill", arity: -3, run: a.cmdClientKill, acl: []string{"@admin", "@slow", "@dangerous", "@connection"},
				flags: []string{"admin", "noscript", "loading", "stale"}, sentinel: true},
			&command{name: "setinfo", arity: 4, run: a.cmdClientSetinfo, acl: slowConn, flags: nls},
			&command{name: "setname", arity: 3, run: a.cmdClientSetname, acl: slowConn, flags: nls, sentinel: true},
		)},
		{name: "command", arity: -1, run: a.cmdCommand, acl: slowConn, flags: ls, subs: sub("command",
			&command{name: "count", arity: 2, run: a.cmdCommandCount, acl: slowConn, flags: ls},
			&command{name: "docs", arity: -2, run: a.cmdCommandDocs, acl: slowConn, flags: ls},
			&command{name: "info", arity: -2, run: a.cmdCommandInfo, acl: slowConn, flags: ls},
		)},
		{name: "ping", arity: -1, run: a.cmdPing, acl: fastConn, flags: []string{"fast"}, sentinel: true},
		{name: "echo", arity: 2, run: a.cmdEcho, acl: fastConn, flags: []string{"loading", "stale", "fast"}},
		{name: "info", arity: -1, run: a.cmdInfo, acl: []string{"@slow", "@dangerous"}, flags: ls, sentinel: true},
		{name: "quit", arity: -1, noAuth: true, run: a.cmdQuit, acl: fastConn,
			flags: []string{"noscript", "loading", "stale", "fast", "no_auth", "allow_busy"}},
		{name: "resync", arity: 1, run: a.cmdResync, acl: []string{"@admin", "@slow", "@dangerous"},
			flags: []string{"admin", "noscript", "loading", "stale"}},
		{name: "shutdown", arity: -1, run: a.cmdShutdown, acl: []string{"@admin", "@slow", "@dangerous"},
			flags: []string{"admin", "noscript", "loading", "stale", "no_multi", "allow_busy"}},
	}, a.sentinelCommands()...)
}

// sortedCommands returns the top-level commands by name.
func (a *Server) sortedCommands() []*command {
	out := make([]*command, 0, len(a.cmds))
	for _, c := range a.cmds {
		out = append(out, c)
	}
	slices.SortFunc(out, func(x, y *command) int { return strings.Compare(x.name, y.name) })
	return out
}

func (a *Server) cmdCommand(c redcon.Conn, _ [][]byte, _ *session) {
	cmds := a.sortedCommands()
	c.WriteArray(len(cmds))
	for _, ac := range cmds {
		writeCommandInfo(c, ac)
	}
}

func (a *Server) cmdCommandCount(c redcon.Conn, _ [][]byte, _ *session) {
	c.WriteInt(len(a.cmds))
}

// cmdCommandDocs answers an empty array: interactive redis-cli 7 asks for
// docs at start-up and stays quiet with none.
func (a *Server) cmdCommandDocs(c redcon.Conn, _ [][]byte, _ *session) {
	c.WriteArray(0)
}

func (a *Server) cmdCommandInfo(c redcon.Conn, args [][]byte, _ *session) {
	names := args[2:]
	if len(names) == 0 {
		a.cmdCommand(c, args, nil)
		return
	}
	c.WriteArray(len(names))
	for _, n := range names {
		if ac := a.cmds[strings.ToLower(string(n))]; ac != nil {
			writeCommandInfo(c, ac)
		} else {
			c.WriteNull()
		}
	}
}

// writeCommandInfo writes one COMMAND entry in Redis 7's shape: name,
// arity, flags, first key, last key, step, ACL categories, tips, key specs,
// subcommands.
func writeCommandInfo(c redcon.Conn, ac *command) {
	c.WriteArray(10)
	c.WriteBulkString(ac.fullName())
	c.WriteInt(ac.arity)
	c.WriteArray(len(ac.flags))
	for _, f := range ac.flags {
		c.WriteString(f)
	}
	c.WriteInt(0)
	c.WriteInt(0)
	c.WriteInt(0)
	c.WriteArray(len(ac.acl))
	for _, f := range ac.acl {
		c.WriteString(f)
	}
	c.WriteArray(0) // tips
	c.WriteArray(0) // key specs: no command here takes a key
	subs := make([]*command, 0, len(ac.subs))
	for _, s := range ac.subs {
		subs = append(subs, s)
	}
	slices.SortFunc(subs, func(x, y *command) int { return strings.Compare(x.name, y.name) })
	c.WriteArray(len(subs))
	for _, s := range subs {
		writeCommandInfo(c, s)
	}
}
