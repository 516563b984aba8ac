package source

import "testing"

func TestStateString(t *testing.T) {
	tests := []struct {
		s    State
		want string
	}{
		{StateConnecting, "connecting"},
		{StateHandshake, "handshake"},
		{StateRDBTransfer, "rdb_transfer"},
		{StateStreaming, "streaming"},
		{StateBackoff, "backoff"},
		{State(-1), "unknown"},
		{State(99), "unknown"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("State(%d).String() = %q, want %q", tt.s, got, tt.want)
		}
	}
}

// TestEmitNeverBlocks: with nobody reading Events, emitting keeps every FullSync and Continue
// and drops only the oldest Disconnected events past the bound.
func TestEmitNeverBlocks(t *testing.T) {
	l := NewLink(LinkOptions{Addr: "127.0.0.1:1", Dir: t.TempDir()})
	l.emit(FullSync{Offset: 1})
	for i := 0; i < 3*maxPendingEvents; i++ {
		l.emit(Disconnected{})
	}
	l.emit(Continue{Offset: 2})
	if len(l.pending) != maxPendingEvents {
		t.Fatalf("%d pending events", len(l.pending))
	}
	if fs, ok := l.pending[0].(FullSync); !ok || fs.Offset != 1 {
		t.Fatalf("first pending %#v", l.pending[0])
	}
	if c, ok := l.pending[len(l.pending)-1].(Continue); !ok || c.Offset != 2 {
		t.Fatalf("last pending %#v", l.pending[len(l.pending)-1])
	}
}
