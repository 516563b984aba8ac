package source

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
)

// redisProc is a redis-server started by a test (internal/redistest).
type redisProc struct {
	addr   string
	port   int
	dir    string
	exited <-chan struct{} // closed when the process exits
	srv    *redistest.Redis
}

// startRedis starts redis-server in dir (a new temporary one if ""), on port (a free one if 0),
// with the debug command enabled and then args.
func startRedis(t testing.TB, port int, dir string, args ...string) *redisProc {
	t.Helper()
	opts := []redistest.RedisOption{redistest.WithFlags(append([]string{"--enable-debug-command", "local"}, args...)...)}
	if dir != "" {
		opts = append(opts, redistest.WithDir(dir))
	}
	if port != 0 {
		opts = append(opts, redistest.WithPort(port))
	}
	r := redistest.StartRedis(t, opts...)
	return &redisProc{addr: r.Addr, port: r.Port, dir: r.Dir, exited: r.Exited(), srv: r}
}

// kill sends SIGKILL and waits until the process is gone.
func (r *redisProc) kill() { r.srv.Kill() }

// client opens a connection to the server, authenticated with auth if given.
func (r *redisProc) client(t testing.TB, auth ...string) *rclient {
	t.Helper()
	c, err := dialRedis(r.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	if len(auth) > 0 {
		if _, err := c.do(append([]string{"AUTH"}, auth...)...); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// rclient is a minimal RESP client for tests: it returns every reply as a string (arrays as
// their elements joined by "\n") and error replies as errors.
type rclient struct {
	c  net.Conn
	br *bufio.Reader
}

func dialRedis(addr string) (*rclient, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	return &rclient{c: c, br: bufio.NewReader(c)}, nil
}

func (c *rclient) close() { c.c.Close() }

func (c *rclient) do(args ...string) (string, error) {
	c.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.c.Write([]byte(cmd(args...))); err != nil {
		return "", err
	}
	return c.reply()
}

func (c *rclient) must(t testing.TB, args ...string) string {
	t.Helper()
	s, err := c.do(args...)
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	return s
}

func (c *rclient) reply() (string, error) {
	line, err := c.br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply line")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(c.br, b); err != nil {
			return "", err
		}
		return string(b[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", err
		}
		var parts []string
		for i := 0; i < n; i++ {
			s, err := c.reply()
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, "\n"), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

// infoField returns a field of INFO <section>.
func (c *rclient) infoField(t testing.TB, section, field string) string {
	t.Helper()
	info := c.must(t, "INFO", section)
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return v
		}
	}
	return ""
}
