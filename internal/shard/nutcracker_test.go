package shard

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
)

// A pool layout: which backends, in config order, with which weights and names.
type layout struct {
	name     string
	backends []int    // index into the started redis-servers
	weights  []int    //
	names    []string // "" = no name: twemproxy names it "host:port"
}

var layouts = []layout{
	// Mixed: named and unnamed, unequal weights, config order unlike twemproxy's sorted order
	// ("z" < "alpha" < "127.0.0.1:p1" vs "127.0.0.1:p2" by bytes).
	{"mixed", []int{1, 0, 3, 2}, []int{3, 1, 5, 2}, []string{"alpha", "", "z", ""}},
	// Equal weights, no names: order by port bytes; ketama's 1/3 float32 rounding.
	{"equal", []int{2, 0, 1}, []int{1, 1, 1}, []string{"", "", ""}},
	// Non-ASCII and equal-length names (sorted "b" < "aa" < "\xc3\xa4"), far-apart weights.
	{"names", []int{0, 1, 2, 3}, []int{100, 1, 7, 13}, []string{"\xc3\xa4", "b", "aa", "zz"}},
	// Weights 29, 1, 30: in float32 the 29 gets floorf(39.999996)*4 = 228 ketama points, not 232.
	{"float32", []int{0, 2, 3}, []int{29, 1, 30}, []string{"", "", ""}},
	// Names past ketama's 273-byte snprintf buffer: "<name>-<i>" is cut to 272 bytes, so every
	// point of such a server comes from one host string.
	{"long", []int{3, 1, 2}, []int{1, 1, 2}, []string{"1" + strings.Repeat("n", 300), "2" + strings.Repeat("n", 268), ""}},
	// A unix socket without a name: twemproxy names it "/path/redis.sock:" (with the ':').
	{"unix", []int{4, 0, 1}, []int{1, 2, 1}, []string{"", "", "m"}},
}

type pool struct {
	name   string
	layout layout
	hash   string
	dist   string
	tag    string
	listen string
}

// TestNutcracker writes ~1,000 keys (ASCII, binary with bytes >= 0x80, UTF-8, long, tagged, the
// empty key) through a real nutcracker 0.5.0 for every hash × {ketama, modula} × {no tag, "{}"}
// on a 4-server pool of mixed weights and names, and every hash × {ketama, modula} on a
// 3-server pool of equal weights; then finds each key on the backends (SCAN) and checks that
// Ring.Pick names the same backend. One nutcracker serves all the pools (one listen port each);
// the backends are shared and flushed between pools.
func TestNutcracker(t *testing.T) {
	redistest.NeedBinary(t, "nutcracker")
	// backends are "127.0.0.1:port" for SCAN and FLUSHALL; configured is how the pools name
	// them: the same, except backend 4, which nutcracker reaches by its unix socket.
	backends := make([]string, 5)
	configured := make([]string, 5)
	for i := range backends {
		if i == 4 {
			sock := filepath.Join(t.TempDir(), "redis.sock")
			backends[i] = startRedis(t, "--unixsocket", sock)
			configured[i] = sock
			continue
		}
		backends[i] = startRedis(t)
		configured[i] = backends[i]
	}
	var pools []*pool
	for _, l := range layouts {
		tags := []string{""}
		switch l.name {
		case "mixed":
			tags = append(tags, "{}")
		case "names":
			tags = append(tags, "::") // the same byte opens and closes: "user:42:x" hashes "42"
		}
		for _, tag := range tags {
			for _, dist := range []string{Ketama, Modula} {
				for _, h := range HashNames() {
					pools = append(pools, &pool{name: fmt.Sprintf("p%d", len(pools)), layout: l, hash: h, dist: dist, tag: tag})
				}
			}
		}
		pools = append(pools, &pool{name: fmt.Sprintf("p%d", len(pools)), layout: l, hash: "fnv1a_64", dist: Random})
	}
	startNutcracker(t, configured, pools)

	for i, p := range pools {
		t.Run(fmt.Sprintf("%s/%s/%s/tag=%q", p.layout.name, p.dist, p.hash, p.tag), func(t *testing.T) {
			servers := make([]Server, len(p.layout.backends))
			for j, b := range p.layout.backends {
				servers[j] = Server{Addr: configured[b], Weight: p.layout.weights[j], Name: p.layout.names[j]}
			}
			ring, err := NewRing(servers, p.hash, p.dist, p.tag)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range backends {
				if err := flushAll(b); err != nil {
					t.Fatal(err)
				}
			}
			keys := testKeys(uint64(100+i), 1000)
			if err := setAll(p.listen, keys); err != nil {
				t.Fatal(err)
			}
			where, err := locate(backends, keys)
			if err != nil {
				t.Fatal(err)
			}
			perServer := make([]int, len(servers))
			bad := 0
			for _, k := range keys {
				got := where[string(k)]
				if p.dist == Random {
					perServer[indexOf(p.layout.backends, got)]++
					continue
				}
				pick := ring.Pick(k)
				perServer[pick]++
				if want := indexOf(p.layout.backends, got); pick != want {
					bad++
					if bad <= 10 {
						t.Errorf("Pick(%s) = %d (%s), nutcracker put it on %d (%s); hash %d",
							quote(string(k)), pick, servers[pick].HashName(), want, servers[want].HashName(), ring.Hash(k))
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d keys placed differently", bad, len(keys))
			}
			for j, n := range perServer {
				// twemproxy's crc32 is 15 bits (0..32767): under ketama every key takes the
				// lowest point, so one server gets them all, in nutcracker as in Pick. A name cut
				// to 272 bytes gives all its ketama points from one string, 4 distinct points in
				// all: its arcs are so small that 1,000 keys can miss them, depending on where the
				// other servers' points (from their random ports) fall.
				cut := p.dist == Ketama && len(servers[j].HashName()) > 250
				if n == 0 && !(p.hash == "crc32" && p.dist == Ketama) && !cut {
					t.Errorf("server %d (%s) got no key: the check would not see a wrong pick", j, servers[j].HashName())
				}
			}
			t.Logf("%d keys, per server %v", len(keys), perServer)
		})
	}
}

func indexOf(s []int, v int) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// startNutcracker starts one nutcracker (redistest.StartNutcrackerPools) serving every pool,
// each on its own free port, and sets each pool's listen address.
func startNutcracker(t *testing.T, backends []string, pools []*pool) {
	t.Helper()
	opts := make([]redistest.NutcrackerOptions, len(pools))
	for i, p := range pools {
		opts[i] = redistest.NutcrackerOptions{Name: p.name, Hash: p.hash, Distribution: p.dist, HashTag: p.tag,
			Weights: p.layout.weights, Names: p.layout.names, Extra: []string{"preconnect: true", "timeout: 5000"}}
		for _, b := range p.layout.backends {
			opts[i].Addrs = append(opts[i].Addrs, backends[b])
		}
	}
	started := time.Now()
	n := redistest.StartNutcrackerPools(t, opts...)
	for i, p := range pools {
		p.listen = n.Pools[i].Addr
	}
	t.Logf("nutcracker: %d pools ready in %v", len(pools), time.Since(started).Round(time.Millisecond))
}

func flushAll(addr string) error {
	c, err := dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.do("FLUSHALL")
	return err
}

// setAll SETs every key (value "v") through addr, pipelined, and checks each reply is OK.
func setAll(addr string, keys [][]byte) error {
	c, err := dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, k := range keys {
		c.send("SET", k, "v")
	}
	if err := c.flush(); err != nil {
		return err
	}
	for _, k := range keys {
		r, err := c.read()
		if err != nil {
			return fmt.Errorf("SET %s: %w", quote(string(k)), err)
		}
		if r != "OK" {
			return fmt.Errorf("SET %s: %v", quote(string(k)), r)
		}
	}
	return nil
}

// locate finds which backend holds each key: every key must be on exactly one, and nothing else
// may be there.
func locate(backends []string, keys [][]byte) (map[string]int, error) {
	want := make(map[string]bool, len(keys))
	for _, k := range keys {
		want[string(k)] = true
	}
	where := make(map[string]int, len(keys))
	for i, b := range backends {
		found, err := scanAll(b)
		if err != nil {
			return nil, err
		}
		for _, k := range found {
			if !want[k] {
				return nil, fmt.Errorf("backend %d has unexpected key %s", i, quote(k))
			}
			if j, dup := where[k]; dup {
				return nil, fmt.Errorf("key %s on backends %d and %d", quote(k), j, i)
			}
			where[k] = i
		}
	}
	if len(where) != len(keys) {
		return nil, fmt.Errorf("found %d of %d keys on the backends", len(where), len(keys))
	}
	return where, nil
}
