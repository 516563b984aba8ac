package rdb

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
)

// benchRDB reads the file named by RMT_BENCH_RDB (make bench sets it to its 100 MB data set)
// into memory, so that the figures are the decoder's and not the disk's; the benchmark is
// skipped when it is not set.
func benchRDB(b *testing.B) []byte {
	b.Helper()
	path := os.Getenv("RMT_BENCH_RDB")
	if path == "" {
		b.Skip("RMT_BENCH_RDB not set")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkFileFraming frames every entry of the bench RDB without decoding values: the
// RESTORE path (the values' raw bytes are what RESTORE sends).
func BenchmarkFileFraming(b *testing.B) {
	data := benchRDB(b)
	m := startCPU(b, int64(len(data)))
	for b.Loop() {
		d := NewDecoder(bytes.NewReader(data))
		var e Entry
		keys := 0
		for {
			err := d.Next(&e)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if e.Kind == KindKey {
				keys++
			}
		}
		if keys == 0 {
			b.Fatal("no keys")
		}
	}
	m.stop(b)
}

// BenchmarkFileDecoding frames and fully decodes every value of the bench RDB (the
// command-rewrite path): ParseValue for held values, a ValueReader for those over the raw
// limit.
func BenchmarkFileDecoding(b *testing.B) {
	data := benchRDB(b)
	m := startCPU(b, int64(len(data)))
	for b.Loop() {
		d := NewDecoder(bytes.NewReader(data))
		var e Entry
		var el Element
		for {
			err := d.Next(&e)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if e.Kind != KindKey {
				continue
			}
			if e.Value != nil {
				if _, err := ParseValue(e.Type, e.Value); err != nil {
					b.Fatal(err)
				}
				continue
			}
			vr := NewValueReader(e.Type, bytes.NewReader(data[e.ValueOffset:e.ValueOffset+e.ValueLen]))
			for {
				err := vr.Next(&el)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	m.stop(b)
}
