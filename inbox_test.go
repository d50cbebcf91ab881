package signalhub_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

// inbox is what a raw test client received and has not taken yet. The
// client's reader pushes records and, when it exits, closes the inbox with
// why; the wait methods take records from it, bounded by their context,
// without touching the transport. Its zero value is ready but for ended.
type inbox[T fmt.Stringer] struct {
	ended string // how failures name the reader's end: "connection closed"

	mu       sync.Mutex
	queue    []T
	seen     []string      // the last records taken, for failure messages
	changed  chan struct{} // closed and replaced whenever queue or closed change
	closed   bool          // the reader has exited
	readErr  error         // why the reader exited
	problems []string      // what the reader got that the official clients refuse
}

// push queues recs, in order.
func (b *inbox[T]) push(recs ...T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.queue = append(b.queue, recs...)
	b.broadcastLocked()
}

// refuse notes something the reader got that the official clients refuse;
// checkProblems fails the test for it.
func (b *inbox[T]) refuse(problem string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, problem)
}

// checkProblems fails t, at cleanup, if refuse was called; msg says what
// was refused.
func (b *inbox[T]) checkProblems(t testing.TB, msg string) {
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		assert.Empty(t, b.problems, msg)
	})
}

// closeWith records that the reader exited because of err; what is queued
// can still be taken.
func (b *inbox[T]) closeWith(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed, b.readErr = true, err
	b.broadcastLocked()
}

// readError is the error closeWith was given, nil while open.
func (b *inbox[T]) readError() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.readErr
}

func (b *inbox[T]) broadcastLocked() {
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
}

// take waits for the first queued record that match accepts and removes
// it. Records before it that skip accepts are dropped; the others stay
// queued. It fails when ctx ends or the inbox is closed first, saying what
// arrived instead.
func (b *inbox[T]) take(ctx context.Context, desc string, match, skip func(T) bool) (T, error) {
	var zero T
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		for i := 0; i < len(b.queue); i++ {
			r := b.queue[i]
			if match(r) {
				b.removeLocked(i)
				b.noteLocked(r)
				return r, nil
			}
			if skip != nil && skip(r) {
				b.removeLocked(i)
				i--
			}
		}
		if b.closed {
			return zero, fmt.Errorf("waiting for %s: %s (%v); %s", desc, b.ended, b.readErr, b.describeLocked())
		}
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		changed := b.changed
		b.mu.Unlock()
		select {
		case <-changed:
			b.mu.Lock()
		case <-ctx.Done():
			b.mu.Lock()
			return zero, fmt.Errorf("waiting for %s: %w; %s", desc, ctx.Err(), b.describeLocked())
		}
	}
}

func (b *inbox[T]) removeLocked(i int) {
	var zero T
	if i == 0 {
		b.queue[0] = zero
		b.queue = b.queue[1:]
		return
	}
	b.queue = append(b.queue[:i], b.queue[i+1:]...)
}

func (b *inbox[T]) noteLocked(r T) {
	b.seen = append(b.seen, r.String())
	if len(b.seen) > 20 {
		b.seen = b.seen[len(b.seen)-20:]
	}
}

// describe says what is queued and what was taken last, for failures.
func (b *inbox[T]) describe() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.describeLocked()
}

func (b *inbox[T]) describeLocked() string {
	q := make([]string, len(b.queue))
	for i, r := range b.queue {
		q[i] = r.String()
	}
	return fmt.Sprintf("queued instead: [%s]; taken before: [%s]", strings.Join(q, ", "), strings.Join(b.seen, ", "))
}
