package status

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestInfoBytesHuman checks RMT's _human format. The expected strings were
// printed by RMT's integer_byte_to_size_string (rmt_util.c) compiled with
// gcc on glibc, called with each value.
func TestInfoBytesHuman(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0B"},
		{1, "1B"},
		{1023, "1023B"},
		{1024, "1.00K"},
		{1025, "1.00K"},
		{1152, "1.12K"}, // 1.125: ties round to even, as glibc
		{1536, "1.50K"},
		{5368, "5.24K"},
		{1047552, "1023.00K"},
		{1048064, "1023.50K"},
		{1048575, "1024.00K"},
		{1048576, "1.00M"},
		{10485760, "10.00M"},
		{123456789, "117.74M"},
		{1073741823, "1024.00M"},
		{1073741824, "1.00G"},
		{1099511627776, "1.00T"},
		{1649267441664, "1.50T"},
		{1125899906842624, "1.00P"},
		{1125899909999999, "1.00P"},
		{1152921504606846975, "1024.00P"},
		{1152921504606846976, "1152921504606846976B"},
		{9223372036854775807, "9223372036854775807B"},
	}
	for _, tt := range tests {
		if got := infoBytesHuman(tt.n); got != tt.want {
			t.Errorf("infoBytesHuman(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestInfoKeyAndValues(t *testing.T) {
	tests := []struct {
		fn         func(string) string
		name, in   string
		want       string
		wantMaxLen int
	}{
		{infoKey, "key", "Cross Slot", "cross_slot", 0},
		{infoKey, "key", "", "unknown", 0},
		{infoKey, "key", "wrong-type:x", "wrong_type_x", 0},
		{infoValue, "value", "a:b,c=d", "a:b,c=d", 0},
		{infoValue, "value", "a\r\nb\x00c", "a  b c", 0},
		{infoFieldValue, "field", "a:b,c=d\n", "a:b c d ", 0},
		{infoFieldValue, "field", strings.Repeat("x", 1000), strings.Repeat("x", infoMaxValue), 0},
	}
	for _, tt := range tests {
		if got := tt.fn(tt.in); got != tt.want {
			t.Errorf("%s(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestCurrentServerInfoAndMemory(t *testing.T) {
	si := CurrentServerInfo("1.2.3", "rmt.yaml", 8888, time.Now().Add(-90*time.Second))
	if si.ProcessID != os.Getpid() || si.MultiplexingAPI != "epoll" || si.GoVersion == "" ||
		si.Uptime < 90*time.Second || si.OS == "" || si.TCPPort != 8888 {
		t.Fatalf("CurrentServerInfo = %+v", si)
	}
	m := CurrentMemory()
	if m.Allocator != "go" || m.HeapInUse <= 0 {
		t.Fatalf("CurrentMemory = %+v", m)
	}
	if _, err := os.Stat("/proc/self/statm"); err == nil && m.RSS <= 0 {
		t.Fatalf("RSS = %d with /proc available", m.RSS)
	}
}

func TestReasonNames(t *testing.T) {
	seen := map[string]Reason{}
	for r := ReasonTargetConn; r <= ReasonOwnKeysRemoved; r++ {
		name := r.String()
		if name == "unknown" || infoKey(name) != name {
			t.Errorf("reason %d: name %q is not an INFO key", r, name)
		}
		if other, dup := seen[name]; dup {
			t.Errorf("reasons %d and %d are both %q", other, r, name)
		}
		seen[name] = r
	}
	if Reason(0).String() != "unknown" {
		t.Errorf("the zero Reason has a name")
	}
}
