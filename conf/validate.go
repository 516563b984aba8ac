package conf

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
)

// The values a key may take, in the order messages list them.
var (
	sourceTypes   = []string{TypeSingle, TypeTwemproxy, TypeRedisCluster, TypeSentinel, TypeRDBFile, TypeAOFFile}
	targetTypes   = []string{TypeSingle, TypeTwemproxy, TypeRedisCluster, TypeSentinel, TypeRDBFile}
	modes         = []string{ModePSync, ModeScan, ModeScanLive}
	notEmptyRules = []string{TargetNotEmptyRefuse, TargetNotEmptyMerge, TargetNotEmptyFlush}
	hashes        = []string{"one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64", "fnv1a_64", "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins"}
	distributions = []string{"ketama", "modula", "random"}
)

// Hashes lists twemproxy's hash functions, as the hash key spells them.
func Hashes() []string { return slices.Clone(hashes) }

// Distributions lists twemproxy's key distributions.
func Distributions() []string { return slices.Clone(distributions) }

// IsFile reports whether a pool type reads or writes files rather than servers.
func IsFile(typ string) bool { return typ == TypeRDBFile || typ == TypeAOFFile }

// sourceOnlyKeys are the keys of a pool that only a source may set.
var sourceOnlyKeys = []string{"mode", "psync_command", "replconf_command", "prefer_replica"}

// Validate checks every key and returns every problem at once, in line order, as Errors: each
// "<file>:<line>: <key path>: <problem>" when the config was loaded from a file and the value
// is still the one read there, "<file>: <key path>: <problem>" otherwise ("config" when built in
// code), and "-f: ..." / "-t: ..." for servers given by those flags. It reads the TLS and source
// files' metadata (they must exist), and reads each redis_auth_file into its redis_auth.
func (c *Config) Validate() error {
	errs := c.validate(nil)
	sortByLine(errs)
	return errs.asError()
}

type checker struct {
	loc  locator
	skip map[string]bool // keys that already failed to decode
	errs Errors
}

func (c *Config) validate(skip map[string]bool) Errors {
	k := &checker{loc: newLocator(c), skip: skip}
	k.pool("source", &c.Source, sourceTypes)
	k.pool("target", &c.Target, targetTypes)
	k.sourceOnly(&c.Source)
	k.targetOnly(&c.Target)
	if c.Source.Type == TypeRDBFile && c.Target.Type == TypeRDBFile {
		k.add("target.type", "%q cannot be both source and target", TypeRDBFile)
	}
	k.common(&c.Common)
	return k.errs
}

// skipped: a key that failed to decode kept its default, so neither it, nor what it holds, nor
// what holds it is worth a second message.
func (k *checker) skipped(path string) bool {
	for s := range k.skip {
		if s == path || strings.HasPrefix(s, path+".") || strings.HasPrefix(s, path+"[") ||
			strings.HasPrefix(path, s+".") || strings.HasPrefix(path, s+"[") {
			return true
		}
	}
	return false
}

func (k *checker) add(path, format string, args ...any) {
	if k.skipped(path) {
		return
	}
	file, line := k.loc.at(path)
	k.errs = append(k.errs, &Error{File: file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (k *checker) oneOf(path, v string, allowed []string) bool {
	if slices.Contains(allowed, v) {
		return true
	}
	k.add(path, "%q is not one of %s", v, strings.Join(allowed, ", "))
	return false
}

func (k *checker) pool(side string, p *Pool, types []string) {
	typePath := side + ".type"
	typeOK := k.oneOf(typePath, p.Type, types) && !k.skipped(typePath)
	if typeOK {
		k.servers(side, p)
	}
	if p.Timeout <= 0 {
		k.add(side+".timeout", "%s is not > 0", p.Timeout)
	}
	k.oneOf(side+".hash", p.Hash, hashes)
	k.oneOf(side+".distribution", p.Distribution, distributions)
	if n := len(p.HashTag); n != 0 && n != 2 { // bytes, as twemproxy counts them
		k.add(side+".hash_tag", "%q is not empty or two characters, as in \"{}\"", p.HashTag)
	}
	k.tls(side+".tls", &p.TLS)
	k.sentinel(side, p)
	k.authFile(side, p)
}

// sentinel checks the keys of a Sentinel-managed pool, and that no other pool sets them.
func (k *checker) sentinel(side string, p *Pool) {
	if p.Type == TypeSentinel {
		if strings.TrimSpace(p.MasterName) == "" {
			k.add(side+".master_name", "empty: a sentinel pool names the master the Sentinels watch")
		}
		return
	}
	if p.MasterName != "" {
		k.add(side+".master_name", "only for type %s", TypeSentinel)
	}
	if p.SentinelAuth != "" {
		k.add(side+".sentinel_auth", "only for type %s", TypeSentinel)
	}
}

// authFile reads redis_auth_file into redis_auth: a secret mounted as a file, as Kubernetes does.
func (k *checker) authFile(side string, p *Pool) {
	if p.RedisAuthFile == "" {
		return
	}
	path := side + ".redis_auth_file"
	if p.RedisAuth != "" {
		k.add(path, "set with %s.redis_auth: give one of them", side)
		return
	}
	b, err := readSmallFile(p.RedisAuthFile, 4096)
	if err != nil {
		k.add(path, "%v", err)
		return
	}
	p.RedisAuth = strings.TrimRight(string(b), "\r\n")
	if p.RedisAuth == "" {
		k.add(path, "%q is empty", p.RedisAuthFile)
	}
}

// readSmallFile reads a file of at most limit bytes.
func readSmallFile(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%q is over %d bytes: not a password", name, limit)
	}
	return b, nil
}

// sourceOnly checks the keys only a source has.
func (k *checker) sourceOnly(p *Pool) {
	if k.oneOf("source.mode", p.Mode, modes) && p.Mode != ModePSync && IsFile(p.Type) {
		k.add("source.mode", "%q reads a live server, not files (type %s)", p.Mode, p.Type)
	}
	for _, c := range []struct{ key, val string }{{"psync_command", p.PSyncCommand}, {"replconf_command", p.ReplconfCommand}} {
		if c.val == "" || strings.ContainsAny(c.val, " \t\r\n") {
			k.add("source."+c.key, "%q is not a command name", c.val)
		}
	}
	if p.PreferReplica && p.Type != TypeRedisCluster && p.Type != TypeSentinel {
		k.add("source.prefer_replica", "only for types %s and %s", TypeRedisCluster, TypeSentinel)
	}
}

// targetOnly refuses, under target, the keys only a source may set.
func (k *checker) targetOnly(p *Pool) {
	def := defaultPool()
	set := map[string]bool{
		"mode":             p.Mode != def.Mode,
		"psync_command":    p.PSyncCommand != def.PSyncCommand,
		"replconf_command": p.ReplconfCommand != def.ReplconfCommand,
		"prefer_replica":   p.PreferReplica != def.PreferReplica,
	}
	for _, key := range sourceOnlyKeys {
		if set[key] {
			k.add("target."+key, "only a source has it")
		}
	}
}

func (k *checker) servers(side string, p *Pool) {
	path := side + ".servers"
	if len(p.Servers) == 0 {
		switch {
		case p.Type == TypeRDBFile && side == "target":
			// RMT's "just save the RDB files": they go to common.dir.
		case IsFile(p.Type):
			k.add(path, "no files: list the %s paths to read", p.Type)
		case p.Type == TypeTwemproxy:
			k.add(path, "no servers: list them as host:port:weight [name]")
		default:
			k.add(path, "no servers: list them as host:port")
		}
		return
	}
	first := make(map[string]int, len(p.Servers))
	for i, s := range p.Servers {
		ip := indexPath(path, i)
		sv, err := ParseServer(p.Type, s)
		if err != nil {
			k.add(ip, "%v", err)
			continue
		}
		if j, dup := first[sv.Addr]; dup {
			k.add(ip, "%q is listed twice (also %s)", sv.Addr, indexPath(path, j))
			continue
		}
		first[sv.Addr] = i
		if IsFile(p.Type) && side == "source" {
			k.regularFile(ip, s, p.Type == TypeAOFFile)
		}
	}
}

// regularFile checks that a file we are to read exists and is not a directory; dirOK accepts a
// directory too (a Redis 7 multi-part AOF directory, read through its manifest).
func (k *checker) regularFile(path, name string, dirOK bool) {
	st, err := os.Stat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		k.add(path, "%q does not exist", name)
	case err != nil:
		k.add(path, "%v", err)
	case st.IsDir() && !dirOK:
		k.add(path, "%q is a directory", name)
	}
}

func (k *checker) tls(path string, t *TLS) {
	if !t.Enabled {
		return
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		if t.CertFile == "" {
			k.add(path+".cert_file", "missing: key_file needs its certificate")
		} else {
			k.add(path+".key_file", "missing: cert_file needs its key")
		}
	}
	for _, f := range []struct{ key, name string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
		if f.name != "" {
			k.regularFile(path+"."+f.key, f.name, false)
		}
	}
}

func (k *checker) common(c *Common) {
	if err := checkHostPort(c.Listen, true); err != nil {
		k.add("common.listen", "%v", err)
	}
	if c.MaxClients <= 0 {
		k.add("common.max_clients", "%d is not > 0", c.MaxClients)
	}
	if c.Threads < 0 {
		k.add("common.threads", "%d is not >= 0 (0: one per CPU)", c.Threads)
	}
	if c.Step <= 0 {
		k.add("common.step", "%d is not > 0", c.Step)
	}
	if c.MbufSize < MinMbufSize || c.MbufSize > MaxMbufSize {
		k.add("common.mbuf_size", "%d is not in %d..%d", c.MbufSize, MinMbufSize, MaxMbufSize)
	}
	if strings.TrimSpace(c.Dir) == "" {
		k.add("common.dir", "empty: the spool and checkpoints need a directory")
	}
	if c.BigKeyBytes <= 0 {
		k.add("common.big_key_bytes", "%d is not > 0", c.BigKeyBytes)
	}
	if c.MaxSpoolBytes < 0 {
		k.add("common.max_spool_bytes", "%d is not >= 0 (0: no limit)", c.MaxSpoolBytes)
	}
	k.oneOf("common.target_not_empty", c.TargetNotEmpty, notEmptyRules)
	if c.MetricsListen != "" {
		if err := checkHostPort(c.MetricsListen, true); err != nil {
			k.add("common.metrics_listen", "%v", err)
		} else if c.MetricsListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
			k.add("common.metrics_listen", "%q is the admin port's address too", c.MetricsListen)
		}
	}
	if _, _, err := parseShard(c.Shard); err != nil {
		k.add("common.shard", "%v", err)
	}
}
