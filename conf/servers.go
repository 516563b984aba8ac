package conf

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"strconv"
	"strings"
)

// Server is one entry of a pool's servers, parsed.
type Server struct {
	Addr   string // host:port, or a path for file pools
	Weight int    // twemproxy only (> 0); 1 for other network pools, 0 for files
	Name   string // twemproxy only: the name after the address, "" when not given
}

// ParseServer parses one servers entry of a pool of type typ: "host:port" for single and
// redis cluster, "host:port:weight [name]" for twemproxy (as in twemproxy's own config; RMT
// demands the weight too), a path for rdb file and aof file.
func ParseServer(typ, s string) (Server, error) {
	switch typ {
	case TypeRDBFile, TypeAOFFile:
		if strings.TrimSpace(s) == "" {
			return Server{}, errors.New("empty path")
		}
		if strings.IndexByte(s, 0) >= 0 {
			return Server{}, errors.New("path holds a NUL byte")
		}
		return Server{Addr: s}, nil
	case TypeTwemproxy:
		return parseTwemServer(s)
	default:
		if err := checkHostPort(s, false); err != nil {
			return Server{}, err
		}
		return Server{Addr: s, Weight: 1}, nil
	}
}

func parseTwemServer(s string) (Server, error) {
	const want = "want host:port:weight [name]"
	f := strings.Fields(s)
	if len(f) == 0 || len(f) > 2 {
		return Server{}, fmt.Errorf("%q: %s", s, want)
	}
	i := strings.LastIndexByte(f[0], ':')
	if i < 0 {
		return Server{}, fmt.Errorf("%q: %s", s, want)
	}
	addr, w := f[0][:i], f[0][i+1:]
	if !strings.Contains(addr, ":") {
		return Server{}, fmt.Errorf("%q has no weight: %s", s, want)
	}
	if err := checkHostPort(addr, false); err != nil {
		return Server{}, err
	}
	weight, err := strconv.Atoi(w)
	if err != nil || weight <= 0 {
		return Server{}, fmt.Errorf("%q: weight %q is not a number > 0", s, w)
	}
	sv := Server{Addr: addr, Weight: weight}
	if len(f) == 2 {
		sv.Name = f[1]
	}
	return sv, nil
}

// checkHostPort checks "host:port" (or "[v6]:port"); port 0 only when zeroOK.
func checkHostPort(s string, zeroOK bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if host == "" && !zeroOK {
		return fmt.Errorf("%q has no host", s)
	}
	if strings.ContainsAny(host, " \t\r\n") {
		return fmt.Errorf("%q: host has a space", s)
	}
	n, err := strconv.Atoi(port)
	min := 1
	if zeroOK {
		min = 0
	}
	if err != nil || n < min || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number in %d..65535", s, port, min)
	}
	return nil
}

// SplitServers splits a -f / -t argument as RMT does: comma-separated addresses, spaces around
// them dropped, empty entries ignored.
func SplitServers(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// Override applies the -f (source) and -t (target) flags: a non-empty argument replaces that
// pool's servers, and problems with them are reported under the flag's name ("-f: ..."). The
// whole config is validated again either way, so call it after every other flag is applied.
func (c *Config) Override(from, to string) error {
	if from != "" {
		c.Source.Servers = SplitServers(from)
		c.SetByFlag("source.servers", "-f")
	}
	if to != "" {
		c.Target.Servers = SplitServers(to)
		c.SetByFlag("target.servers", "-t")
	}
	return c.Validate()
}

// SetByFlag records that the key at path (and all under it) now comes from a command-line
// flag, so that Validate reports its problems as "<flag>: <path>: ...". For example, after
// -m 100: cfg.Common.MbufSize = 100; cfg.SetByFlag("common.mbuf_size", "-m").
func (c *Config) SetByFlag(path, flag string) {
	o := &origin{flags: map[string]string{path: flag}}
	if c.where != nil {
		o.lines, o.loaded = c.where.lines, c.where.loaded
		maps.Copy(o.flags, c.where.flags)
		o.flags[path] = flag
	}
	c.where = o
}
