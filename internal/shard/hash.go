package shard

import (
	"fmt"
	"strings"
)

// HashFunc is one of twemproxy's key hash functions: a key's bytes to a 32-bit value.
type HashFunc func(key []byte) uint32

// hashes lists twemproxy's hash functions in the order of HASH_CODEC in nc_hashkit.h.
var hashes = [...]struct {
	name string
	fn   HashFunc
}{
	{"one_at_a_time", oneAtATime},
	{"md5", md5Hash},
	{"crc16", crc16Twemproxy},
	{"crc32", crc32Libmemcached},
	{"crc32a", crc32a},
	{"fnv1_64", fnv1For64},
	{"fnv1a_64", fnv1aFor64},
	{"fnv1_32", fnv1For32},
	{"fnv1a_32", fnv1aFor32},
	{"hsieh", hsieh},
	{"murmur", murmur},
	{"jenkins", jenkins},
}

// DefaultHash and DefaultDistribution are twemproxy's defaults for a pool that names none
// (CONF_DEFAULT_HASH, CONF_DEFAULT_DIST in nc_conf.h).
const (
	DefaultHash         = "fnv1a_64"
	DefaultDistribution = "ketama"
)

// HashNames returns the names Hash accepts, in twemproxy's order.
func HashNames() []string {
	names := make([]string, len(hashes))
	for i, h := range hashes {
		names[i] = h.name
	}
	return names
}

// Hash returns twemproxy's hash function called name (its `hash:` setting): one_at_a_time,
// md5, crc16, crc32, crc32a, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh, murmur or jenkins.
// Each returns exactly what nutcracker 0.5.0's hash_<name>() returns for the same bytes,
// including for the empty key (twemproxy itself never hashes an empty key: see Ring.Pick).
func Hash(name string) (HashFunc, error) {
	for _, h := range hashes {
		if h.name == name {
			return h.fn, nil
		}
	}
	return nil, fmt.Errorf("shard: unknown twemproxy hash %q (want one of %s)", name, strings.Join(HashNames(), ", "))
}

// sx is a key byte as twemproxy reads it through a `const char *`: char is signed on x86, so
// bytes >= 0x80 sign-extend when converted to uint32 (0x80 becomes 0xffffff80).
func sx(b byte) uint32 { return uint32(int32(int8(b))) }
