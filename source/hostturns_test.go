package source

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
)

// TestHostTurns is common.source_safe (replica.go's hostTurns): nodes of one host take turns
// (the second waits until the first's turn ends), nodes of other hosts, or without source_safe,
// do not wait. Ported from the daemon's TestSourceSafe of before the restructuring.
func TestHostTurns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := newHostTurns(nil)
	log := zap.NewNop()
	a, ok := h.wait(ctx, "127.0.0.1:1", log)
	if !ok {
		t.Fatal("a")
	}
	other, ok := h.wait(ctx, "127.0.0.2:1", log)
	if !ok {
		t.Fatal("another host must not wait")
	}
	defer other.end()
	got := make(chan *turn, 1)
	go func() {
		b, ok := h.wait(ctx, "127.0.0.1:2", log)
		if !ok {
			b = nil
		}
		got <- b
	}()
	select {
	case <-got:
		t.Fatal("b did not wait for a")
	case <-time.After(100 * time.Millisecond): // no turn for b while a holds it
	}
	a.end()
	a.end() // idempotent: must not release b's turn
	b := <-got
	if b == nil {
		t.Fatal("b never got its turn")
	}
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if _, ok := h.wait(short, "127.0.0.1:3", log); ok {
		t.Fatal("c got a turn while b holds it")
	}
	b.end()
	c, ok := h.wait(ctx, "127.0.0.1:3", log)
	if !ok {
		t.Fatal("c")
	}
	c.end()
	if _, ok := h.wait(ctx, "not an address", log); !ok {
		t.Fatal("an address without a port is its own host")
	}

	var off *hostTurns // source_safe off
	t1, ok1 := off.wait(ctx, "127.0.0.1:9", log)
	t2, ok2 := off.wait(ctx, "127.0.0.1:8", log)
	if !ok1 || !ok2 {
		t.Fatal("source_safe off must not wait")
	}
	t1.end()
	t2.end()
	var none *turn
	none.end() // a nil turn ends without a panic
}
