package conf

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Pool types, as RMT spells them in its config.
const (
	TypeSingle       = "single"
	TypeTwemproxy    = "twemproxy"
	TypeRedisCluster = "redis cluster"
	TypeRDBFile      = "rdb file"
	TypeAOFFile      = "aof file"
	TypeSentinel     = "sentinel" // servers are the Sentinels; master_name names the master
)

// Source modes: how rmtd reads a live source.
const (
	ModePSync    = "psync"     // a replica link: snapshot, then the replication stream
	ModeScan     = "scan"      // one pass of SCAN + DUMP, then done (services that refuse PSYNC)
	ModeScanLive = "scan_live" // the same pass, then changes from keyspace notifications
)

// What rmtd does when a load is to start into a target that holds keys it did not write.
const (
	TargetNotEmptyRefuse = "refuse" // stop and say which keys are there
	TargetNotEmptyMerge  = "merge"  // load over them: keys of the same name are replaced
	TargetNotEmptyFlush  = "flush"  // empty the target first
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
	Type      string   `yaml:"type"`
	Servers   []string `yaml:"servers"`
	RedisAuth string   `yaml:"redis_auth"` // password, or "user:password" for ACL users
	// RedisAuthFile holds redis_auth instead (a mounted secret); Validate reads it into
	// RedisAuth, without its trailing newline.
	RedisAuthFile string        `yaml:"redis_auth_file"`
	Timeout       time.Duration `yaml:"timeout"`
	Hash          string        `yaml:"hash"`
	HashTag       string        `yaml:"hash_tag"`
	Distribution  string        `yaml:"distribution"`
	TLS           TLS           `yaml:"tls"`

	// Sentinel pools: the master's name, and the Sentinels' own password ("user:password").
	MasterName   string `yaml:"master_name"`
	SentinelAuth string `yaml:"sentinel_auth"`

	// Source only.
	Mode            string `yaml:"mode"`             // ModePSync, ModeScan, ModeScanLive
	PSyncCommand    string `yaml:"psync_command"`    // PSYNC, as renamed by some managed services
	ReplconfCommand string `yaml:"replconf_command"` // REPLCONF, likewise
	PreferReplica   bool   `yaml:"prefer_replica"`   // cluster and sentinel: link to a replica of each master
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
	// TargetNotEmpty is the rule for keys already on the target that rmtd did not write:
	// TargetNotEmptyRefuse, TargetNotEmptyMerge or TargetNotEmptyFlush.
	TargetNotEmpty string `yaml:"target_not_empty"`
	// ResyncGuard holds a source node whose new snapshot would empty the target, or remove
	// more than half of what was loaded from it, until the operator sends RESYNC.
	ResyncGuard bool `yaml:"resync_guard"`
	// MetricsListen is the HTTP address of /metrics, /healthz and /readyz; "" turns it off.
	MetricsListen string `yaml:"metrics_listen"`
	// Shard "i/n" makes this process take only the source masters whose index is i modulo n;
	// "" takes them all.
	Shard string `yaml:"shard"`
}

// ShardRule returns common.shard as (i, n); (0, 1) when it is empty. Validate has checked it.
func (c Common) ShardRule() (i, n int) {
	i, n, err := parseShard(c.Shard)
	if err != nil {
		return 0, 1
	}
	return i, n
}

// parseShard reads "i/n" with 0 <= i < n; "" is (0, 1).
func parseShard(s string) (i, n int, err error) {
	if s == "" {
		return 0, 1, nil
	}
	is, ns, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(is)
	n, err2 := strconv.Atoi(ns)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("%q is not i/n with 0 <= i < n, as in 0/2", s)
	}
	return i, n, nil
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

// Sentinels are the pool's Sentinels (its servers, for type sentinel), nil for another type.
func (p Pool) Sentinels() []string {
	if p.Type != TypeSentinel {
		return nil
	}
	return p.Servers
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
