package nats

import (
	"context"
	"fmt"

	"github.com/signalhub/signalhub/backplane"
)

// batch is a group of Publish and Subscribe calls that one round trip to
// the server confirms. The server handles a connection's commands in
// order, so its answer to a PING sent after a call's command proves that
// it has that command: its subscription is registered, its message routed.
type batch struct {
	done    chan struct{} // closed when err is set
	err     error
	waiters int // guarded by Backplane.mu
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

// confirm waits until the server has every command the calling goroutine
// has handed to the NATS client so far, or until ctx ends. Concurrent
// callers share the round trip: they join b.next, which confirmLoop
// swaps for a fresh batch just before it sends the PING, so the PING
// follows every joiner's command. The errors wrap backplane.ErrUnavailable,
// or backplane.ErrClosed when Close came first.
func (b *Backplane) confirm(ctx context.Context) error {
	b.mu.Lock()
	if b.state == closed {
		b.mu.Unlock()
		return backplane.ErrClosed
	}
	bt := b.next
	bt.waiters++
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default: // a kick is pending: confirmLoop will see bt
	}
	select {
	case <-bt.done:
		return bt.err
	case <-ctx.Done():
		return fmt.Errorf("no confirmation from the server: %w: %w", backplane.ErrUnavailable, ctx.Err())
	}
}

// confirmLoop sends one PING per batch of waiting calls and releases them
// with the outcome, until Close. A batch that forms while a round trip is
// under way waits for it, which is what makes batches grow under load.
func (b *Backplane) confirmLoop(stopCtx context.Context) {
	defer b.wg.Done()
	for {
		select {
		case <-b.done:
			b.mu.Lock()
			bt := b.next
			b.mu.Unlock()
			// Calls joining from now on see the closed state instead.
			bt.err = backplane.ErrClosed
			close(bt.done)
			return
		case <-b.kick:
		}
		b.mu.Lock()
		bt := b.next
		if bt.waiters == 0 { // a kick from a batch confirmed already
			b.mu.Unlock()
			continue
		}
		b.next = newBatch()
		b.mu.Unlock()
		ctx, cancel := context.WithTimeout(stopCtx, confirmTimeout)
		err := b.nc.FlushWithContext(ctx)
		cancel()
		switch {
		case err == nil:
		case stopCtx.Err() != nil:
			err = backplane.ErrClosed
		default:
			err = fmt.Errorf("no confirmation from the server: %w: %w", backplane.ErrUnavailable, err)
		}
		bt.err = err
		close(bt.done)
	}
}
