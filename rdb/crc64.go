package rdb

import (
	"encoding/binary"
	"sync"
)

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
func CRC64(crc uint64, p []byte) uint64 { return crcUpdate(crcTables(), crc, p) }

func crcUpdate(t *[8][256]uint64, crc uint64, p []byte) uint64 {
	for len(p) >= 8 {
		crc ^= binary.LittleEndian.Uint64(p)
		crc = t[7][byte(crc)] ^ t[6][byte(crc>>8)] ^ t[5][byte(crc>>16)] ^ t[4][byte(crc>>24)] ^
			t[3][byte(crc>>32)] ^ t[2][byte(crc>>40)] ^ t[1][byte(crc>>48)] ^ t[0][byte(crc>>56)]
		p = p[8:]
	}
	for _, b := range p {
		crc = t[0][byte(crc)^b] ^ crc>>8
	}
	return crc
}
