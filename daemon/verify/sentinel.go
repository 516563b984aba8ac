package verify

import (
	"context"
	"fmt"
	"time"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/topology"
)

// sentinelMaster resolves a `sentinel` pool's master through its Sentinels (asked in turn,
// the master's ROLE checked), for redis_check and redis_testinsert: the one server that
// holds the data.
func sentinelMaster(ctx context.Context, side string, p conf.Pool) (string, error) {
	tc, err := p.TLS.ClientConfig()
	if err != nil {
		return "", fmt.Errorf("%s: %w", side, err)
	}
	user, pass := p.Auth()
	suser, spass := conf.Pool{RedisAuth: p.SentinelAuth}.Auth()
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = defaultSentinelTimeout
	}
	dial := topology.TLSDial(timeout, tc)
	sn, err := topology.NewSentinels(topology.SentinelConfig{MasterName: p.MasterName, Sentinels: p.Servers,
		Username: suser, Password: spass, Dial: dial, DataUsername: user, DataPassword: pass, Timeout: timeout})
	if err != nil {
		return "", fmt.Errorf("%s: %w", side, err)
	}
	addr, err := sn.Master(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: %w", side, err)
	}
	return addr, nil
}

// defaultSentinelTimeout bounds each exchange with a Sentinel when the pool sets no timeout.
const defaultSentinelTimeout = 10 * time.Second
