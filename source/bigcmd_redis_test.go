package source

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmt-project/rmt/aof"
)

// genCommand produces the RESP bytes of a command too big to build in memory, without holding
// it: `SADD k member:0 .. member:<n-1>` or `SET k <size bytes>`, the value's byte at position p
// being valueByte(p). A master propagates such a command to its replicas as these exact bytes.
type genCommand struct {
	head    []byte
	members int   // SADD: members left
	next    int   // SADD: the next member
	size    int64 // SET: value bytes left
	pos     int64 // SET: position of the next value byte
	tail    []byte
	pending []byte
	buf     []byte
}

func valueByte(p int64) byte { return byte('a' + (p+p>>12)%26) }

func genSadd(n int) *genCommand {
	return &genCommand{head: []byte("*" + strconv.Itoa(n+2) + "\r\n$4\r\nSADD\r\n$1\r\nk\r\n"), members: n}
}

func genSet(key string, size int64) *genCommand {
	head := "*3\r\n$3\r\nSET\r\n$" + strconv.Itoa(len(key)) + "\r\n" + key + "\r\n$" + strconv.FormatInt(size, 10) + "\r\n"
	return &genCommand{head: []byte(head), size: size, tail: []byte("\r\n")}
}

func (g *genCommand) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		switch {
		case len(g.head) > 0:
			k := copy(p[n:], g.head)
			g.head, n = g.head[k:], n+k
		case len(g.pending) > 0:
			k := copy(p[n:], g.pending)
			g.pending, n = g.pending[k:], n+k
		case g.members > 0:
			m := len("member:") + len(strconv.Itoa(g.next))
			g.buf = strconv.AppendInt(append(g.buf[:0], '$'), int64(m), 10)
			g.buf = strconv.AppendInt(append(g.buf, "\r\nmember:"...), int64(g.next), 10)
			g.buf = append(g.buf, '\r', '\n')
			g.pending = g.buf
			g.next++
			g.members--
		case g.size > 0:
			k := int(min(int64(len(p)-n), g.size))
			for i := range k {
				p[n+i] = valueByte(g.pos + int64(i))
			}
			g.size, g.pos, n = g.size-int64(k), g.pos+int64(k), n+k
		case len(g.tail) > 0:
			k := copy(p[n:], g.tail)
			g.tail, n = g.tail[k:], n+k
		default:
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		}
	}
	return n, nil
}

// sameAs is a writer that checks what it is given against the bytes of a reader.
type sameAs struct {
	r    io.Reader
	buf  []byte
	n    int64
	diff error
}

func (s *sameAs) Write(p []byte) (int, error) {
	if len(s.buf) < len(p) {
		s.buf = make([]byte, len(p))
	}
	if _, err := io.ReadFull(s.r, s.buf[:len(p)]); err != nil || !bytes.Equal(s.buf[:len(p)], p) {
		s.diff = fmt.Errorf("bytes %d .. %d differ (%v)", s.n, s.n+int64(len(p)), err)
		return 0, s.diff
	}
	s.n += int64(len(p))
	return len(p), nil
}

// sendCommand writes a generated command to the master and reads its reply.
func sendCommand(t *testing.T, c *rclient, g io.Reader) string {
	t.Helper()
	c.c.SetDeadline(time.Now().Add(5 * time.Minute))
	w := bufio.NewWriterSize(c.c, 1<<20)
	if _, err := io.Copy(w, g); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	s, err := c.reply()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// memWatch records the peak of the process's heap (runtime/metrics, sampled every few ms) and of
// its RSS (VmHWM, reset through /proc/self/clear_refs when Linux lets it), from a baseline
// taken after a GC.
type memWatch struct {
	baseHeap, baseRSS uint64
	peakHeap          uint64
	hwm               bool // VmHWM was reset
	stop              chan struct{}
	wg                sync.WaitGroup
}

func startMemWatch(t *testing.T) *memWatch {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	m := &memWatch{stop: make(chan struct{})}
	m.hwm = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	m.baseRSS = procStatus(t, "VmRSS")
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	m.baseHeap = s[0].Value.Uint64()
	m.wg.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			m.peakHeap = max(m.peakHeap, s[0].Value.Uint64())
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
		}
	})
	return m
}

// end stops the watch and returns the peaks above the baseline, in MB; rss is -1 when VmHWM
// could not be reset.
func (m *memWatch) end(t *testing.T) (heap, rss float64) {
	close(m.stop)
	m.wg.Wait()
	rss = -1
	if m.hwm {
		rss = (float64(procStatus(t, "VmHWM")) - float64(m.baseRSS)) / (1 << 20)
	}
	return (float64(m.peakHeap) - float64(m.baseHeap)) / (1 << 20), rss
}

// procStatus returns a field of /proc/self/status in bytes (0 where there is none).
func procStatus(t *testing.T, field string) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestLinkRedisBigCommands: a SADD of 1.1 million members (14 MB, more arguments than Reader's
// default limit) and a SET of a 300 MB value (the master allows 1 GB bulks, and 1 GB of replica
// output buffer: with the default 256 MB limit a master drops any replica of such a command),
// then a small write, go through a real link into the spool without a reconnection; read back
// through a stream reader in big-command mode, the commands are the bytes the master sent,
// and the offset is the master's; the process's heap and RSS grow by a few MB only, all along.
func TestLinkRedisBigCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 330 MB through a real redis-server")
	}
	const setSize = 300 << 20
	master := startRedis(t, 0, "", "--proto-max-bulk-len", "1gb", "--client-output-buffer-limit", "replica 1gb 1gb 0")
	m := master.client(t)
	m.must(t, "SET", "before", "1")
	l := newRedisLink(t, LinkOptions{Addr: master.addr, Timeout: 2 * time.Minute})
	fs := waitEvent[FullSync](t, l, 20*time.Second)
	waitCaughtUp(t, l, m)

	mem := startMemWatch(t)
	if got := sendCommand(t, m, genSadd(1_100_000)); got != "1100000" {
		t.Fatalf("SADD: %s", got)
	}
	if got := sendCommand(t, m, genSet("big", setSize)); got != "OK" {
		t.Fatalf("SET: %s", got)
	}
	m.must(t, "SET", "after", "1")
	end := waitCaughtUp(t, l, m)
	if st := l.Stats(); st.Reconnects != 0 || st.FullSyncs != 1 || st.ProtocolErrors != 0 {
		t.Fatalf("the link restarted: %+v", st)
	}

	// Read the spool back as the replayer does.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sr, err := l.Spool().NewReader(ctx, fs.Offset)
	if err != nil {
		t.Fatal(err)
	}
	defer sr.Close()
	r := aof.NewStreamReader(io.LimitReader(sr, end-fs.Offset), fs.Offset)
	var c aof.Command
	var got []string
	buf := make([]byte, 256<<10)
	for {
		err := r.Next(&c)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := ""
		if len(c.Args) > 0 {
			name = strings.ToUpper(string(c.Args[0]))
		}
		if name == "PING" || name == "REPLCONF" {
			continue
		}
		var want io.Reader
		switch {
		case name == "SADD" && c.Big():
			want = genSadd(1_100_000)
		case name == "SET" && c.Big():
			want = genSet("big", setSize)
		}
		if want != nil {
			same := &sameAs{r: want}
			if n, err := aof.WriteCommand(same, &c, sr, buf); err != nil || n != c.N {
				t.Fatalf("%s at offset %d (%d bytes): %v", name, c.Start, c.N, err)
			}
			if k, _ := want.Read(buf[:1]); k != 0 {
				t.Fatalf("%s at offset %d: the spool holds less than the master sent", name, c.Start)
			}
			got = append(got, fmt.Sprintf("%s %s <%d args, %d bytes>", name, c.Args[1], c.NArgs, c.N))
			continue
		}
		var parts []string
		for _, a := range c.Args {
			parts = append(parts, string(a))
		}
		got = append(got, strings.Join(parts, " "))
	}
	heap, rss := mem.end(t)
	t.Logf("peak above the baseline while moving %d MB: heap %.1f MB, RSS %.1f MB (RSS -1: VmHWM could not be reset)", (end-fs.Offset)>>20, heap, rss)
	want := []string{
		"SELECT 0",
		fmt.Sprintf("SADD k <1100002 args, %d bytes>", countBytes(genSadd(1_100_000))),
		fmt.Sprintf("SET big <3 args, %d bytes>", countBytes(genSet("big", setSize))),
		"SET after 1",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("spooled commands\n got %q\nwant %q", got, want)
	}
	if r.Offset() != end-fs.Offset {
		t.Fatalf("read %d bytes of %d", r.Offset(), end-fs.Offset)
	}
	if heap > 64 || rss > 64 {
		t.Fatalf("the process grew by %.1f MB of heap, %.1f MB of RSS", heap, rss)
	}
}

func countBytes(r io.Reader) int64 {
	n, _ := io.Copy(io.Discard, r)
	return n
}
