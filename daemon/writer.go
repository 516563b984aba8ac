package daemon

import (
	"fmt"

	"github.com/rmt-project/rmt/internal/confpool"
	"github.com/rmt-project/rmt/target"
)

// The job's target is one target.Target, made by New from the config's target section: it
// makes each node job's writer (newWriter) and answers what its kind does (Traits, FlushAll,
// checkpoints), so that nothing here tests the kind's name.

// targetConfig is the target.Config of the job.
func (d *Daemon) targetConfig() (target.Config, error) {
	cfg := d.cfg
	servers, err := confpool.Servers(cfg.Target)
	if err != nil {
		return target.Config{}, fmt.Errorf("target.%w", err)
	}
	sentUser, sentPass := sentinelAuth(cfg.Target)
	return target.Config{
		MasterName:   cfg.Target.MasterName,
		SentinelUser: sentUser,
		SentinelPass: sentPass,
		Servers:      servers,
		Conn:         d.targetConn(),
		Conns:        threads(cfg.Common.Threads),
		BigKeyBytes:  cfg.Common.BigKeyBytes,
		Hash:         cfg.Target.Hash,
		HashTag:      cfg.Target.HashTag,
		Distribution: cfg.Target.Distribution,
		Nodes:        func() int { return len(d.pipelines()) },
		Logger:       d.log,
	}, nil
}

// targetConn are the settings of every target connection; the target sets each one's address.
func (d *Daemon) targetConn() target.Options {
	user, pass := d.cfg.Target.Auth()
	return target.Options{Username: user, Password: pass, Timeout: d.cfg.Target.Timeout, TLS: d.targetTLS,
		Logger: d.log.Named("target")}
}
