package aof

//go:generate go run ./internal/gencommands -o table_gen.go

// Flags are a command's flags, as COMMAND reports them.
type Flags uint32

// Command flags. Redis's names are in the comments.
const (
	FlagWrite           Flags = 1 << iota // write
	FlagReadOnly                          // readonly
	FlagDenyOOM                           // denyoom
	FlagModule                            // module
	FlagAdmin                             // admin
	FlagPubSub                            // pubsub
	FlagNoScript                          // noscript
	FlagBlocking                          // blocking
	FlagLoading                           // loading
	FlagStale                             // stale
	FlagSkipMonitor                       // skip_monitor
	FlagSkipSlowlog                       // skip_slowlog
	FlagAsking                            // asking
	FlagFast                              // fast
	FlagNoAuth                            // no_auth
	FlagMayReplicate                      // may_replicate
	FlagNoMandatoryKeys                   // no_mandatory_keys
	FlagNoAsyncLoading                    // no_async_loading
	FlagNoMulti                           // no_multi
	FlagMovableKeys                       // movablekeys
	FlagAllowBusy                         // allow_busy
)

// KeyFlags are the flags of a key spec.
type KeyFlags uint16

// Key spec flags. Redis's names are in the comments.
const (
	KeyRO            KeyFlags = 1 << iota // RO
	KeyRW                                 // RW
	KeyOW                                 // OW
	KeyRM                                 // RM
	KeyAccess                             // access
	KeyUpdate                             // update
	KeyInsert                             // insert
	KeyDelete                             // delete
	KeyNotKey                             // not_key
	KeyIncomplete                         // incomplete
	KeyVariableFlags                      // variable_flags
)

// BeginSearch says how a key spec finds its first key.
type BeginSearch uint8

// FindKeys says how a key spec finds its keys after the first.
type FindKeys uint8

// Begin and find kinds of a key spec.
const (
	BeginUnknown BeginSearch = iota
	BeginIndex               // the first key is at Index
	BeginKeyword             // the first key follows Keyword, searched from StartFrom
)

const (
	FindUnknown FindKeys = iota
	FindRange            // keys up to LastKey (relative; negative: from the end), every KeyStep
	FindKeynum           // the count is at KeyNumIdx, keys from FirstKey, every KeyStep
)

// KeySpec is one of Redis 7's key specifications: where a command's keys are.
type KeySpec struct {
	Flags     KeyFlags
	Begin     BeginSearch
	Index     int    // BeginIndex
	Keyword   string // BeginKeyword, upper case
	StartFrom int    // BeginKeyword: index where the search starts; negative counts from the end, backwards
	Find      FindKeys
	LastKey   int // FindRange
	KeyStep   int // FindRange, FindKeynum
	Limit     int // FindRange with LastKey -1: keys take 1/Limit of the remaining arguments
	KeyNumIdx int // FindKeynum, relative to the first key's position
	FirstKey  int // FindKeynum, relative to the first key's position
}

// CommandSpec describes one command, as the COMMAND reply of a real Redis does: its name (lower
// case; a subcommand's is "container|sub"), arity (negative: at least -Arity arguments, name
// included), flags, the legacy first/last/step key triple, its key specs and its subcommands.
type CommandSpec struct {
	Name        string
	Arity       int
	Flags       Flags
	FirstKey    int
	LastKey     int
	Step        int
	Movable     bool // the keys' positions depend on the arguments
	KeySpecs    []KeySpec
	Subcommands map[string]*CommandSpec // by lower-case subcommand name

	// Since is set on commands newer than TableVersion, added from Redis's command JSON
	// (internal/gencommands/newer.json): the version that introduced them.
	Since string
}

// Has reports whether the spec has every flag of f.
func (c *CommandSpec) Has(f Flags) bool { return c != nil && c.Flags&f == f }

// lower writes the lower-case form of b into buf and returns it, or false if b does not fit.
func lower(buf []byte, b []byte) ([]byte, bool) {
	if len(b) > len(buf) {
		return nil, false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(b)], true
}

const maxNameBytes = 64

// Lookup returns the spec of the command named name (any case), or nil if the table does not
// have it. It does not allocate.
func Lookup(name []byte) *CommandSpec {
	var buf [maxNameBytes]byte
	l, ok := lower(buf[:], name)
	if !ok {
		return nil
	}
	return commands[string(l)]
}

// Lookup2 returns the spec of subcommand sub of the command name (any case), such as
// ("XGROUP", "CREATE"), or nil.
func Lookup2(name, sub []byte) *CommandSpec {
	return Lookup(name).Subcommand(sub)
}

// Subcommand returns the spec of the subcommand sub (any case) of c, or nil.
func (c *CommandSpec) Subcommand(sub []byte) *CommandSpec {
	if c == nil || c.Subcommands == nil {
		return nil
	}
	var buf [maxNameBytes]byte
	l, ok := lower(buf[:], sub)
	if !ok {
		return nil
	}
	return c.Subcommands[string(l)]
}

// LookupArgs returns the spec that applies to a whole command line: the subcommand's spec when
// the command has subcommands, else the command's. It returns nil for an unknown command or
// subcommand.
func LookupArgs(args [][]byte) *CommandSpec {
	if len(args) == 0 {
		return nil
	}
	c := Lookup(args[0])
	if c != nil && c.Subcommands != nil {
		if len(args) < 2 {
			return nil
		}
		return c.Subcommand(args[1])
	}
	return c
}

// ArityOK reports whether a command line of n arguments (the name included) fits the arity.
func (c *CommandSpec) ArityOK(n int) bool {
	if c.Arity >= 0 {
		return n == c.Arity
	}
	return n >= -c.Arity
}
