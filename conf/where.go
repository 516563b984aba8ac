package conf

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// origin is what a loaded config remembers of its file: the line of every key path and the
// value each leaf had when it was read. A value changed since (by a flag, by code) loses its
// line rather than point at a line that says something else; a list replaced by -f or -t is
// reported under that flag's name.
type origin struct {
	lines  map[string]int    // "source.servers[1]" -> 9
	loaded map[string]string // leaf path -> value as read
	flags  map[string]string // "source.servers" -> "-f"
}

// locator answers "where is this key" for one Validate run.
type locator struct {
	file string
	o    *origin
	cur  map[string]string
}

func newLocator(c *Config) locator {
	l := locator{file: c.File, o: c.where}
	if l.file == "" {
		l.file = "config"
	}
	if l.o != nil {
		l.cur = leafValues(c)
	}
	return l
}

// at returns the file (or flag) and line for a key path; line 0 when there is none.
func (l locator) at(path string) (string, int) {
	if l.o == nil {
		return l.file, 0
	}
	for p, flag := range l.o.flags {
		if path == p || strings.HasPrefix(path, p+"[") {
			return flag, 0
		}
	}
	if line, ok := l.o.lines[path]; ok {
		if was, leaf := l.o.loaded[path]; leaf && was != l.cur[path] {
			return l.file, 0
		}
		return l.file, line
	}
	for p := parentPath(path); p != ""; p = parentPath(p) {
		if line, ok := l.o.lines[p]; ok {
			return l.file, line
		}
	}
	return l.file, 0
}

// parentPath: "source.tls.ca_file" -> "source.tls", "source.servers[1]" -> "source.servers".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexPath(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

// yamlName is a field's key in rmt.yaml, "" for fields that are not in the file.
func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

var durationType = reflect.TypeFor[time.Duration]()

// leafValues renders every leaf of c (and each list, whole and by item) as text, keyed by path.
func leafValues(c *Config) map[string]string {
	out := make(map[string]string)
	collectLeaves(reflect.ValueOf(c).Elem(), "", out)
	return out
}

func collectLeaves(v reflect.Value, path string, out map[string]string) {
	switch {
	case v.Kind() == reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			if name := yamlName(t.Field(i)); name != "" {
				collectLeaves(v.Field(i), joinPath(path, name), out)
			}
		}
	case v.Kind() == reflect.Slice:
		parts := make([]string, v.Len())
		for i := 0; i < v.Len(); i++ {
			parts[i] = fmt.Sprint(v.Index(i).Interface())
			out[indexPath(path, i)] = parts[i]
		}
		out[path] = strings.Join(parts, "\x00")
	default:
		out[path] = fmt.Sprint(v.Interface())
	}
}
