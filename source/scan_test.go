package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/rdb"
)

// scanConfig is the Config of scan nodes in tests: short timeouts and backoffs.
func scanConfig(t testing.TB) Config {
	return Config{Dir: t.TempDir(), Link: LinkOptions{Timeout: 5 * time.Second, BackoffMin: 10 * time.Millisecond,
		BackoffMax: 200 * time.Millisecond}}
}

// passOf runs a scan node's pass over addr with big-key limit maxRaw and returns its entries'
// values, decoded, by "db/key"; big is how many came in pages.
func passOf(t *testing.T, n *scanNode, maxRaw int64) (map[string]string, *ScanStats) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n.bigKeyBytes = maxRaw
	go n.Run(ctx, nil)
	var snap SnapshotReady
	select {
	case ev := <-n.Events():
		snap = ev.(SnapshotReady)
	case <-ctx.Done():
		t.Fatal("no snapshot")
	}
	ents, err := snap.Open(ctx, maxRaw)
	if err != nil {
		t.Fatal(err)
	}
	defer ents.Close()
	out := map[string]string{}
	var e rdb.Entry
	for {
		err := ents.Next(&e)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.Kind != rdb.KindKey {
			continue
		}
		var vr io.Reader = bytes.NewReader(e.Value)
		if e.Value == nil {
			vr = ents.Value(&e)
		}
		out[fmt.Sprintf("%d/%s", e.DB, e.Key)] = decodeValue(t, e.Type, vr) + expirySuffix(e.ExpireMs)
	}
	return out, n.Stats().Scan
}

func expirySuffix(ms int64) string {
	if ms == 0 {
		return ""
	}
	return " ttl"
}

// decodeValue renders a value's elements, sorted (sets and hashes come in any order).
func decodeValue(t *testing.T, typ byte, r io.Reader) string {
	t.Helper()
	vr := rdb.NewValueReader(typ, r)
	var el rdb.Element
	var parts []string
	for {
		err := vr.Next(&el)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("type %d: %v", typ, err)
		}
		switch rdb.TypeName(typ) {
		case "hash":
			parts = append(parts, string(el.Member)+"="+string(el.Value))
		case "zset":
			parts = append(parts, string(el.Member)+"="+strconv.FormatFloat(el.Score, 'g', -1, 64))
		default:
			parts = append(parts, string(el.Member))
		}
	}
	if n := rdb.TypeName(typ); n == "hash" || n == "set" || n == "zset" {
		sort.Strings(parts)
	}
	return rdb.TypeName(typ) + ":" + strings.Join(parts, ",")
}

// bigFixture writes keys of every pageable type, each over a few pages, and small ones.
func bigFixture(t *testing.T, c *rclient) map[string]string {
	t.Helper()
	want := map[string]string{}
	var list, set, hash, zset []string
	var cmds [][]string
	for i := range 2500 {
		s := strconv.Itoa(i)
		cmds = append(cmds, []string{"RPUSH", "big:list", "e" + s}, []string{"SADD", "big:set", "m" + s},
			[]string{"HSET", "big:hash", "f" + s, "v" + s},
			[]string{"ZADD", "big:zset", strconv.FormatFloat(float64(i)/4, 'g', -1, 64), "z" + s})
		list = append(list, "e"+s)
		set = append(set, "m"+s)
		hash = append(hash, "f"+s+"=v"+s)
		zset = append(zset, "z"+s+"="+strconv.FormatFloat(float64(i)/4, 'g', -1, 64))
	}
	if err := pipeStr(c, cmds...); err != nil {
		t.Fatal(err)
	}
	c.must(t, "ZADD", "big:zset", "-inf", "zmin", "+inf", "zmax")
	zset = append(zset, "zmin=-Inf", "zmax=+Inf")
	str := strings.Repeat("0123456789", 300_000) // 3 MB: three pages of GETRANGE
	c.must(t, "SET", "big:string", str)
	c.must(t, "PEXPIRE", "big:hash", "3600000")
	c.must(t, "SET", "small", "x")
	sort.Strings(set)
	sort.Strings(hash)
	sort.Strings(zset)
	want["0/big:list"] = "list:" + strings.Join(list, ",")
	want["0/big:set"] = "set:" + strings.Join(set, ",")
	want["0/big:hash"] = "hash:" + strings.Join(hash, ",") + " ttl"
	want["0/big:zset"] = "zset:" + strings.Join(zset, ",")
	want["0/big:string"] = "string:" + str
	want["0/small"] = "string:x"
	return want
}

// TestScanPassBigKeys: keys over the big-key limit come in pages, as RDB encodings the
// target's rewrite reads element by element, with their expiry; the small key by DUMP; with
// MEMORY refused as well.
func TestScanPassBigKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{{"memory", nil}, {"no_memory", []string{"--rename-command", "MEMORY", `""`}}} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRedis(t, 0, "", tc.args...)
			want := bigFixture(t, r.client(t))
			n := newScanNode(r.addr, r.addr, scanConfig(t), false, nil)
			maxRaw := int64(4096)
			if tc.args != nil {
				maxRaw = 2000 * 1024 // the element-count rule: over 2000 elements, and strings over 2 MB
			}
			got, st := passOf(t, n, maxRaw)
			for k, w := range want {
				if got[k] != w {
					t.Errorf("%s: got %.80q..., want %.80q...", k, got[k], w)
				}
			}
			if len(got) != len(want) || st.BigKeys != 5 || !st.PassDone || st.KeysScanned != 6 || st.Progress() != 100 {
				t.Errorf("%d keys, stats %+v", len(got), st)
			}
		})
	}
}

// TestBigValueLengthChanged: a big key whose length changed between the read of its length and
// its pages still gives a valid encoding of the length announced: elements past it are left
// out, and a shortfall repeats the last element; either way it is marked changed.
func TestBigValueLengthChanged(t *testing.T) {
	r := startRedis(t, 0, "")
	c := r.client(t)
	var cmds [][]string
	for i := range 1500 {
		cmds = append(cmds, []string{"HSET", "h", "f" + strconv.Itoa(i), "v"})
	}
	if err := pipeStr(c, cmds...); err != nil {
		t.Fatal(err)
	}
	for _, length := range []int64{1500, 1400, 1600} {
		sc, err := dialScanConn(context.Background(), r.addr, &LinkOptions{Timeout: 5 * time.Second}, nil)
		if err != nil {
			t.Fatal(err)
		}
		v, ok, err := newBigValue(sc, &keyRead{key: []byte("h"), big: &bigKey{typ: "hash", length: length}})
		if err != nil || !ok {
			t.Fatalf("newBigValue: %v %v", ok, err)
		}
		fields := map[string]bool{}
		vr := rdb.NewValueReader(rdb.TypeHash, v)
		var el rdb.Element
		count := int64(0)
		for {
			err := vr.Next(&el)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("length %d: %v", length, err)
			}
			count++
			fields[string(el.Member)] = true
		}
		if _, err := v.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("length %d: bytes after the value: %v", length, err)
		}
		wantFields := min(length, 1500)
		if count != length || int64(len(fields)) != wantFields || v.changed != (length != 1500) {
			t.Errorf("length %d: %d elements, %d fields, changed %v", length, count, len(fields), v.changed)
		}
		sc.Close()
	}
}

// TestBigCommands: a big key sent to the stream as native commands (DEL, a command per page,
// PEXPIREAT) rebuilds it on another server.
func TestBigCommands(t *testing.T) {
	src := startRedis(t, 0, "")
	dst := startRedis(t, 0, "")
	bigFixture(t, src.client(t))
	sc, err := dialScanConn(context.Background(), src.addr, &LinkOptions{Timeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	kr := &keyReader{addr: src.addr, facts: &serverFacts{}, bigKeyBytes: 1, log: zap.NewNop(), stats: &scanCounters{}, now: time.Now}
	dc := dst.client(t)
	dc.must(t, "SET", "big:list", "stale") // DEL comes first
	for _, key := range []string{"big:list", "big:set", "big:hash", "big:zset", "big:string"} {
		reads, err := kr.read(sc, 0, [][]byte{[]byte(key)}, nil)
		if err != nil || reads[0].big == nil {
			t.Fatalf("%s: %+v %v", key, reads, err)
		}
		var cmds []byte
		if _, err := bigCommands(sc, &reads[0], func(args ...[]byte) error {
			cmds = aof.AppendCommand(cmds, args...)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := pipe(dc, cmds); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
	}
	src.client(t).must(t, "DEL", "small")
	redistest.CompareDatasets(t, src.srv.Dump(t), dst.srv.Dump(t))
}

// pipe sends commands (RESP) on c and reads a reply for each; the first error reply fails.
func pipe(c *rclient, cmds []byte) error {
	r := aof.NewReader(bytes.NewReader(cmds))
	var cmd aof.Command
	n := 0
	for r.Next(&cmd) == nil {
		n++
	}
	c.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.c.Write(cmds); err != nil {
		return err
	}
	var first error
	for range n {
		if _, err := c.reply(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// pipeStr sends commands of strings through pipe.
func pipeStr(c *rclient, cmds ...[]string) error {
	var b []byte
	for _, a := range cmds {
		b = aof.AppendCommandString(b, a...)
	}
	return pipe(c, b)
}

// TestScanPassPTTL: before 7.0 (here PEXPIRETIME renamed away) an expiry is read with PTTL
// and made absolute at once.
func TestScanPassPTTL(t *testing.T) {
	r := startRedis(t, 0, "", "--rename-command", "PEXPIRETIME", `""`)
	c := r.client(t)
	c.must(t, "SET", "k", "v", "PX", "600000")
	n := newScanNode(r.addr, r.addr, scanConfig(t), false, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sc, err := n.dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	kr := n.keyReader()
	before := time.Now().UnixMilli()
	reads, err := kr.read(sc, 0, [][]byte{[]byte("k")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := before + 600000
	if got := reads[0].expireMs; got < want-2000 || got > want+2000 || !n.facts.pttl.Load() {
		t.Fatalf("expiry %d, want about %d (pttl %v)", got, want, n.facts.pttl.Load())
	}
}
