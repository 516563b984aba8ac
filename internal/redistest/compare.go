package redistest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TTLTolerance is how far apart two absolute expiry times may be and still compare equal.
const TTLTolerance = 2 * time.Second

// CompareRedis dumps the servers at src and dst (no AUTH) and fails the test, listing the first
// MaxDiffs differences, unless they hold the same data.
func CompareRedis(t testing.TB, src, dst string) {
	t.Helper()
	CompareDatasets(t, Dump(t, src, DumpOptions{}), Dump(t, dst, DumpOptions{}))
}

// CompareDatasets fails the test, listing the first MaxDiffs differences, unless a and b hold
// the same data (expiry within TTLTolerance).
func CompareDatasets(t testing.TB, a, b *Dataset) {
	t.Helper()
	if msg := diffMessage(a, b); msg != "" {
		t.Fatalf("%s", msg)
	}
}

// WaitEqual dumps src and dst (no AUTH) every 50 ms until they hold the same data, and fails
// the test with the last differences after timeout. For a live migration catching up.
func WaitEqual(t testing.TB, timeout time.Duration, src, dst string) {
	t.Helper()
	WaitFor(t, timeout, func() error {
		ctx := context.Background()
		a, err := DumpContext(ctx, src, DumpOptions{})
		if err != nil {
			return err
		}
		b, err := DumpContext(ctx, dst, DumpOptions{})
		if err != nil {
			return err
		}
		if msg := diffMessage(a, b); msg != "" {
			return fmt.Errorf("%s", msg)
		}
		return nil
	})
}

// diffMessage is "" for equal datasets, else a report of the differences.
func diffMessage(a, b *Dataset) string {
	diffs, total := DiffCount(a, b, TTLTolerance)
	if total == 0 {
		return ""
	}
	more := ""
	if total > len(diffs) {
		more = fmt.Sprintf(" (first %d shown)", len(diffs))
	}
	return fmt.Sprintf("%s (%d keys) and %s (%d keys) differ in %d places%s:\n  %s",
		a.Source, a.Keys(), b.Source, b.Keys(), total, more, strings.Join(diffs, "\n  "))
}

// CompareServers is CompareRedis for two harness servers, with their credentials.
func CompareServers(t testing.TB, a, b *Redis) {
	t.Helper()
	CompareDatasets(t, a.Dump(t), b.Dump(t))
}
