package shard

import (
	"bytes"
	"testing"
)

// FuzzKey: no key panics Slot, HashTag, any hash or Pick; results stay in range; Slot is CRC16
// of the "{}" hash tag; Pick and Hash agree with the hash of HashTag.
func FuzzKey(f *testing.F) {
	for _, k := range testKeys(5, 40) {
		f.Add(k, "{}")
	}
	f.Add([]byte("{}"), "{}")
	f.Add([]byte("\xff{\x80}"), "\xff\x80")
	f.Add([]byte("aaa"), "aa")
	f.Add([]byte(nil), "")
	servers := []Server{
		{Addr: "127.0.0.1:7000", Weight: 3, Name: "alpha"},
		{Addr: "127.0.0.1:7001", Weight: 1},
		{Addr: "127.0.0.1:7002", Weight: 5, Name: "z"},
	}
	type ring struct {
		hash string
		r    *Ring
	}
	var rings []ring
	for _, h := range HashNames() {
		for _, dist := range []string{Ketama, Modula, Random} {
			r, err := NewRing(servers, h, dist, "{}")
			if err != nil {
				f.Fatal(err)
			}
			rings = append(rings, ring{h, r})
		}
	}
	f.Fuzz(func(t *testing.T, key []byte, tag string) {
		orig := bytes.Clone(key)
		s := Slot(key)
		if s < 0 || s >= SlotCount {
			t.Fatalf("Slot = %d", s)
		}
		if want := int(CRC16(HashTag(key, "{}")) & (SlotCount - 1)); s != want {
			t.Fatalf("Slot = %d, CRC16 of the {} tag gives %d", s, want)
		}
		part := HashTag(key, tag)
		if !bytes.Contains(key, part) {
			t.Fatalf("HashTag(%q, %q) = %q, not part of the key", key, tag, part)
		}
		for _, h := range HashNames() {
			fn, _ := Hash(h)
			_ = fn(key)
		}
		tagged := HashTag(key, "{}")
		for _, rr := range rings {
			i := rr.r.Pick(key)
			if i < 0 || i >= len(servers) {
				t.Fatalf("%s/%s: Pick = %d", rr.hash, rr.r.Distribution(), i)
			}
			if !rr.r.Deterministic() {
				continue
			}
			fn, _ := Hash(rr.hash)
			want := uint32(0)
			if len(tagged) > 0 {
				want = fn(tagged)
			}
			if got := rr.r.Hash(key); got != want {
				t.Fatalf("%s: Ring.Hash = %d, hash of the tag %d", rr.hash, got, want)
			}
		}
		if !bytes.Equal(key, orig) {
			t.Fatalf("key modified")
		}
	})
}

// FuzzParseServer: no line panics ParseServer; what it accepts builds a ring.
func FuzzParseServer(f *testing.F) {
	for _, s := range []string{"127.0.0.1:6379:1", "127.0.0.1:6379:10 server1", "/tmp/s.sock:2 x", "h:11211:1", "::1:7000:3", ":", " ", "a:b:c d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		s, err := ParseServer(line)
		if err != nil {
			return
		}
		if s.Weight <= 0 || s.HashName() == "" {
			t.Fatalf("ParseServer(%q) = %+v", line, s)
		}
		if _, err := NewRing([]Server{s}, "", "", ""); err != nil {
			t.Fatalf("ParseServer(%q) accepted %+v, NewRing refuses: %v", line, s, err)
		}
	})
}
