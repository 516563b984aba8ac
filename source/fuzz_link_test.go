package source

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmt-project/rmt/aof"
)

// fuzzMasterBytes bounds the input of FuzzLinkMaster.
const fuzzMasterBytes = 64 << 10

// FuzzLinkMaster: a master that answers the handshake and streams arbitrary bytes (each input is
// what the master sends on a connection, given to two connections in a row) never makes the
// link panic, hang, or hold an offset out of range: Run ends when asked, every offset is in
// [0, 2^62 + the bytes sent], the snapshots on disk are the sizes announced, the spool reads
// back as commands (perhaps cut short at its end) and the errors are counted.
//
// Run it longer with: go test -run '^$' -fuzz FuzzLinkMaster -fuzztime 2000x ./source/
func FuzzLinkMaster(f *testing.F) {
	hs := "+PONG\r\n+OK\r\n+OK\r\n"
	full := hs + "+FULLRESYNC " + testReplid + " 100\r\n$5\r\nREDIS"
	f.Add([]byte(full + cmd("SELECT", "0") + cmd("SET", "k", "v") + cmd("REPLCONF", "GETACK", "*")))
	f.Add([]byte(hs + "\n\n+FULLRESYNC " + testReplid + " 0\r\n\n$EOF:" + strings.Repeat("a", 40) + "\r\nREDIS0011" +
		strings.Repeat("a", 40) + cmd("SET", "k", strings.Repeat("x", 100))))
	f.Add([]byte(hs + "+CONTINUE " + testReplid + "\r\n" + cmd("INCR", "a")))
	f.Add([]byte(hs + "+FULLRESYNC " + testReplid + " 9223372036854775807\r\n$0\r\n"))
	f.Add([]byte(hs + "+FULLRESYNC " + testReplid + " 4611686018427387904\r\n$0\r\n" + cmd("SET", "a", "b")))
	f.Add([]byte(full + "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000000\r\nxyz"))
	f.Add([]byte(full + "*2147483647\r\n$4\r\nSADD\r\n"))
	f.Add([]byte("-NOAUTH Authentication required.\r\n"))
	f.Add([]byte(hs + "+FULLRESYNC " + testReplid + " 5\r\n$-1\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > fuzzMasterBytes {
			return
		}
		dir := t.TempDir()
		l := NewLink(LinkOptions{Addr: "fuzz:1", Dir: dir, Timeout: 5 * time.Second, AckInterval: 5 * time.Millisecond,
			BackoffMin: time.Millisecond, BackoffMax: time.Millisecond, ResyncBackoffMin: time.Millisecond})
		var mu sync.Mutex
		conns := 0
		var wg sync.WaitGroup
		defer wg.Wait()
		l.dial = func(ctx context.Context) (net.Conn, error) {
			mu.Lock()
			defer mu.Unlock()
			if conns == 2 {
				return nil, errors.New("fuzz: no more connections")
			}
			conns++
			a, b := net.Pipe()
			wg.Go(func() { io.Copy(io.Discard, b) }) // what the link sends
			wg.Go(func() {
				b.Write(in)
				b.Close()
			})
			return a, nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- l.Run(ctx) }()
		var events []Event
		deadline := time.After(20 * time.Second)
	wait:
		for {
			select {
			case ev := <-l.Events():
				events = append(events, ev)
			case <-time.After(time.Millisecond):
				if l.Stats().Reconnects >= 2 { // both connections are over
					break wait
				}
			case <-deadline:
				t.Fatalf("the link is stuck: %+v", l.Stats())
			}
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
		for ev := range l.Events() {
			events = append(events, ev)
		}

		st := l.Stats()
		limit := int64(maxOffset) + int64(len(in))
		if st.ReceivedOffset < 0 || st.ReceivedOffset > limit || st.RDBBytes < 0 || st.RDBBytes > int64(len(in)) ||
			st.ProtocolErrors < 0 || st.ProtocolErrors > 2 || st.FullSyncs > 2 {
			t.Fatalf("stats %+v", st)
		}
		for _, ev := range events {
			switch ev := ev.(type) {
			case FullSync:
				if ev.Offset < 0 || ev.Offset > maxOffset || !validReplid(ev.Replid) {
					t.Fatalf("full sync %+v", ev)
				}
				if fi, err := os.Stat(ev.RDBPath); err == nil && fi.Size() != ev.RDBSize {
					t.Fatalf("snapshot of %d bytes, announced %d", fi.Size(), ev.RDBSize)
				}
			case Continue:
				if ev.Offset < 0 || ev.Offset > limit {
					t.Fatalf("continue %+v", ev)
				}
			}
		}
		// The spool reads back as whole commands, the last perhaps cut short.
		sp := l.Spool()
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		sr, err := sp.NewReader(sctx, sp.Start())
		if err != nil {
			t.Fatal(err)
		}
		defer sr.Close()
		r := aof.NewStreamReader(io.LimitReader(sr, sp.Synced()-sp.Start()), sp.Start())
		var c aof.Command
		for {
			err := r.Next(&c)
			if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			if err != nil {
				t.Fatalf("the spool is not a stream of commands: %v", err)
			}
		}
		l.Close()
	})
}
