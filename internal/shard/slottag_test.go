package shard

import (
	"strings"
	"testing"
)

// TestSlotTag: every slot has a tag, short, of letters and digits only, whose key form lands in
// that slot; out of range gives "".
func TestSlotTag(t *testing.T) {
	longest := 0
	for s := range SlotCount {
		tag := SlotTag(s)
		if tag == "" || strings.Trim(tag, tagAlphabet) != "" {
			t.Fatalf("slot %d: tag %q", s, tag)
		}
		if got := Slot([]byte("rmt:checkpoint:127.0.0.1:6379:{" + tag + "}")); got != s {
			t.Fatalf("slot %d: tag %q lands in slot %d", s, tag, got)
		}
		longest = max(longest, len(tag))
	}
	if longest > 3 {
		t.Errorf("longest tag %d bytes", longest)
	}
	for _, s := range []int{-1, SlotCount} {
		if tag := SlotTag(s); tag != "" {
			t.Errorf("SlotTag(%d) = %q, want \"\"", s, tag)
		}
	}
}
