package nats

import (
	"context"
	"log/slog"

	natsgo "github.com/nats-io/nats.go"

	"github.com/signalhub/signalhub/backplane"
)

// run calls h for each queued message until Close, and logs the
// connection's status changes between messages. It is the only goroutine
// that receives from b.queue, which makes a full queue easy to notice:
// once full, the queue stays full until run takes the next message.
func (b *Backplane) run(h backplane.Handler, status <-chan natsgo.Status) {
	defer b.wg.Done()
	up := b.nc.Status() == natsgo.CONNECTED
	behind := false // the queue has been full since the last drop report
	handled := 0    // messages handled since behind was set
	for {
		select {
		case <-b.done:
			return
		case s, ok := <-status:
			if !ok {
				status = nil
				continue
			}
			up = b.logStatus(s, up)
		case m := <-b.queue:
			select {
			case <-b.done: // Close wins over a ready message
				return
			default:
			}
			if len(b.queue) >= cap(b.queue)-1 {
				behind = true
			}
			b.mu.Lock()
			s := b.bySub[m.Sub]
			b.mu.Unlock()
			if s != nil { // nil: unsubscribed since it was queued
				// m.Data is this message's own copy: the client
				// allocates one per message and keeps no reference.
				h(s.channel, m.Data)
			}
			if behind {
				handled++
				if len(b.queue) == 0 || handled >= cap(b.queue) {
					b.reportDrops()
					behind, handled = false, 0
				}
			}
		}
	}
}

// reportDrops logs how many messages the NATS client dropped because the
// queue was full, since the last report.
func (b *Backplane) reportDrops() {
	total := 0
	b.mu.Lock()
	for _, s := range b.byName {
		if n, err := s.sub.Dropped(); err == nil && n > s.dropped {
			total += n - s.dropped
			s.dropped = n
		}
	}
	b.mu.Unlock()
	if total > 0 {
		b.log.LogAttrs(context.Background(), slog.LevelWarn,
			"backplane/nats: the Handler fell behind and the NATS client dropped messages",
			slog.Int("dropped", total), slog.Int("queue_length", cap(b.queue)))
	}
}

// logStatus logs a change of the connection's status and returns whether
// it is up.
func (b *Backplane) logStatus(s natsgo.Status, up bool) bool {
	ctx := context.Background()
	switch s {
	case natsgo.CONNECTED:
		if !up {
			b.log.LogAttrs(ctx, slog.LevelWarn, "backplane/nats: connected to the server; subscriptions restored",
				slog.String("server", b.nc.ConnectedUrlRedacted()))
		}
		return true
	case natsgo.CLOSED:
		b.log.LogAttrs(ctx, slog.LevelError, "backplane/nats: the connection is closed; the backplane stays unavailable")
		return false
	default:
		if up {
			b.log.LogAttrs(ctx, slog.LevelWarn, "backplane/nats: lost the server; publishes and subscribes fail until the client reconnects",
				slog.String("status", s.String()))
		}
		return false
	}
}
