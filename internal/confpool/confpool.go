// Package confpool turns a configured pool (conf.Pool) into what the internal packages take:
// its servers parsed as conf parses them, and the control-plane dialer of its servers. The
// daemon and its -C jobs use it, so that both read a pool one way.
//
//	servers, err := confpool.Servers(cfg.Target) // addresses, and a twemproxy pool's weights and names
//	d, err := confpool.Dialer(cfg.Source)
package confpool

import (
	"fmt"

	"github.com/mediocregopher/radix/v4"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/redisctl"
	"github.com/rmt-project/rmt/internal/shard"
)

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

// Dialer is the control-plane dialer of pool p's servers: its AUTH (password or ACL user),
// TLS from its files, and its timeout.
func Dialer(p conf.Pool) (radix.Dialer, error) {
	user, pass := p.Auth()
	tc, err := p.TLS.ClientConfig()
	if err != nil {
		return radix.Dialer{}, err
	}
	return redisctl.NewDialer(user, pass, tc, p.Timeout), nil
}
