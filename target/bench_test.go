package target

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/rdb"
)

// BenchmarkRestore RESTOREs string keys into a local redis-server through Single, reusing one
// entry as the decoder does; the timed part includes WaitRDB.
func BenchmarkRestore(b *testing.B) {
	for _, size := range []int{100, 4096} {
		b.Run("value="+strconv.Itoa(size), func(b *testing.B) {
			dst := startRedis(b)
			ctx := context.Background()
			w, err := NewSingle(ctx, SingleOptions{Conn: Options{Addr: dst.Addr}, SourceRDBVersion: 10})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			// A raw string value: 32-bit length encoding, then the bytes.
			val := append([]byte{0x80, byte(size >> 24), byte(size >> 16), byte(size >> 8), byte(size)},
				strings.Repeat("v", size)...)
			e := rdb.Entry{Kind: rdb.KindKey, Type: rdb.TypeString, Value: val, Idle: -1, Freq: -1}
			b.SetBytes(int64(len(val)))
			b.ReportAllocs()
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				e.Key = strconv.AppendInt(append(e.Key[:0], "key:"...), int64(i), 10)
				if err := w.Restore(&e); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.WaitRDB(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
			if st := w.Stats(); len(st.Errors) != 0 {
				b.Fatalf("errors %v: %s", st.Errors, st.LastError)
			}
		})
	}
}

// BenchmarkApply forwards SET commands through the ordered oplog pipeline into a local
// redis-server; the timed part includes the wait for the last reply.
func BenchmarkApply(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchmarkApply(b, "") })
	b.Run("checkpointed", func(b *testing.B) { benchmarkApply(b, "rmt:checkpoint:bench") })
}

func benchmarkApply(b *testing.B, checkpointKey string) {
	dst := startRedis(b)
	ctx := context.Background()
	w, err := NewSingle(ctx, SingleOptions{Conn: Options{Addr: dst.Addr}, SourceRDBVersion: 10, CheckpointKey: checkpointKey})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	val := []byte(strings.Repeat("v", 100))
	var cmd aof.Command
	var key []byte
	args := make([][]byte, 3)
	set := []byte("SET")
	var end int64
	b.ReportAllocs()
	first := true
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		key = strconv.AppendInt(append(key[:0], "key:"...), int64(i), 10)
		args[0], args[1], args[2] = set, key, val
		cmd.Raw = aof.AppendCommand(cmd.Raw[:0], args...)
		cmd.Args, cmd.N = args, int64(len(cmd.Raw))
		if first {
			b.SetBytes(cmd.N)
			first = false
		}
		end += cmd.N
		if err := w.Apply(&cmd, end); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := w.WaitOplog(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
	if off, _ := w.Applied(); off != end {
		b.Fatalf("applied %d, want %d", off, end)
	}
}
