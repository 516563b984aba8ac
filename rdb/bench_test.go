package rdb

import (
	"bytes"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
)

// cpuMeter reports throughput per CPU second besides the wall-clock MB/s: on a shared machine
// the wall clock says more about the neighbours than about the code.
type cpuMeter struct {
	start time.Duration
	bytes int64
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU(b *testing.B, n int64) *cpuMeter {
	b.SetBytes(n)
	b.ReportAllocs()
	b.ResetTimer()
	return &cpuMeter{start: cpuTime(), bytes: n}
}

func (m *cpuMeter) stop(b *testing.B) {
	if d := cpuTime() - m.start; d > 0 {
		b.ReportMetric(float64(m.bytes)*float64(b.N)/d.Seconds()/1e6, "cpuMB/s")
	}
}

// bigFile repeats the largest fixture's keys (raw values, renamed keys) into one file of
// about 10 MB.
func bigFile(b *testing.B) ([]byte, []rec) {
	b.Helper()
	data := readFixture(b, redistest.Fixture(b, "redis-7.4.1.rdb"))
	recs, err := decodeAll(b, bytes.NewReader(data), -1)
	if err != io.EOF {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	enc := NewEncoder(&buf, recs[0].version)
	enc.WriteHeader()
	var keys []rec
	for i := 0; buf.Len() < 10<<20; i++ {
		for _, r := range recs {
			if r.Kind == KindKey {
				enc.WriteRawEntry(fmt.Appendf(nil, "%s:%d", r.Key, i), r.Type, r.Value, 0)
				if i == 0 {
					keys = append(keys, r)
				}
			}
		}
	}
	if err := enc.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes(), keys
}

func BenchmarkDecoderFraming(b *testing.B) {
	data, _ := bigFile(b)
	var e Entry
	m := startCPU(b, int64(len(data)))
	defer m.stop(b)
	for b.Loop() {
		d := NewDecoder(bytes.NewReader(data))
		for {
			err := d.Next(&e)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkParseValue(b *testing.B) {
	_, keys := bigFile(b)
	var n int64
	for _, k := range keys {
		n += int64(len(k.Value))
	}
	m := startCPU(b, n)
	defer m.stop(b)
	for b.Loop() {
		for _, k := range keys {
			if _, err := ParseValue(k.Type, k.Value); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkValueReader(b *testing.B) {
	_, keys := bigFile(b)
	var n int64
	for _, k := range keys {
		n += int64(len(k.Value))
	}
	m := startCPU(b, n)
	defer m.stop(b)
	var el Element
	r := bytes.NewReader(nil)
	for b.Loop() {
		for _, k := range keys {
			r.Reset(k.Value)
			vr := NewValueReader(k.Type, r)
			for {
				err := vr.Next(&el)
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}

func BenchmarkCRC64(b *testing.B) {
	p := make([]byte, 1<<20)
	m := startCPU(b, int64(len(p)))
	defer m.stop(b)
	for b.Loop() {
		CRC64(0, p)
	}
}
