package conf

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// LoadRMTConf reads RMT's own rmt.conf format, as its conf_pre_validate did, over Default():
//
//	[source]                 # a section: source, target or common
//	type: twemproxy          # key: value, split at the first ':'
//	hash_tag: "{}"           # quotes are dropped for hash_tag only, as RMT did
//	servers :                # a key with no value opens a list...
//	 - 127.0.0.1:6379:1 s1   # ...of "- item" lines
//	[common]
//	listen: 0.0.0.0:8888
//
// '#' starts a comment anywhere on a line. timeout is in milliseconds; booleans are true or
// false. RMT's maxmemory, rdb_diskless and redis_db are accepted and ignored with a warning in
// Config.Warnings. Unlike RMT, unknown keys and sections are errors, and every error names the
// line. The result is validated like Load's.
func LoadRMTConf(name string, data []byte) (*Config, error) {
	if name == "" {
		name = "config"
	}
	cfg, errs, bad := decodeRMTConf(name, data)
	if cfg == nil {
		return nil, errs.asError()
	}
	return finish(cfg, errs, bad)
}

// LoadFile reads a config file: RMT's rmt.conf format when the name ends in .conf or the text
// opens with a [section] line, rmt.yaml otherwise. Errors carry path as the file name.
func LoadFile(path string) (*Config, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("conf: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("conf: %s is a directory, not a config file", path)
	}
	if st.Size() > MaxFileBytes {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("file is %d bytes, more than %d: not a config", st.Size(), MaxFileBytes)}}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("conf: %w", err)
	}
	if IsRMTConf(path, data) {
		return LoadRMTConf(path, data)
	}
	return Load(path, data)
}

// IsRMTConf tells RMT's format from YAML: a .conf name, or a first meaningful line that is a
// [section] header (a YAML file cannot begin so and be a config).
func IsRMTConf(name string, data []byte) bool {
	if strings.EqualFold(filepath.Ext(name), ".conf") {
		return true
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' {
			continue
		}
		if s[0] != '[' || s[len(s)-1] != ']' {
			return false
		}
		_, known := rmtSections[strings.TrimSpace(s[1:len(s)-1])]
		return known
	}
	return false
}

var rmtSections = map[string]bool{"source": true, "target": true, "common": true}

// rmtIgnored are RMT keys with no meaning here.
var rmtIgnored = map[string]string{
	"maxmemory":    "rmt spools the stream to disk; see max_spool_bytes",
	"rdb_diskless": "rmt takes the RDB however the master sends it",
	"redis_db":     "RMT never used it; every db is migrated",
}

// rmtValue is one key of a section: a scalar or a list.
type rmtValue struct {
	key    string
	line   int
	scalar string
	isList bool
	items  []string
	lines  []int
}

type rmtParser struct {
	name    string
	errs    Errors
	section string
	secLine map[string]int
	values  map[string][]*rmtValue // section -> keys in file order
	seen    map[string]int         // "section.key" -> line
	list    *rmtValue              // the list "- item" lines go to
	badSec  bool                   // the last section header was refused (its lines are not reported)
	bad     map[string]bool        // keys whose value could not be decoded
}

func (r *rmtParser) fail(line int, path, format string, args ...any) {
	r.errs = append(r.errs, &Error{File: r.name, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func decodeRMTConf(name string, data []byte) (*Config, Errors, map[string]bool) {
	if len(data) > MaxFileBytes {
		return nil, Errors{{File: name, Msg: fmt.Sprintf("file is %d bytes, more than %d: not a config", len(data), MaxFileBytes)}}, nil
	}
	r := &rmtParser{name: name, secLine: map[string]int{}, values: map[string][]*rmtValue{}, seen: map[string]int{}, bad: map[string]bool{}}
	for i, raw := range strings.Split(string(data), "\n") {
		r.line(i+1, raw)
	}
	if len(r.secLine) == 0 && len(r.errs) == 0 {
		return nil, Errors{{File: name, Msg: "file is empty: want the sections [source], [target] and [common]"}}, nil
	}
	cfg := Default()
	cfg.File = name
	o := &origin{lines: map[string]int{}}
	for sec, line := range r.secLine {
		o.lines[sec] = line
	}
	r.apply(cfg, o)
	o.loaded = leafValues(cfg)
	cfg.where = o
	return cfg, r.errs, r.bad
}

func (r *rmtParser) line(n int, raw string) {
	s := strings.TrimSpace(raw)
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	switch {
	case s == "":
	case s[0] == '[':
		r.list = nil
		r.section, r.badSec = "", true
		if len(s) <= 2 || s[len(s)-1] != ']' {
			r.fail(n, "", "%q is not a [section] line", s)
			return
		}
		sec := strings.TrimSpace(s[1 : len(s)-1])
		if !rmtSections[sec] {
			r.fail(n, "", "[%s]: unknown section (want source, target or common)", sec)
			return
		}
		if first, dup := r.secLine[sec]; dup {
			r.fail(n, sec, "duplicate section (first at line %d)", first)
			return
		}
		r.secLine[sec] = n
		r.section, r.badSec = sec, false
	case s[0] == '-':
		if r.list == nil {
			if r.section != "" || !r.badSec {
				r.fail(n, r.section, "%q: a list item with no key above it (as \"servers:\")", s)
			}
			return
		}
		r.list.items = append(r.list.items, strings.TrimSpace(s[1:]))
		r.list.lines = append(r.list.lines, n)
	default:
		r.list = nil
		key, val, ok := strings.Cut(s, ":")
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if r.section == "" {
			if !r.badSec {
				r.fail(n, "", "%q comes before any [section]", s)
			}
			return // after a refused section header: that one error says it
		}
		path := joinPath(r.section, key)
		if !ok {
			r.fail(n, path, "no ':' on the line (want key: value)")
			return
		}
		if first, dup := r.seen[path]; dup {
			r.fail(n, path, "duplicate key (first at line %d)", first)
			return
		}
		r.seen[path] = n
		v := &rmtValue{key: key, line: n, scalar: val}
		if val == "" {
			v.isList = true
			r.list = v
		}
		r.values[r.section] = append(r.values[r.section], v)
	}
}

// apply sets each parsed key on cfg, recording lines in o.
func (r *rmtParser) apply(cfg *Config, o *origin) {
	for _, sec := range []string{"source", "target", "common"} {
		for _, v := range r.values[sec] {
			path := joinPath(sec, v.key)
			o.lines[path] = v.line
			if why, ignored := rmtIgnored[v.key]; ignored {
				cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("%s:%d: %s: ignored: %s", r.name, v.line, path, why))
				continue
			}
			if !rmtKnown(sec, v.key) {
				r.fail(v.line, path, "unknown key")
				continue
			}
			var err error
			switch sec {
			case "common":
				err = r.common(&cfg.Common, v, path)
			case "source":
				err = r.pool(&cfg.Source, v, path, o)
			default:
				err = r.pool(&cfg.Target, v, path, o)
			}
			if err != nil {
				r.bad[path] = true
				r.fail(v.line, path, "%v", err)
			}
		}
	}
	sortByLine(r.errs)
}

// rmtKnown: the keys of a section, RMT's and the ones rmt.yaml added that fit on one line.
func rmtKnown(section, key string) bool {
	switch section {
	case "common":
		switch key {
		case "listen", "requirepass", "max_clients", "threads", "step", "mbuf_size", "noreply",
			"source_safe", "dir", "filter", "big_key_bytes", "max_spool_bytes", "checkpoint_key":
			return true
		}
	default:
		switch key {
		case "type", "servers", "hash", "hash_tag", "distribution", "redis_auth", "timeout":
			return true
		}
	}
	return false
}

func (r *rmtParser) pool(p *Pool, v *rmtValue, path string, o *origin) error {
	if v.key == "servers" {
		if !v.isList {
			return fmt.Errorf("want a list: \"servers:\" then one \"- %s\" line per server", v.scalar)
		}
		p.Servers = append([]string(nil), v.items...)
		for i, line := range v.lines {
			o.lines[indexPath(path, i)] = line
		}
		return nil
	}
	if v.isList {
		return fmt.Errorf("has no value")
	}
	switch v.key {
	case "type":
		p.Type = v.scalar
	case "hash":
		p.Hash = v.scalar
	case "hash_tag":
		s := v.scalar
		if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
			s = s[1 : len(s)-1]
		}
		p.HashTag = s
	case "distribution":
		p.Distribution = v.scalar
	case "redis_auth":
		p.RedisAuth = v.scalar
	case "timeout":
		ms, err := strconv.ParseInt(v.scalar, 10, 64)
		if err != nil || ms > int64(time.Duration(1<<63-1)/time.Millisecond) || ms < 0 {
			return fmt.Errorf("%q is not a number of milliseconds", v.scalar)
		}
		p.Timeout = time.Duration(ms) * time.Millisecond
	default:
		return fmt.Errorf("unknown key") // rmtKnown and this switch disagree
	}
	return nil
}

func (r *rmtParser) common(c *Common, v *rmtValue, path string) error {
	if v.isList {
		return fmt.Errorf("has no value")
	}
	num := func(dst *int) error {
		n, err := strconv.Atoi(v.scalar)
		if err != nil {
			return fmt.Errorf("%q is not a number", v.scalar)
		}
		*dst = n
		return nil
	}
	num64 := func(dst *int64) error {
		n, err := strconv.ParseInt(v.scalar, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", v.scalar)
		}
		*dst = n
		return nil
	}
	boolean := func(dst *bool) error {
		switch v.scalar {
		case "true":
			*dst = true
		case "false":
			*dst = false
		default:
			return fmt.Errorf("%q is not true or false", v.scalar)
		}
		return nil
	}
	switch v.key {
	case "listen":
		c.Listen = v.scalar
	case "requirepass":
		c.RequirePass = v.scalar
	case "max_clients":
		return num(&c.MaxClients)
	case "threads":
		return num(&c.Threads)
	case "step":
		return num(&c.Step)
	case "mbuf_size":
		return num(&c.MbufSize)
	case "noreply":
		return boolean(&c.NoReply)
	case "source_safe":
		return boolean(&c.SourceSafe)
	case "dir":
		c.Dir = v.scalar
	case "filter":
		c.Filter = v.scalar
	case "big_key_bytes":
		return num64(&c.BigKeyBytes)
	case "max_spool_bytes":
		return num64(&c.MaxSpoolBytes)
	case "checkpoint_key":
		c.CheckpointKey = v.scalar
	default:
		return fmt.Errorf("unknown key") // rmtKnown and this switch disagree
	}
	return nil
}
