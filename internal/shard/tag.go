package shard

// HashTag returns the part of key that twemproxy hashes for a pool with hash_tag tag
// (server_pool_idx in nc_server.c): the bytes after the first tag[0] up to the first tag[1]
// after it, when there is at least one byte between them; otherwise the whole key. tag must be
// exactly two bytes, as twemproxy's config demands; any other tag (the empty one included)
// returns key unchanged. The result aliases key.
//
// With tag "{}" this is the same rule as Redis Cluster's.
func HashTag(key []byte, tag string) []byte {
	if len(tag) != 2 {
		return key
	}
	return hashTag(key, tag[0], tag[1])
}

func hashTag(key []byte, open, close byte) []byte {
	for i, b := range key {
		if b != open {
			continue
		}
		for j := i + 1; j < len(key); j++ {
			if key[j] == close {
				if j-i > 1 {
					return key[i+1 : j]
				}
				return key
			}
		}
		return key
	}
	return key
}
