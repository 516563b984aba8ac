package topology

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sentinel discovery, as the Sentinel client spec says: the Sentinels are asked in turn for
// the master's address (SENTINEL GET-MASTER-ADDR-BY-NAME), the first that answers goes to the
// front of the list, and the node named is asked its ROLE: one that is not a master (a Sentinel
// that has not seen the failover yet) is not used. The list of Sentinels is refreshed from
// SENTINEL SENTINELS, and a Watch follows every failover: it subscribes to +switch-master on
// every known Sentinel and asks again every so often, so that a message lost during a
// reconnection costs only a delay.
//
//	s, err := topology.NewSentinels(topology.SentinelConfig{MasterName: "mymaster", Sentinels: addrs})
//	addr, err := s.Master(ctx)
//	go s.Watch(ctx, addr, 5*time.Second, func(now string) { /* the master moved to now */ })
//
// This is the one part of the package that does I/O, through the Dial functions it is given.

// SentinelConfig says how to reach a Sentinel-managed master.
type SentinelConfig struct {
	MasterName string
	Sentinels  []string // host:port of the Sentinels known from the start
	// Username and Password authenticate to the Sentinels (sentinel_auth); empty: no AUTH.
	Username, Password string
	Dial               Dial // to the Sentinels; nil: plain TCP
	// DataDial, DataUsername and DataPassword reach the data nodes (ROLE); nil DataDial: Dial.
	DataDial                   Dial
	DataUsername, DataPassword string
	Timeout                    time.Duration // of each exchange; 0: 5 s
}

// Sentinels finds a master through its Sentinels. Its methods are safe for concurrent use.
type Sentinels struct {
	cfg SentinelConfig

	mu    sync.Mutex
	addrs []string // known Sentinels, the last one that answered first
}

// ErrNotMaster is wrapped by Master's error when the Sentinels name a node that says it is
// not a master (a failover in progress).
var ErrNotMaster = errors.New("the node the Sentinels name is not a master")

// NewSentinels checks cfg; it does no I/O.
func NewSentinels(cfg SentinelConfig) (*Sentinels, error) {
	if cfg.MasterName == "" {
		return nil, errors.New("topology: sentinel: no master name")
	}
	if len(cfg.Sentinels) == 0 {
		return nil, errors.New("topology: sentinel: no Sentinels")
	}
	for _, a := range cfg.Sentinels {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("topology: sentinel %q: want host:port: %w", clip(a), err)
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Dial == nil {
		cfg.Dial = PlainDial(cfg.Timeout)
	}
	if cfg.DataDial == nil {
		cfg.DataDial = cfg.Dial
	}
	return &Sentinels{cfg: cfg, addrs: slices.Clone(cfg.Sentinels)}, nil
}

// Name is the master's name.
func (s *Sentinels) Name() string { return s.cfg.MasterName }

// Addrs returns the Sentinels known now, the one that answered last first.
func (s *Sentinels) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.addrs)
}

func (s *Sentinels) dialSentinel(ctx context.Context, addr string) (*respConn, error) {
	c, err := dialResp(ctx, s.cfg.Dial, addr, s.cfg.Username, s.cfg.Password, s.cfg.Timeout)
	if err != nil {
		return nil, fmt.Errorf("sentinel %s: %w", addr, err)
	}
	return c, nil
}

// Master asks the Sentinels in turn where the master is, checks that the node named says it is
// a master, and refreshes the list of Sentinels from the one that answered.
func (s *Sentinels) Master(ctx context.Context) (string, error) {
	var errs []error
	for _, sa := range s.Addrs() {
		addr, err := s.masterFrom(ctx, sa)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if err := s.checkRole(ctx, addr); err != nil {
			errs = append(errs, fmt.Errorf("sentinel %s names %s: %w", sa, addr, err))
			continue
		}
		s.promote(sa)
		return addr, nil
	}
	return "", fmt.Errorf("topology: master %q: no Sentinel gave a usable master: %w", s.cfg.MasterName, errors.Join(errs...))
}

// masterFrom asks one Sentinel for the master's address and, on the same connection, for the
// other Sentinels.
func (s *Sentinels) masterFrom(ctx context.Context, sa string) (string, error) {
	c, err := s.dialSentinel(ctx, sa)
	if err != nil {
		return "", err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	v, err := c.do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.cfg.MasterName)
	if err != nil {
		return "", fmt.Errorf("sentinel %s: SENTINEL GET-MASTER-ADDR-BY-NAME %s: %w", sa, s.cfg.MasterName, err)
	}
	pair, _ := v.([]any)
	if len(pair) != 2 {
		return "", fmt.Errorf("sentinel %s: does not know master %q", sa, s.cfg.MasterName)
	}
	host, _ := pair[0].(string)
	port, _ := pair[1].(string)
	if host == "" || !validPort(port) {
		return "", fmt.Errorf("sentinel %s: master address %q %q", sa, clip(host), clip(port))
	}
	if v, err := c.do("SENTINEL", "SENTINELS", s.cfg.MasterName); err == nil {
		s.learn(instances(v))
	}
	return net.JoinHostPort(host, port), nil
}

// checkRole asks a data node its ROLE: it must be "master".
func (s *Sentinels) checkRole(ctx context.Context, addr string) error {
	role, err := s.Role(ctx, addr)
	if err != nil {
		return err
	}
	if role != "master" {
		return fmt.Errorf("%w: ROLE says %q", ErrNotMaster, role)
	}
	return nil
}

// Role returns what a data node answers to ROLE: "master", "slave", ...
func (s *Sentinels) Role(ctx context.Context, addr string) (string, error) {
	c, err := dialResp(ctx, s.cfg.DataDial, addr, s.cfg.DataUsername, s.cfg.DataPassword, s.cfg.Timeout)
	if err != nil {
		return "", fmt.Errorf("%s: %w", addr, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	v, err := c.do("ROLE")
	if err != nil {
		return "", fmt.Errorf("%s: ROLE: %w", addr, err)
	}
	arr, _ := v.([]any)
	if len(arr) == 0 {
		return "", fmt.Errorf("%s: ROLE: empty reply", addr)
	}
	role, _ := arr[0].(string)
	return role, nil
}

// Info returns a data node's INFO section.
func (s *Sentinels) Info(ctx context.Context, addr, section string) (string, error) {
	c, err := dialResp(ctx, s.cfg.DataDial, addr, s.cfg.DataUsername, s.cfg.DataPassword, s.cfg.Timeout)
	if err != nil {
		return "", fmt.Errorf("%s: %w", addr, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	v, err := c.do("INFO", section)
	if err != nil {
		return "", fmt.Errorf("%s: INFO %s: %w", addr, section, err)
	}
	text, _ := v.(string)
	return text, nil
}

// promote puts the Sentinel that answered first in the list.
func (s *Sentinels) promote(sa string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.addrs, sa); i > 0 {
		s.addrs = append([]string{sa}, slices.Delete(s.addrs, i, i+1)...)
	}
}

// maxSentinels bounds the list a Sentinel's answers can grow.
const maxSentinels = 64

// learn adds Sentinels listed by SENTINEL SENTINELS.
func (s *Sentinels) learn(others []map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range others {
		if !validPort(o["port"]) || o["ip"] == "" || len(s.addrs) >= maxSentinels {
			continue
		}
		a := net.JoinHostPort(o["ip"], o["port"])
		if !slices.Contains(s.addrs, a) {
			s.addrs = append(s.addrs, a)
		}
	}
}

// instances reads a reply of SENTINEL SENTINELS or REPLICAS: one flat [k1 v1 k2 v2 ...] array
// per instance.
func instances(v any) []map[string]string {
	arr, _ := v.([]any)
	out := make([]map[string]string, 0, len(arr))
	for _, e := range arr {
		kv, _ := e.([]any)
		m := make(map[string]string, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			k, _ := kv[i].(string)
			val, _ := kv[i+1].(string)
			m[k] = val
		}
		out = append(out, m)
	}
	return out
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n < 65536
}

// Replica is a replica of the master as a Sentinel lists it.
type Replica struct {
	Addr       string
	Flags      string // "slave", "slave,s_down", "slave,disconnected" ...
	LinkOK     bool   // master-link-status ok: it streams from its master
	Priority   int    // replica-priority: 0 is never promoted (rmtd itself shows so)
	MasterAddr string // the master it replicates from, by its own INFO
	Offset     int64  // slave-repl-offset
}

// Healthy reports whether the replica is up, connected to its master, and streaming.
func (r Replica) Healthy() bool {
	for f := range strings.SplitSeq(r.Flags, ",") {
		switch f {
		case "s_down", "o_down", "disconnected":
			return false
		}
	}
	return r.LinkOK && r.Addr != ""
}

// Replicas asks the Sentinels in turn for the master's replicas (SENTINEL REPLICAS, or
// SENTINEL SLAVES of Redis before 5).
func (s *Sentinels) Replicas(ctx context.Context) ([]Replica, error) {
	var errs []error
	for _, sa := range s.Addrs() {
		c, err := s.dialSentinel(ctx, sa)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		v, err := c.do("SENTINEL", "REPLICAS", s.cfg.MasterName)
		var re *RespError
		if errors.As(err, &re) {
			v, err = c.do("SENTINEL", "SLAVES", s.cfg.MasterName)
		}
		c.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("sentinel %s: SENTINEL REPLICAS %s: %w", sa, s.cfg.MasterName, err))
			continue
		}
		var out []Replica
		for _, m := range instances(v) {
			if m["ip"] == "" || !validPort(m["port"]) {
				continue
			}
			r := Replica{Addr: net.JoinHostPort(m["ip"], m["port"]), Flags: m["flags"], LinkOK: m["master-link-status"] == "ok"}
			r.Priority, _ = strconv.Atoi(m["slave-priority"])
			r.Offset, _ = strconv.ParseInt(m["slave-repl-offset"], 10, 64)
			if m["master-host"] != "" && validPort(m["master-port"]) {
				r.MasterAddr = net.JoinHostPort(m["master-host"], m["master-port"])
			}
			out = append(out, r)
		}
		return out, nil
	}
	return nil, fmt.Errorf("topology: replicas of %q: no Sentinel answered: %w", s.cfg.MasterName, errors.Join(errs...))
}

// Watch calls changed with the master's new address each time it moves, from current, until
// ctx ends: at once on a +switch-master message of any known Sentinel (checked with Master,
// which also checks the new master's ROLE), and after every interval in any case.
func (s *Sentinels) Watch(ctx context.Context, current string, every time.Duration, changed func(addr string)) {
	kick := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	subscribed := map[string]bool{}
	subscribe := func() {
		for _, sa := range s.Addrs() {
			if !subscribed[sa] {
				subscribed[sa] = true
				wg.Go(func() { s.listen(ctx, sa, kick) })
			}
		}
	}
	subscribe()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
		addr, err := s.Master(ctx)
		if err != nil {
			continue
		}
		subscribe() // Sentinels learnt meanwhile
		if addr != current {
			current = addr
			changed(addr)
		}
	}
}

// listen subscribes to +switch-master on one Sentinel, reconnecting while ctx lives, and kicks
// at each message about this master.
func (s *Sentinels) listen(ctx context.Context, sa string, kick chan<- struct{}) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.subscribeOnce(ctx, sa, kick, &backoff)
		if ctx.Err() != nil {
			return
		}
		_ = err // the periodic look-up covers the time without a subscription
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (s *Sentinels) subscribeOnce(ctx context.Context, sa string, kick chan<- struct{}, backoff *time.Duration) error {
	c, err := s.dialSentinel(ctx, sa)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.send("SUBSCRIBE", "+switch-master"); err != nil {
		return err
	}
	for {
		_ = c.c.SetReadDeadline(time.Time{}) // a quiet channel is not an error
		v, err := c.read(0)
		if err != nil {
			return err
		}
		msg, _ := v.([]any)
		if len(msg) != 3 {
			continue
		}
		kind, _ := msg[0].(string)
		switch kind {
		case "subscribe":
			*backoff = 100 * time.Millisecond
			// A failover may have ended while there was no subscription.
			select {
			case kick <- struct{}{}:
			default:
			}
		case "message":
			body, _ := msg[2].(string)
			if name, _, ok := strings.Cut(body, " "); ok && name == s.cfg.MasterName {
				select {
				case kick <- struct{}{}:
				default:
				}
			}
		}
	}
}
