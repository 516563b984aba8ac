// Package redisctl is the control-plane side of talking to Redis (radix): a configured pool's
// servers, dialing them with the pool's AUTH, TLS and timeout, reading INFO fields, and paging
// through SCAN.
// The data path (replica link, pipelined writer) does not use it; checks, discovery and
// checkpoint look-ups do.
//
//	servers, err := redisctl.Servers(cfg.Source) // addresses (and a pool's weights and names)
//	d, err := redisctl.Dialer(cfg.Source)
//	c, err := d.Dial(ctx, "tcp", addr)
//	next, keys, err := redisctl.ScanKeys(func(a radix.Action) error { return c.Do(ctx, a) }, "0")
package redisctl

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/mediocregopher/radix/v4"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/shard"
)

// DefaultDialTimeout bounds a connection attempt when the pool sets no timeout.
const DefaultDialTimeout = 10 * time.Second

// Servers parses pool p's servers as conf does (conf.ParseServer: a twemproxy pool's
// "host:port:weight [name]" lines, host:port for the other network pools, paths for files), in
// the form internal/shard and internal/topology take. An error names the entry, "servers[1]: ...".
func Servers(p conf.Pool) ([]shard.Server, error) {
	out := make([]shard.Server, len(p.Servers))
	for i, line := range p.Servers {
		s, err := conf.ParseServer(p.Type, line)
		if err != nil {
			return nil, fmt.Errorf("servers[%d]: %w", i, err)
		}
		out[i] = shard.Server{Addr: s.Addr, Weight: s.Weight, Name: s.Name}
	}
	return out, nil
}

// Dialer builds the radix dialer for pool p: AUTH (password or ACL user), connect timeout,
// TLS from the pool's files.
func Dialer(p conf.Pool) (radix.Dialer, error) {
	user, pass := p.Auth()
	d := radix.Dialer{AuthUser: user, AuthPass: pass}
	nd := &net.Dialer{Timeout: p.Timeout}
	if nd.Timeout <= 0 {
		nd.Timeout = DefaultDialTimeout
	}
	d.NetDialer = nd
	tc, err := p.TLS.ClientConfig()
	if err != nil {
		return d, err
	}
	if tc != nil {
		d.NetDialer = &tls.Dialer{NetDialer: nd, Config: tc}
	}
	return d, nil
}

// InfoField finds "name:value" in an INFO reply.
func InfoField(info, name string) (string, bool) {
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimRight(line, "\r")
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return v, true
		}
	}
	return "", false
}

// ScanKeys runs one SCAN step from cursor (with MATCH pattern when one is given) through do,
// and returns the next cursor ("0" at the end) and the page's keys.
func ScanKeys(do func(radix.Action) error, cursor string, match ...string) (string, []string, error) {
	args := []string{cursor, "COUNT", "1000"}
	if len(match) > 0 {
		args = append(args, "MATCH", match[0])
	}
	var page []interface{}
	if err := do(radix.Cmd(&page, "SCAN", args...)); err != nil {
		return "", nil, err
	}
	if len(page) != 2 {
		return "", nil, fmt.Errorf("reply has %d elements, want 2", len(page))
	}
	next, ok := page[0].([]byte)
	items, ok2 := page[1].([]interface{})
	if !ok || !ok2 {
		return "", nil, errors.New("unexpected reply shape")
	}
	keys := make([]string, 0, len(items))
	for _, it := range items {
		if b, ok := it.([]byte); ok {
			keys = append(keys, string(b))
		}
	}
	return string(next), keys, nil
}
