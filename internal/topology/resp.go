package topology

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// A small RESP2 client for the few control commands of Sentinel discovery (SENTINEL ...,
// ROLE, AUTH, SUBSCRIBE): a Sentinel's reply is an attacker's input like any other, so every
// length is checked against a cap before it sizes anything.

const (
	respMaxBulk  = 1 << 20 // a Sentinel's or ROLE's reply fields are short
	respMaxArray = 1 << 14
	respMaxDepth = 4
	respMaxLine  = 64 << 10
)

// Dial connects to a server (plain TCP, or TLS): the caller's, so that this package needs no
// configuration of its own.
type Dial func(ctx context.Context, addr string) (net.Conn, error)

// PlainDial dials TCP with a timeout.
func PlainDial(timeout time.Duration) Dial { return TLSDial(timeout, nil) }

// TLSDial dials TCP with a timeout, then TLS with cfg when it is not nil (the server name
// is the address's host unless cfg names one).
func TLSDial(timeout time.Duration, cfg *tls.Config) Dial {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: timeout}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil || cfg == nil {
			return c, err
		}
		tc := cfg.Clone()
		if tc.ServerName == "" {
			tc.ServerName, _, _ = net.SplitHostPort(addr)
		}
		conn := tls.Client(c, tc)
		if err := conn.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		return conn, nil
	}
}

// RespError is an error reply.
type RespError struct{ Msg string }

func (e *RespError) Error() string { return e.Msg }

// respConn is one connection: commands written, replies read, each exchange bounded by timeout.
type respConn struct {
	c       net.Conn
	br      *bufio.Reader
	timeout time.Duration
}

// dialResp connects and authenticates (AUTH user pass, or AUTH pass; nothing when pass is "").
func dialResp(ctx context.Context, dial Dial, addr, user, pass string, timeout time.Duration) (*respConn, error) {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := dial(dctx, addr)
	if err != nil {
		return nil, err
	}
	rc := &respConn{c: c, br: bufio.NewReaderSize(c, 16<<10), timeout: timeout}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if pass != "" {
		args := []string{"AUTH", pass}
		if user != "" {
			args = []string{"AUTH", user, pass}
		}
		if _, err := rc.do(args...); err != nil {
			c.Close()
			return nil, fmt.Errorf("AUTH: %w", err)
		}
	}
	return rc, nil
}

func (rc *respConn) Close() error { return rc.c.Close() }

// do sends one command and reads its reply; an error reply is returned as a *RespError.
func (rc *respConn) do(args ...string) (any, error) {
	if err := rc.send(args...); err != nil {
		return nil, err
	}
	_ = rc.c.SetReadDeadline(time.Now().Add(rc.timeout))
	v, err := rc.read(0)
	if err != nil {
		return nil, err
	}
	if re, ok := v.(*RespError); ok {
		return nil, re
	}
	return v, nil
}

func (rc *respConn) send(args ...string) error {
	b := make([]byte, 0, 64)
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	_ = rc.c.SetWriteDeadline(time.Now().Add(rc.timeout))
	_, err := rc.c.Write(b)
	return err
}

var errRespProtocol = errors.New("protocol error")

// read reads one reply: string (simple or bulk), int64, []any, nil (null), or *RespError.
func (rc *respConn) read(depth int) (any, error) {
	line, err := rc.line()
	if err != nil {
		return nil, err
	}
	if len(line) == 0 {
		return nil, fmt.Errorf("%w: empty line", errRespProtocol)
	}
	body := string(line[1:])
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return &RespError{Msg: body}, nil
	case ':':
		n, err := strconv.ParseInt(body, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: integer %q", errRespProtocol, clip(body))
		}
		return n, nil
	case '$':
		n, err := strconv.ParseInt(body, 10, 64)
		if err != nil || n < -1 || n > respMaxBulk {
			return nil, fmt.Errorf("%w: bulk length %q", errRespProtocol, clip(body))
		}
		if n == -1 {
			return nil, nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(rc.br, b); err != nil {
			return nil, err
		}
		if b[n] != '\r' || b[n+1] != '\n' {
			return nil, fmt.Errorf("%w: bulk not ended by CRLF", errRespProtocol)
		}
		return string(b[:n]), nil
	case '*':
		n, err := strconv.ParseInt(body, 10, 64)
		if err != nil || n < -1 || n > respMaxArray || depth >= respMaxDepth {
			return nil, fmt.Errorf("%w: array length %q at depth %d", errRespProtocol, clip(body), depth)
		}
		if n == -1 {
			return nil, nil
		}
		out := make([]any, 0, n)
		for range n {
			v, err := rc.read(depth + 1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: reply type %q", errRespProtocol, line[0])
}

func (rc *respConn) line() ([]byte, error) {
	var acc []byte
	for {
		l, err := rc.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			acc = append(acc, l...)
			if len(acc) > respMaxLine {
				return nil, fmt.Errorf("%w: line over %d bytes", errRespProtocol, respMaxLine)
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if acc != nil {
			l = append(acc, l...)
		}
		if len(l) < 2 || l[len(l)-2] != '\r' {
			return nil, fmt.Errorf("%w: line not ended by CRLF", errRespProtocol)
		}
		return l[:len(l)-2], nil
	}
}
