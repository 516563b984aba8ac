package target

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/aof"
)

// BenchmarkApplyBig forwards big commands (read in big-command mode, not held) through the
// oplog pipeline of a single target: a SADD of 300,000 members re-chunked, and a SET of 16 MiB
// copied whole from the input. The timed part includes the wait for the last reply.
func BenchmarkApplyBig(b *testing.B) {
	sadd := []string{"SADD", "set"}
	for i := range 300_000 {
		sadd = append(sadd, "member:"+strconv.Itoa(i))
	}
	for name, in := range map[string][]byte{
		"sadd_300k": aof.AppendCommandString(nil, sadd...),
		"set_16MiB": aof.AppendCommandString(nil, "SET", "k", strings.Repeat("v", 16<<20)),
	} {
		b.Run(name, func(b *testing.B) {
			dst := startRedis(b)
			ctx := context.Background()
			w, err := NewSingle(ctx, SingleOptions{Conn: Options{Addr: dst.Addr}, SourceRDBVersion: 10})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			r := aof.NewStreamReader(bytes.NewReader(in), 0)
			r.SetInput(bytes.NewReader(in))
			var cmd aof.Command
			if err := r.Next(&cmd); err != nil || !cmd.Big() {
				b.Fatalf("big %v, %v", cmd.Big(), err)
			}
			b.SetBytes(cmd.N)
			b.ReportAllocs()
			var end int64
			start := time.Now()
			for b.Loop() {
				end += cmd.N
				if err := w.Apply(&cmd, end); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.WaitOplog(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "cmds/s")
			if st := w.Stats(); len(st.Errors) != 0 {
				b.Fatalf("errors %v", st.Errors)
			}
		})
	}
}
