package target

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"

	"github.com/rmt-project/rmt/internal/redistest"
	"github.com/rmt-project/rmt/internal/shard"
	"github.com/rmt-project/rmt/rdb"
)

// unheld is a set of keys as a decoder with a small raw limit gives them: entries without
// their value's bytes, which lie in a file, read again through Entries.Value-like sections.
type unheld struct {
	f       *os.File
	entries []*rdb.Entry
}

func (u *unheld) value(e *rdb.Entry) io.Reader {
	return io.NewSectionReader(u.f, e.ValueOffset, e.ValueLen)
}

// bigKeysSource fills a source with big keys of every type (the hash and zset past their
// listpack limits) and returns their DUMP payloads as entries not held, their bytes in a file.
func bigKeysSource(t *testing.T, n int) (*redistest.Redis, *unheld) {
	t.Helper()
	src := redistest.StartRedis(t, redistest.WithFlags("--enable-debug-command", "local"))
	c := client(t, src.Addr)
	ctx := context.Background()
	p := radix.NewPipeline()
	for i := 0; i < n; i += 1000 {
		var z, h, s, l []string
		for j := i; j < i+1000 && j < n; j++ {
			k := strconv.Itoa(j)
			z = append(z, strconv.FormatFloat(float64(j)/7, 'g', -1, 64), "member:"+k)
			h = append(h, "field:"+k, strings.Repeat("v", j%40))
			s, l = append(s, "m"+k), append(l, "e"+k)
		}
		p.Append(radix.Cmd(nil, "ZADD", append([]string{"{k}zset"}, z...)...))
		p.Append(radix.Cmd(nil, "HSET", append([]string{"{k}hash"}, h...)...))
		p.Append(radix.Cmd(nil, "SADD", append([]string{"{k}set"}, s...)...))
		p.Append(radix.Cmd(nil, "RPUSH", append([]string{"{k}list"}, l...)...))
	}
	var str strings.Builder // 60 bytes an element, LZF-compressed about 3 to 1
	for i := range n {
		fmt.Fprintf(&str, "%08d:%051d", i, i*7919%1000003)
	}
	p.Append(radix.Cmd(nil, "SET", "{k}str", str.String()))
	p.Append(radix.Cmd(nil, "XADD", "{k}stream", "1-1", "f", strings.Repeat("x", n)))
	p.Append(radix.Cmd(nil, "PEXPIREAT", "{k}hash", strconv.FormatInt(4102444800000, 10)))
	if err := c.Do(ctx, p); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "values"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	u := &unheld{f: f}
	var off int64
	for _, k := range []string{"{k}zset", "{k}hash", "{k}set", "{k}list", "{k}str", "{k}stream"} {
		var payload []byte
		do(t, c, &payload, "DUMP", k)
		var pt int64
		do(t, c, &pt, "PEXPIRETIME", k)
		e := &rdb.Entry{}
		entryFromDump(t, e, 0, k, payload)
		if _, err := f.Write(e.Value); err != nil {
			t.Fatal(err)
		}
		e.ValueOffset, e.ValueLen, e.Value = off, int64(len(e.Value)), nil
		if pt > 0 {
			e.ExpireMs = pt
		}
		off += e.ValueLen
		u.entries = append(u.entries, e)
	}
	return src, u
}

// load sends every entry of u through w as the daemon does and waits for the replies.
func (u *unheld) load(t *testing.T, w Writer) {
	t.Helper()
	for _, e := range u.entries {
		err := w.Restore(e)
		if !errors.Is(err, ErrNeedsRewrite) {
			t.Fatalf("key %s: Restore %v, want ErrNeedsRewrite", e.Key, err)
		}
		if err := w.Rewrite(e, u.value(e)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WaitRDB(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// sameDigests compares DEBUG DIGEST-VALUE and the expiry of every key of u on src and dst.
func sameDigests(t *testing.T, u *unheld, src, dst radix.Client) {
	t.Helper()
	for _, e := range u.entries {
		k := string(e.Key)
		var a, b []string
		do(t, src, &a, "DEBUG", "DIGEST-VALUE", k)
		do(t, dst, &b, "DEBUG", "DIGEST-VALUE", k)
		var ta, tb int64
		do(t, src, &ta, "PEXPIRETIME", k)
		do(t, dst, &tb, "PEXPIRETIME", k)
		if fmt.Sprint(a) != fmt.Sprint(b) || ta != tb {
			t.Errorf("key %s: digest %v, expiry %d on the source; %v, %d on the target", k, a, ta, b, tb)
		}
	}
}

// TestRestoreFromFile: values not held go as one RESTORE each, their payload copied from the
// file (the CRC64 computed on the way), or as commands past big_key_bytes (strings still as
// RESTORE); either way the target ends with the source's values.
func TestRestoreFromFile(t *testing.T) {
	src, u := bigKeysSource(t, 50_000)
	for _, tc := range []struct {
		name    string
		bigKey  int64
		version int // the source's RDB version: newer than the target's, everything is rewritten
	}{{"restore", 0, 10}, {"bigkey", 10_000, 10}, {"older_target", 0, 11}} {
		t.Run(tc.name, func(t *testing.T) {
			bigKey := tc.bigKey
			dst := startRedis(t, "--enable-debug-command", "local")
			w := newSingle(t, dst.Addr, SingleOptions{BigKeyBytes: bigKey, SourceRDBVersion: tc.version})
			u.load(t, w)
			st := w.Stats()
			if len(st.Errors) != 0 {
				t.Fatalf("errors %v: %s", st.Errors, st.LastError)
			}
			var fromFile, rewritten uint64
			for _, e := range u.entries {
				if tc.version > 10 {
					rewritten++
				} else if bigKey == 0 || e.ValueLen <= bigKey || e.Type == rdb.TypeString || rdb.TypeName(e.Type) == "stream" {
					fromFile++
				} else {
					rewritten++
				}
			}
			if rewritten < 3 && bigKey > 0 {
				t.Fatalf("only %d values over big_key_bytes", rewritten)
			}
			if st.RestoresFromFile != fromFile || st.Restored != fromFile || st.Rewritten != rewritten {
				t.Fatalf("restored %d (%d from the file), rewritten %d", st.Restored, st.RestoresFromFile, st.Rewritten)
			}
			sameDigests(t, u, client(t, src.Addr), client(t, dst.Addr))
		})
	}
}

// TestRestoreFromFileBusy: a RESTORE from the file refused for now (BUSY: a script runs) is
// resent, its payload copied from the file again.
func TestRestoreFromFileBusy(t *testing.T) {
	src, u := bigKeysSource(t, 5_000)
	dst := startRedis(t, "--enable-debug-command", "local", "--busy-reply-threshold", "10")
	w := newSingle(t, dst.Addr, SingleOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	killScript := func() {
		if c, err := radix.Dial(context.Background(), "tcp", dst.Addr); err == nil {
			c.Do(context.Background(), radix.Cmd(nil, "SCRIPT", "KILL"))
			c.Close()
		}
	}
	defer killScript() // whatever happens, before waiting for the script's goroutine
	script := make(chan error, 1)
	wg.Add(1)
	go func() { // busy until killed
		defer wg.Done()
		c, err := radix.Dial(ctx, "tcp", dst.Addr)
		if err != nil {
			script <- err
			return
		}
		defer c.Close()
		script <- c.Do(ctx, radix.Cmd(nil, "EVAL", "while true do end", "0"))
	}()
	probe := client(t, dst.Addr)
	redistest.WaitFor(t, 10*time.Second, func() error {
		var busy string
		err := probe.Do(ctx, radix.Cmd(&busy, "PING"))
		if err == nil || !strings.Contains(err.Error(), "BUSY") {
			return fmt.Errorf("not busy yet: %v", err)
		}
		return nil
	})
	wg.Add(1)
	go func() { // the script ends once a RESTORE was refused
		defer wg.Done()
		_ = redistest.Poll(30*time.Second, func() error {
			if w.Stats().Retried == 0 {
				return errors.New("no RESTORE refused yet")
			}
			return nil
		})
		killScript()
	}()
	u.load(t, w)
	<-script
	st := w.Stats()
	if st.Retried == 0 || st.RestoresFromFile != uint64(len(u.entries)) || len(st.Errors) != 0 {
		t.Fatalf("retried %d, from the file %d, errors %v", st.Retried, st.RestoresFromFile, st.Errors)
	}
	sameDigests(t, u, client(t, src.Addr), client(t, dst.Addr))
}

// TestClusterRestoreFromFileMoved: RESTOREs from the file through a stale slot map are MOVED
// and resent to the new owner, their payload copied again.
func TestClusterRestoreFromFileMoved(t *testing.T) {
	src, u := bigKeysSource(t, 20_000)
	tc := &testCluster{nodes: redistest.StartCluster(t, 3, redistest.WithFlags("--enable-debug-command", "local")).Nodes}
	for _, s := range tc.nodes {
		tc.cli = append(tc.cli, client(t, s.Addr))
	}
	w := newCluster(t, tc, ClusterOptions{})
	ids := make([]string, 3)
	for i, c := range tc.cli {
		do(t, c, &ids[i], "CLUSTER", "MYID")
	}
	slot := strconv.Itoa(shard.Slot([]byte("{k}")))
	from := tc.nodeOf("{k}")
	to := (from + 1) % 3
	for _, i := range []int{to, from, 3 - to - from} {
		do(t, tc.cli[i], nil, "CLUSTER", "SETSLOT", slot, "NODE", ids[to])
	}
	u.load(t, w)
	st := w.Stats()
	if st.Retried == 0 || st.RestoresFromFile < uint64(len(u.entries)) || len(st.Errors) != 0 {
		t.Fatalf("retried %d, from the file %d, errors %v", st.Retried, st.RestoresFromFile, st.Errors)
	}
	sameDigests(t, u, client(t, src.Addr), tc.cli[to])
}
