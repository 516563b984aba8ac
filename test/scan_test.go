package test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/daemon"
	"github.com/rmt-project/rmt/daemon/verify"
	"github.com/rmt-project/rmt/internal/redistest"
)

// TestScanFixture: source.mode scan against a server that refuses PSYNC, SYNC, CONFIG and
// COMMAND, loaded from the 7.0 fixture (every type, big and small encodings, expiries, dbs 0,
// 1 and 15, binary keys, a function library), into a target that refuses CONFIG and COMMAND:
// one pass, the target equals the source, and rmtd exits by itself with success. With a low
// big_key_bytes the fixture's larger keys are read in pages (HSCAN, SSCAN, ZRANGE, LRANGE)
// and its streams' DUMP replies kept on disk; with MEMORY refused too, sizes come from TYPE and
// the length commands.
func TestScanFixture(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bigKey int64
		rename []string
		logs   []string
	}{
		{name: "dump"},
		{name: "pages", bigKey: 300, logs: []string{"big key read in pages", "DUMP reply over big_key_bytes"}},
		{name: "pages_no_memory", bigKey: 300, rename: []string{`rename-command MEMORY ""`},
			logs: []string{"big key read in pages", "MEMORY USAGE refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := redistest.StartRedis(t, redistest.WithRDB(redistest.Fixture(t, "redis-7.0.15.rdb")),
				redistest.WithArgs(append(refusedOnSource(""), tc.rename...)...))
			dst := redistest.StartRedis(t, redistest.WithArgs(refusedOnTarget...))
			cfg := singleConfig(t, src, dst)
			cfg.Source.Mode = conf.ModeScan
			if tc.bigKey > 0 {
				cfg.Common.BigKeyBytes = tc.bigKey
			}
			m, r, err := runToEnd(t, cfg, 60*time.Second)
			if err != nil {
				t.Fatalf("rmtd: %v", err)
			}
			compareDumps(t, src.Dump(t), withoutCheckpoints(dst.Dump(t)), 10)
			if m["source0.state"] != "done" {
				t.Errorf("source0: %s", m["source0"])
			}
			for _, want := range tc.logs {
				if !strings.Contains(r.LogBuf.String(), want) {
					t.Errorf("the log does not say %q", want)
				}
			}
			if tc.name == "dump" {
				checkScanSource(t, cfg, src, dst)
			}
		})
	}
}

// checkScanSource: redis_check runs with a scan source (that refuses CONFIG and COMMAND): every
// key checked OK, then a key changed on the target found.
func checkScanSource(t *testing.T, cfg *conf.Config, src, dst *redistest.Redis) {
	t.Helper()
	ctx := context.Background()
	ds := src.Dump(t)
	keys := ds.Keys()
	res, err := verify.RunCheck(ctx, cfg, verify.CheckOptions{Keys: keys, Rounds: 1})
	if err != nil || res.Checked != keys || res.OK != keys {
		t.Fatalf("redis_check of %d keys: %v, %+v", keys, err, res)
	}
	for k, v := range ds.DBs[0] {
		if v.Type == "string" {
			dst.Do(t, "SET", k, "changed on the target")
			break
		}
	}
	res, err = verify.RunCheck(ctx, cfg, verify.CheckOptions{Keys: keys, Rounds: 1})
	if err != nil || res.ValueDiff != 1 || res.OK != keys-1 {
		t.Fatalf("redis_check after a key changed on the target: %v, %+v", err, res)
	}
}

// TestScanModeNotForEveryKind: a kind of source without a scan constructor (twemproxy: its
// backends take PSYNC) is refused at the start, naming the modes it has.
func TestScanModeNotForEveryKind(t *testing.T) {
	cfg := conf.Default()
	cfg.File = "test"
	cfg.Source.Type = conf.TypeTwemproxy
	cfg.Source.Servers = []string{"127.0.0.1:6379:1 a"}
	cfg.Source.Mode = conf.ModeScanLive
	cfg.Target.Servers = []string{"127.0.0.1:6380"}
	cfg.Common.Listen = "127.0.0.1:0"
	cfg.Common.Dir = t.TempDir()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	_, err := daemon.New(cfg, daemon.Options{})
	if err == nil || !strings.Contains(err.Error(), `not read in mode "scan_live"`) || !strings.Contains(err.Error(), "psync") {
		t.Fatalf("daemon.New: %v", err)
	}
}

// TestScanValuesOverHeld: with the default big_key_bytes, DUMP replies over what the writers
// hold in memory (target.MaxHeldValue) and under big_key_bytes go into the pass's spill file
// and reach the target as RESTOREs copied from it while they are sent, after the pass has moved
// on to the next keys: the target equals the source, and the spill file is gone at the end.
func TestScanValuesOverHeld(t *testing.T) {
	src := redistest.StartRedis(t, redistest.WithArgs(refusedOnSource("")...))
	dst := redistest.StartRedis(t, redistest.WithArgs(refusedOnTarget...))
	rnd := rand.New(rand.NewPCG(1, 2))
	raw := make([]byte, 3<<20) // not compressible: the DUMP replies are as big
	for i := range raw {
		raw[i] = byte(rnd.Uint32())
	}
	big := string(raw)
	for i := range 4 {
		k := strconv.Itoa(i)
		src.Do(t, "SET", "str:"+k, big+k)
		for f := range 3 {
			src.Do(t, "HSET", "hash:"+k, "f"+strconv.Itoa(f), big[:1<<20]+k)
		}
		for e := range 3 {
			src.Do(t, "XADD", "stream:"+k, "*", "e"+strconv.Itoa(e), big[:1<<20])
		}
		src.Do(t, "SET", "small:"+k, k)
	}
	cfg := singleConfig(t, src, dst)
	cfg.Source.Mode = conf.ModeScan
	m, r, err := runToEnd(t, cfg, 60*time.Second)
	if err != nil {
		t.Fatalf("rmtd: %v", err)
	}
	compareDumps(t, src.Dump(t), withoutCheckpoints(dst.Dump(t)), 10)
	if !strings.Contains(r.LogBuf.String(), "DUMP reply over big_key_bytes") {
		t.Error("no DUMP reply was kept on disk")
	}
	if m["source0.state"] != "done" {
		t.Errorf("source0: %s", m["source0"])
	}
	spills, _ := filepath.Glob(filepath.Join(cfg.Common.Dir, "*", "scan-spill", "*"))
	if len(spills) > 0 {
		t.Errorf("left on disk: %v", spills)
	}
}
