package source

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
)

// BenchmarkLinkStream measures how fast a link drains a stream into its spool (parse, append,
// fsync in batches): a fake master on loopback TCP sends 1 MiB blocks of 100-byte SETs.
func BenchmarkLinkStream(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var block []byte
	for i := 0; len(block) < 1<<20; i++ {
		block = append(block, cmd("SET", "key:"+strconv.Itoa(i), strings.Repeat("v", 100))...)
	}
	conns := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			conns <- c
		}
	}()
	dir := b.TempDir()
	if d := os.Getenv("RMT_BENCH_DIR"); d != "" { // e.g. a tmpfs, to measure the CPU side alone
		var err error
		if dir, err = os.MkdirTemp(d, "rmt-bench-"); err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(dir)
	}
	l := NewLink(LinkOptions{Addr: ln.Addr().String(), Dir: dir, Timeout: 10 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() { cancel(); <-done; l.Close() }()

	c := <-conns
	defer c.Close()
	fc := &fakeConn{t: b, c: c, cmds: make(chan []string, 1<<16)}
	go fc.readLoop()
	fc.handshake("PSYNC", "?", "-1")
	fc.write("+FULLRESYNC " + testReplid + " 0\r\n$0\r\n")
	if _, ok := nextEventB(b, l).(FullSync); !ok {
		b.Fatal("no FullSync")
	}
	b.SetBytes(int64(len(block)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(block); err != nil {
			b.Fatal(err)
		}
	}
	total := int64(b.N) * int64(len(block))
	for l.Stats().ReceivedOffset < total {
		time.Sleep(time.Millisecond) // polling interval while the link catches up
	}
}

func nextEventB(b *testing.B, l *Link) Event {
	for {
		select {
		case ev := <-l.Events():
			if _, ok := ev.(RDBStarted); ok {
				continue
			}
			return ev
		case <-time.After(10 * time.Second):
			b.Fatal("no event")
			return nil
		}
	}
}

// BenchmarkLinkRedisBenchmark measures the link behind a real redis-server loaded by
// redis-benchmark (100-byte SETs, pipelined): the MB/s reported is the stream the link spooled
// (and fsynced) per second of wall time, until its offset equals master_repl_offset.
func BenchmarkLinkRedisBenchmark(b *testing.B) {
	redistest.NeedBinary(b, "redis-benchmark")
	master := startRedis(b, 0, "")
	m := master.client(b)
	l := NewLink(LinkOptions{Addr: master.addr, Dir: b.TempDir(), Timeout: 10 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() { cancel(); <-done; l.Close() }()
	if _, ok := nextEventB(b, l).(FullSync); !ok {
		b.Fatal("no FullSync")
	}
	start := l.Stats().ReceivedOffset
	b.ResetTimer()
	t0 := time.Now()
	for i := 0; i < b.N; i++ {
		out, err := exec.Command("redis-benchmark", "-h", "127.0.0.1", "-p", strconv.Itoa(master.port),
			"-t", "set", "-n", "1000000", "-P", "64", "-d", "100", "-r", "100000", "-q").CombinedOutput()
		if err != nil {
			b.Fatalf("redis-benchmark: %v\n%s", err, out)
		}
	}
	var want int64
	for {
		want, _ = strconv.ParseInt(m.infoField(b, "replication", "master_repl_offset"), 10, 64)
		if l.Stats().ReceivedOffset >= want {
			break
		}
		time.Sleep(time.Millisecond) // polling interval while the link catches up
	}
	el := time.Since(t0)
	b.ReportMetric(float64(want-start)/el.Seconds()/1e6, "MB/s")
	b.ReportMetric(float64(want-start)/float64(b.N), "bytes/op")
	if s := l.Stats(); s.FullSyncs != 1 || s.Reconnects != 0 {
		b.Fatalf("the link restarted during the run: %+v", s)
	}
}

// BenchmarkLinkFullSync measures a full sync from a real redis-server holding 500,000 keys of
// 100 bytes, disk and diskless: the MB/s reported is RDB bytes on disk (fsynced) per second,
// from PSYNC to the FullSync event.
func BenchmarkLinkFullSync(b *testing.B) {
	for _, diskless := range []string{"no", "yes"} {
		b.Run("diskless="+diskless, func(b *testing.B) {
			master := startRedis(b, 0, "", "--repl-diskless-sync", diskless)
			master.client(b).must(b, "DEBUG", "POPULATE", "500000", "key", "100")
			var size int64
			var took time.Duration
			for i := 0; i < b.N; i++ {
				l := NewLink(LinkOptions{Addr: master.addr, Dir: b.TempDir(), Timeout: 30 * time.Second})
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				t0 := time.Now()
				go func() { done <- l.Run(ctx) }()
				select {
				case ev := <-firstNonStarted(l):
					fs, ok := ev.(FullSync)
					if !ok {
						b.Fatalf("event %#v", ev)
					}
					size += fs.RDBSize
				case <-time.After(60 * time.Second):
					b.Fatal("no FullSync")
				}
				took += time.Since(t0)
				cancel()
				<-done
				l.Close()
			}
			b.ReportMetric(float64(size)/took.Seconds()/1e6, "MB/s")
			b.ReportMetric(float64(size)/float64(b.N), "rdb_bytes")
		})
	}
}

// firstNonStarted delivers the first event of l that is not RDBStarted.
func firstNonStarted(l *Link) <-chan Event {
	out := make(chan Event, 1)
	go func() {
		for ev := range l.Events() {
			if _, ok := ev.(RDBStarted); !ok {
				out <- ev
				return
			}
		}
	}()
	return out
}
