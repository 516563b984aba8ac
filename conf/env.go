package conf

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// LookupEnv is how a config reads the environment: os.LookupEnv, or a map in tests.
type LookupEnv func(name string) (string, bool)

// expandEnv replaces every ${VAR} and ${VAR:-default} in s by the variable's value (the
// default when VAR is unset or empty, as in a shell); "$${" is a literal "${". A lone "$" stays
// (passwords have them). A variable that is unset and has no default is an error naming it.
func expandEnv(s string, lookup LookupEnv) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' { // "$${": a literal "${"
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("%q: ${ without its closing }", s[i:])
		}
		expr := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validEnvName(name) {
			return "", fmt.Errorf("${%s}: %q is not a variable name (letters, digits, _)", expr, name)
		}
		v, ok := lookup(name)
		switch {
		case ok && v != "":
		case hasDef:
			v = def
		case ok:
			// set and empty, no default: empty, as a shell gives it
		default:
			return "", fmt.Errorf("${%s} is not set (set it, or give a default: ${%s:-value})", name, name)
		}
		b.WriteString(v)
		s = s[i+end+1:]
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c != '_' && !(c >= 'A' && c <= 'Z') && !(c >= 'a' && c <= 'z') && !(i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// expandNode returns n with its value expanded (n itself when it has no ${). A plain scalar
// whose value came from the environment is typed by what it became ("4" is an integer); a
// quoted one stays a string.
func expandNode(n *yaml.Node, lookup LookupEnv) (*yaml.Node, error) {
	if n.Kind != yaml.ScalarNode || !strings.Contains(n.Value, "${") {
		return n, nil
	}
	v, err := expandEnv(n.Value, lookup)
	if err != nil {
		return nil, err
	}
	c := *n
	c.Value = v
	if c.Style == 0 {
		c.Tag = ""
	}
	return &c, nil
}

// EnvPrefix starts the name of every variable FromEnv reads.
const EnvPrefix = "RMT_"

// envAliases are the short names of keys a container is most often started with.
var envAliases = map[string]string{
	"RMT_SOURCE_AUTH": "source.redis_auth",
	"RMT_TARGET_AUTH": "target.redis_auth",
}

// FromEnv builds a job from environment variables alone, for a container started with -e
// flags and no config file. Every key has a variable: RMT_<SECTION>_<KEY> in upper case, as
// RMT_SOURCE_TYPE, RMT_SOURCE_SERVERS (a comma-separated list), RMT_TARGET_TYPE,
// RMT_TARGET_SERVERS, RMT_COMMON_METRICS_LISTEN, RMT_SOURCE_TLS_CA_FILE; RMT_SOURCE_AUTH and
// RMT_TARGET_AUTH are redis_auth. Keys not given keep their defaults. It returns nil, nil when
// neither RMT_SOURCE_SERVERS nor RMT_TARGET_SERVERS is set: the environment describes no job.
// Problems name the variable: "RMT_SOURCE_SERVERS: source.servers[0]: ...".
func FromEnv(environ []string, lookup LookupEnv) (*Config, error) {
	if _, ok := lookup("RMT_SOURCE_SERVERS"); !ok {
		if _, ok := lookup("RMT_TARGET_SERVERS"); !ok {
			return nil, nil
		}
	}
	paths := envPaths()
	root := &yaml.Node{Kind: yaml.MappingNode}
	section := map[string]*yaml.Node{}
	flags := map[string]string{}
	var errs Errors
	var names []string
	for _, kv := range environ {
		if name, _, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(name, EnvPrefix) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range slices.Compact(names) {
		val, _ := lookup(name)
		path, ok := envAliases[name]
		if !ok {
			path, ok = paths[name]
		}
		if !ok {
			errs = append(errs, &Error{File: name, Msg: "not a setting of rmtd (RMT_<SECTION>_<KEY>, as RMT_SOURCE_SERVERS)"})
			continue
		}
		flags[path] = name
		parts := strings.Split(path, ".")
		parent := root
		for i, p := range parts[:len(parts)-1] {
			key := strings.Join(parts[:i+1], ".")
			m := section[key]
			if m == nil {
				m = &yaml.Node{Kind: yaml.MappingNode}
				section[key] = m
				parent.Content = append(parent.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: p}, m)
			}
			parent = m
		}
		leaf := &yaml.Node{Kind: yaml.ScalarNode, Value: val}
		if parts[len(parts)-1] == "servers" {
			leaf = &yaml.Node{Kind: yaml.SequenceNode}
			for _, s := range strings.Split(val, ",") {
				if s = strings.TrimSpace(s); s != "" {
					leaf.Content = append(leaf.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: s})
				}
			}
		}
		parent.Content = append(parent.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: parts[len(parts)-1]}, leaf)
	}
	cfg := Default()
	cfg.File = "environment"
	w := &walker{file: cfg.File, o: &origin{lines: map[string]int{}, flags: flags}, bad: map[string]bool{}, env: lookup}
	w.mapping(root, reflect.ValueOf(cfg).Elem(), "")
	for i, e := range w.errs {
		if name := flags[e.Path]; name != "" {
			w.errs[i].File = name
		}
	}
	cfg.where = w.o
	return finish(cfg, append(errs, w.errs...), w.bad)
}

// envPaths maps every variable name FromEnv knows to its key path.
func envPaths() map[string]string {
	out := map[string]string{}
	for p := range leafValues(Default()) {
		out[EnvPrefix+strings.ToUpper(strings.NewReplacer(".", "_").Replace(p))] = p
	}
	return out
}

// osEnv is the process's environment, for Load.
func osEnv(name string) (string, bool) { return os.LookupEnv(name) }
