package shard

import (
	"fmt"
	"testing"

	"github.com/rmt-project/rmt/internal/redistest"
)

func TestCRC16(t *testing.T) {
	tests := []struct {
		in   string
		want uint16
	}{
		{"", 0},
		{"123456789", 0x31c3}, // the CRC16-XMODEM check value (Redis's crc16.c comment)
		{"a", 0x7c87},
	}
	for _, tt := range tests {
		if got := CRC16([]byte(tt.in)); got != tt.want {
			t.Errorf("CRC16(%q) = %#04x, want %#04x", tt.in, got, tt.want)
		}
	}
}

// TestSlotTable: expected slots from CLUSTER KEYSLOT on redis-server 7.0.15 started with
// --cluster-enabled yes (redis-cli -p <port> CLUSTER KEYSLOT <key>).
func TestSlotTable(t *testing.T) {
	tests := []struct {
		key  string
		want int
	}{
		{"", 0},
		{"foo", 12182},
		{"bar", 5061},
		{"{user1000}.following", 3443},
		{"{user1000}.followers", 3443},
		{"user1000", 3443},
		{"foo{}{bar}", 8363},    // "{}" is empty: the whole key
		{"foo{{bar}}zap", 4015}, // tag "{bar"
		{"foo{bar}{zap}", 5061}, // first tag only: "bar"
		{"{", 4092},
		{"}", 12090},
		{"x{y", 2740},
		{"\xff\x80", 4727},
		{"caf\xc3\xa9", 5735},
	}
	for _, tt := range tests {
		if got := Slot([]byte(tt.key)); got != tt.want {
			t.Errorf("Slot(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}
}

// TestSlotAgainstRedis asks a real redis-server 7.0 (cluster mode, no slots assigned: CLUSTER
// KEYSLOT needs none) for the slot of 2,000 keys: ASCII, binary, UTF-8, long, and every shape of
// hash tag, and compares each with Slot.
func TestSlotAgainstRedis(t *testing.T) {
	addr := redistest.StartRedis(t, redistest.WithCluster()).Addr
	c, err := dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	keys := testKeys(1, 2000)
	for _, k := range keys {
		c.send("CLUSTER", "KEYSLOT", k)
	}
	if err := c.flush(); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		r, err := c.read()
		if err != nil {
			t.Fatal(err)
		}
		want, ok := r.(int64)
		if !ok {
			t.Fatalf("CLUSTER KEYSLOT %q: %v", k, r)
		}
		if got := Slot(k); got != int(want) {
			t.Errorf("Slot(%s) = %d, CLUSTER KEYSLOT says %d", quote(string(k)), got, want)
		}
	}
}

func BenchmarkSlot(b *testing.B) {
	for _, key := range []string{"user:1234567:session:abcdef", "{user1000}.following"} {
		k := []byte(key)
		b.Run(fmt.Sprintf("len%d", len(k)), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(k)))
			s := 0
			for b.Loop() {
				s += Slot(k)
			}
			sink = fmt.Sprint(s)
		})
	}
}
