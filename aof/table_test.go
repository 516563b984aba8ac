package aof

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	tests := []struct {
		name, sub string
		want      string // "" for nil
	}{
		{"get", "", "get"}, {"GET", "", "get"}, {"gEt", "", "get"}, {"sort_ro", "", "sort_ro"},
		{"nosuch", "", ""}, {"", "", ""}, {strings.Repeat("a", 100), "", ""},
		{"xgroup", "create", "xgroup|create"}, {"XGROUP", "CreateConsumer", "xgroup|createconsumer"},
		{"FUNCTION", "LOAD", "function|load"}, {"client", "kill", "client|kill"},
		{"object", "encoding", "object|encoding"}, {"memory", "usage", "memory|usage"},
		{"xgroup", "nosuch", ""}, {"get", "x", ""},
	}
	for _, tt := range tests {
		var c *CommandSpec
		if tt.sub == "" {
			c = Lookup([]byte(tt.name))
		} else {
			c = Lookup2([]byte(tt.name), []byte(tt.sub))
		}
		got := ""
		if c != nil {
			got = c.Name
		}
		if got != tt.want {
			t.Errorf("Lookup(%q, %q) = %q, want %q", tt.name, tt.sub, got, tt.want)
		}
	}
	name, sub := []byte("XGroup"), []byte("CREATE")
	if n := testing.AllocsPerRun(100, func() { Lookup(name); Lookup2(name, sub) }); n != 0 {
		t.Errorf("Lookup allocates %v times", n)
	}
	args := [][]byte{[]byte("ZUNIONSTORE"), []byte("d"), []byte("2"), []byte("a"), []byte("b")}
	dst := make([][]byte, 0, 8)
	if n := testing.AllocsPerRun(100, func() { dst = LookupArgs(args).Keys(args, dst[:0]) }); n != 0 {
		t.Errorf("Keys allocates %v times", n)
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name  string
		has   Flags
		hasnt Flags
	}{
		{"set", FlagWrite | FlagDenyOOM, FlagReadOnly},
		{"get", FlagReadOnly | FlagFast, FlagWrite},
		{"flushall", FlagWrite, FlagReadOnly},
		{"publish", FlagPubSub | FlagLoading | FlagStale | FlagFast, FlagWrite}, // 7.0 does not show may_replicate
		{"eval", FlagNoScript | FlagMovableKeys | FlagStale, FlagWrite},
		{"shutdown", FlagAdmin | FlagNoScript | FlagLoading | FlagStale, 0},
		{"ping", FlagFast, FlagWrite},
		{"select", FlagLoading | FlagStale | FlagFast, FlagWrite},
		{"multi", FlagNoScript | FlagLoading | FlagStale | FlagFast, FlagWrite},
		{"blpop", FlagWrite | FlagBlocking, 0},
	}
	for _, tt := range tests {
		c := Lookup([]byte(tt.name))
		if c == nil || !c.Has(tt.has) || c.Flags&tt.hasnt != 0 && tt.hasnt != 0 {
			t.Errorf("%s: flags %b, want %b and not %b", tt.name, c.Flags, tt.has, tt.hasnt)
		}
	}
	if Lookup([]byte("sort")).Movable != true || Lookup([]byte("get")).Movable {
		t.Error("Movable wrong for sort or get")
	}
	if c := Lookup2([]byte("xgroup"), []byte("create")); !c.Has(FlagWrite) || c.FirstKey != 2 {
		t.Errorf("xgroup|create: %+v", c)
	}
	if len(commands) < 200 {
		t.Errorf("only %d commands in the table", len(commands))
	}
}

// keyCases are command lines whose keys are checked against COMMAND GETKEYS, every
// movable-key command among them.
var keyCases = []string{
	"GET k",
	"SET k v",
	"SET k v GET",
	"MSET a 1 b 2 c 3",
	"MGET a b c",
	"DEL a b c",
	"RENAME a b",
	"SMOVE a b m",
	"LMOVE a b LEFT RIGHT",
	"BITOP AND d a b c",
	"BITFIELD k SET i8 0 1",
	"EVAL s 0",
	"EVAL s 2 a b c d",
	"EVAL s 3 a b",
	"EVAL s -1 a",
	"EVAL s x a",
	"EVALSHA abc 1 a x",
	"EVAL_RO s 2 a b",
	"EVALSHA_RO s 1 a",
	"FCALL f 2 a b c",
	"FCALL f 0",
	"FCALL_RO f 1 a",
	"ZUNIONSTORE d 2 a b",
	"ZUNIONSTORE d 2 a b WEIGHTS 1 2",
	"ZUNIONSTORE d 0 a",
	"ZUNIONSTORE d 5 a b",
	"ZINTERSTORE d 3 a b c AGGREGATE MAX",
	"ZDIFFSTORE d 2 a b",
	"ZUNION 2 a b WITHSCORES",
	"ZINTER 1 a",
	"ZDIFF 3 a b c",
	"ZINTERCARD 2 a b LIMIT 1",
	"SINTERCARD 3 a b c",
	"LMPOP 2 a b LEFT COUNT 2",
	"BLMPOP 0 2 a b RIGHT",
	"ZMPOP 1 a MIN",
	"BZMPOP 1.5 3 a b c MAX COUNT 1",
	"XREAD STREAMS a b 0 0",
	"XREAD COUNT 2 BLOCK 0 STREAMS a 0",
	"XREAD STREAMS a b c",
	"XREAD STREAMS a",
	"XREAD COUNT 1",
	"XREADGROUP GROUP g c STREAMS a b > >",
	"XREADGROUP GROUP g c COUNT 1 NOACK STREAMS a >",
	"MIGRATE h 1 k 0 100",
	"MIGRATE h 1 k 0 100 COPY REPLACE",
	"MIGRATE h 1 \"\" 0 100 KEYS a b c",
	"MIGRATE h 1 \"\" 0 100 COPY AUTH p KEYS a b",
	"MIGRATE h 1 \"\" 0 100 AUTH2 u p KEYS a",
	"MIGRATE h 1 \"\" 0 100 AUTH KEYS KEYS a",
	"MIGRATE h 1 k 0 100 KEYS a b",
	"SORT k",
	"SORT k STORE d",
	"SORT k BY w GET g LIMIT 0 10 ALPHA STORE d",
	"SORT k STORE d1 STORE d2",
	"SORT k GET STORE",
	"SORT k LIMIT STORE x y STORE z",
	"SORT k STORE",
	"SORT_RO k BY w GET g",
	"GEORADIUS k 0 0 1 km",
	"GEORADIUS k 0 0 1 km STORE d",
	"GEORADIUS k 0 0 1 km STOREDIST d",
	"GEORADIUS k 0 0 1 km STORE d STOREDIST e",
	"GEORADIUSBYMEMBER k m 1 km STORE d",
	"GEORADIUSBYMEMBER k m 1 km WITHDIST",
	"GEOSEARCHSTORE d s FROMMEMBER m BYRADIUS 1 km",
	"OBJECT ENCODING k",
	"OBJECT FREQ k",
	"MEMORY USAGE k",
	"MEMORY USAGE k SAMPLES 5",
	"XGROUP CREATE s g $",
	"XGROUP DESTROY s g",
	"XINFO STREAM s FULL",
	"CLIENT KILL ID 1",
	"FUNCTION LOAD x",
	"BLPOP a b c 0",
	"BRPOPLPUSH a b 0",
	"XADD s * f v",
	"WATCH a b",
	"PFCOUNT a b",
	"PFMERGE d a b",
	"RPOPLPUSH a b",
	"COPY a b",
	"LCS a b",
	"GETEX k PERSIST",
	"PUBLISH c m",
	"PING",
	"SELECT 0",
	"GET",
	"GET a b",
	"XGROUP",
	"NOSUCH a b",
	"SORT k LIMIT 0",
	"set k v",
	"zunionstore d 2 a b",
}

// splitCase splits a case on spaces; `""` is an empty argument.
func splitCase(s string) []string {
	f := strings.Fields(s)
	for i, a := range f {
		if a == `""` {
			f[i] = ""
		}
	}
	return f
}

// getKeys asks the server for the keys of args: nil when it finds none or refuses the line.
func getKeys(t *testing.T, rc *redisConn, args []string) ([]string, error) {
	t.Helper()
	v, err := rc.do(append([]string{"COMMAND", "GETKEYS"}, args...)...)
	var re redisError
	if errors.As(err, &re) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, k := range v.([]any) {
		keys = append(keys, k.(string))
	}
	return keys, nil
}

func ourKeys(args []string) []string {
	bargs := make([][]byte, len(args))
	for i, a := range args {
		bargs[i] = []byte(a)
	}
	var keys []string
	for _, k := range LookupArgs(bargs).Keys(bargs, nil) {
		keys = append(keys, string(k))
	}
	// The container's Keys must resolve the subcommand itself too.
	if len(bargs) > 0 {
		var viaTop []string
		for _, k := range Lookup(bargs[0]).Keys(bargs, nil) {
			viaTop = append(viaTop, string(k))
		}
		if !slices.Equal(viaTop, keys) {
			return append([]string{"MISMATCH via container:"}, viaTop...)
		}
	}
	return keys
}

func TestKeysAgainstRedis(t *testing.T) {
	rc := startRedis(t)
	for _, line := range keyCases {
		args := splitCase(line)
		want, err := getKeys(t, rc, args)
		if err != nil {
			t.Fatal(err)
		}
		if got := ourKeys(args); !slices.Equal(got, want) {
			t.Errorf("%s: keys %q, COMMAND GETKEYS says %q", line, got, want)
		}
	}
}

// TestKeysSweep checks every command and subcommand of the table against COMMAND GETKEYS with
// argument lists of several lengths and shapes (numbers where counts may be, keywords where
// key searches start).
func TestKeysSweep(t *testing.T) {
	rc := startRedis(t)
	patterns := [][]string{
		{"a", "b", "c", "d", "e", "f", "g", "h", "i"},
		{"2", "a", "b", "c", "d", "e", "f", "g", "h"},
		{"x", "2", "a", "b", "c", "d", "e", "f", "g"},
		{"x", "y", "2", "a", "b", "STORE", "d", "e", "f"},
		{"k", "0", "1", "km", "m", "STORE", "d", "STOREDIST", "e"},
		{"STREAMS", "a", "b", "0", "0", "1", "2", "3", "4"},
		{"GROUP", "g", "c", "STREAMS", "a", "b", ">", ">", "x"},
	}
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	checked := 0
	for _, n := range names {
		c := commands[n]
		if c.Since != "" {
			continue // newer than the server: see TestKeysNewer
		}
		var lines [][]string
		if c.Subcommands == nil {
			for _, p := range patterns {
				for k := 0; k <= len(p); k++ {
					lines = append(lines, append([]string{n}, p[:k]...))
				}
			}
		} else {
			for sub, sc := range c.Subcommands {
				if sc.Since != "" {
					continue
				}
				for _, p := range patterns {
					for k := 0; k <= len(p); k++ {
						lines = append(lines, append([]string{n, sub}, p[:k]...))
					}
				}
			}
		}
		for _, args := range lines {
			want, err := getKeys(t, rc, args)
			if err != nil {
				t.Fatal(err)
			}
			if got := ourKeys(args); !slices.Equal(got, want) {
				t.Errorf("%q: keys %q, COMMAND GETKEYS says %q", args, got, want)
			}
			checked++
		}
	}
	t.Logf("%d command lines checked", checked)
}

func TestTableMatchesServer(t *testing.T) {
	rc := startRedis(t)
	v, err := rc.do("COMMAND", "COUNT")
	if err != nil {
		t.Fatal(err)
	}
	info, err := rc.do("INFO", "server")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info.(string), "redis_version:"+TableVersion+"\r\n") {
		t.Skipf("redis-server is not %s", TableVersion)
	}
	n := 0
	for _, c := range commands {
		if c.Since == "" {
			n++
		}
	}
	if v.(int64) != int64(n) {
		t.Errorf("COMMAND COUNT %d, table has %d commands of that version", v, n)
	}
	if got := fmt.Sprint(Lookup([]byte("get")).KeySpecs); got != "[{17 1 1  0 1 0 1 0 0 0}]" {
		t.Errorf("get's key specs: %s", got)
	}
}

// TestKeysNewer checks the commands newer than the server the table was generated from, which
// no local server can answer GETKEYS for.
func TestKeysNewer(t *testing.T) {
	tests := []struct {
		line  string
		since string
		keys  []string
	}{
		{"HPEXPIREAT h 1700000000000 FIELDS 2 a b", "7.4.0", []string{"h"}},
		{"HEXPIRE h 10 NX FIELDS 1 a", "7.4.0", []string{"h"}},
		{"HPERSIST h FIELDS 1 a", "7.4.0", []string{"h"}},
		{"HSETEX h PXAT 1 FIELDS 1 f v", "8.0.0", []string{"h"}},
		{"HGETDEL h FIELDS 1 f", "8.0.0", []string{"h"}},
		{"MSETEX 2 a 1 b 2 PX 100", "8.4.0", []string{"a", "b"}},
		{"MSETEX 3 a 1 b 2", "8.4.0", nil},
		{"XACKDEL s g IDS 1 0-1", "8.2.0", []string{"s"}},
		{"DELIFEQ k v", "valkey 9.0.0", []string{"k"}},
		{"CLIENT NO-TOUCH on", "7.2.0", nil},
		{"WAITAOF 1 0 0", "7.2.0", nil},
	}
	for _, tt := range tests {
		args := splitCase(tt.line)
		c := LookupArgs([][]byte{[]byte(args[0]), []byte(args[1])})
		if c == nil || c.Since != tt.since {
			t.Errorf("%s: spec %+v, want since %s", tt.line, c, tt.since)
			continue
		}
		if got := ourKeys(args); !slices.Equal(got, tt.keys) {
			t.Errorf("%s: keys %q, want %q", tt.line, got, tt.keys)
		}
	}
	if c := Lookup([]byte("msetex")); !c.Movable || !c.Has(FlagWrite) {
		t.Errorf("msetex: %+v", c)
	}
}
