package rdb

import "sync"

// crcPoly is the Jones polynomial in reflected form, as Redis's crc64.c uses it.
const crcPoly = 0x95ac9329ac4bc9b5

// crcTables are slicing-by-8 tables for the Jones CRC, built once and never changed.
var crcTables = sync.OnceValue(func() *[8][256]uint64 {
	var t [8][256]uint64
	for i := range 256 {
		c := uint64(i)
		for range 8 {
			if c&1 == 1 {
				c = c>>1 ^ crcPoly
			} else {
				c >>= 1
			}
		}
		t[0][i] = c
	}
	for i := range 256 {
		c := t[0][i]
		for k := 1; k < 8; k++ {
			c = t[0][c&0xff] ^ c>>8
			t[k][i] = c
		}
	}
	return &t
})

// CRC64 extends crc with p: the CRC-64/Jones checksum Redis puts at the end of RDB files and DUMP
// payloads (reflected, initial value 0, no final xor). CRC64(0, []byte("123456789")) is
// 0xe9c6d914c4b8d9ca.
func CRC64(crc uint64, p []byte) uint64 {
	t := crcTables()
	for len(p) >= 8 {
		crc ^= uint64(p[0]) | uint64(p[1])<<8 | uint64(p[2])<<16 | uint64(p[3])<<24 |
			uint64(p[4])<<32 | uint64(p[5])<<40 | uint64(p[6])<<48 | uint64(p[7])<<56
		crc = t[7][crc&0xff] ^ t[6][crc>>8&0xff] ^ t[5][crc>>16&0xff] ^ t[4][crc>>24&0xff] ^
			t[3][crc>>32&0xff] ^ t[2][crc>>40&0xff] ^ t[1][crc>>48&0xff] ^ t[0][crc>>56]
		p = p[8:]
	}
	for _, b := range p {
		crc = t[0][byte(crc)^b] ^ crc>>8
	}
	return crc
}
