package rdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
)

// rdbFile builds a file: magic, body, EOF opcode and checksum.
func rdbFile(magic string, body ...[]byte) []byte {
	b := []byte(magic)
	for _, p := range body {
		b = append(b, p...)
	}
	b = append(b, opEOF)
	return binary.LittleEndian.AppendUint64(b, CRC64(0, b))
}

func moduleID(name string, ver uint64) uint64 {
	var id uint64
	for i := 0; i < 9; i++ {
		id = id<<6 | uint64(strings.IndexByte(moduleNameChars, name[i]))
	}
	return id<<10 | ver
}

// moduleOps serializes a module value the way RedisModule_Save* do in RDB.
func moduleOps() []byte {
	b := appendLen(nil, moduleOpSInt)
	b = appendLen(b, 5)
	b = appendLen(b, moduleOpString)
	b = appendString(b, []byte("abc"))
	b = appendLen(b, moduleOpFloat)
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(1.5))
	b = appendLen(b, moduleOpDouble)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(2.5))
	return appendLen(b, moduleOpEOF)
}

func TestOpcodes(t *testing.T) {
	id := moduleID("mymodule1", 3)
	modVal := append(appendLen(nil, id), moduleOps()...)
	auxVal := append(append(appendLen(nil, id), appendLen(appendLen(nil, moduleOpUInt), 2)...), moduleOps()...)
	preGA := appendString(nil, []byte("mylib"))
	preGA = appendString(preGA, []byte("LUA"))
	preGA = appendLen(preGA, 1)
	preGA = appendString(preGA, []byte("a description"))
	preGA = appendString(preGA, []byte("redis.register_function('f', function() return 1 end)"))

	data := rdbFile("VALKEY080",
		[]byte{opAux}, appendString(nil, []byte("valkey-ver")), appendString(nil, []byte("9.0.0")),
		[]byte{opModuleAux}, auxVal,
		[]byte{opFunctionPreGA}, preGA,
		[]byte{opSelectDB}, appendLen(nil, 3),
		[]byte{opResizeDB}, appendLen(nil, 10), appendLen(nil, 2),
		[]byte{opSlotInfo}, appendLen(nil, 1234), appendLen(nil, 10), appendLen(nil, 2),
		[]byte{opExpireTime}, binary.LittleEndian.AppendUint32(nil, 2000000000),
		[]byte{opIdle}, appendLen(nil, 77),
		[]byte{TypeString}, appendString(nil, []byte("k1")), appendString(nil, []byte("v1")),
		[]byte{opFreq, 9},
		[]byte{TypeModule2}, appendString(nil, []byte("mod")), modVal,
	)
	recs, err := decodeAll(t, bytes.NewReader(data), -1)
	if err != io.EOF {
		t.Fatal(err)
	}
	if len(recs) != 5 || recs[0].version != ValkeyVersion {
		t.Fatalf("%d entries, version %d", len(recs), recs[0].version)
	}
	if r := recs[0]; r.Kind != KindAux || string(r.Key) != "valkey-ver" || string(r.Value) != "9.0.0" {
		t.Errorf("aux: %+v", r.Entry)
	}
	if r := recs[1]; r.Kind != KindModuleAux || string(r.Key) != "mymodule1" || !bytes.Equal(r.Value, auxVal) {
		t.Errorf("module aux: %+v", r.Entry)
	}
	if r := recs[2]; r.Kind != KindFunction ||
		string(r.Value) != "#!LUA name=mylib\nredis.register_function('f', function() return 1 end)" {
		t.Errorf("function pre-GA: %q", r.Value)
	}
	if r := recs[3]; r.Kind != KindKey || r.DB != 3 || string(r.Key) != "k1" || r.ExpireMs != 2000000000000 ||
		r.Idle != 77 || r.Freq != -1 || r.Type != TypeString {
		t.Errorf("k1: %+v", r.Entry)
	}
	r := recs[4]
	if r.Kind != KindKey || string(r.Key) != "mod" || r.Idle != -1 || r.Freq != 9 || r.ExpireMs != 0 || !bytes.Equal(r.Value, modVal) {
		t.Errorf("module key: %+v", r.Entry)
	}
	v, err := ParseValue(r.Type, r.Value)
	if err != nil || v.Module == nil || v.Module.Name != "mymodule1" || v.Module.ID != id {
		t.Errorf("module value: %+v %v", v, err)
	}
	var el Element
	if err := NewValueReader(r.Type, bytes.NewReader(r.Value)).Next(&el); !errors.Is(err, ErrUnsupported) {
		t.Errorf("ValueReader on a module: %v", err)
	}
	bad := append(appendLen(nil, id), appendLen(nil, 9)...) // opcode 9 does not exist
	if _, err := ParseValue(TypeModule2, bad); !errors.Is(err, ErrCorrupt) {
		t.Errorf("bad module opcode: %v", err)
	}
}

// TestHashFieldTTLPreGA covers the 7.4 release-candidate hash types, with absolute TTLs.
func TestHashFieldTTLPreGA(t *testing.T) {
	meta := appendLen(nil, 2)
	meta = appendString(appendString(appendLen(meta, 4102444800000), []byte("f1")), []byte("v1"))
	meta = appendString(appendString(appendLen(meta, 0), []byte("f2")), []byte("v2"))
	lp := []byte{0, 0, 0, 0, 0, 0}
	lp = lpAppendInt(lpAppendString(lpAppendString(lp, []byte("f1")), []byte("v1")), 4102444800000)
	lp = lpAppendInt(lpAppendString(lpAppendString(lp, []byte("f2")), []byte("v2")), 0)
	lp = lpFinish(lp, 6)
	lpex := appendString(nil, lp)
	lpexGA := append(binary.LittleEndian.AppendUint64(nil, 4102444800000), lpex...)
	tests := []struct {
		typ byte
		raw []byte
	}{
		{TypeHashMetadataPreGA, meta},
		{TypeHashListpackExPreGA, lpex},
		{TypeHashListpackEx, lpexGA},
	}
	for _, tc := range tests {
		v, err := ParseValue(tc.typ, tc.raw)
		if err != nil {
			t.Fatalf("type %d: %v", tc.typ, err)
		}
		want := []HashField{{[]byte("f1"), []byte("v1"), 4102444800000}, {[]byte("f2"), []byte("v2"), 0}}
		if dumpValue(&Value{Hash: v.Hash}) != dumpValue(&Value{Hash: want}) {
			t.Errorf("type %d: %s", tc.typ, dumpValue(v))
		}
		data := rdbFile("REDIS0012", []byte{tc.typ}, appendString(nil, []byte("h")), tc.raw)
		recs, err := decodeAll(t, bytes.NewReader(data), -1)
		if err != io.EOF || len(recs) != 1 || !bytes.Equal(recs[0].Value, tc.raw) {
			t.Errorf("type %d framing: %v", tc.typ, err)
		}
	}
}

// TestValkeyHash2Refused: Valkey 9 reuses type 22 for a layout of its own.
func TestValkeyHash2Refused(t *testing.T) {
	data := rdbFile("VALKEY080", []byte{22}, appendString(nil, []byte("h")), appendLen(nil, 0))
	if _, err := decodeAll(t, bytes.NewReader(data), -1); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), `key "h"`) && !strings.Contains(err.Error(), "Valkey") {
		t.Fatalf("got %v", err)
	}
}
