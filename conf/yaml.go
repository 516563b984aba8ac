package conf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// MaxFileBytes bounds what Load and LoadFile accept; a config is a few hundred bytes.
const MaxFileBytes = 1 << 20

// Load decodes rmt.yaml text over Default(), strictly (unknown and duplicate keys are errors),
// and validates the result. name is the file name the errors carry. Every problem found comes
// back at once, as Errors, each "<name>:<line>: <key path>: <problem>".
//
// Any value may be ${VAR} or ${VAR:-default} (or hold them), read from the process's
// environment; an unset variable without a default is a problem naming its line and variable.
func Load(name string, data []byte) (*Config, error) {
	return LoadEnv(name, data, osEnv)
}

// LoadEnv is Load with the environment read through lookup.
func LoadEnv(name string, data []byte, lookup LookupEnv) (*Config, error) {
	if name == "" {
		name = "config"
	}
	cfg, errs, bad := decodeYAML(name, data, lookup)
	if cfg == nil {
		return nil, errs.asError()
	}
	return finish(cfg, errs, bad)
}

// finish validates a decoded config, merging decoding and validation problems in line order.
// Keys whose value failed to decode (bad) kept their default and are not validated again.
func finish(cfg *Config, errs Errors, bad map[string]bool) (*Config, error) {
	errs = append(errs, cfg.validate(bad)...)
	sortByLine(errs)
	if len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

// sortByLine orders problems by line, those without a line last, keeping the order of equals.
func sortByLine(errs Errors) {
	key := func(e *Error) int {
		if e.Line == 0 {
			return int(^uint(0) >> 1)
		}
		return e.Line
	}
	// insertion sort: stable, and lists are short
	for i := 1; i < len(errs); i++ {
		for j := i; j > 0 && key(errs[j]) < key(errs[j-1]); j-- {
			errs[j], errs[j-1] = errs[j-1], errs[j]
		}
	}
}

// decodeYAML returns nil and the reason when the text is not a YAML mapping at all; otherwise
// the config with every key that decoded, and the problems of the others.
func decodeYAML(name string, data []byte, lookup LookupEnv) (cfg *Config, errs Errors, bad map[string]bool) {
	fileErr := func(line int, msg string) Errors {
		return Errors{{File: name, Line: line, Msg: msg}}
	}
	if len(data) > MaxFileBytes {
		return nil, fileErr(0, fmt.Sprintf("file is %d bytes, more than %d: not a config", len(data), MaxFileBytes)), nil
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fileErr(0, "file is empty: want the sections source, target and common"), nil
	}
	defer func() {
		// yaml.v3 has had panics on hostile input; a config file must never crash rmtd.
		if r := recover(); r != nil {
			cfg, errs, bad = nil, fileErr(0, fmt.Sprintf("cannot parse as YAML: %v", r)), nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fileErr(0, "file has only comments: want the sections source, target and common"), nil
		}
		return nil, Errors{syntaxError(name, err)}, nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fileErr(extra.Line, "a second YAML document (---): want exactly one"), nil
	} else if !errors.Is(err, io.EOF) {
		return nil, Errors{syntaxError(name, err)}, nil
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	root = resolve(root)
	if isNull(root) {
		return nil, fileErr(0, "file is empty: want the sections source, target and common"), nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fileErr(root.Line, "want a mapping with the sections source, target and common"), nil
	}
	cfg = Default()
	cfg.File = name
	d := &walker{file: name, o: &origin{lines: make(map[string]int)}, bad: make(map[string]bool), env: lookup}
	d.mapping(root, reflect.ValueOf(cfg).Elem(), "")
	d.o.loaded = leafValues(cfg)
	cfg.where = d.o
	return cfg, d.errs, d.bad
}

// syntaxError turns "yaml: line 3: mapping values are not allowed in this context" into
// "<name>:3: mapping values are not allowed in this context".
func syntaxError(name string, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if l, err := strconv.Atoi(n); err == nil && l > 0 {
				line, msg = l, after
			}
		}
	}
	return &Error{File: name, Line: line, Msg: msg}
}

// walker decodes a yaml.Node tree into a config key by key, so that each problem is found with
// its key path and line, and one bad key does not hide the others.
type walker struct {
	file string
	o    *origin
	errs Errors
	bad  map[string]bool // keys whose value could not be decoded
	env  LookupEnv       // for ${VAR} in values; nil: values are taken as written
}

// expand returns the scalar n with ${VAR} expanded, or nil after recording why it cannot be.
func (w *walker) expand(n *yaml.Node, p string) *yaml.Node {
	if w.env == nil {
		return n
	}
	e, err := expandNode(n, w.env)
	if err != nil {
		w.badValue(n.Line, p, "%v", err)
		return nil
	}
	return e
}

// fail records a problem with a key itself (unknown, duplicate).
func (w *walker) fail(line int, path, format string, args ...any) {
	w.errs = append(w.errs, &Error{File: w.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// badValue records a value that could not be decoded: the key keeps its default.
func (w *walker) badValue(line int, path, format string, args ...any) {
	w.bad[path] = true
	w.fail(line, path, format, args...)
}

// resolve follows an alias (*name) to its anchor's node.
func resolve(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// mapping decodes the keys of n into the struct v.
func (w *walker) mapping(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	fields := make(map[string]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		if name := yamlName(t.Field(i)); name != "" {
			fields[name] = i
		}
	}
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			w.fail(k.Line, path, "a key must be a plain name")
			continue
		}
		p := joinPath(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			w.fail(k.Line, p, "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		fi, known := fields[k.Value]
		if !known {
			w.fail(k.Line, p, "unknown key")
			continue
		}
		w.o.lines[p] = k.Line
		w.value(resolve(val), v.Field(fi), p)
	}
}

// value decodes one node into the field fv at path p.
func (w *walker) value(n *yaml.Node, fv reflect.Value, p string) {
	if n == nil {
		return
	}
	if n.Kind == yaml.ScalarNode {
		w.o.lines[p] = n.Line
		if n = w.expand(n, p); n == nil {
			return
		}
	}
	typ := fv.Type()
	switch {
	case typ.Kind() == reflect.Struct:
		if isNull(n) {
			return // "tls:" with nothing under it: keep the defaults
		}
		if n.Kind != yaml.MappingNode {
			w.badValue(n.Line, p, "want a mapping of keys, got %s", describe(n))
			return
		}
		w.mapping(n, fv, p)
	case typ.Kind() == reflect.Slice && typ.Elem().Kind() == reflect.String:
		w.list(n, fv, p)
	case typ.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode {
			hint := ""
			if n.Kind == yaml.MappingNode && strings.HasSuffix(p, "hash_tag") {
				hint = `: quote it, as in hash_tag: "{}"`
			}
			w.badValue(n.Line, p, "want a string, got %s%s", describe(n), hint)
			return
		}
		var s string
		if err := n.Decode(&s); err != nil {
			w.badValue(n.Line, p, "want a string, got %s", describe(n))
			return
		}
		fv.SetString(s)
	case typ == durationType:
		if !w.present(n, p) {
			return
		}
		var d time.Duration
		if n.ShortTag() == "!!int" {
			w.badValue(n.Line, p, "%q has no unit: write it as %ss or %sms", n.Value, n.Value, n.Value)
			return
		}
		if err := n.Decode(&d); err != nil {
			w.badValue(n.Line, p, "%q is not a duration (write it as 120s, 500ms, 2m)", n.Value)
			return
		}
		fv.SetInt(int64(d))
	case typ.Kind() == reflect.Bool:
		if !w.present(n, p) {
			return
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			w.badValue(n.Line, p, "%q is not true or false", n.Value)
			return
		}
		fv.SetBool(b)
	case typ.Kind() == reflect.Int || typ.Kind() == reflect.Int64:
		if !w.present(n, p) {
			return
		}
		var i int64
		if n.ShortTag() != "!!int" || n.Decode(&i) != nil || fv.OverflowInt(i) {
			w.badValue(n.Line, p, "%q is not an integer", n.Value)
			return
		}
		fv.SetInt(i)
	default:
		w.badValue(n.Line, p, "no decoder for %s", typ) // a field type this file does not know yet
	}
}

// present reports whether a scalar leaf has a value; a key with nothing after it is a mistake.
func (w *walker) present(n *yaml.Node, p string) bool {
	if n.Kind != yaml.ScalarNode {
		w.badValue(n.Line, p, "want a single value, got %s", describe(n))
		return false
	}
	if isNull(n) {
		w.badValue(n.Line, p, "has no value (remove the key to keep the default)")
		return false
	}
	return true
}

// list decodes a sequence of strings; "servers:" with nothing after it is an empty list.
func (w *walker) list(n *yaml.Node, fv reflect.Value, p string) {
	if isNull(n) {
		fv.Set(reflect.Zero(fv.Type()))
		return
	}
	if n.Kind != yaml.SequenceNode {
		w.badValue(n.Line, p, "want a list, as in %s: [%s], got %s", p[strings.LastIndexByte(p, '.')+1:], n.Value, describe(n))
		return
	}
	// A bad item keeps its place (as ""), so that the others are still checked by index.
	out := make([]string, len(n.Content))
	for i, item := range n.Content {
		item = resolve(item)
		ip := indexPath(p, i)
		w.o.lines[ip] = item.Line
		if item.Kind != yaml.ScalarNode || isNull(item) {
			w.badValue(item.Line, ip, "want a string, got %s", describe(item))
			continue
		}
		if item = w.expand(item, ip); item == nil {
			continue
		}
		out[i] = item.Value
	}
	fv.Set(reflect.ValueOf(out).Convert(fv.Type()))
}

// describe names a node's kind for a message: a list, a mapping, "abc".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "an alias"
}
