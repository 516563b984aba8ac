package shard

import (
	"fmt"
	"strings"
)

// Server is one server of a twemproxy pool, as its config line "host:port:weight [name]" gives it.
type Server struct {
	Addr   string // "host:port" as written in the config (or "/path/to/socket")
	Weight int    // > 0
	Name   string // "" when the line has no name
}

// defaultKetamaPort is CONF_DEFAULT_KETAMA_PORT: a server on this port is named without it.
const defaultKetamaPort = 11211

// ParseServer parses one entry of a twemproxy pool's `servers:` list, "host:port:weight [name]"
// or "/path/to/socket:weight [name]", splitting from the end as conf_add_server (nc_conf.c)
// does: the name is what follows the last space, the weight what follows the last ':' before it.
func ParseServer(line string) (Server, error) {
	rest, name := line, ""
	if i := strings.LastIndexByte(rest, ' '); i >= 0 {
		rest, name = rest[:i], rest[i+1:]
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return Server{}, fmt.Errorf("shard: server %q: want \"host:port:weight [name]\"", line)
	}
	addr, weight := rest[:i], rest[i+1:]
	w, ok := atoi(weight)
	if !ok || w <= 0 {
		return Server{}, fmt.Errorf("shard: server %q: weight %q is not a positive integer", line, weight)
	}
	s := Server{Addr: addr, Weight: w, Name: name}
	if _, err := s.hashName(); err != nil {
		return Server{}, err
	}
	return s, nil
}

// HashName returns the name twemproxy hashes and sorts this server by: Name when set, else the
// address: "host:port", or only "host" when the port is 11211 (libmemcached compatibility),
// or "/path:" for a unix socket (conf_add_server keeps the ':' before the weight).
func (s Server) HashName() string {
	n, _ := s.hashName()
	return n
}

// hashName returns HashName, or why twemproxy would refuse the address: a port must be
// 1..65535 even when the server has a name.
func (s Server) hashName() (string, error) {
	if strings.HasPrefix(s.Addr, "/") {
		if strings.IndexByte(s.Addr, ':') >= 0 {
			return "", fmt.Errorf("shard: server %q: a unix socket path with ':'", s.Addr)
		}
		if s.Name != "" {
			return s.Name, nil
		}
		return s.Addr + ":", nil
	}
	i := strings.LastIndexByte(s.Addr, ':')
	if i <= 0 {
		return "", fmt.Errorf("shard: server %q: want \"host:port\"", s.Addr)
	}
	port, ok := atoi(s.Addr[i+1:])
	if !ok || port <= 0 || port > 65535 {
		return "", fmt.Errorf("shard: server %q: invalid port", s.Addr)
	}
	switch {
	case s.Name != "":
		return s.Name, nil
	case port == defaultKetamaPort:
		return s.Addr[:i], nil
	}
	return s.Addr, nil
}

// atoi is nc_atoi: decimal digits only, no sign, no overflow.
func atoi(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// compareNames is string_compare of nc_string.c, the order conf_validate_server sorts a pool's
// servers in: shorter names first, equal lengths by bytes.
func compareNames(a, b string) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}
