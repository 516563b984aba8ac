package daemon

import (
	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/glob"
)

// keyFilter is common.filter: a Redis glob that keys must match to be migrated. An empty pattern
// keeps everything.
type keyFilter struct {
	pattern []byte
	keys    [][]byte // scratch for command keys (one replay goroutine per filter user)
}

func newKeyFilter(pattern string) *keyFilter {
	if pattern == "" {
		return nil
	}
	return &keyFilter{pattern: []byte(pattern)}
}

// keepKey reports whether an RDB key is migrated.
func (f *keyFilter) keepKey(key []byte) bool {
	return f == nil || glob.Match(f.pattern, key)
}

// keepCommand reports whether a stream command is applied: one without keys (SELECT, MULTI,
// FLUSHALL, FUNCTION ...) always is; one with keys when any of them matches, since a command
// cannot be split without changing its meaning.
func (f *keyFilter) keepCommand(cmd *aof.Command) bool {
	if f == nil || len(cmd.Args) == 0 {
		return true
	}
	spec := aof.LookupArgs(cmd.Args)
	if spec == nil {
		return true
	}
	f.keys = spec.Keys(cmd.Args, f.keys[:0])
	if len(f.keys) == 0 {
		return true
	}
	for _, k := range f.keys {
		if glob.Match(f.pattern, k) {
			return true
		}
	}
	return false
}
