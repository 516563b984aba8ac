package source

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
)

// The subscription of a scan_live node: one connection, PSUBSCRIBE __keyspace@*__:* (every db,
// those empty at the start too), read at full speed so that the server never drops it for its
// pubsub output buffer; a PING every few seconds tells a dead connection from a quiet server,
// and answers a flush check's barrier (pingBarrier).

// keyspacePattern is the pattern subscribed to.
const keyspacePattern = "__keyspace@*__:*"

// removalEvents are the events after which a key no longer exists in its db.
var removalEvents = map[string]bool{"del": true, "expired": true, "evicted": true, "rename_from": true, "move_from": true}

// subscribe keeps the subscription up until ctx ends: ready is closed once it first is; every
// later subscription asks for a new pass, since changes may have gone unseen in between.
func (lv *liveState) subscribe(ctx context.Context, ready chan struct{}) {
	first := true
	backoff := lv.n.opts.BackoffMin
	for ctx.Err() == nil {
		subscribed, err := lv.subscribeOnce(ctx, func() {
			backoff = lv.n.opts.BackoffMin
			lv.mu.Lock()
			lv.subEpoch++
			lv.mu.Unlock()
			lv.n.st.setSub(true)
			if first {
				first = false
				close(ready)
				return
			}
			lv.requestPass("the keyspace notification subscription was lost")
		})
		if ctx.Err() != nil {
			break
		}
		lv.n.st.setSub(false)
		lv.n.st.setErr(err)
		if subscribed {
			lv.n.st.subDrops.Add(1)
			lv.log.Error("keyspace notification subscription lost: changes until it is back are not seen; a new pass follows",
				zap.Error(err))
		} else {
			lv.log.Warn("keyspace notification subscription", zap.Error(err), zap.Duration("backoff", backoff))
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		case <-lv.n.kick:
			t.Stop()
		}
		backoff = min(backoff*2, lv.n.opts.BackoffMax)
	}
	lv.n.st.setSub(false)
}

// subscribeOnce runs one subscription connection until it fails; up is called once it is
// subscribed, and subscribed reports whether it got that far.
func (lv *liveState) subscribeOnce(ctx context.Context, up func()) (subscribed bool, err error) {
	sc, err := lv.n.dial(ctx)
	if err != nil {
		return false, err
	}
	defer lv.n.hangUp(sc)
	stop := context.AfterFunc(ctx, func() { sc.Close() })
	defer stop()
	if _, err := sc.do("PSUBSCRIBE", keyspacePattern); err != nil {
		return false, fmt.Errorf("source %s: PSUBSCRIBE %s: %w", sc.addr, keyspacePattern, err)
	}
	up()
	// The pinger writes, this goroutine reads: PING every pingEvery, and for each barrier.
	var (
		mu      sync.Mutex
		waiters []chan struct{} // one per PING sent, nil for the periodic ones
	)
	pctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	pingEvery := min(max(lv.n.opts.Timeout/3, 100*time.Millisecond), 5*time.Second)
	wg.Go(func() {
		t := time.NewTicker(pingEvery)
		defer t.Stop()
		for {
			var w chan struct{}
			select {
			case <-pctx.Done():
				return
			case <-t.C:
			case w = <-lv.pings:
			}
			mu.Lock()
			waiters = append(waiters, w)
			sc.addStr("PING")
			err := sc.flush()
			mu.Unlock()
			if err != nil {
				sc.Close()
				return
			}
		}
	})
	for {
		r, err := sc.read()
		if err != nil {
			return true, fmt.Errorf("source %s: keyspace notifications: %w", sc.addr, err)
		}
		if r.Kind != '*' || len(r.Elems) == 0 {
			return true, fmt.Errorf("%w from %s: not a pubsub message", errBadScanReply, sc.addr)
		}
		switch string(bytes.ToLower(r.Elems[0].Str)) {
		case "pmessage":
			if len(r.Elems) == 4 {
				lv.onNotification(r.Elems[2].Str, r.Elems[3].Str)
			}
		case "pong":
			mu.Lock()
			var w chan struct{}
			if len(waiters) > 0 {
				w, waiters = waiters[0], waiters[1:]
			}
			mu.Unlock()
			if w != nil {
				close(w)
			}
		}
	}
}

// onNotification handles a message on channel __keyspace@<db>__:<key> saying event.
func (lv *liveState) onNotification(channel, event []byte) {
	rest, ok := bytes.CutPrefix(channel, []byte("__keyspace@"))
	if !ok {
		return
	}
	i := bytes.Index(rest, []byte("__:"))
	if i <= 0 {
		return
	}
	db, err := strconv.Atoi(string(rest[:i]))
	if err != nil || db < 0 {
		return
	}
	key := rest[i+3:]
	lv.n.st.notifications.Add(1)
	ev := string(event)
	lv.mu.Lock()
	if removalEvents[ev] {
		lv.removed[db]++
	}
	lv.mu.Unlock()
	if ev == "xgroup-create" || ev == "xgroup-createconsumer" || ev == "xgroup-setid" {
		lv.mu.Lock()
		k := pkey{db, string(key)}
		if _, ok := lv.streams[k]; !ok && len(lv.streams) < maxTrackedStreams {
			lv.streams[k] = struct{}{}
			lv.n.st.streamsTracked.Store(int64(len(lv.streams)))
		}
		lv.mu.Unlock()
	}
	lv.notified(db, key)
}

// pingBarrier returns once every notification of a change made before it was called has been
// received: a PING on the subscription is answered after them. False when the subscription is
// down or does not answer in time.
func (lv *liveState) pingBarrier(ctx context.Context) bool {
	w := make(chan struct{})
	t := time.NewTimer(min(lv.n.opts.Timeout, 10*time.Second))
	defer t.Stop()
	select {
	case lv.pings <- w:
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
	select {
	case <-w:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}
