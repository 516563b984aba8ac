package shard

import "sync"

// SlotTag returns a short string whose CRC16 falls in slot (0 to SlotCount-1): a key holding
// "{" + SlotTag(s) + "}" lives in slot s, whatever else it holds (when it has no '{' before).
// The table is found by brute force over strings of letters and digits, shortest first, on the
// first call; it returns "" for a slot out of range.
func SlotTag(slot int) string {
	if slot < 0 || slot >= SlotCount {
		return ""
	}
	slotTagsOnce.Do(fillSlotTags)
	t := &slotTags[slot]
	return string(t[1 : 1+t[0]])
}

// tagAlphabet is what the tags are made of: no byte a key or a glob treats apart.
const tagAlphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

var (
	slotTagsOnce sync.Once
	slotTags     [SlotCount][4]byte // length, then up to 3 bytes; written once, by fillSlotTags
)

func fillSlotTags() {
	left := SlotCount
	var buf [3]byte
	var try func(n, at int)
	try = func(n, at int) {
		if left == 0 {
			return
		}
		if at == n {
			s := CRC16(buf[:n]) & (SlotCount - 1)
			if slotTags[s][0] == 0 {
				slotTags[s][0] = byte(n)
				copy(slotTags[s][1:], buf[:n])
				left--
			}
			return
		}
		for i := range len(tagAlphabet) {
			buf[at] = tagAlphabet[i]
			try(n, at+1)
		}
	}
	for n := 1; n <= len(buf) && left > 0; n++ {
		try(n, 0)
	}
}
