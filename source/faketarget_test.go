package source

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/rdb"
)

// fakeTarget is an in-memory target for driving source nodes through their interface: snapshot
// entries are decoded (rdb.ParseValue) and stored as RESTORE ... ABSTTL would store them, stream
// commands run through a small interpreter of the writes the tests make. What it holds reads
// as a redistest.Dataset, to compare with what the source itself holds (redistest.Dump).
type fakeTarget struct {
	mu    sync.Mutex
	dbs   map[int]map[string]*redistest.Value
	funcs map[string]string // function libraries by name
	now   func() int64      // Unix ms
}

func newFakeTarget() *fakeTarget {
	return &fakeTarget{dbs: map[int]map[string]*redistest.Value{}, funcs: map[string]string{},
		now: func() int64 { return time.Now().UnixMilli() }}
}

// Dataset is what the fake holds, in the form redistest compares: keys already expired left
// out, sets sorted, zsets in rank order.
func (f *fakeTarget) Dataset(name string) *redistest.Dataset {
	f.mu.Lock()
	defer f.mu.Unlock()
	ds := &redistest.Dataset{Source: name, DBs: map[int]map[string]*redistest.Value{}, Functions: map[string]string{},
		Detailed: true, FieldTTL: true}
	now := f.now()
	for db, keys := range f.dbs {
		out := map[string]*redistest.Value{}
		for k, v := range keys {
			if v.ExpireMs != 0 && v.ExpireMs <= now {
				continue
			}
			c := *v
			c.List = slices.Clone(v.List)
			c.Set = slices.Clone(v.Set)
			sort.Strings(c.Set)
			c.ZSet = slices.Clone(v.ZSet)
			sortZSet(c.ZSet)
			out[k] = &c
		}
		if len(out) > 0 {
			ds.DBs[db] = out
		}
	}
	for name, code := range f.funcs {
		ds.Functions[name] = code
	}
	return ds
}

func sortZSet(z []redistest.ZMember) {
	sort.Slice(z, func(i, j int) bool {
		if z[i].Score != z[j].Score {
			return z[i].Score < z[j].Score
		}
		return z[i].Member < z[j].Member
	})
}

// Keys is the number of keys the fake holds in db.
func (f *fakeTarget) Keys(db int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.dbs[db])
}

// restore stores one snapshot entry whose value bytes are raw (Entry.Value, or what
// Entries.Value read back), as RESTORE ... ABSTTL does: a key whose expiry has passed is not
// stored, nor are hash fields whose expiry has passed. A function library is loaded.
func (f *fakeTarget) restore(e *rdb.Entry, raw []byte) error {
	switch e.Kind {
	case rdb.KindFunction:
		name, err := libraryName(e.Value)
		if err != nil {
			return err
		}
		f.mu.Lock()
		f.funcs[name] = string(e.Value)
		f.mu.Unlock()
		return nil
	case rdb.KindKey:
	default:
		return nil // aux fields, module aux data
	}
	pv, err := rdb.ParseValue(e.Type, raw)
	if err != nil {
		return fmt.Errorf("key %s: %w", redistest.Escape(string(e.Key)), err)
	}
	now := f.now()
	if e.ExpireMs != 0 && e.ExpireMs <= now {
		return nil
	}
	v := &redistest.Value{Type: rdb.TypeName(e.Type), ExpireMs: e.ExpireMs}
	switch v.Type {
	case "string":
		v.Str = string(pv.String)
	case "list":
		v.List = strs(pv.List)
	case "set":
		v.Set = strs(pv.Set)
	case "zset":
		for _, m := range pv.ZSet {
			v.ZSet = append(v.ZSet, redistest.ZMember{Member: string(m.Member), Score: m.Score})
		}
	case "hash":
		v.Hash = map[string]string{}
		for _, h := range pv.Hash {
			if h.ExpireMs != 0 && h.ExpireMs <= now {
				continue
			}
			v.Hash[string(h.Field)] = string(h.Value)
			if h.ExpireMs != 0 {
				if v.FieldExpireMs == nil {
					v.FieldExpireMs = map[string]int64{}
				}
				v.FieldExpireMs[string(h.Field)] = h.ExpireMs
			}
		}
		if len(v.Hash) == 0 {
			return nil // every field expired: Redis drops the key
		}
	case "stream":
		v.Stream = streamValue(pv.Stream)
	default:
		return fmt.Errorf("key %s: type %s (%d) not supported by the fake target", redistest.Escape(string(e.Key)), v.Type, e.Type)
	}
	f.mu.Lock()
	f.db(e.DB)[string(e.Key)] = v
	f.mu.Unlock()
	return nil
}

func strs(l [][]byte) []string {
	out := make([]string, len(l))
	for i, b := range l {
		out[i] = string(b)
	}
	return out
}

// streamValue is a decoded stream as XRANGE and XINFO show it.
func streamValue(s *rdb.Stream) *redistest.Stream {
	out := &redistest.Stream{Length: int64(s.Length), LastGeneratedID: s.LastID.String(),
		MaxDeletedID: s.MaxDeletedID.String(), EntriesAdded: int64(s.EntriesAdded)}
	for _, e := range s.Entries {
		out.Entries = append(out.Entries, redistest.StreamEntry{ID: e.ID.String(), Fields: strs(e.Fields)})
	}
	for _, g := range s.Groups {
		sg := redistest.StreamGroup{Name: string(g.Name), LastDeliveredID: g.LastID.String(), Pending: int64(len(g.PEL)),
			ConsumerCount: int64(len(g.Consumers)), EntriesRead: "nil"}
		if g.EntriesRead >= 0 {
			sg.EntriesRead = strconv.FormatInt(g.EntriesRead, 10)
		}
		owner := map[rdb.StreamID]string{}
		for _, c := range g.Consumers {
			sg.Consumers = append(sg.Consumers, redistest.StreamConsumer{Name: string(c.Name), Pending: int64(len(c.PEL))})
			for _, id := range c.PEL {
				owner[id] = string(c.Name)
			}
		}
		sort.Slice(sg.Consumers, func(i, j int) bool { return sg.Consumers[i].Name < sg.Consumers[j].Name })
		for _, p := range g.PEL { // in ID order, as the file has them
			sg.PEL = append(sg.PEL, redistest.StreamPending{ID: p.ID.String(), Consumer: owner[p.ID], Deliveries: int64(p.DeliveryCount)})
		}
		out.Groups = append(out.Groups, sg)
	}
	sort.Slice(out.Groups, func(i, j int) bool { return out.Groups[i].Name < out.Groups[j].Name })
	return out
}

// libraryName reads the name of a function library from its code's first line,
// "#!lua name=<name> ...".
func libraryName(code []byte) (string, error) {
	line, _, _ := bytes.Cut(code, []byte("\n"))
	for _, w := range strings.Fields(string(line)) {
		if name, ok := strings.CutPrefix(w, "name="); ok {
			return name, nil
		}
	}
	return "", fmt.Errorf("function library without a name: %q", line)
}

func (f *fakeTarget) db(n int) map[string]*redistest.Value {
	m := f.dbs[n]
	if m == nil {
		m = map[string]*redistest.Value{}
		f.dbs[n] = m
	}
	return m
}

// exec runs one stream command in db *sel (which SELECT changes), as the target would.
func (f *fakeTarget) exec(sel *int, args [][]byte) error {
	if len(args) == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	name := strings.ToUpper(string(args[0]))
	a := strs(args[1:])
	if err := f.execLocked(sel, name, a); err != nil {
		return fmt.Errorf("fake target: %s %s: %w", name, redistest.Escape(strings.Join(a, " ")), err)
	}
	return nil
}

func (f *fakeTarget) execLocked(sel *int, name string, a []string) error {
	want := func(n int) error {
		if len(a) < n {
			return fmt.Errorf("%d arguments, want at least %d", len(a), n)
		}
		return nil
	}
	now := f.now()
	keys := f.db(*sel)
	// get returns key's value of type typ, nil when absent (or expired), an error when of
	// another type.
	get := func(key, typ string) (*redistest.Value, error) {
		v := keys[key]
		if v != nil && v.ExpireMs != 0 && v.ExpireMs <= now {
			delete(keys, key)
			v = nil
		}
		if v != nil && v.Type != typ {
			return nil, fmt.Errorf("key %s holds a %s, not a %s", redistest.Escape(key), v.Type, typ)
		}
		return v, nil
	}
	// create returns key's value of type typ, a new one if absent.
	create := func(key, typ string) (*redistest.Value, error) {
		v, err := get(key, typ)
		if v == nil && err == nil {
			v = &redistest.Value{Type: typ}
			if typ == "hash" {
				v.Hash = map[string]string{}
			}
			keys[key] = v
		}
		return v, err
	}
	switch name {
	case "PING", "MULTI", "EXEC", "REPLCONF":
	case "SELECT":
		if err := want(1); err != nil {
			return err
		}
		db, err := strconv.Atoi(a[0])
		if err != nil {
			return err
		}
		*sel = db
	case "FLUSHALL":
		clear(f.dbs)
	case "FLUSHDB":
		delete(f.dbs, *sel)
	case "DEL", "UNLINK":
		for _, k := range a {
			delete(keys, k)
		}
	case "SET":
		if err := want(2); err != nil {
			return err
		}
		return f.set(keys, a, now, get)
	case "SETEX", "PSETEX":
		if err := want(3); err != nil {
			return err
		}
		opt := "EX"
		if name == "PSETEX" {
			opt = "PX"
		}
		return f.set(keys, []string{a[0], a[2], opt, a[1]}, now, get)
	case "INCR", "DECR", "INCRBY", "DECRBY":
		if err := want(1); err != nil {
			return err
		}
		by := int64(1)
		if strings.HasSuffix(name, "BY") {
			if err := want(2); err != nil {
				return err
			}
			n, err := strconv.ParseInt(a[1], 10, 64)
			if err != nil {
				return err
			}
			by = n
		}
		if strings.HasPrefix(name, "DECR") {
			by = -by
		}
		v, err := create(a[0], "string")
		if err != nil {
			return err
		}
		n := int64(0)
		if v.Str != "" {
			if n, err = strconv.ParseInt(v.Str, 10, 64); err != nil {
				return err
			}
		}
		v.Str = strconv.FormatInt(n+by, 10)
	case "APPEND":
		if err := want(2); err != nil {
			return err
		}
		v, err := create(a[0], "string")
		if err != nil {
			return err
		}
		v.Str += a[1]
	case "RPUSH", "LPUSH":
		if err := want(2); err != nil {
			return err
		}
		v, err := create(a[0], "list")
		if err != nil {
			return err
		}
		for _, e := range a[1:] {
			if name == "RPUSH" {
				v.List = append(v.List, e)
			} else {
				v.List = append([]string{e}, v.List...)
			}
		}
	case "HSET", "HMSET":
		if err := want(3); err != nil {
			return err
		}
		if len(a)%2 != 1 {
			return fmt.Errorf("odd field/value pairs")
		}
		v, err := create(a[0], "hash")
		if err != nil {
			return err
		}
		for i := 1; i < len(a); i += 2 {
			v.Hash[a[i]] = a[i+1]
		}
	case "HDEL":
		if err := want(2); err != nil {
			return err
		}
		v, err := get(a[0], "hash")
		if v == nil {
			return err
		}
		for _, fld := range a[1:] {
			delete(v.Hash, fld)
		}
		if len(v.Hash) == 0 {
			delete(keys, a[0])
		}
	case "SADD":
		if err := want(2); err != nil {
			return err
		}
		v, err := create(a[0], "set")
		if err != nil {
			return err
		}
		for _, m := range a[1:] {
			if !slices.Contains(v.Set, m) {
				v.Set = append(v.Set, m)
			}
		}
	case "SREM":
		if err := want(2); err != nil {
			return err
		}
		v, err := get(a[0], "set")
		if v == nil {
			return err
		}
		v.Set = slices.DeleteFunc(v.Set, func(m string) bool { return slices.Contains(a[1:], m) })
		if len(v.Set) == 0 {
			delete(keys, a[0])
		}
	case "ZADD":
		if err := want(3); err != nil {
			return err
		}
		if len(a)%2 != 1 {
			return fmt.Errorf("options or odd score/member pairs are not supported")
		}
		v, err := create(a[0], "zset")
		if err != nil {
			return err
		}
		for i := 1; i < len(a); i += 2 {
			score, err := strconv.ParseFloat(a[i], 64)
			if err != nil {
				return err
			}
			v.ZSet = slices.DeleteFunc(v.ZSet, func(m redistest.ZMember) bool { return m.Member == a[i+1] })
			v.ZSet = append(v.ZSet, redistest.ZMember{Member: a[i+1], Score: score})
		}
	case "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT":
		if err := want(2); err != nil {
			return err
		}
		n, err := strconv.ParseInt(a[1], 10, 64)
		if err != nil {
			return err
		}
		at := map[string]int64{"EXPIRE": now + n*1000, "PEXPIRE": now + n, "EXPIREAT": n * 1000, "PEXPIREAT": n}[name]
		if v := keys[a[0]]; v != nil {
			v.ExpireMs = at
			if at <= now {
				delete(keys, a[0])
			}
		}
	case "PERSIST":
		if err := want(1); err != nil {
			return err
		}
		if v := keys[a[0]]; v != nil {
			v.ExpireMs = 0
		}
	case "FUNCTION":
		if err := want(2); err != nil {
			return err
		}
		if !strings.EqualFold(a[0], "LOAD") {
			return fmt.Errorf("FUNCTION %s not supported", a[0])
		}
		code := a[len(a)-1]
		lib, err := libraryName([]byte(code))
		if err != nil {
			return err
		}
		f.funcs[lib] = code
	default:
		return fmt.Errorf("not supported by the fake target")
	}
	return nil
}

// set is SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL].
func (f *fakeTarget) set(keys map[string]*redistest.Value, a []string, now int64,
	get func(key, typ string) (*redistest.Value, error)) error {
	key, val := a[0], a[1]
	old := keys[key]
	if old != nil && old.ExpireMs != 0 && old.ExpireMs <= now {
		old = nil
	}
	var exp int64
	keep := false
	for i := 2; i < len(a); i++ {
		opt := strings.ToUpper(a[i])
		switch opt {
		case "NX":
			if old != nil {
				return nil
			}
		case "XX":
			if old == nil {
				return nil
			}
		case "GET":
			if _, err := get(key, "string"); err != nil {
				return err
			}
		case "KEEPTTL":
			keep = true
		case "EX", "PX", "EXAT", "PXAT":
			if i+1 >= len(a) {
				return fmt.Errorf("%s without a value", opt)
			}
			i++
			n, err := strconv.ParseInt(a[i], 10, 64)
			if err != nil {
				return err
			}
			exp = map[string]int64{"EX": now + n*1000, "PX": now + n, "EXAT": n * 1000, "PXAT": n}[opt]
		default:
			return fmt.Errorf("SET option %s not supported", opt)
		}
	}
	if keep && old != nil {
		exp = old.ExpireMs
	}
	keys[key] = &redistest.Value{Type: "string", Str: val, ExpireMs: exp}
	return nil
}
