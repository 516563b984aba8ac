package target

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/mediocregopher/radix/v4"

	"github.com/rmt-project/rmt/internal/topology"
)

// Where a service refuses CLUSTER NODES (some managed ones do), a cluster target's slot map
// comes from CLUSTER SHARDS (7.0+), then CLUSTER SLOTS. Their replies are nested arrays, which
// Conn's reply reader does not keep: they are asked on a connection of their own.

// refused says whether err is the server's error reply (the command was refused), rather than
// a connection's failure.
func refused(err error) bool {
	var re *ReplyError
	return errors.As(err, &re)
}

// slotTableFallback asks the node o.Addr for CLUSTER SHARDS, then CLUSTER SLOTS, and returns the
// address of each slot's master ("" for a slot no reachable master serves).
func slotTableFallback(ctx context.Context, o Options) ([]string, error) {
	o.defaults()
	nd := &net.Dialer{Timeout: o.Timeout}
	d := radix.Dialer{AuthUser: o.Username, AuthPass: o.Password, NetDialer: nd}
	host, _, _ := net.SplitHostPort(o.Addr)
	if o.TLS != nil {
		cfg := o.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		d.NetDialer = &tls.Dialer{NetDialer: nd, Config: cfg}
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	c, err := d.Dial(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", o.Addr, err)
	}
	defer c.Close()
	var errs []error
	for _, sub := range []string{"SHARDS", "SLOTS"} {
		var reply []any
		if err := c.Do(ctx, radix.Cmd(&reply, "CLUSTER", sub)); err != nil {
			errs = append(errs, fmt.Errorf("CLUSTER %s: %w", sub, err))
			continue
		}
		parse := topology.ParseShards
		if sub == "SLOTS" {
			parse = topology.ParseSlots
		}
		m, err := parse(reply, topology.Options{DefaultHost: host})
		if err != nil {
			return nil, fmt.Errorf("target %s: CLUSTER %s: %w", o.Addr, sub, err)
		}
		return m.Table(), nil
	}
	return nil, fmt.Errorf("target %s: %w", o.Addr, errors.Join(errs...))
}
