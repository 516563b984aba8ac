package shard

import (
	"crypto/md5"
	"encoding/binary"
	"hash/crc32"
)

// crc16Twemproxy is hash_crc16 of nc_crc16.c: the XMODEM table, but the running value is a
// uint32 that is shifted left and never masked, so the result keeps bits above 16
// (hash_crc16("apple") is 3662830516). Only bits 8..15 select the table entry.
func crc16Twemproxy(key []byte) uint32 {
	var crc uint32
	for _, b := range key {
		crc = crc<<8 ^ uint32(crc16Table[byte(crc>>8)^b])
	}
	return crc
}

// crc32Libmemcached is hash_crc32 of nc_crc32.c, libmemcached's variant: the IEEE CRC-32,
// then bits 16..30 only.
func crc32Libmemcached(key []byte) uint32 {
	return crc32.ChecksumIEEE(key) >> 16 & 0x7fff
}

// crc32a is hash_crc32a: the plain IEEE CRC-32.
func crc32a(key []byte) uint32 {
	return crc32.ChecksumIEEE(key)
}

// md5Hash is hash_md5 of nc_md5.c: the first 4 bytes of the MD5 digest, little-endian.
func md5Hash(key []byte) uint32 {
	sum := md5.Sum(key)
	return binary.LittleEndian.Uint32(sum[:4])
}

// md5Sum is the MD5 digest, as md5_signature of nc_md5.c.
func md5Sum(p []byte) [16]byte { return md5.Sum(p) }
