package redistest

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Dataset is everything a Redis server holds, in a form two servers (or a server and a fixture
// JSON) can be compared in: every key of every database with its type, whole value and
// absolute expiry, plus the function libraries.
type Dataset struct {
	Source string                    // where it came from, for messages
	DBs    map[int]map[string]*Value // db → key → value; empty dbs absent
	// Functions are the Lua function libraries by name (nil: not known, not compared).
	Functions map[string]string
	// Detailed is true when stream details that fixture JSON lacks were read: XINFO STREAM's
	// max-deleted-entry-id and entries-added, each group's entries-read, consumers and PEL.
	// They are compared only when both datasets have them.
	Detailed bool
	// FieldTTL is true when hash field expiry (Redis 7.4+) was read; compared only when both
	// datasets have it.
	FieldTTL bool
}

// Value is one key.
type Value struct {
	Type     string // string list set zset hash stream (or what TYPE answered)
	ExpireMs int64  // absolute Unix time in ms; 0 = no expiry
	Str      string
	List     []string
	Set      []string // sorted
	ZSet     []ZMember
	Hash     map[string]string
	// FieldExpireMs is the absolute expiry of hash fields that have one (Redis 7.4+).
	FieldExpireMs map[string]int64
	Stream        *Stream
}

// ZMember is one sorted-set member with its score, in rank order.
type ZMember struct {
	Member string
	Score  float64
}

// Stream is a stream's entries and metadata.
type Stream struct {
	Entries         []StreamEntry
	Length          int64
	LastGeneratedID string
	MaxDeletedID    string        // Detailed only
	EntriesAdded    int64         // Detailed only
	Groups          []StreamGroup // sorted by name
}

// StreamEntry is one stream entry.
type StreamEntry struct {
	ID     string
	Fields []string // field, value, field, value...
}

// StreamGroup is one consumer group.
type StreamGroup struct {
	Name            string
	LastDeliveredID string
	Pending         int64 // PEL size
	ConsumerCount   int64
	EntriesRead     string           // Detailed only; "nil" when Redis does not know it
	Consumers       []StreamConsumer // Detailed only, sorted by name
	PEL             []StreamPending  // Detailed only, in ID order
}

// StreamConsumer is one consumer of a group with the size of its PEL.
type StreamConsumer struct {
	Name    string
	Pending int64
}

// StreamPending is one PEL entry.
type StreamPending struct {
	ID         string
	Consumer   string
	Deliveries int64
}

// Keys returns the number of keys in all databases.
func (d *Dataset) Keys() int {
	n := 0
	for _, db := range d.DBs {
		n += len(db)
	}
	return n
}

// MaxDiffs is how many differences Diff returns at most.
const MaxDiffs = 20

// Diff compares two datasets and returns at most MaxDiffs differences, in db then key order,
// each naming the db, the key (escaped as redis-cli does) and what differs. Expiry times may
// differ by up to ttlTolerance.
func Diff(a, b *Dataset, ttlTolerance time.Duration) []string {
	d := differ{a: a, b: b, tol: ttlTolerance.Milliseconds(), max: MaxDiffs}
	d.run()
	return d.out
}

// DiffCount is Diff that also returns how many differences there are in all.
func DiffCount(a, b *Dataset, ttlTolerance time.Duration) ([]string, int) {
	d := differ{a: a, b: b, tol: ttlTolerance.Milliseconds(), max: MaxDiffs}
	d.run()
	return d.out, d.total
}

type differ struct {
	a, b  *Dataset
	tol   int64
	max   int
	out   []string
	total int
}

func (d *differ) add(format string, args ...interface{}) {
	d.total++
	if len(d.out) < d.max {
		d.out = append(d.out, fmt.Sprintf(format, args...))
	}
}

func (d *differ) run() {
	dbs := map[int]bool{}
	for db := range d.a.DBs {
		dbs[db] = true
	}
	for db := range d.b.DBs {
		dbs[db] = true
	}
	for _, db := range sortedInts(dbs) {
		ka, kb := d.a.DBs[db], d.b.DBs[db]
		keys := map[string]bool{}
		for k := range ka {
			keys[k] = true
		}
		for k := range kb {
			keys[k] = true
		}
		for _, k := range sortedStrings(keys) {
			va, vb := ka[k], kb[k]
			switch {
			case vb == nil:
				d.add("db %d key %s: only in %s (%s)", db, Escape(k), d.a.Source, va.Type)
			case va == nil:
				d.add("db %d key %s: only in %s (%s)", db, Escape(k), d.b.Source, vb.Type)
			default:
				d.key(fmt.Sprintf("db %d key %s", db, Escape(k)), va, vb)
			}
		}
	}
	if d.a.Functions != nil && d.b.Functions != nil {
		libs := map[string]bool{}
		for l := range d.a.Functions {
			libs[l] = true
		}
		for l := range d.b.Functions {
			libs[l] = true
		}
		for _, l := range sortedStrings(libs) {
			ca, oka := d.a.Functions[l]
			cb, okb := d.b.Functions[l]
			switch {
			case !oka || !okb:
				d.add("function library %s: in %s %v, in %s %v", Escape(l), d.a.Source, oka, d.b.Source, okb)
			case ca != cb:
				d.add("function library %s: code differs: %s vs %s", Escape(l), Escape(ca), Escape(cb))
			}
		}
	}
}

func (d *differ) key(where string, a, b *Value) {
	if a.Type != b.Type {
		d.add("%s: type %s vs %s", where, a.Type, b.Type)
		return
	}
	switch {
	case (a.ExpireMs == 0) != (b.ExpireMs == 0):
		d.add("%s: expire %s vs %s", where, fmtExpire(a.ExpireMs), fmtExpire(b.ExpireMs))
	case absInt(a.ExpireMs-b.ExpireMs) > d.tol:
		d.add("%s: expire %s vs %s (%v apart)", where, fmtExpire(a.ExpireMs), fmtExpire(b.ExpireMs),
			time.Duration(absInt(a.ExpireMs-b.ExpireMs))*time.Millisecond)
	}
	switch a.Type {
	case "string":
		if a.Str != b.Str {
			d.add("%s: value %s vs %s", where, escapeShort(a.Str), escapeShort(b.Str))
		}
	case "list":
		d.list(where, "element", a.List, b.List)
	case "set":
		d.list(where, "member", a.Set, b.Set)
	case "zset":
		d.zset(where, a.ZSet, b.ZSet)
	case "hash":
		d.hash(where, a.Hash, b.Hash)
		if d.a.FieldTTL && d.b.FieldTTL {
			d.fieldTTL(where, a.FieldExpireMs, b.FieldExpireMs)
		}
	case "stream":
		d.stream(where, a.Stream, b.Stream)
	}
}

// list reports the first difference between two sequences.
func (d *differ) list(where, what string, a, b []string) {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			d.add("%s: %s %d: %s vs %s (lengths %d, %d)", where, what, i, escapeShort(a[i]), escapeShort(b[i]), len(a), len(b))
			return
		}
	}
	if len(a) != len(b) {
		d.add("%s: length %d vs %d", where, len(a), len(b))
	}
}

// zset reports the first member missing on one side or scored differently; with the same
// members and scores the rank order is the same too.
func (d *differ) zset(where string, a, b []ZMember) {
	sa, sb := make(map[string]float64, len(a)), make(map[string]float64, len(b))
	members := map[string]bool{}
	for _, m := range a {
		sa[m.Member] = m.Score
		members[m.Member] = true
	}
	for _, m := range b {
		sb[m.Member] = m.Score
		members[m.Member] = true
	}
	for _, m := range sortedStrings(members) {
		x, oka := sa[m]
		y, okb := sb[m]
		switch {
		case !oka || !okb:
			d.add("%s: member %s: present %v vs %v (lengths %d, %d)", where, escapeShort(m), oka, okb, len(a), len(b))
			return
		case !sameScore(x, y):
			d.add("%s: member %s: score %s vs %s", where, escapeShort(m), fmtScore(x), fmtScore(y))
			return
		}
	}
}

func sameScore(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }

func fmtScore(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func (d *differ) hash(where string, a, b map[string]string) {
	fields := map[string]bool{}
	for f := range a {
		fields[f] = true
	}
	for f := range b {
		fields[f] = true
	}
	for _, f := range sortedStrings(fields) {
		va, oka := a[f]
		vb, okb := b[f]
		switch {
		case !oka || !okb:
			d.add("%s: field %s: present %v vs %v (lengths %d, %d)", where, escapeShort(f), oka, okb, len(a), len(b))
			return
		case va != vb:
			d.add("%s: field %s: value %s vs %s", where, escapeShort(f), escapeShort(va), escapeShort(vb))
			return
		}
	}
}

func (d *differ) fieldTTL(where string, a, b map[string]int64) {
	fields := map[string]bool{}
	for f := range a {
		fields[f] = true
	}
	for f := range b {
		fields[f] = true
	}
	for _, f := range sortedStrings(fields) {
		if ea, eb := a[f], b[f]; (ea == 0) != (eb == 0) || absInt(ea-eb) > d.tol {
			d.add("%s: field %s: expire %s vs %s", where, escapeShort(f), fmtExpire(ea), fmtExpire(eb))
			return
		}
	}
}

func (d *differ) stream(where string, a, b *Stream) {
	if a == nil || b == nil {
		if a != b {
			d.add("%s: stream details missing on one side", where)
		}
		return
	}
	detailed := d.a.Detailed && d.b.Detailed
	var meta []string
	if a.Length != b.Length {
		meta = append(meta, fmt.Sprintf("length %d vs %d", a.Length, b.Length))
	}
	if a.LastGeneratedID != b.LastGeneratedID {
		meta = append(meta, fmt.Sprintf("last-generated-id %s vs %s", a.LastGeneratedID, b.LastGeneratedID))
	}
	if detailed && a.MaxDeletedID != b.MaxDeletedID {
		meta = append(meta, fmt.Sprintf("max-deleted-entry-id %s vs %s", a.MaxDeletedID, b.MaxDeletedID))
	}
	if detailed && a.EntriesAdded != b.EntriesAdded {
		meta = append(meta, fmt.Sprintf("entries-added %d vs %d", a.EntriesAdded, b.EntriesAdded))
	}
	if len(meta) > 0 {
		d.add("%s: stream %s", where, strings.Join(meta, ", "))
	}
	d.entries(where, a.Entries, b.Entries)

	ga, gb := map[string]*StreamGroup{}, map[string]*StreamGroup{}
	names := map[string]bool{}
	for i := range a.Groups {
		ga[a.Groups[i].Name] = &a.Groups[i]
		names[a.Groups[i].Name] = true
	}
	for i := range b.Groups {
		gb[b.Groups[i].Name] = &b.Groups[i]
		names[b.Groups[i].Name] = true
	}
	for _, n := range sortedStrings(names) {
		x, y := ga[n], gb[n]
		if x == nil || y == nil {
			d.add("%s: group %s: present %v vs %v", where, Escape(n), x != nil, y != nil)
			continue
		}
		if diff := groupDiff(x, y, detailed); diff != "" {
			d.add("%s: group %s: %s", where, Escape(n), diff)
		}
	}
}

func (d *differ) entries(where string, a, b []StreamEntry) {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i].ID != b[i].ID {
			d.add("%s: entry %d: id %s vs %s (entries %d, %d)", where, i, a[i].ID, b[i].ID, len(a), len(b))
			return
		}
		if !slices.Equal(a[i].Fields, b[i].Fields) {
			d.add("%s: entry %s: fields %s vs %s", where, a[i].ID, escapeList(a[i].Fields), escapeList(b[i].Fields))
			return
		}
	}
	if len(a) != len(b) {
		d.add("%s: entries %d vs %d", where, len(a), len(b))
	}
}

// groupDiff describes every difference between two groups in one line ("" if none).
func groupDiff(a, b *StreamGroup, detailed bool) string {
	var out []string
	if a.LastDeliveredID != b.LastDeliveredID {
		out = append(out, fmt.Sprintf("last-delivered-id %s vs %s", a.LastDeliveredID, b.LastDeliveredID))
	}
	if a.Pending != b.Pending {
		out = append(out, fmt.Sprintf("pending %d vs %d", a.Pending, b.Pending))
	}
	if a.ConsumerCount != b.ConsumerCount {
		out = append(out, fmt.Sprintf("consumers %d vs %d", a.ConsumerCount, b.ConsumerCount))
	}
	if detailed {
		// Redis 7.0 replicas leave entries-read unknown ("nil") where the master knows it
		// (XREADGROUP is propagated as XCLAIM + XGROUP SETID without ENTRIESREAD): an
		// unknown value on either side is not a difference.
		if a.EntriesRead != b.EntriesRead && a.EntriesRead != "nil" && b.EntriesRead != "nil" {
			out = append(out, fmt.Sprintf("entries-read %s vs %s", a.EntriesRead, b.EntriesRead))
		}
		if !slices.Equal(a.Consumers, b.Consumers) {
			out = append(out, fmt.Sprintf("consumers %s vs %s", fmtConsumers(a.Consumers), fmtConsumers(b.Consumers)))
		}
		if s := pelDiff(a.PEL, b.PEL); s != "" {
			out = append(out, s)
		}
	}
	return strings.Join(out, ", ")
}

func pelDiff(a, b []StreamPending) string {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return fmt.Sprintf("PEL entry %d: %s/%s/%d vs %s/%s/%d", i, a[i].ID, Escape(a[i].Consumer), a[i].Deliveries,
				b[i].ID, Escape(b[i].Consumer), b[i].Deliveries)
		}
	}
	if len(a) != len(b) {
		return fmt.Sprintf("PEL length %d vs %d", len(a), len(b))
	}
	return ""
}

func fmtConsumers(cs []StreamConsumer) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s:%d", Escape(c.Name), c.Pending)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func fmtExpire(ms int64) string {
	if ms == 0 {
		return "none"
	}
	return fmt.Sprintf("%d (%s)", ms, time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z"))
}

func absInt(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func sortedInts(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

func sortedStrings(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
