package admin

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tidwall/redcon"
	"go.uber.org/zap"
)

// Pub/sub, enough for Sentinels: each Sentinel subscribes to __sentinel__:hello on a replica it
// watches and publishes its hello there every 2 s; one that hears nothing on its subscription
// for 6 s closes and reopens it. A SUBSCRIBE detaches the connection from redcon's loop: one
// goroutine reads its commands (SUBSCRIBE, UNSUBSCRIBE, PING, QUIT), one writes everything it
// is sent from a bounded queue, so a subscriber that does not read loses messages (counted)
// and never holds up a publisher.

const (
	subQueue       = 64 // messages waiting for one subscriber
	subMaxChannels = 16 // channels one connection may subscribe to
)

// pubsub is the admin port's channels and their subscribers.
type pubsub struct {
	mu      sync.Mutex
	subs    map[string]map[*subscriber]struct{}
	dropped atomic.Int64
}

// subscriber is one detached connection.
type subscriber struct {
	out      chan []byte
	done     chan struct{}
	channels map[string]bool // read and written by its reader goroutine only
}

func (ps *pubsub) publish(channel, msg string) int {
	b := respArray(nil, "message", channel, msg)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	n := 0
	for s := range ps.subs[channel] {
		n++
		select {
		case s.out <- b:
		default:
			ps.dropped.Add(1)
		}
	}
	return n
}

func (ps *pubsub) add(s *subscriber, channel string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.subs == nil {
		ps.subs = map[string]map[*subscriber]struct{}{}
	}
	if ps.subs[channel] == nil {
		ps.subs[channel] = map[*subscriber]struct{}{}
	}
	ps.subs[channel][s] = struct{}{}
}

func (ps *pubsub) remove(s *subscriber, channel string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	delete(ps.subs[channel], s)
	if len(ps.subs[channel]) == 0 {
		delete(ps.subs, channel)
	}
}

// respArray encodes an array of bulk strings.
func respArray(b []byte, elems ...string) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(elems)), 10)
	b = append(b, '\r', '\n')
	for _, e := range elems {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(e)), 10)
		b = append(b, '\r', '\n')
		b = append(b, e...)
		b = append(b, '\r', '\n')
	}
	return b
}

// subReply is the reply to (UN)SUBSCRIBE: kind, the channel, the connection's count.
func subReply(kind, channel string, count int) []byte {
	b := []byte("*3\r\n")
	for _, e := range []string{kind, channel} {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(e)), 10)
		b = append(b, '\r', '\n')
		b = append(b, e...)
		b = append(b, '\r', '\n')
	}
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(count), 10)
	return append(b, '\r', '\n')
}

// cmdSubscribe detaches the connection and serves it as a subscriber until it ends.
func (a *Server) cmdSubscribe(c redcon.Conn, args [][]byte, sess *session) {
	g, _ := c.NetConn().(*guardConn)
	if g == nil {
		c.WriteError("ERR SUBSCRIBE is not available on this connection")
		return
	}
	// Trusted before the reader's first read, or the guard's idle timeout (for connections that
	// are not trusted) would close a subscription that only listens.
	g.trusted.Store(true)
	sess.detached = true
	s := &subscriber{out: make(chan []byte, subQueue), done: make(chan struct{}), channels: map[string]bool{}}
	dc := c.Detach()
	first := make([][]byte, len(args)-1)
	for i, ch := range args[1:] {
		first[i] = append([]byte(nil), ch...)
	}
	go a.serveSubscriber(dc, g, s, first)
}

// serveSubscriber reads a detached subscriber's commands; its writer runs beside it.
func (a *Server) serveSubscriber(dc redcon.DetachedConn, g *guardConn, s *subscriber, first [][]byte) {
	var wg sync.WaitGroup
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("admin subscriber panicked: connection closed", zap.Any("panic", r), zap.Stack("stack"))
		}
		for ch := range s.channels {
			a.pubsub.remove(s, ch)
		}
		close(s.done)
		_ = dc.Close()
		wg.Wait()
		a.clientsMu.Lock()
		delete(a.clients, g)
		a.connected.Store(int64(len(a.clients)))
		a.clientsMu.Unlock()
	}()
	// Replies to the commands before SUBSCRIBE (a Sentinel pipelines AUTH, CLIENT SETNAME and
	// SUBSCRIBE) are still in redcon's buffer: out first. Replies are written directly from
	// here on (a net.Conn takes concurrent writes whole), messages by the writer.
	if err := dc.Flush(); err != nil {
		return
	}
	wg.Go(func() {
		for {
			select {
			case b := <-s.out:
				if _, err := g.Write(b); err != nil {
					_ = dc.Close()
					return
				}
			case <-s.done:
				return
			}
		}
	})
	send := func(b []byte) {
		if _, err := g.Write(b); err != nil {
			_ = dc.Close()
		}
	}
	subscribe := func(chans [][]byte) {
		for _, ch := range chans {
			name := string(ch)
			if !s.channels[name] && len(s.channels) < subMaxChannels {
				s.channels[name] = true
				a.pubsub.add(s, name)
			}
			send(subReply("subscribe", name, len(s.channels)))
		}
	}
	subscribe(first)
	for {
		cmd, err := dc.ReadCommand()
		if err != nil {
			return
		}
		if len(cmd.Args) == 0 {
			continue
		}
		switch name := strings.ToLower(string(cmd.Args[0])); name {
		case "subscribe":
			subscribe(cmd.Args[1:])
		case "unsubscribe":
			chans := cmd.Args[1:]
			if len(chans) == 0 {
				for ch := range s.channels {
					chans = append(chans, []byte(ch))
				}
			}
			for _, ch := range chans {
				if s.channels[string(ch)] {
					delete(s.channels, string(ch))
					a.pubsub.remove(s, string(ch))
				}
				send(subReply("unsubscribe", string(ch), len(s.channels)))
			}
		case "ping":
			msg := ""
			if len(cmd.Args) > 1 {
				msg = string(cmd.Args[1])
			}
			send(respArray(nil, "pong", msg))
		case "quit":
			send([]byte("+OK\r\n"))
			return
		default:
			send([]byte("-ERR Can't execute '" + cString(cmd.Args[0], 64) +
				"': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"))
		}
	}
}
