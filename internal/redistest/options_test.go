package redistest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mediocregopher/radix/v4"

	"github.com/rmt-project/rmt/internal/testcert"
)

// TestFlagLines: command-line arguments become config lines as redis-server makes them, and the
// harness finds a requirepass among them.
func TestFlagLines(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want []string
	}{
		{nil, nil},
		{[]string{"--maxmemory", "10mb", "--save", ""}, []string{`maxmemory "10mb"`, `save ""`}},
		{[]string{"--user", "mig", "on", ">pw", "~*", "+@all"}, []string{`user "mig" "on" ">pw" "~*" "+@all"`}},
		{[]string{"--appendonly", "yes", "--enable-debug-command"}, []string{`appendonly "yes"`, "enable-debug-command"}},
		{[]string{"--dir", "/a b/\"c\"\n"}, []string{`dir "/a b/\"c\"\n"`}},
	}
	for _, c := range cases {
		if got := flagLines(c.args); !slices.Equal(got, c.want) {
			t.Errorf("flagLines(%q) = %q, want %q", c.args, got, c.want)
		}
	}
	for _, c := range []struct {
		cfg  redisConfig
		want string
	}{
		{redisConfig{}, ""},
		{redisConfig{password: "a"}, "a"},
		{redisConfig{lines: flagLines([]string{"--requirepass", "s3cret"})}, "s3cret"},
		{redisConfig{password: "a", lines: []string{"requirepass b", "maxclients 3"}}, "b"},
		{redisConfig{lines: []string{"REQUIREPASS \"x\\x01\"", "requirepass \"\""}}, ""},
	} {
		if got := c.cfg.requirepass(); got != c.want {
			t.Errorf("requirepass of %+v = %q, want %q", c.cfg, got, c.want)
		}
	}
}

// TestWithFlags: flags reach the server, a requirepass given as a flag is the harness's
// password, and a server that takes one client at a time starts (the readiness check holds one
// connection, and lets it go).
func TestWithFlags(t *testing.T) {
	t.Parallel()
	r := StartRedis(t, WithFlags("--requirepass", "s3cret", "--maxclients", "1", "--hash-max-listpack-entries", "3"))
	if got := r.Do(t, "CONFIG", "GET", "hash-max-listpack-entries").([]interface{}); got[1] != "3" {
		t.Errorf("hash-max-listpack-entries %v", got)
	}
	if got := r.Do(t, "CONFIG", "GET", "maxclients").([]interface{}); got[1] != "1" {
		t.Errorf("maxclients %v", got)
	}
	if r.Version == "" {
		t.Errorf("no version")
	}
}

// TestWithTLS: the server serves TLS on TLSAddr with the files given, the harness keeps the
// plain port.
func TestWithTLS(t *testing.T) {
	t.Parallel()
	certs := testcert.Write(t)
	r := StartRedis(t, WithTLS(certs.Cert, certs.Key, certs.CA))
	if r.TLSAddr == "" || r.TLSAddr == r.Addr || r.TLSAddr != fmt.Sprintf("127.0.0.1:%d", r.TLSPort) {
		t.Fatalf("TLSAddr %q (port %d), Addr %q", r.TLSAddr, r.TLSPort, r.Addr)
	}
	r.Do(t, "SET", "k", "v")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := (radix.Dialer{NetDialer: &tls.Dialer{Config: certs.ClientConfig()}}).Dial(ctx, "tcp", r.TLSAddr)
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	defer c.Close()
	var v string
	if err := c.Do(ctx, radix.Cmd(&v, "GET", "k")); err != nil || v != "v" {
		t.Fatalf("GET over TLS: %q, %v", v, err)
	}
	if plain := StartRedis(t); plain.TLSAddr != "" || plain.TLSPort != 0 {
		t.Errorf("TLS address %q without WithTLS", plain.TLSAddr)
	}
}

// TestWithDirAndPort: a server that shut down (Exited) is followed by another in its directory
// and on its port, which loads what the first one saved.
func TestWithDirAndPort(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := StartRedis(t, WithDir(dir))
	if a.Dir != dir || a.LogPath != filepath.Join(dir, "redis.log") {
		t.Fatalf("Dir %s, LogPath %s", a.Dir, a.LogPath)
	}
	a.Do(t, "SET", "k", "saved")
	select {
	case <-a.Exited():
		t.Fatal("Exited before the server exited")
	default:
	}
	_, _ = a.DoErr(t, "SHUTDOWN", "SAVE") // the connection drops: no reply
	select {
	case <-a.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("no exit 10 s after SHUTDOWN")
	}
	if _, err := os.Stat(filepath.Join(dir, "dump.rdb")); err != nil {
		t.Fatal(err)
	}
	b := StartRedis(t, WithDir(dir), WithPort(a.Port))
	if b.Addr != a.Addr {
		t.Fatalf("second server on %s, want %s", b.Addr, a.Addr)
	}
	if got := b.DoString(t, "GET", "k"); got != "saved" {
		t.Errorf("GET k = %q after the restart in the same dir", got)
	}
	// A taken port is a failure, not a retry elsewhere.
	msg := runRecordingTB(&recordingTB{TB: t}, func(tb testing.TB) { StartRedis(tb, WithPort(b.Port)) })
	if !strings.Contains(msg, "address already in use") {
		t.Errorf("StartRedis on a taken port: %q", msg)
	}
}

// TestNutcrackerPools: one nutcracker serves several pools, each on its own port with its own
// hash, distribution and servers.
func TestNutcrackerPools(t *testing.T) {
	t.Parallel()
	b1, b2, b3 := StartRedis(t), StartRedis(t), StartRedis(t)
	n := StartNutcrackerPools(t,
		NutcrackerOptions{Name: "both", Backends: []*Redis{b1, b2}, Hash: "md5", Distribution: "modula"},
		NutcrackerOptions{Backends: []*Redis{b3}, Extra: []string{"preconnect: true"}})
	if len(n.Pools) != 2 || n.Pools[0].Name != "both" || n.Pools[1].Name != "pool1" ||
		n.Addr != n.Pools[0].Addr || n.Pools[0].Addr == n.Pools[1].Addr || !slices.Equal(n.Servers, n.Pools[0].Servers) {
		t.Fatalf("pools %+v, Addr %s", n.Pools, n.Addr)
	}
	if want := []string{b3.Addr + ":1"}; !slices.Equal(n.Pools[1].Servers, want) {
		t.Errorf("second pool's servers %q, want %q", n.Pools[1].Servers, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, p := range n.Pools {
		c, err := radix.Dial(ctx, "tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 50; k++ {
			if err := c.Do(ctx, radix.Cmd(nil, "SET", fmt.Sprintf("p%d:%d", i, k), "v")); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
	}
	n1, n2, n3 := b1.Do(t, "DBSIZE").(int64), b2.Do(t, "DBSIZE").(int64), b3.Do(t, "DBSIZE").(int64)
	if n1+n2 != 50 || n1 == 0 || n2 == 0 || n3 != 50 {
		t.Errorf("keys per backend: %d %d %d", n1, n2, n3)
	}
}

// TestFixture: fixtures resolve from the module root, whatever the package.
func TestFixture(t *testing.T) {
	t.Parallel()
	dir := Fixture(t, "")
	if !strings.HasSuffix(dir, filepath.Join("testdata", "rdb")) {
		t.Errorf("fixture dir %s", dir)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(dir)), "go.mod")); err != nil {
		t.Errorf("no go.mod above %s: %v", dir, err)
	}
	for _, name := range []string{"redis-7.0.15.rdb", "redis-7.0.15.json", "cases/hash.rdb"} {
		if _, err := os.Stat(Fixture(t, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if m, _ := filepath.Glob(Fixture(t, "cases/*.rdb")); len(m) < 30 {
		t.Errorf("%d cases", len(m))
	}
}

// TestNeedBinary: a missing program fails the test with the way to install it.
func TestNeedBinary(t *testing.T) {
	t.Parallel()
	if p := NeedBinary(t, "redis-server"); !filepath.IsAbs(p) {
		t.Errorf("NeedBinary(redis-server) = %q", p)
	}
	msg := runRecording(func(tb testing.TB) { NeedBinary(tb, "no-such-program-rmt") })
	if !strings.Contains(msg, "no-such-program-rmt") || !strings.Contains(msg, "make deps") {
		t.Errorf("NeedBinary of a missing program: %q", msg)
	}
	msg = runRecordingTB(&recordingTB{TB: t}, func(tb testing.TB) { StartRedis(tb, WithBinary("no-such-server-rmt")) })
	if !strings.Contains(msg, "make deps") {
		t.Errorf("StartRedis with a missing binary: %q", msg)
	}
}

// TestPoll: Poll returns nil once f does, and f's last error after the timeout.
func TestPoll(t *testing.T) {
	t.Parallel()
	n := 0
	if err := Poll(5*time.Second, func() error {
		if n++; n < 4 {
			return fmt.Errorf("try %d", n)
		}
		return nil
	}); err != nil || n != 4 {
		t.Errorf("Poll: %v after %d calls", err, n)
	}
	start := time.Now()
	err := Poll(100*time.Millisecond, func() error { return net.ErrClosed })
	if err != net.ErrClosed || time.Since(start) < 100*time.Millisecond {
		t.Errorf("Poll: %v after %v", err, time.Since(start))
	}
}
