package conf

import "time"

// Defaults, RMT's where RMT had the key.
const (
	DefaultListen       = "127.0.0.1:8888"
	DefaultMaxClients   = 100
	DefaultThreads      = 0 // number of CPUs
	DefaultStep         = 1
	DefaultMbufSize     = 512
	DefaultDir          = "./data"
	DefaultTimeout      = 120 * time.Second
	DefaultHash         = "fnv1a_64"
	DefaultDistribution = "ketama"
	DefaultBigKeyBytes  = 8 << 20 // measured: see README, "Big keys"

	MinMbufSize = 512      // RMT's REDIS_CMD_MBUF_BASE_SIZE
	MaxMbufSize = 16 << 20 // RMT's MBUF_MAX_SIZE
)

// Default returns a config holding every default: both pools of type single with no servers,
// and RMT's common settings. Load starts from it, so absent keys keep these values.
func Default() *Config {
	return &Config{
		Source: defaultPool(),
		Target: defaultPool(),
		Common: Common{
			Listen:        DefaultListen,
			MaxClients:    DefaultMaxClients,
			Threads:       DefaultThreads,
			Step:          DefaultStep,
			MbufSize:      DefaultMbufSize,
			NoReply:       false,
			SourceSafe:    true,
			Dir:           DefaultDir,
			Filter:        "",
			BigKeyBytes:   DefaultBigKeyBytes,
			MaxSpoolBytes: 0,
			CheckpointKey: DefaultCheckpointKey,

			TargetNotEmpty: TargetNotEmptyRefuse,
			ResyncGuard:    true,
			MetricsListen:  "",
			Shard:          "",
		},
	}
}

func defaultPool() Pool {
	return Pool{
		Type:         TypeSingle,
		Timeout:      DefaultTimeout,
		Hash:         DefaultHash,
		HashTag:      "",
		Distribution: DefaultDistribution,

		Mode:            ModePSync,
		PSyncCommand:    DefaultPSyncCommand,
		ReplconfCommand: DefaultReplconfCommand,
	}
}

// The replication commands, as Redis names them; managed services may rename them.
const (
	DefaultPSyncCommand    = "PSYNC"
	DefaultReplconfCommand = "REPLCONF"
)

// DefaultCheckpointKey is the prefix of the checkpoint keys rmtd keeps on the target.
const DefaultCheckpointKey = "rmt:checkpoint"
