package shard

// SlotCount is the number of hash slots of a Redis Cluster (CLUSTER_SLOTS in cluster.h).
const SlotCount = 16384

// crc16Table is the CRC16-XMODEM table (polynomial 0x1021, MSB first), the one Redis's crc16.c
// and twemproxy's nc_crc16.c both print out. Filled once at init, never written after.
var crc16Table = makeCRC16Table()

func makeCRC16Table() [256]uint16 {
	var t [256]uint16
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}

// CRC16 is CRC16-XMODEM (polynomial 0x1021, init 0, no reflection, no final xor), Redis's
// crc16(). CRC16("123456789") is 0x31c3.
func CRC16(p []byte) uint16 {
	var crc uint16
	for _, b := range p {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^b]
	}
	return crc
}

// Slot returns the Redis Cluster hash slot of key, as CLUSTER KEYSLOT does (keyHashSlot in
// cluster.c): CRC16 of the hash tag — the bytes between the first '{' and the first '}' after
// it, when there is at least one — or of the whole key, & 16383.
func Slot(key []byte) int {
	return int(CRC16(clusterTag(key)) & (SlotCount - 1))
}

// clusterTag returns the part of key that Redis Cluster hashes: keyHashSlot's rule is
// twemproxy's hash_tag rule with "{}".
func clusterTag(key []byte) []byte { return hashTag(key, '{', '}') }
