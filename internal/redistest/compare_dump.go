package redistest

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"
)

// DumpOptions says how Dump reaches a server and what it reads.
type DumpOptions struct {
	User, Password string        // AUTH, when the server needs it
	DBs            []int         // only these dbs (nil: every db INFO keyspace lists)
	Timeout        time.Duration // for the whole dump; 0 means 60 s
}

// DumpOptions returns options carrying the credentials the harness uses for r.
func (r *Redis) DumpOptions() DumpOptions { return DumpOptions{User: r.user, Password: r.pass} }

// Dump reads the whole dataset of r (every db).
func (r *Redis) Dump(t testing.TB) *Dataset {
	t.Helper()
	return Dump(t, r.Addr, r.DumpOptions())
}

// dumpPage is how many elements one LRANGE/ZRANGE/XRANGE/SCAN page asks for, and how many keys
// go into one pipeline.
const dumpPage = 1000

// Dump reads every key of every db of the server at addr: type, whole value (in pages, never one
// huge reply), absolute expiry, stream metadata, groups, consumers and PELs, and the function
// libraries. The server should be quiet meanwhile: a key changed during the dump may be read
// half before, half after the change.
func Dump(t testing.TB, addr string, opts DumpOptions) *Dataset {
	t.Helper()
	d, err := DumpContext(context.Background(), addr, opts)
	if err != nil {
		t.Fatalf("dump %s: %v", addr, err)
	}
	return d
}

// DumpContext is Dump returning an error instead of failing a test.
func DumpContext(ctx context.Context, addr string, opts DumpOptions) (*Dataset, error) {
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := (radix.Dialer{AuthUser: opts.User, AuthPass: opts.Password}).Dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dump %s: %w", addr, err)
	}
	defer c.Close()
	dm := &dumper{ctx: ctx, c: c, ds: &Dataset{Source: addr, DBs: map[int]map[string]*Value{}, Detailed: true}}
	if err := dm.run(opts.DBs); err != nil {
		return nil, fmt.Errorf("dump %s: %w", addr, err)
	}
	return dm.ds, nil
}

type dumper struct {
	ctx     context.Context
	c       radix.Conn
	ds      *Dataset
	version string
	db      int
}

func (dm *dumper) do(rcv interface{}, cmd string, args ...string) error {
	if err := dm.c.Do(dm.ctx, radix.Cmd(rcv, cmd, args...)); err != nil {
		return fmt.Errorf("%s %s: %w", cmd, strings.Join(args, " "), err)
	}
	return nil
}

func (dm *dumper) run(only []int) error {
	info, err := infoConn(dm.ctx, dm.c, "server")
	if err != nil {
		return err
	}
	dm.version = info["redis_version"]
	dm.ds.FieldTTL = compareVersions(dm.version, "7.4") >= 0
	ks, err := infoConn(dm.ctx, dm.c, "keyspace")
	if err != nil {
		return err
	}
	var dbs []int
	for k := range ks {
		if n, err := strconv.Atoi(strings.TrimPrefix(k, "db")); err == nil && strings.HasPrefix(k, "db") {
			dbs = append(dbs, n)
		}
	}
	if only != nil {
		dbs = only
	}
	sort.Ints(dbs)
	for _, db := range dbs {
		if err := dm.dumpDB(db); err != nil {
			return fmt.Errorf("db %d: %w", db, err)
		}
	}
	if compareVersions(dm.version, "7.0") >= 0 {
		return dm.functions()
	}
	return nil
}

func (dm *dumper) dumpDB(db int) error {
	dm.db = db
	if err := dm.do(nil, "SELECT", strconv.Itoa(db)); err != nil {
		return err
	}
	seen := map[string]bool{}
	var keys []string
	cursor := "0"
	for {
		var reply []interface{}
		if err := dm.do(&reply, "SCAN", cursor, "COUNT", strconv.Itoa(dumpPage)); err != nil {
			return err
		}
		if len(reply) != 2 {
			return fmt.Errorf("SCAN: reply of %d elements", len(reply))
		}
		cursor = replyStr(reply[0])
		for _, k := range replyArr(reply[1]) {
			if k := replyStr(k); !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
		if cursor == "0" {
			break
		}
	}
	sort.Strings(keys)
	values := map[string]*Value{}
	for len(keys) > 0 {
		n := min(len(keys), dumpPage)
		if err := dm.batch(keys[:n], values); err != nil {
			return err
		}
		keys = keys[n:]
	}
	if len(values) > 0 {
		dm.ds.DBs[db] = values
	}
	return nil
}

// batch reads the type and expiry of keys in one pipeline, then their values.
func (dm *dumper) batch(keys []string, out map[string]*Value) error {
	types := make([]string, len(keys))
	expires := make([]int64, len(keys))
	expCmd := "PEXPIRETIME"
	if compareVersions(dm.version, "7.0") < 0 {
		expCmd = "PTTL"
	}
	now := time.Now().UnixMilli()
	p := radix.NewPipeline()
	for i, k := range keys {
		p.Append(radix.Cmd(&types[i], "TYPE", k))
		p.Append(radix.Cmd(&expires[i], expCmd, k))
	}
	if err := dm.c.Do(dm.ctx, p); err != nil {
		return fmt.Errorf("TYPE/%s pipeline: %w", expCmd, err)
	}
	firsts := make([]interface{}, len(keys))
	p = radix.NewPipeline()
	for i, k := range keys {
		switch types[i] {
		case "string":
			p.Append(radix.Cmd(&firsts[i], "GET", k))
		case "list":
			p.Append(radix.Cmd(&firsts[i], "LRANGE", k, "0", strconv.Itoa(dumpPage-1)))
		case "set":
			p.Append(radix.Cmd(&firsts[i], "SSCAN", k, "0", "COUNT", strconv.Itoa(dumpPage)))
		case "hash":
			p.Append(radix.Cmd(&firsts[i], "HSCAN", k, "0", "COUNT", strconv.Itoa(dumpPage)))
		case "zset":
			p.Append(radix.Cmd(&firsts[i], "ZRANGE", k, "0", strconv.Itoa(dumpPage-1), "WITHSCORES"))
		case "stream":
			p.Append(radix.Cmd(&firsts[i], "XRANGE", k, "-", "+", "COUNT", strconv.Itoa(dumpPage)))
		}
	}
	if err := dm.c.Do(dm.ctx, p); err != nil {
		return fmt.Errorf("value pipeline: %w", err)
	}
	for i, k := range keys {
		if types[i] == "none" {
			continue // gone since SCAN
		}
		v := &Value{Type: types[i]}
		switch {
		case expires[i] == -2:
			continue
		case expires[i] < 0:
		case expCmd == "PTTL":
			v.ExpireMs = now + expires[i]
		default:
			v.ExpireMs = expires[i]
		}
		if err := dm.value(k, v, firsts[i]); err != nil {
			return fmt.Errorf("key %s (%s): %w", Escape(k), v.Type, err)
		}
		out[k] = v
	}
	return nil
}

// value fills v from the first page already read, reading the rest page by page.
func (dm *dumper) value(k string, v *Value, first interface{}) error {
	switch v.Type {
	case "string":
		v.Str = replyStr(first)
	case "list":
		page := replyStrs(first)
		v.List = page
		for start := dumpPage; len(page) == dumpPage; start += dumpPage {
			var next []string
			if err := dm.do(&next, "LRANGE", k, strconv.Itoa(start), strconv.Itoa(start+dumpPage-1)); err != nil {
				return err
			}
			v.List, page = append(v.List, next...), next
		}
	case "set":
		items, err := dm.scan(first, "SSCAN", k)
		if err != nil {
			return err
		}
		uniq := map[string]bool{}
		for _, m := range items {
			uniq[m] = true
		}
		v.Set = sortedStrings(uniq)
	case "hash":
		items, err := dm.scan(first, "HSCAN", k)
		if err != nil {
			return err
		}
		v.Hash = make(map[string]string, len(items)/2)
		for i := 0; i+1 < len(items); i += 2 {
			v.Hash[items[i]] = items[i+1]
		}
		if dm.ds.FieldTTL {
			return dm.fieldTTL(k, v)
		}
	case "zset":
		page := replyStrs(first)
		for start := dumpPage; ; start += dumpPage {
			for i := 0; i+1 < len(page); i += 2 {
				f, err := strconv.ParseFloat(page[i+1], 64)
				if err != nil {
					return fmt.Errorf("score %q: %w", page[i+1], err)
				}
				v.ZSet = append(v.ZSet, ZMember{Member: page[i], Score: f})
			}
			if len(page) < 2*dumpPage {
				break
			}
			page = nil
			if err := dm.do(&page, "ZRANGE", k, strconv.Itoa(start), strconv.Itoa(start+dumpPage-1), "WITHSCORES"); err != nil {
				return err
			}
		}
	case "stream":
		return dm.stream(k, v, first)
	default:
		return fmt.Errorf("type %q not supported by the harness", v.Type)
	}
	return nil
}

// scan continues an SSCAN/HSCAN whose first reply is first and returns every item.
func (dm *dumper) scan(first interface{}, cmd, k string) ([]string, error) {
	reply := replyArr(first)
	var items []string
	for {
		if len(reply) != 2 {
			return nil, fmt.Errorf("%s: reply of %d elements", cmd, len(reply))
		}
		items = append(items, replyStrs(reply[1])...)
		cursor := replyStr(reply[0])
		if cursor == "0" {
			return items, nil
		}
		reply = nil
		if err := dm.do(&reply, cmd, k, cursor, "COUNT", strconv.Itoa(dumpPage)); err != nil {
			return nil, err
		}
	}
}

// fieldTTL reads hash field expiry with HPEXPIRETIME (Redis 7.4+).
func (dm *dumper) fieldTTL(k string, v *Value) error {
	fields := make([]string, 0, len(v.Hash))
	for f := range v.Hash {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	for len(fields) > 0 {
		n := min(len(fields), dumpPage)
		args := append([]string{k, "FIELDS", strconv.Itoa(n)}, fields[:n]...)
		var exp []int64
		if err := dm.do(&exp, "HPEXPIRETIME", args...); err != nil {
			return err
		}
		for i, e := range exp {
			if e > 0 && i < n {
				if v.FieldExpireMs == nil {
					v.FieldExpireMs = map[string]int64{}
				}
				v.FieldExpireMs[fields[i]] = e
			}
		}
		fields = fields[n:]
	}
	return nil
}

func (dm *dumper) functions() error {
	var reply []interface{}
	if err := dm.do(&reply, "FUNCTION", "LIST", "WITHCODE"); err != nil {
		return err
	}
	dm.ds.Functions = map[string]string{}
	for _, lib := range reply {
		m := replyMap(lib)
		dm.ds.Functions[replyStr(m["library_name"])] = replyStr(m["library_code"])
	}
	return nil
}

// Helpers turning radix's default reply values ([]byte, string, int64, []interface{}, nil)
// into what the dump needs. A value of an unexpected type becomes "" / nil / 0: the dump
// then differs, which is what a comparison must report anyway.

func replyStr(v interface{}) string {
	switch v := v.(type) {
	case []byte:
		return string(v)
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	default:
		return ""
	}
}

// isNil reports a nil reply, which radix gives as nil or a nil []byte.
func replyNil(v interface{}) bool {
	b, ok := v.([]byte)
	return v == nil || (ok && b == nil)
}

func replyInt(v interface{}) int64 {
	switch v := v.(type) {
	case int64:
		return v
	case []byte, string:
		n, _ := strconv.ParseInt(replyStr(v), 10, 64)
		return n
	default:
		return 0
	}
}

func replyArr(v interface{}) []interface{} {
	a, _ := v.([]interface{})
	return a
}

func replyStrs(v interface{}) []string {
	a := replyArr(v)
	out := make([]string, len(a))
	for i := range a {
		out[i] = replyStr(a[i])
	}
	return out
}

// kv turns a flat [key, value, key, value...] reply into a map.
func replyMap(v interface{}) map[string]interface{} {
	a := replyArr(v)
	m := make(map[string]interface{}, len(a)/2)
	for i := 0; i+1 < len(a); i += 2 {
		m[replyStr(a[i])] = a[i+1]
	}
	return m
}
