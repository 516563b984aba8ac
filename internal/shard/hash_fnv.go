package shard

// FNV variants of nc_fnv.c. All four read key bytes as signed char (see sx).
const (
	fnv64Init  = 0xcbf29ce484222325 // FNV_64_INIT
	fnv64Prime = 0x100000001b3      // FNV_64_PRIME
	fnv32Init  = 2166136261         // FNV_32_INIT
	fnv32Prime = 16777619           // FNV_32_PRIME
)

// fnv1For64 is hash_fnv1_64: FNV-1 computed in 64 bits and returned truncated to the low 32.
// The low 32 bits of a 64-bit product depend only on the low 32 bits of its factors, so the
// whole computation runs in 32 bits with the truncated basis and prime.
func fnv1For64(key []byte) uint32 {
	h := uint32(fnv64Init & 0xffffffff)
	for _, b := range key {
		h *= uint32(fnv64Prime & 0xffffffff)
		h ^= sx(b)
	}
	return h
}

// fnv1aFor64 is hash_fnv1a_64, which despite its name is 32-bit FNV-1a with the 64-bit
// constants truncated: basis 0x84222325, prime 0x1b3.
func fnv1aFor64(key []byte) uint32 {
	h := uint32(fnv64Init & 0xffffffff)
	for _, b := range key {
		h ^= sx(b)
		h *= uint32(fnv64Prime & 0xffffffff)
	}
	return h
}

// fnv1For32 is hash_fnv1_32: FNV-1, 32 bits.
func fnv1For32(key []byte) uint32 {
	h := uint32(fnv32Init)
	for _, b := range key {
		h *= fnv32Prime
		h ^= sx(b)
	}
	return h
}

// fnv1aFor32 is hash_fnv1a_32: FNV-1a, 32 bits.
func fnv1aFor32(key []byte) uint32 {
	h := uint32(fnv32Init)
	for _, b := range key {
		h ^= sx(b)
		h *= fnv32Prime
	}
	return h
}
