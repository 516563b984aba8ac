package verify

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/mediocregopher/radix/v4"

	"github.com/rmt-project/rmt/internal/redisfmt"
)

// CheckCategory says how a checked key came out.
type CheckCategory int

// Categories of a checked key, as RMT counts them.
const (
	CheckOK     CheckCategory = iota
	CheckValue                // type or value differs, or the key is missing on the target
	CheckExpire               // expiry differs by more than the tolerance
	CheckOther                // a command failed, or the key vanished on the source only
)

func (c CheckCategory) String() string {
	switch c {
	case CheckOK:
		return "ok"
	case CheckValue:
		return "value"
	case CheckExpire:
		return "expire"
	case CheckOther:
		return "other"
	}
	return "category(" + strconv.Itoa(int(c)) + ")"
}

// keyVerdict is the outcome of comparing one key.
type keyVerdict struct {
	cat    CheckCategory
	typ    string // type on the source ("none" when gone)
	reason string // why it is not OK
}

// Page sizes: elements per LRANGE/SCAN/XRANGE page, bytes per GETRANGE chunk.
const (
	comparePage      = 512
	compareStrChunk  = 1 << 20
	compareScanCount = "512"
)

// keyComparer compares one key of db between a source and a target server.
type keyComparer struct {
	src, tgt *cmdNode
	db       int // on the source
	tgtDB    int // on the target
	key      string
	tol      time.Duration
	now      func() time.Time
}

// compare runs the whole comparison: type, value, then expiry.
func (c *keyComparer) compare(ctx context.Context) keyVerdict {
	st, err := c.typeOf(ctx, c.src, c.db)
	if err != nil {
		return keyVerdict{cat: CheckOther, typ: "?", reason: err.Error()}
	}
	tt, err := c.typeOf(ctx, c.tgt, c.tgtDB)
	if err != nil {
		return keyVerdict{cat: CheckOther, typ: st, reason: err.Error()}
	}
	switch {
	case st == "none" && tt == "none":
		return keyVerdict{cat: CheckOK, typ: st} // gone on both sides: they agree
	case st == "none":
		return keyVerdict{cat: CheckOther, typ: st, reason: "key vanished on the source, the target still has a " + tt}
	case tt == "none":
		return keyVerdict{cat: CheckValue, typ: st, reason: "missing on the target"}
	case st != tt:
		return keyVerdict{cat: CheckValue, typ: st, reason: fmt.Sprintf("type differs: source %s, target %s", st, tt)}
	}
	var diff string
	switch st {
	case "string":
		diff, err = c.compareString(ctx)
	case "list":
		diff, err = c.compareList(ctx)
	case "set":
		diff, err = c.compareSet(ctx)
	case "zset":
		diff, err = c.compareZSet(ctx)
	case "hash":
		diff, err = c.compareHash(ctx)
	case "stream":
		diff, err = c.compareStream(ctx)
	default:
		diff, err = c.compareDump(ctx, st)
	}
	if err != nil {
		return keyVerdict{cat: CheckOther, typ: st, reason: err.Error()}
	}
	if diff != "" {
		return keyVerdict{cat: CheckValue, typ: st, reason: diff}
	}
	cat, reason := c.compareExpire(ctx)
	return keyVerdict{cat: cat, typ: st, reason: reason}
}

// run sends a command to the source (src true) or the target, naming the command on error.
func (c *keyComparer) run(ctx context.Context, src bool, rcv interface{}, cmd string, args ...string) error {
	n, db := c.tgt, c.tgtDB
	if src {
		n, db = c.src, c.db
	}
	if err := n.do(ctx, db, radix.Cmd(rcv, cmd, args...)); err != nil {
		return fmt.Errorf("%s: %s: %w", n, cmd, err)
	}
	return nil
}

func (c *keyComparer) typeOf(ctx context.Context, n *cmdNode, db int) (string, error) {
	var t string
	if err := n.do(ctx, db, radix.Cmd(&t, "TYPE", c.key)); err != nil {
		return "", fmt.Errorf("%s: TYPE: %w", n, err)
	}
	return t, nil
}

// both runs the same command on both sides into two receivers.
func (c *keyComparer) both(ctx context.Context, rs, rt interface{}, cmd string, args ...string) error {
	if err := c.run(ctx, true, rs, cmd, args...); err != nil {
		return err
	}
	return c.run(ctx, false, rt, cmd, args...)
}

func (c *keyComparer) lengths(ctx context.Context, cmd string) (int64, int64, error) {
	var ls, lt int64
	err := c.both(ctx, &ls, &lt, cmd, c.key)
	return ls, lt, err
}

func (c *keyComparer) compareString(ctx context.Context) (string, error) {
	ls, lt, err := c.lengths(ctx, "STRLEN")
	if err != nil {
		return "", err
	}
	if ls != lt {
		return fmt.Sprintf("length differs: source %d, target %d", ls, lt), nil
	}
	if ls <= compareStrChunk {
		var vs, vt string
		if err := c.both(ctx, &vs, &vt, "GET", c.key); err != nil {
			return "", err
		}
		if vs != vt {
			return "value differs", nil
		}
		return "", nil
	}
	for off := int64(0); off < ls; off += compareStrChunk {
		var vs, vt string
		a, b := strconv.FormatInt(off, 10), strconv.FormatInt(off+compareStrChunk-1, 10)
		if err := c.both(ctx, &vs, &vt, "GETRANGE", c.key, a, b); err != nil {
			return "", err
		}
		if vs != vt {
			return fmt.Sprintf("value differs in bytes %s..%s", a, b), nil
		}
	}
	return "", nil
}

func (c *keyComparer) compareList(ctx context.Context) (string, error) {
	ls, lt, err := c.lengths(ctx, "LLEN")
	if err != nil {
		return "", err
	}
	if ls != lt {
		return fmt.Sprintf("length differs: source %d, target %d", ls, lt), nil
	}
	for start := int64(0); start < ls; start += comparePage {
		var ps, pt []string
		a, b := strconv.FormatInt(start, 10), strconv.FormatInt(start+comparePage-1, 10)
		if err := c.both(ctx, &ps, &pt, "LRANGE", c.key, a, b); err != nil {
			return "", err
		}
		if len(ps) != len(pt) {
			return fmt.Sprintf("length changed while comparing at index %d", start), nil
		}
		for i := range ps {
			if ps[i] != pt[i] {
				return fmt.Sprintf("element %d differs", start+int64(i)), nil
			}
		}
	}
	return "", nil
}

// scanPage reads one page of an SSCAN/HSCAN/ZSCAN on the source.
func (c *keyComparer) scanPage(ctx context.Context, cmd, cursor string) (string, []string, error) {
	var page []interface{}
	if err := c.run(ctx, true, &page, cmd, c.key, cursor, "COUNT", compareScanCount); err != nil {
		return "", nil, err
	}
	if len(page) != 2 {
		return "", nil, fmt.Errorf("%s: %s: reply has %d elements, want 2", c.src, cmd, len(page))
	}
	next, ok := page[0].([]byte)
	items, ok2 := page[1].([]interface{})
	if !ok || !ok2 {
		return "", nil, fmt.Errorf("%s: %s: unexpected reply shape", c.src, cmd)
	}
	out := make([]string, len(items))
	for i, it := range items {
		b, ok := it.([]byte)
		if !ok {
			return "", nil, fmt.Errorf("%s: %s: element %d is %T, want a string", c.src, cmd, i, it)
		}
		out[i] = string(b)
	}
	return string(next), out, nil
}

func (c *keyComparer) compareSet(ctx context.Context) (string, error) {
	ls, lt, err := c.lengths(ctx, "SCARD")
	if err != nil {
		return "", err
	}
	if ls != lt {
		return fmt.Sprintf("cardinality differs: source %d, target %d", ls, lt), nil
	}
	cursor := "0"
	for {
		next, members, err := c.scanPage(ctx, "SSCAN", cursor)
		if err != nil {
			return "", err
		}
		if len(members) > 0 {
			in, err := c.targetMembers(ctx, members)
			if err != nil {
				return "", err
			}
			for i, ok := range in {
				if !ok {
					return "member " + redisfmt.Quote(members[i]) + " missing on the target", nil
				}
			}
		}
		if next == "0" {
			return "", nil
		}
		cursor = next
	}
}

// targetMembers says which members the target's set holds (SMISMEMBER, or SISMEMBER before 6.2).
func (c *keyComparer) targetMembers(ctx context.Context, members []string) ([]bool, error) {
	out := make([]bool, len(members))
	if c.tgt.atLeast(6, 2) {
		var r []int64
		if err := c.run(ctx, false, &r, "SMISMEMBER", append([]string{c.key}, members...)...); err != nil {
			return nil, err
		}
		if len(r) != len(members) {
			return nil, fmt.Errorf("%s: SMISMEMBER: %d replies for %d members", c.tgt, len(r), len(members))
		}
		for i, v := range r {
			out[i] = v == 1
		}
		return out, nil
	}
	r := make([]int64, len(members))
	p := radix.NewPipeline()
	for i, m := range members {
		p.Append(radix.Cmd(&r[i], "SISMEMBER", c.key, m))
	}
	if err := c.tgt.do(ctx, c.tgtDB, p); err != nil {
		return nil, fmt.Errorf("%s: SISMEMBER: %w", c.tgt, err)
	}
	for i, v := range r {
		out[i] = v == 1
	}
	return out, nil
}

// compareByPairs compares a hash or zset: the sizes (lenCmd), then the source's pairs page by
// page (scanCmd, field or member then value or score), each page checked against the target by
// check, which returns a difference or "".
func (c *keyComparer) compareByPairs(ctx context.Context, lenCmd, scanCmd, what string,
	check func(ctx context.Context, pairs []string) (string, error)) (string, error) {
	ls, lt, err := c.lengths(ctx, lenCmd)
	if err != nil {
		return "", err
	}
	if ls != lt {
		return fmt.Sprintf("%s differs: source %d, target %d", what, ls, lt), nil
	}
	cursor := "0"
	for {
		next, pairs, err := c.scanPage(ctx, scanCmd, cursor)
		if err != nil {
			return "", err
		}
		if len(pairs)%2 != 0 {
			return "", fmt.Errorf("%s: %s: odd number of elements", c.src, scanCmd)
		}
		if len(pairs) > 0 {
			if diff, err := check(ctx, pairs); diff != "" || err != nil {
				return diff, err
			}
		}
		if next == "0" {
			return "", nil
		}
		cursor = next
	}
}

func (c *keyComparer) compareHash(ctx context.Context) (string, error) {
	return c.compareByPairs(ctx, "HLEN", "HSCAN", "field count", func(ctx context.Context, kv []string) (string, error) {
		args := make([]string, 0, 1+len(kv)/2)
		args = append(args, c.key)
		for i := 0; i < len(kv); i += 2 {
			args = append(args, kv[i])
		}
		var vals []*string
		if err := c.run(ctx, false, &vals, "HMGET", args...); err != nil {
			return "", err
		}
		if len(vals) != len(kv)/2 {
			return "", fmt.Errorf("%s: HMGET: %d values for %d fields", c.tgt, len(vals), len(kv)/2)
		}
		for i, v := range vals {
			f := kv[2*i]
			if v == nil {
				return "field " + redisfmt.Quote(f) + " missing on the target", nil
			}
			if *v != kv[2*i+1] {
				return "field " + redisfmt.Quote(f) + ": value differs", nil
			}
		}
		return "", nil
	})
}

func (c *keyComparer) compareZSet(ctx context.Context) (string, error) {
	return c.compareByPairs(ctx, "ZCARD", "ZSCAN", "cardinality", func(ctx context.Context, ms []string) (string, error) {
		members := make([]string, 0, len(ms)/2)
		for i := 0; i < len(ms); i += 2 {
			members = append(members, ms[i])
		}
		scores, err := c.targetScores(ctx, members)
		if err != nil {
			return "", err
		}
		for i, m := range members {
			want, err := strconv.ParseFloat(ms[2*i+1], 64)
			if err != nil {
				return "", fmt.Errorf("%s: ZSCAN: member %s: bad score %q", c.src, redisfmt.Quote(m), ms[2*i+1])
			}
			if scores[i] == nil {
				return "member " + redisfmt.Quote(m) + " missing on the target", nil
			}
			got, err := strconv.ParseFloat(*scores[i], 64)
			if err != nil {
				return "", fmt.Errorf("%s: member %s: bad score %q", c.tgt, redisfmt.Quote(m), *scores[i])
			}
			if got != want && !(math.IsNaN(got) && math.IsNaN(want)) {
				return fmt.Sprintf("member %s: score differs: source %s, target %s", redisfmt.Quote(m),
					strconv.FormatFloat(want, 'g', -1, 64), strconv.FormatFloat(got, 'g', -1, 64)), nil
			}
		}
		return "", nil
	})
}

// targetScores reads the target's scores of members (ZMSCORE, or ZSCORE before 6.2); nil: absent.
func (c *keyComparer) targetScores(ctx context.Context, members []string) ([]*string, error) {
	if c.tgt.atLeast(6, 2) {
		var r []*string
		if err := c.run(ctx, false, &r, "ZMSCORE", append([]string{c.key}, members...)...); err != nil {
			return nil, err
		}
		if len(r) != len(members) {
			return nil, fmt.Errorf("%s: ZMSCORE: %d replies for %d members", c.tgt, len(r), len(members))
		}
		return r, nil
	}
	vals := make([]string, len(members))
	mb := make([]radix.Maybe, len(members))
	p := radix.NewPipeline()
	for i, m := range members {
		mb[i].Rcv = &vals[i]
		p.Append(radix.Cmd(&mb[i], "ZSCORE", c.key, m))
	}
	if err := c.tgt.do(ctx, c.tgtDB, p); err != nil {
		return nil, fmt.Errorf("%s: ZSCORE: %w", c.tgt, err)
	}
	out := make([]*string, len(members))
	for i := range mb {
		if !mb[i].Null {
			out[i] = &vals[i]
		}
	}
	return out, nil
}

// compareDump compares a value of a type we cannot read natively (a module type) by its DUMP
// payload, which is only meaningful between servers of one version.
func (c *keyComparer) compareDump(ctx context.Context, typ string) (string, error) {
	if c.src.version != c.tgt.version {
		return "", fmt.Errorf("type %q cannot be compared between different server versions", typ)
	}
	var ds, dt string
	if err := c.both(ctx, &ds, &dt, "DUMP", c.key); err != nil {
		return "", err
	}
	if ds != dt {
		return "DUMP payload differs", nil
	}
	return "", nil
}

// expireAt returns the key's absolute expiry in Unix ms, -1 for none, -2 when the key is gone.
func (c *keyComparer) expireAt(ctx context.Context, src bool) (int64, error) {
	n := c.tgt
	if src {
		n = c.src
	}
	var v int64
	if n.atLeast(7, 0) {
		err := c.run(ctx, src, &v, "PEXPIRETIME", c.key)
		return v, err
	}
	if err := c.run(ctx, src, &v, "PTTL", c.key); err != nil {
		return 0, err
	}
	if v < 0 {
		return v, nil
	}
	return c.now().UnixMilli() + v, nil
}

func (c *keyComparer) compareExpire(ctx context.Context) (CheckCategory, string) {
	es, err := c.expireAt(ctx, true)
	if err != nil {
		return CheckOther, err.Error()
	}
	et, err := c.expireAt(ctx, false)
	if err != nil {
		return CheckOther, err.Error()
	}
	switch {
	case es == -2 && et == -2:
		return CheckOK, ""
	case es == -2:
		return CheckOther, "key vanished on the source during the check"
	case et == -2:
		return CheckValue, "missing on the target"
	case es == -1 && et == -1:
		return CheckOK, ""
	case es == -1:
		return CheckExpire, "no expiry on the source, target expires at " + formatMillis(et)
	case et == -1:
		return CheckExpire, "source expires at " + formatMillis(es) + ", no expiry on the target"
	}
	d := et - es
	if d < 0 {
		d = -d
	}
	if time.Duration(d)*time.Millisecond > c.tol {
		return CheckExpire, fmt.Sprintf("source expires at %s, target at %s (%.3fs apart)",
			formatMillis(es), formatMillis(et), float64(d)/1000)
	}
	return CheckOK, ""
}

func formatMillis(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

// Stream metadata that must match, from XINFO STREAM / GROUPS / CONSUMERS; a field missing on
// one side (an older server) is skipped. Sizes of the radix tree depend on encoding: not compared.
var (
	streamInfoFields     = []string{"length", "last-generated-id", "max-deleted-entry-id", "entries-added", "recorded-first-entry-id", "groups"}
	streamGroupFields    = []string{"name", "consumers", "pending", "last-delivered-id", "entries-read", "lag"}
	streamConsumerFields = []string{"name", "pending"}
)

func (c *keyComparer) compareStream(ctx context.Context) (string, error) {
	var is, it map[string]interface{}
	if err := c.both(ctx, &is, &it, "XINFO", "STREAM", c.key); err != nil {
		return "", err
	}
	if d := compareInfoFields("stream", is, it, streamInfoFields); d != "" {
		return d, nil
	}
	if d, err := c.compareStreamEntries(ctx); d != "" || err != nil {
		return d, err
	}
	var gs, gt []map[string]interface{}
	if err := c.both(ctx, &gs, &gt, "XINFO", "GROUPS", c.key); err != nil {
		return "", err
	}
	if len(gs) != len(gt) {
		return fmt.Sprintf("consumer group count differs: source %d, target %d", len(gs), len(gt)), nil
	}
	streamSortByName(gs)
	streamSortByName(gt)
	for i := range gs {
		name := replyText(gs[i]["name"])
		if d := compareInfoFields("group "+redisfmt.Quote(name), gs[i], gt[i], streamGroupFields); d != "" {
			return d, nil
		}
		var cs, ct []map[string]interface{}
		if err := c.both(ctx, &cs, &ct, "XINFO", "CONSUMERS", c.key, name); err != nil {
			return "", err
		}
		if len(cs) != len(ct) {
			return fmt.Sprintf("group %s: consumer count differs: source %d, target %d", redisfmt.Quote(name), len(cs), len(ct)), nil
		}
		streamSortByName(cs)
		streamSortByName(ct)
		for j := range cs {
			what := "group " + redisfmt.Quote(name) + " consumer " + redisfmt.Quote(replyText(cs[j]["name"]))
			if d := compareInfoFields(what, cs[j], ct[j], streamConsumerFields); d != "" {
				return d, nil
			}
		}
	}
	return "", nil
}

// compareStreamEntries walks both streams with XRANGE pages.
func (c *keyComparer) compareStreamEntries(ctx context.Context) (string, error) {
	start := "-"
	for {
		var es, et []radix.StreamEntry
		if err := c.both(ctx, &es, &et, "XRANGE", c.key, start, "+", "COUNT", strconv.Itoa(comparePage)); err != nil {
			return "", err
		}
		for i := range es {
			if i >= len(et) {
				return "entry " + es[i].ID.String() + " missing on the target", nil
			}
			if es[i].ID != et[i].ID {
				return fmt.Sprintf("entry %s on the source, %s on the target", es[i].ID, et[i].ID), nil
			}
			if !slices.Equal(es[i].Fields, et[i].Fields) {
				return "entry " + es[i].ID.String() + ": fields differ", nil
			}
		}
		if len(et) > len(es) {
			return "entry " + et[len(es)].ID.String() + " only on the target", nil
		}
		if len(es) < comparePage {
			return "", nil
		}
		start = es[len(es)-1].ID.Next().String()
	}
}

func streamSortByName(ms []map[string]interface{}) {
	sort.Slice(ms, func(i, j int) bool { return replyText(ms[i]["name"]) < replyText(ms[j]["name"]) })
}

func compareInfoFields(what string, s, t map[string]interface{}, fields []string) string {
	for _, f := range fields {
		vs, ok1 := s[f]
		vt, ok2 := t[f]
		if !ok1 || !ok2 {
			continue
		}
		if a, b := replyText(vs), replyText(vt); a != b {
			return fmt.Sprintf("%s: %s differs: source %s, target %s", what, f, a, b)
		}
	}
	return ""
}

// replyText renders a decoded reply value for comparison and messages.
func replyText(v interface{}) string {
	switch x := v.(type) {
	case nil:
		return "(nil)"
	case []byte:
		if x == nil {
			return "(nil)"
		}
		return string(x)
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case []interface{}:
		var b bytes.Buffer
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(replyText(e))
		}
		b.WriteByte(']')
		return b.String()
	}
	return fmt.Sprint(v)
}
