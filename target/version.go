package target

import (
	"bytes"
	"fmt"
	"strconv"
)

// ServerInfo is what the writer needs to know about a target server.
type ServerInfo struct {
	Version       string // redis_version as INFO reports it
	ValkeyVersion string // valkey_version, empty on Redis
	Major, Minor  int    // of the lineage that decides the RDB version (Valkey's own for Valkey)
	RDBVersion    int    // the newest RDB version its RESTORE accepts
	Replace       bool   // RESTORE ... REPLACE (Redis >= 3.0)
	AbsTTL        bool   // RESTORE ... ABSTTL (Redis >= 5.0)
	Functions     bool   // FUNCTION LOAD (Redis >= 7.0)
	FieldTTL      bool   // hash field expiry, HPEXPIREAT (Redis >= 7.4)
}

// parseServerInfo reads redis_version (and valkey_version) out of an INFO reply.
func parseServerInfo(info []byte) (ServerInfo, error) {
	var si ServerInfo
	for line := range bytes.SplitSeq(info, []byte("\n")) {
		line = bytes.TrimRight(line, "\r")
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		switch string(k) {
		case "redis_version":
			si.Version = string(v)
		case "valkey_version":
			si.ValkeyVersion = string(v)
		}
	}
	if si.Version == "" {
		return si, fmt.Errorf("target: INFO server has no redis_version")
	}
	var err error
	if si.Major, si.Minor, err = majorMinor(si.Version); err != nil {
		return si, err
	}
	// Functions and ABSTTL follow the Redis API level, which Valkey reports as redis_version.
	si.Replace = si.Major >= 3
	si.AbsTTL = si.Major >= 5
	si.Functions = si.Major >= 7
	si.FieldTTL = si.Major > 7 || si.Major == 7 && si.Minor >= 4
	if si.ValkeyVersion != "" {
		maj, min, err := majorMinor(si.ValkeyVersion)
		if err != nil {
			return si, err
		}
		si.Major, si.Minor = maj, min
		si.RDBVersion = valkeyRDBVersion(maj)
		return si, nil
	}
	si.RDBVersion = redisRDBVersion(si.Major, si.Minor)
	return si, nil
}

func majorMinor(v string) (int, int, error) {
	a, rest, _ := bytes.Cut([]byte(v), []byte("."))
	b, _, _ := bytes.Cut(rest, []byte("."))
	maj, err1 := strconv.Atoi(string(a))
	min, err2 := strconv.Atoi(string(b))
	if err1 != nil || err2 != nil || maj < 0 || min < 0 {
		return 0, 0, fmt.Errorf("target: cannot parse server version %q", v)
	}
	return maj, min, nil
}

// redisRDBVersion is RDB_VERSION of each Redis release (rdb.h).
func redisRDBVersion(major, minor int) int {
	switch {
	case major < 2 || major == 2 && minor < 6:
		return 5
	case major == 2:
		return 6
	case major == 3:
		return 7
	case major == 4:
		return 8
	case major < 7: // 5.0 .. 6.2
		return 9
	case major == 7 && minor < 2:
		return 10
	case major == 7 && minor < 4:
		return 11
	default: // 7.4, 8.x
		return 12
	}
}

// valkeyRDBVersion is the RDB version Valkey writes: 11 up to 8.x, 80 from 9.0.
func valkeyRDBVersion(major int) int {
	if major >= 9 {
		return 80
	}
	return 11
}

// canRestore says whether a target of RDB version tgt accepts a DUMP payload of version src.
// Valkey (80 and up) treats 12..79 as foreign Redis versions and refuses them.
func canRestore(src, tgt int) bool {
	if src <= 0 || src > tgt {
		return false
	}
	if tgt >= 80 && src >= 12 && src < 80 {
		return false
	}
	return true
}
