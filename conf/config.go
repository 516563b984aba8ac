package conf

import (
	"fmt"
	"strconv"
	"time"
)

// Pool types, as RMT spells them in its config.
const (
	TypeSingle       = "single"
	TypeTwemproxy    = "twemproxy"
	TypeRedisCluster = "redis cluster"
	TypeRDBFile      = "rdb file"
	TypeAOFFile      = "aof file"
)

// Config is one job: where data comes from, where it goes, and how.
type Config struct {
	Source Pool   `yaml:"source"`
	Target Pool   `yaml:"target"`
	Common Common `yaml:"common"`

	// File is the name the config was loaded from ("" when built in code); errors name it.
	File string `yaml:"-"`

	// Warnings are things the loader accepted but ignores, each "<file>:<line>: <key>: <why>"
	// (RMT's legacy keys maxmemory, rdb_diskless, redis_db). The daemon logs them.
	Warnings []string `yaml:"-"`

	// where remembers the line of every key of the loaded file and the value it had then, so
	// that Validate can name the line; nil when built in code.
	where *origin
}

// Pool is one side of a migration: a source or a target deployment.
type Pool struct {
	Type         string        `yaml:"type"`
	Servers      []string      `yaml:"servers"`
	RedisAuth    string        `yaml:"redis_auth"` // password, or "user:password" for ACL users
	Timeout      time.Duration `yaml:"timeout"`
	Hash         string        `yaml:"hash"`
	HashTag      string        `yaml:"hash_tag"`
	Distribution string        `yaml:"distribution"`
	TLS          TLS           `yaml:"tls"`
}

// TLS configures encrypted connections to a pool's servers. Trust comes only from these files.
type TLS struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Common holds the settings of the job itself.
type Common struct {
	Listen        string `yaml:"listen"`      // admin port address
	RequirePass   string `yaml:"requirepass"` // AUTH for the admin port
	MaxClients    int    `yaml:"max_clients"`
	Threads       int    `yaml:"threads"` // 0: number of CPUs
	Step          int    `yaml:"step"`
	MbufSize      int    `yaml:"mbuf_size"`
	NoReply       bool   `yaml:"noreply"`
	SourceSafe    bool   `yaml:"source_safe"`
	Dir           string `yaml:"dir"`    // spool and checkpoints
	Filter        string `yaml:"filter"` // Redis glob on keys; "" keeps every key
	BigKeyBytes   int64  `yaml:"big_key_bytes"`
	MaxSpoolBytes int64  `yaml:"max_spool_bytes"` // 0: no limit
	// CheckpointKey prefixes the key, in db 0 of the target, where each source node's applied
	// position is stored atomically with the commands it covers ("<prefix>:<host:port>").
	// "" turns exactly-once off: a restart then resumes from the local checkpoint file and may
	// apply a few commands twice.
	CheckpointKey string `yaml:"checkpoint_key"`
}

// Auth splits redis_auth into an ACL user name (may be empty) and a password.
func (p Pool) Auth() (user, password string) {
	for i := 0; i < len(p.RedisAuth); i++ {
		if p.RedisAuth[i] == ':' {
			return p.RedisAuth[:i], p.RedisAuth[i+1:]
		}
	}
	return "", p.RedisAuth
}

// Inert lists RMT's settings that rmtd accepts but that change nothing here, each
// "<file>:<line>: <key>: ignored: <why>" (or the flag that set it), when set to other than
// RMT's default. Call it after the flags are applied.
func (c *Config) Inert() []string {
	l := newLocator(c)
	var out []string
	warn := func(path, why string) {
		where, line := l.at(path)
		if line > 0 {
			where += ":" + strconv.Itoa(line)
		}
		out = append(out, fmt.Sprintf("%s: %s: ignored: %s", where, path, why))
	}
	if c.Common.Step != DefaultStep {
		warn("common.step", "rmtd sizes its own batches (an MSET of up to 512 RDB strings, "+
			"transactions of up to 1,000 stream commands)")
	}
	if c.Common.NoReply {
		warn("common.noreply", "rmtd checks every reply of the target (RMT's noreply lost errors)")
	}
	return out
}
