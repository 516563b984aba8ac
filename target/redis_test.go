package target

import (
	"context"
	"strings"
	"testing"

	"github.com/mediocregopher/radix/v4"

	"github.com/rmt-project/rmt/internal/redistest"
)

// startRedis starts a redis-server (internal/redistest) with extra command-line arguments.
func startRedis(t testing.TB, args ...string) *redistest.Redis {
	t.Helper()
	return redistest.StartRedis(t, redistest.WithFlags(args...))
}

// client opens a radix client for checking the server from the side.
func client(t testing.TB, addr string) radix.Client {
	t.Helper()
	c, err := (radix.PoolConfig{Size: 1}).New(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatalf("radix %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// do runs one command with radix into rcv and fails the test on error.
func do(t testing.TB, c radix.Client, rcv any, args ...string) {
	t.Helper()
	if err := c.Do(context.Background(), radix.Cmd(rcv, args[0], args[1:]...)); err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
}
