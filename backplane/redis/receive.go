package redis

import (
	"context"
	"log/slog"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/signalhub/signalhub/backplane"
)

const (
	// queueLength is how many messages wait for the Handler before the
	// reader stops reading from Redis.
	queueLength = 4096
	// readAhead is how many more the reader takes while a Subscribe or
	// Unsubscribe waits for its confirmation; beyond it, it drops them.
	readAhead = 4096

	// minBackoff and maxBackoff bound the wait between two attempts to
	// reopen the pub/sub connection.
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
)

// delivery is a message waiting for the Handler: the hub's channel name
// (the prefix removed) and the payload as go-redis read it.
type delivery struct {
	channel string
	payload string
}

// queue is a FIFO of deliveries. Its memory is reused once it drains, and
// compacted when the consumed head grows past the live part.
type queue struct {
	items []delivery
	head  int
}

func (q *queue) len() int { return len(q.items) - q.head }

func (q *queue) push(d delivery) {
	if q.head > 0 && q.head >= len(q.items)/2 && len(q.items) == cap(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, d)
}

func (q *queue) pop() delivery {
	d := q.items[q.head]
	q.items[q.head] = delivery{}
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	return d
}

// awaitLocked registers a call waiting for the confirmation key. While one
// waits, the reader reads ahead instead of blocking on a full queue.
func (b *Backplane) awaitLocked(key confirm) *waiter {
	w := &waiter{key: key, ok: make(chan struct{})}
	b.waiters[key] = append(b.waiters[key], w)
	b.nwaiters++
	b.notFull.Signal()
	return w
}

// abandonLocked removes w if it still waits.
func (b *Backplane) abandonLocked(w *waiter) {
	ws := b.waiters[w.key]
	for i, x := range ws {
		if x == w {
			b.removeLocked(w.key, i)
			return
		}
	}
}

func (b *Backplane) removeLocked(key confirm, i int) {
	ws := b.waiters[key]
	if len(ws) == 1 {
		delete(b.waiters, key)
	} else {
		b.waiters[key] = append(ws[:i:i], ws[i+1:]...)
	}
	b.nwaiters--
}

// wait blocks until w is confirmed, ctx is done or the Backplane closes.
func (b *Backplane) wait(ctx context.Context, w *waiter) error {
	select {
	case <-w.ok:
		return nil
	case <-ctx.Done():
		select {
		case <-w.ok: // both ready: the confirmation counts
			return nil
		default:
		}
		return ctx.Err()
	case <-b.done:
		return backplane.ErrClosed
	}
}

// confirmed hands a confirmation from Redis to the oldest call waiting for
// it. It reports whether key confirms a subscription that no call waits
// for and nobody wants: one whose Subscribe gave up.
func (b *Backplane) confirmed(key confirm) (unwanted bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ws := b.waiters[key]; len(ws) > 0 {
		close(ws[0].ok)
		b.removeLocked(key, 0)
		return false
	}
	_, wanted := b.wanted[key.channel]
	return !key.unsubscribe && !wanted
}

// dropUnwanted unsubscribes from a Redis channel that Subscribe gave up
// on, unless a new Subscribe wants it by now. order keeps that SUBSCRIBE,
// if any, from going out between the check and the UNSUBSCRIBE.
func (b *Backplane) dropUnwanted(name string) {
	select {
	case b.order <- struct{}{}:
	case <-b.done:
		return
	}
	defer func() { <-b.order }()
	b.mu.Lock()
	_, wanted := b.wanted[name]
	b.mu.Unlock()
	if !wanted {
		_ = b.ps.Unsubscribe(b.ctx, name) // a failure closes the connection, which forgets it too
	}
}

// receive reads the pub/sub connection until Close: messages go to the
// queue, confirmations to the calls that wait for them. go-redis reopens
// a broken connection when it is next used, and subscribes it again to
// every channel; receive keeps using it, with a growing pause between
// failures, and a PING that gets an answer on the new connection ends the
// outage.
func (b *Backplane) receive() {
	defer b.wg.Done()
	ctx := b.ctx
	failures := 0
	for {
		var (
			msg any
			err error
		)
		if failures > 0 {
			err = b.ps.Ping(ctx)
		}
		if err == nil {
			msg, err = b.ps.Receive(ctx)
		}
		if err != nil {
			if b.closing() {
				return
			}
			if failures == 0 {
				b.down.Store(true)
				b.log.LogAttrs(ctx, slog.LevelWarn, "redis backplane: pub/sub connection lost, reconnecting",
					slog.Any("err", err))
			}
			failures++
			if !b.pause(failures) {
				return
			}
			continue
		}
		if failures > 0 {
			failures = 0
			b.down.Store(false)
			b.log.LogAttrs(ctx, slog.LevelWarn, "redis backplane: pub/sub connection restored, subscriptions renewed")
		}
		switch m := msg.(type) {
		case *goredis.Message:
			if channel, ok := strings.CutPrefix(m.Channel, b.prefix); ok {
				b.enqueue(delivery{channel: channel, payload: m.Payload})
			}
		case *goredis.Subscription:
			switch m.Kind {
			case "subscribe":
				if b.confirmed(confirm{channel: m.Channel}) {
					b.dropUnwanted(m.Channel)
				}
			case "unsubscribe":
				b.confirmed(confirm{unsubscribe: true, channel: m.Channel})
			}
		}
	}
}

// closing reports whether Close has begun.
func (b *Backplane) closing() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// pause waits before the next attempt after failures failures in a row.
// It returns false if the Backplane closes meanwhile.
func (b *Backplane) pause(failures int) bool {
	d := maxBackoff
	if failures < 8 {
		d = min(minBackoff<<(failures-1), maxBackoff)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-b.done:
		return false
	}
}

// enqueue queues d for the Handler. With the queue full it waits for room,
// which stops reading and leaves Redis to buffer, unless a call waits for
// a confirmation: then it reads ahead, up to readAhead messages more, and
// drops beyond that.
func (b *Backplane) enqueue(d delivery) {
	b.mu.Lock()
	for b.queue.len() >= queueLength && b.nwaiters == 0 && state(b.state.Load()) != closed {
		b.notFull.Wait()
	}
	if state(b.state.Load()) == closed {
		b.mu.Unlock()
		return
	}
	if b.queue.len() >= queueLength+readAhead {
		b.dropped++
		b.mu.Unlock()
		return
	}
	b.queue.push(d)
	b.notEmpty.Signal()
	dropped := b.dropped
	b.dropped = 0
	b.mu.Unlock()
	if dropped > 0 {
		b.log.LogAttrs(context.Background(), slog.LevelWarn,
			"redis backplane: handler fell behind while a subscription change waited; messages dropped",
			slog.Int("dropped", dropped))
	}
}

// deliver calls h for each queued message, in order, until Close.
func (b *Backplane) deliver(h backplane.Handler) {
	defer b.wg.Done()
	for {
		b.mu.Lock()
		for b.queue.len() == 0 && state(b.state.Load()) != closed {
			b.notEmpty.Wait()
		}
		if state(b.state.Load()) == closed {
			b.mu.Unlock()
			return
		}
		d := b.queue.pop()
		b.notFull.Signal()
		b.mu.Unlock()
		h(d.channel, []byte(d.payload))
	}
}
