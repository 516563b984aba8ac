package target

import (
	"context"
	"errors"
	"testing"

	"github.com/rmt-project/rmt/aof"
)

const testCheckpointKey = "rmt:checkpoint:test"

// applyStream applies the commands of stream that end after from, as the daemon does, calling
// Flush at the end (the stream ran dry).
func applyStream(t *testing.T, w *Single, stream []*aof.Command, from int64) error {
	t.Helper()
	var end int64
	for _, cmd := range stream {
		end += cmd.N
		if end <= from {
			continue
		}
		if err := w.Apply(cmd, end); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return w.WaitOplog(context.Background())
}

func streamEnd(stream []*aof.Command) int64 {
	var end int64
	for _, c := range stream {
		end += c.N
	}
	return end
}

func TestCheckpointedBatches(t *testing.T) {
	dst := startRedis(t)
	ctx := context.Background()
	w := newSingle(t, dst.Addr, SingleOptions{CheckpointKey: testCheckpointKey, Replid: func() string { return "r1" }})
	if err := w.StartOplog(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	stream := []*aof.Command{rawCmd("SELECT", "0"), rawCmd("SET", "a", "1"), rawCmd("PING"), rawCmd("SELECT", "3"),
		rawCmd("MULTI"), rawCmd("INCR", "c"), rawCmd("INCRBY", "c", "10"), rawCmd("EXEC"), rawCmd("LPUSH", "l", "x")}
	// Enough commands for several batches.
	for i := 0; i < 2*batchMaxCmds+10; i++ {
		stream = append(stream, rawCmd("INCR", "n"))
	}
	if err := applyStream(t, w, stream, 0); err != nil {
		t.Fatal(err)
	}
	end := streamEnd(stream)
	if off, db := w.Applied(); off != end || db != 3 {
		t.Fatalf("Applied() = %d, %d; want %d, 3", off, db, end)
	}
	cp, ok, err := ReadCheckpoint(ctx, Options{Addr: dst.Addr}, testCheckpointKey)
	if err != nil || !ok || cp != (Checkpoint{Replid: "r1", Offset: end, DB: 3}) {
		t.Fatalf("checkpoint %+v %v %v, want r1 %d 3", cp, ok, err, end)
	}
	db0, db3 := readBack(t, dst.Addr, 0), readBack(t, dst.Addr, 3)
	if db0["a"] != "string:1" || db3["c"] != "string:11" || db3["n"] != "string:2010" || db3["l"] != "list:x" || len(db3) != 3 {
		t.Fatalf("db0 %v db3 %v", db0, db3)
	}
	if err := ClearCheckpoint(ctx, Options{Addr: dst.Addr}, testCheckpointKey); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := ReadCheckpoint(ctx, Options{Addr: dst.Addr}, testCheckpointKey); ok || err != nil {
		t.Fatalf("after ClearCheckpoint: %v %v", ok, err)
	}
}

// TestCheckpointQueueRefused: a command the target refuses while queueing aborts its batch; the
// batch is resent without it from the last checkpoint, and every other command runs once.
func TestCheckpointQueueRefused(t *testing.T) {
	dst := startRedis(t)
	ctx := context.Background()
	w := newSingle(t, dst.Addr, SingleOptions{CheckpointKey: testCheckpointKey})
	if err := w.StartOplog(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	first := []*aof.Command{rawCmd("INCR", "n"), rawCmd("INCR", "n")}
	if err := applyStream(t, w, first, 0); err != nil {
		t.Fatal(err)
	}
	stream := append(first, rawCmd("INCR", "n"), rawCmd("NOSUCHCOMMAND", "x"), rawCmd("INCR", "n"), rawCmd("SET", "s", "v"))
	err := applyStream(t, w, stream, streamEnd(first))
	if err == nil {
		err = w.Apply(rawCmd("PING"), streamEnd(stream)+100)
	}
	if !errors.Is(err, ErrRetry) {
		t.Fatalf("after EXECABORT: %v, want ErrRetry", err)
	}
	off, _, err := w.Reconnect(ctx)
	if err != nil || off != streamEnd(first) {
		t.Fatalf("Reconnect: %d %v, want %d", off, err, streamEnd(first))
	}
	if err := applyStream(t, w, stream, off); err != nil {
		t.Fatal(err)
	}
	got := readBack(t, dst.Addr, 0)
	if got["n"] != "string:4" || got["s"] != "string:v" {
		t.Fatalf("db 0: %v", got)
	}
	if st := w.Stats(); st.Errors[ReasonQueueRefused] != 1 {
		t.Fatalf("errors %v", st.Errors)
	}
	if off, _ := w.Applied(); off != streamEnd(stream) {
		t.Fatalf("applied %d, want %d", off, streamEnd(stream))
	}
}

// TestCheckpointReplyLost: the connection breaks after the target ran a batch's EXEC but before
// its reply came back. Reconnect takes the position from the checkpoint the batch stored, so the
// resend does not run the batch twice; a checkpoint of another replication ID is not taken.
func TestCheckpointReplyLost(t *testing.T) {
	dst := startRedis(t)
	ctx := context.Background()
	w := newSingle(t, dst.Addr, SingleOptions{CheckpointKey: testCheckpointKey, Replid: func() string { return "r1" }})
	if err := w.StartOplog(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	first := []*aof.Command{rawCmd("INCR", "n"), rawCmd("INCR", "n")}
	if err := applyStream(t, w, first, 0); err != nil {
		t.Fatal(err)
	}
	stream := append(first, rawCmd("SELECT", "2"), rawCmd("INCR", "n"), rawCmd("INCR", "n"))
	// What the lost batch did on the target, checkpoint included; then the connection breaks.
	c := client(t, dst.Addr)
	do(t, c, nil, "MULTI")
	do(t, c, nil, "SELECT", "2")
	do(t, c, nil, "INCR", "n")
	do(t, c, nil, "SELECT", "0")
	do(t, c, nil, "SET", testCheckpointKey, Checkpoint{Replid: "r1", Offset: streamEnd(stream[:4]), DB: 2}.String())
	do(t, c, nil, "EXEC")
	do(t, c, nil, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")

	off, db, err := w.Reconnect(ctx)
	if err != nil || off != streamEnd(stream[:4]) || db != 2 {
		t.Fatalf("Reconnect: %d, %d, %v; want %d, 2", off, db, err, streamEnd(stream[:4]))
	}
	if err := applyStream(t, w, stream, off); err != nil {
		t.Fatal(err)
	}
	if got := readBack(t, dst.Addr, 2); got["n"] != "string:2" {
		t.Fatalf("db 2: %v, want n = 2 (the batch ran once)", got)
	}

	// A checkpoint left by another replication history is not a position of this stream.
	do(t, c, nil, "SET", testCheckpointKey, Checkpoint{Replid: "other", Offset: 1 << 40, DB: 0}.String())
	do(t, c, nil, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
	if off, _, err := w.Reconnect(ctx); err != nil || off != streamEnd(stream) {
		t.Fatalf("Reconnect after a foreign checkpoint: %d, %v; want %d", off, err, streamEnd(stream))
	}
}

func TestParseCheckpoint(t *testing.T) {
	for _, bad := range []string{"", "r 1", "r x 0", "r 1 -1", "r -5 0", "r 1 0 extra"} {
		if _, err := ParseCheckpoint(bad); err == nil {
			t.Errorf("ParseCheckpoint(%q): no error", bad)
		}
	}
	want := Checkpoint{Replid: "abc", Offset: 123, DB: 4}
	if got, err := ParseCheckpoint(want.String()); err != nil || got != want {
		t.Errorf("round trip: %+v %v", got, err)
	}
}
