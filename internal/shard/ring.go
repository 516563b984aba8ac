package shard

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
)

// Distribution names (twemproxy's `distribution:` setting).
const (
	Ketama = "ketama"
	Modula = "modula"
	Random = "random"
)

type distribution uint8

const (
	distKetama distribution = iota
	distModula
	distRandom
)

// Ring is a twemproxy pool's key → server map: its hash, hash_tag and distribution over its
// servers. It is immutable after NewRing and safe for concurrent use.
//
// It models a pool with auto_eject_hosts: false, the setting under which every key always has
// one home. A pool that ejects hosts moves keys while a server is down; no static map can know
// that.
type Ring struct {
	dist   distribution
	hash   HashFunc
	tag    [2]byte
	hasTag bool
	n      int

	// ketama: the continuum, sorted by point, and each point's server (caller's index).
	points []uint32
	owners []int32

	// modula: servers in twemproxy's order (caller's index) and their cumulative weights.
	order []int32
	cum   []uint32
	total uint32
}

// NewRing builds the map of a pool of servers, in any order (twemproxy sorts them itself), with
// twemproxy's hash name ("" = fnv1a_64), distribution ("" = ketama) and hash_tag ("" = none, or
// exactly two bytes such as "{}"). Server names — Name, or the default of Server.HashName —
// must be distinct, as twemproxy demands.
func NewRing(servers []Server, hash, distribution, hashTag string) (*Ring, error) {
	if len(servers) == 0 {
		return nil, fmt.Errorf("shard: ring with no servers")
	}
	if len(servers) > math.MaxInt32 {
		return nil, fmt.Errorf("shard: ring with %d servers", len(servers))
	}
	if hash == "" {
		hash = DefaultHash
	}
	fn, err := Hash(hash)
	if err != nil {
		return nil, err
	}
	r := &Ring{hash: fn, n: len(servers)}
	switch hashTag {
	case "":
	default:
		if len(hashTag) != 2 {
			return nil, fmt.Errorf("shard: hash_tag %q: want exactly two bytes", hashTag)
		}
		r.tag, r.hasTag = [2]byte{hashTag[0], hashTag[1]}, true
	}
	order, err := twemproxyOrder(servers)
	if err != nil {
		return nil, err
	}
	var total uint64
	for _, s := range servers {
		total += uint64(s.Weight)
	}
	if total > math.MaxUint32 {
		return nil, fmt.Errorf("shard: total weight %d does not fit twemproxy's uint32", total)
	}
	switch distribution {
	case "", Ketama:
		r.dist = distKetama
		r.buildKetama(servers, order, uint32(total))
	case Modula:
		r.dist = distModula
		r.order = order
		r.cum = make([]uint32, len(order))
		var c uint32
		for i, idx := range order {
			c += uint32(servers[idx].Weight)
			r.cum[i] = c
		}
		r.total = c
	case Random:
		r.dist = distRandom
	default:
		return nil, fmt.Errorf("shard: unknown twemproxy distribution %q (want ketama, modula or random)", distribution)
	}
	return r, nil
}

// twemproxyOrder returns the caller's indexes in the order twemproxy keeps the pool's servers:
// conf_validate_server sorts them by name (compareNames) and refuses duplicate names.
func twemproxyOrder(servers []Server) ([]int32, error) {
	names := make([]string, len(servers))
	order := make([]int32, len(servers))
	for i, s := range servers {
		if s.Weight <= 0 || s.Weight > math.MaxInt32 {
			return nil, fmt.Errorf("shard: server %d (%q): weight %d, want 1..%d", i, s.Addr, s.Weight, math.MaxInt32)
		}
		n, err := s.hashName()
		if err != nil {
			return nil, fmt.Errorf("shard: server %d: %w", i, err)
		}
		names[i] = n
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return compareNames(names[a], names[b]) })
	for i := 1; i < len(order); i++ {
		if names[order[i-1]] == names[order[i]] {
			return nil, fmt.Errorf("shard: servers %d and %d have the same name %q", order[i-1], order[i], names[order[i]])
		}
	}
	return order, nil
}

// Ketama constants of nc_ketama.c.
const (
	ketamaPointsPerServer = 160 // KETAMA_POINTS_PER_SERVER
	ketamaPointsPerHash   = 4   // pointer_per_hash
	ketamaMaxHostLen      = 273 // KETAMA_MAX_HOSTLEN, snprintf's buffer including the NUL
)

// ketamaPoints is the number of continuum points ketama_update gives a server: in float32,
// floorf(weight/total * 160/4 * nservers + 1e-10) * 4. The 1e-10 is a double, so the sum is
// taken in float64 and rounded back to float32 before the floor.
func ketamaPoints(weight, total uint32, nservers int) uint32 {
	pct := float32(weight) / float32(total)
	x := float32(pct * ketamaPointsPerServer)
	x = float32(x / 4)
	x = float32(x * float32(nservers))
	y := float32(float64(x) + 0.0000000001)
	return uint32(float32(math.Floor(float64(y))) * 4)
}

// buildKetama lays out the continuum as ketama_update does: servers in twemproxy's order, for
// each of its points/4 hosts "<name>-<i>" (snprintf'd into 273 bytes, so cut at 272), the 4
// little-endian words of md5(host) as points; then sorted by value. Ties keep build order.
func (r *Ring) buildKetama(servers []Server, order []int32, total uint32) {
	type point struct {
		value uint32
		owner int32
	}
	var pts []point
	var host []byte
	for _, idx := range order {
		s := servers[idx]
		name := s.HashName()
		if i := indexNUL(name); i >= 0 {
			name = name[:i] // "%.*s" stops at a NUL
		}
		n := ketamaPoints(uint32(s.Weight), total, len(servers))
		for i := uint32(0); i < n/ketamaPointsPerHash; i++ {
			host = append(host[:0], name...)
			host = append(host, '-')
			host = strconv.AppendUint(host, uint64(i), 10)
			if len(host) >= ketamaMaxHostLen {
				host = host[:ketamaMaxHostLen-1]
			}
			sum := md5Sum(host)
			for x := range ketamaPointsPerHash {
				v := uint32(sum[4*x]) | uint32(sum[4*x+1])<<8 | uint32(sum[4*x+2])<<16 | uint32(sum[4*x+3])<<24
				pts = append(pts, point{v, idx})
			}
		}
	}
	slices.SortStableFunc(pts, func(a, b point) int {
		switch {
		case a.value < b.value:
			return -1
		case a.value > b.value:
			return 1
		}
		return 0
	})
	r.points = make([]uint32, len(pts))
	r.owners = make([]int32, len(pts))
	for i, p := range pts {
		r.points[i], r.owners[i] = p.value, p.owner
	}
}

func indexNUL(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return i
		}
	}
	return -1
}

// Len returns the number of servers.
func (r *Ring) Len() int { return r.n }

// Distribution returns "ketama", "modula" or "random".
func (r *Ring) Distribution() string {
	switch r.dist {
	case distModula:
		return Modula
	case distRandom:
		return Random
	}
	return Ketama
}

// Deterministic reports whether Pick always gives the same server for the same key: false only
// for the random distribution, where twemproxy writes each request to a random server and a
// key's home cannot be known (a read may find it, or not, on any server).
func (r *Ring) Deterministic() bool { return r.dist != distRandom }

// Pick returns the index, in the slice given to NewRing, of the server twemproxy sends key to
// (server_pool_idx in nc_server.c): a pool of one server takes every key; otherwise the key is
// cut to its hash tag, hashed (an empty key hashes to 0 without calling the hash function), and
// the hash placed by the distribution: ketama takes the first continuum point >= hash, wrapping
// to the first; modula takes hash % total weight over the servers in twemproxy's order, each
// repeated weight times. random picks a server uniformly, ignoring the key and the weights, as
// twemproxy does: fine for writing a key somewhere, useless for finding it again.
func (r *Ring) Pick(key []byte) int {
	if r.n == 1 {
		return 0
	}
	if r.dist == distRandom {
		return rand.IntN(r.n)
	}
	h := r.Hash(key)
	if r.dist == distModula {
		m := h % r.total
		i := sort.Search(len(r.cum), func(i int) bool { return r.cum[i] > m })
		return int(r.order[i])
	}
	i := sort.Search(len(r.points), func(i int) bool { return r.points[i] >= h })
	if i == len(r.points) {
		i = 0
	}
	return int(r.owners[i])
}

// Hash returns the value twemproxy places key by (server_pool_hash): the pool's hash function
// of the key's hash tag part, or 0 for an empty key.
func (r *Ring) Hash(key []byte) uint32 {
	if r.hasTag {
		key = hashTag(key, r.tag[0], r.tag[1])
	}
	if len(key) == 0 {
		return 0
	}
	return r.hash(key)
}
