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
	idx     []int    // scratch for a big command's key positions
	key     []byte   // scratch for a big command's key read from its input
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
// cannot be split without changing its meaning. A big command's keys past its held arguments
// are read from its input; where they cannot be found without holding it, or one is too long
// to hold, it is applied (a key it was meant for must not miss it).
func (f *keyFilter) keepCommand(cmd *aof.Command) bool {
	if f == nil || len(cmd.Args) == 0 {
		return true
	}
	spec := aof.LookupArgs(cmd.Args)
	if spec == nil {
		return true
	}
	if cmd.Big() {
		return f.keepBig(spec, cmd)
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

// maxFilterKey is the longest key of a big command the filter reads to match it.
const maxFilterKey = 64 << 10

func (f *keyFilter) keepBig(spec *aof.CommandSpec, cmd *aof.Command) bool {
	idx, ok := spec.KeyIndexes(cmd.Args, int(cmd.NArgs), f.idx[:0])
	f.idx = idx[:0]
	if !ok || len(idx) == 0 {
		return true
	}
	var rest []int
	for _, i := range idx {
		if i >= len(cmd.Args) {
			rest = append(rest, i)
		} else if glob.Match(f.pattern, cmd.Args[i]) {
			return true
		}
	}
	if len(rest) == 0 {
		return false
	}
	a := cmd.Arguments(nil)
	for i := 0; len(rest) > 0; i++ {
		size, err := a.Next()
		if err != nil {
			return true // the replay fails on the same input, and says where
		}
		if i != rest[0] {
			continue
		}
		rest = rest[1:]
		if size > maxFilterKey {
			return true
		}
		if f.key, err = a.Append(f.key[:0], 0); err != nil {
			return true
		}
		if glob.Match(f.pattern, f.key) {
			return true
		}
	}
	return false
}
