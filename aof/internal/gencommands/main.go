// Command gencommands writes aof/table_gen.go, the command table, from a real Redis's own
// metadata: the reply of COMMAND (names, arity, flags, legacy key triple, key specs and
// subcommands). It starts a redis-server on a unix socket in a temporary directory (no TCP
// port), or reads a running one given with -addr.
//
//	go run ./internal/gencommands -o table_gen.go
//	go run ./internal/gencommands -addr 127.0.0.1:6379 -o table_gen.go
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"go/format"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", "", "a running server, host:port or a unix socket path (default: start one)")
	server := flag.String("server", "redis-server", "the redis-server binary to start")
	out := flag.String("o", "table_gen.go", "output file")
	newer := flag.String("newer", "internal/gencommands/newer.json", "commands newer than the server, in Redis's command JSON shape (\"\": none)")
	flag.Parse()
	if err := run(*addr, *server, *out, *newer); err != nil {
		fmt.Fprintln(os.Stderr, "gencommands:", err)
		os.Exit(1)
	}
}

func run(addr, server, out, newer string) error {
	if addr == "" {
		dir, err := os.MkdirTemp("", "gencommands")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		addr = filepath.Join(dir, "redis.sock")
		cmd := exec.Command(server, "--port", "0", "--unixsocket", addr, "--save", "", "--appendonly", "no", "--dir", dir)
		var log bytes.Buffer
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			return err
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := dial(addr)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s did not start: %v\n%s", server, err, log.String())
			}
			time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
		}
	}
	c, err := dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	info, err := c.do("INFO", "server")
	if err != nil {
		return err
	}
	version := "unknown"
	for _, line := range strings.Split(info.(string), "\r\n") {
		if v, ok := strings.CutPrefix(line, "redis_version:"); ok {
			version = v
		}
	}
	reply, err := c.do("COMMAND")
	if err != nil {
		return err
	}
	all, ok := reply.([]any)
	if !ok {
		return fmt.Errorf("COMMAND: reply %T", reply)
	}
	var cmds []*command
	for _, v := range all {
		cmd, err := parseCommand(v)
		if err != nil {
			return err
		}
		cmds = append(cmds, cmd)
	}
	if newer != "" {
		if cmds, err = addNewer(cmds, newer); err != nil {
			return err
		}
	}
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	src, err := render(version, cmds)
	if err != nil {
		return err
	}
	return os.WriteFile(out, src, 0o644)
}

// conn is a minimal RESP2 client.
type conn struct {
	net.Conn
	br *bufio.Reader
}

func dial(addr string) (*conn, error) {
	network := "tcp"
	if strings.Contains(addr, "/") {
		network = "unix"
	}
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &conn{Conn: c, br: bufio.NewReader(c)}, nil
}

func (c *conn) do(args ...string) (any, error) {
	var b []byte
	b = fmt.Appendf(b, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write(b); err != nil {
		return nil, err
	}
	return readValue(c.br)
}

func readValue(br *bufio.Reader) (any, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply line")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, errors.New(line[1:])
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(br, b); err != nil {
			return nil, err
		}
		return string(b[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		arr := make([]any, 0, n)
		for i := 0; i < n; i++ {
			v, err := readValue(br)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		return arr, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}

type command struct {
	since                   string // set for commands from the -newer file
	name                    string
	arity                   int64
	flags                   []string
	firstKey, lastKey, step int64
	specs                   []keySpec
	subs                    []*command
}

type keySpec struct {
	flags                                        []string
	begin                                        string // index, keyword, unknown
	index                                        int64
	keyword                                      string
	startFrom                                    int64
	find                                         string // range, keynum, unknown
	lastKey, keyStep, limit, keyNumIdx, firstKey int64
}

func parseCommand(v any) (*command, error) {
	a, ok := v.([]any)
	if !ok || len(a) < 6 {
		return nil, fmt.Errorf("COMMAND entry %v", v)
	}
	c := &command{}
	c.name, _ = a[0].(string)
	c.arity, _ = a[1].(int64)
	for _, f := range a[2].([]any) {
		c.flags = append(c.flags, f.(string))
	}
	c.firstKey, _ = a[3].(int64)
	c.lastKey, _ = a[4].(int64)
	c.step, _ = a[5].(int64)
	if len(a) > 8 {
		for _, s := range a[8].([]any) {
			ks, err := parseKeySpec(s)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.name, err)
			}
			c.specs = append(c.specs, ks)
		}
	}
	if len(a) > 9 {
		for _, s := range a[9].([]any) {
			sub, err := parseCommand(s)
			if err != nil {
				return nil, err
			}
			c.subs = append(c.subs, sub)
		}
		sort.Slice(c.subs, func(i, j int) bool { return c.subs[i].name < c.subs[j].name })
	}
	return c, nil
}

// pairs turns a flat [k1 v1 k2 v2 ...] array into a map.
func pairs(v any) map[string]any {
	m := map[string]any{}
	a, _ := v.([]any)
	for i := 0; i+1 < len(a); i += 2 {
		k, _ := a[i].(string)
		m[k] = a[i+1]
	}
	return m
}

func parseKeySpec(v any) (keySpec, error) {
	m := pairs(v)
	var ks keySpec
	for _, f := range m["flags"].([]any) {
		ks.flags = append(ks.flags, f.(string))
	}
	bs := pairs(m["begin_search"])
	ks.begin, _ = bs["type"].(string)
	spec := pairs(bs["spec"])
	switch ks.begin {
	case "index":
		ks.index, _ = spec["index"].(int64)
	case "keyword":
		ks.keyword, _ = spec["keyword"].(string)
		ks.startFrom, _ = spec["startfrom"].(int64)
	case "unknown":
	default:
		return ks, fmt.Errorf("begin_search type %q", ks.begin)
	}
	fk := pairs(m["find_keys"])
	ks.find, _ = fk["type"].(string)
	spec = pairs(fk["spec"])
	switch ks.find {
	case "range":
		ks.lastKey, _ = spec["lastkey"].(int64)
		ks.keyStep, _ = spec["keystep"].(int64)
		ks.limit, _ = spec["limit"].(int64)
	case "keynum":
		ks.keyNumIdx, _ = spec["keynumidx"].(int64)
		ks.firstKey, _ = spec["firstkey"].(int64)
		ks.keyStep, _ = spec["keystep"].(int64)
	case "unknown":
	default:
		return ks, fmt.Errorf("find_keys type %q", ks.find)
	}
	return ks, nil
}

var commandFlags = map[string]string{
	"write": "FlagWrite", "readonly": "FlagReadOnly", "denyoom": "FlagDenyOOM", "module": "FlagModule",
	"admin": "FlagAdmin", "pubsub": "FlagPubSub", "noscript": "FlagNoScript", "blocking": "FlagBlocking",
	"loading": "FlagLoading", "stale": "FlagStale", "skip_monitor": "FlagSkipMonitor",
	"skip_slowlog": "FlagSkipSlowlog", "asking": "FlagAsking", "fast": "FlagFast", "no_auth": "FlagNoAuth",
	"may_replicate": "FlagMayReplicate", "no_mandatory_keys": "FlagNoMandatoryKeys",
	"no_async_loading": "FlagNoAsyncLoading", "no_multi": "FlagNoMulti", "movablekeys": "FlagMovableKeys",
	"allow_busy": "FlagAllowBusy",
}

var keyFlags = map[string]string{
	"RO": "KeyRO", "RW": "KeyRW", "OW": "KeyOW", "RM": "KeyRM", "access": "KeyAccess", "update": "KeyUpdate",
	"insert": "KeyInsert", "delete": "KeyDelete", "not_key": "KeyNotKey", "incomplete": "KeyIncomplete",
	"variable_flags": "KeyVariableFlags",
}

func flagExpr(names []string, table map[string]string, what string) (string, error) {
	var ids []string
	for _, n := range names {
		id, ok := table[n]
		if !ok {
			return "", fmt.Errorf("unknown %s flag %q: add it to aof/table.go and the generator", what, n)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return "0", nil
	}
	return strings.Join(ids, "|"), nil
}

func writeCommand(b *bytes.Buffer, c *command, indent string) error {
	flags, err := flagExpr(c.flags, commandFlags, "command")
	if err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	movable := false
	for _, f := range c.flags {
		movable = movable || f == "movablekeys"
	}
	fmt.Fprintf(b, "{Name: %q, Arity: %d, Flags: %s, FirstKey: %d, LastKey: %d, Step: %d, Movable: %v",
		c.name, c.arity, flags, c.firstKey, c.lastKey, c.step, movable)
	if c.since != "" {
		fmt.Fprintf(b, ", Since: %q", c.since)
	}
	if len(c.specs) > 0 {
		b.WriteString(", KeySpecs: []KeySpec{\n")
		for _, ks := range c.specs {
			kf, err := flagExpr(ks.flags, keyFlags, "key spec")
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			fmt.Fprintf(b, "%s\t{Flags: %s", indent, kf)
			switch ks.begin {
			case "index":
				fmt.Fprintf(b, ", Begin: BeginIndex, Index: %d", ks.index)
			case "keyword":
				fmt.Fprintf(b, ", Begin: BeginKeyword, Keyword: %q, StartFrom: %d", ks.keyword, ks.startFrom)
			default:
				b.WriteString(", Begin: BeginUnknown")
			}
			switch ks.find {
			case "range":
				fmt.Fprintf(b, ", Find: FindRange, LastKey: %d, KeyStep: %d, Limit: %d", ks.lastKey, ks.keyStep, ks.limit)
			case "keynum":
				fmt.Fprintf(b, ", Find: FindKeynum, KeyNumIdx: %d, FirstKey: %d, KeyStep: %d", ks.keyNumIdx, ks.firstKey, ks.keyStep)
			default:
				b.WriteString(", Find: FindUnknown")
			}
			b.WriteString("},\n")
		}
		b.WriteString(indent + "}")
	}
	if len(c.subs) > 0 {
		b.WriteString(", Subcommands: map[string]*CommandSpec{\n")
		for _, s := range c.subs {
			_, short, _ := strings.Cut(s.name, "|")
			fmt.Fprintf(b, "%s\t%q: ", indent, short)
			if err := writeCommand(b, s, indent+"\t"); err != nil {
				return err
			}
			b.WriteString(",\n")
		}
		b.WriteString(indent + "}")
	}
	b.WriteString("}")
	return nil
}

func render(version string, cmds []*command) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by aof/internal/gencommands from the COMMAND reply of redis-server %s. DO NOT EDIT.\n\n", version)
	b.WriteString("package aof\n\n")
	fmt.Fprintf(&b, "// TableVersion is the version of the redis-server the command table was read from.\nconst TableVersion = %q\n\n", version)
	b.WriteString("// commands maps a lower-case command name to its spec. It is never modified.\n")
	b.WriteString("var commands = map[string]*CommandSpec{\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "\t%q: ", c.name)
		if err := writeCommand(&b, c, "\t"); err != nil {
			return nil, err
		}
		b.WriteString(",\n")
	}
	b.WriteString("}\n")
	src, err := format.Source(b.Bytes())
	if err != nil {
		return b.Bytes(), fmt.Errorf("formatting: %w", err)
	}
	return src, nil
}
