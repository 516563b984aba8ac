// Package redisctl is the control-plane side of talking to Redis (radix): dialing a server with
// its AUTH, TLS and timeout, reading INFO fields, and paging through SCAN. The data path
// (replica link, pipelined writer) does not use it; checks, discovery, inventories and
// checkpoint look-ups do.
//
//	d := redisctl.NewDialer(user, pass, tlsConfig, timeout)
//	c, err := d.Dial(ctx, "tcp", addr)
//	next, keys, err := redisctl.ScanKeys(func(a radix.Action) error { return c.Do(ctx, a) }, "0")
package redisctl

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/mediocregopher/radix/v4"
)

// DefaultDialTimeout bounds a connection attempt when the pool sets no timeout.
const DefaultDialTimeout = 10 * time.Second

// NewDialer is a radix dialer with AUTH (user "" for the default user), TLS (nil: plain TCP)
// and a connect timeout (0: DefaultDialTimeout).
func NewDialer(user, pass string, tc *tls.Config, timeout time.Duration) radix.Dialer {
	d := radix.Dialer{AuthUser: user, AuthPass: pass}
	nd := &net.Dialer{Timeout: timeout}
	if nd.Timeout <= 0 {
		nd.Timeout = DefaultDialTimeout
	}
	d.NetDialer = nd
	if tc != nil {
		d.NetDialer = &tls.Dialer{NetDialer: nd, Config: tc}
	}
	return d
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

// ParseKeyspace parses the lines "db3:keys=10,expires=0,avg_ttl=0" of INFO keyspace: db → keys.
func ParseKeyspace(info string) (map[int]int64, error) {
	out := map[int]int64{}
	for line := range strings.SplitSeq(info, "\n") {
		line = strings.TrimRight(line, "\r")
		rest, ok := strings.CutPrefix(line, "db")
		if !ok {
			continue
		}
		dbs, fields, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		db, err := strconv.Atoi(dbs)
		if err != nil || db < 0 {
			return nil, fmt.Errorf("INFO keyspace: bad line %.64q", line)
		}
		found := false
		for f := range strings.SplitSeq(fields, ",") {
			if v, ok := strings.CutPrefix(f, "keys="); ok {
				k, err := strconv.ParseInt(v, 10, 64)
				if err != nil || k < 0 {
					return nil, fmt.Errorf("INFO keyspace: bad key count in %.64q", line)
				}
				out[db] = k
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("INFO keyspace: no keys= in %.64q", line)
		}
	}
	return out, nil
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
