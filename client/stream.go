package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"time"

	"github.com/signalhub/signalhub/protocol"
)

// Stream calls the streaming hub method target with args and returns its
// items, as raw JSON, as they arrive; see StreamAs to decode them. The
// call is made when a range loop starts over the sequence, and again by
// every later loop over it:
//
//	for item, err := range c.Stream(ctx, "Counter", 10) {
//		if err != nil {
//			return err // the last pair: the stream failed
//		}
//		fmt.Println(string(item))
//	}
//
// The loop gets every item in order, then ends. A failure ends it with one
// last pair carrying the error: an *InvocationError when the server ended
// the stream with an error (the items before it are delivered first),
// ctx.Err() when ctx ends, the connection's error (such as one wrapping
// ErrConnectionLost, or a *CloseError) when the connection is lost, and
// ErrStreamStalled (see Options.StreamStallTimeout). A stream does not
// survive a reconnect: the new connection knows nothing of it, so a stream
// in flight when the connection drops ends with that error even when the
// client reconnects; start it again after OnReconnected if needed. Calls
// made without a connection get the errors of Invoke, ErrEmptyTarget
// included.
//
// Breaking out of the loop, or ctx ending, sends the server a
// CancelInvocation, which ends the hub method's context; the server's
// late items are dropped. Items wait in a buffer of
// Options.StreamBufferCapacity; when the loop falls behind, the client
// stops reading the connection until the loop takes one (see
// Options.StreamStallTimeout), so a loop body should not wait long, and
// never for its own connection.
//
// Arguments may include streams to the server (see Invoke); they run
// while the loop does, and one still running when the loop ends is
// stopped and completed with an error. A local failure of one (an item
// that does not encode, a panicking iterator) ends the loop with that
// error.
//
// The sequence may be ranged over from any goroutine, and by several
// loops at once, each its own call; several streams may run at once on
// one Conn.
func (c *Conn) Stream(ctx context.Context, target string, args ...any) iter.Seq2[json.RawMessage, error] {
	return func(yield func(json.RawMessage, error) bool) {
		c.stream(ctx, target, args, yield)
	}
}

// StreamAs is Stream decoding each item into a T. An item that does not
// decode ends the loop with the decoding error and cancels the stream.
func StreamAs[T any](ctx context.Context, c *Conn, target string, args ...any) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		for raw, err := range c.Stream(ctx, target, args...) {
			if err != nil {
				yield(zero, err)
				return
			}
			var v T
			if err := json.Unmarshal(raw, &v); err != nil {
				yield(zero, fmt.Errorf("client: stream %q: decode item: %w", target, err))
				return
			}
			if !yield(v, nil) {
				return
			}
		}
	}
}

// errLoopStopped is readStream's answer when the loop broke: nothing more
// may be yielded.
var errLoopStopped = errors.New("client: the loop stopped")

// stream runs one stream from the server for a range loop.
func (c *Conn) stream(ctx context.Context, target string, args []any, yield func(json.RawMessage, error) bool) {
	if target == "" {
		yield(nil, ErrEmptyTarget)
		return
	}
	if err := ctx.Err(); err != nil {
		yield(nil, err)
		return
	}
	s, err := c.current()
	if err != nil {
		yield(nil, err)
		return
	}
	out, err := c.prepare(protocol.TypeStreamInvocation, true, target, args)
	if err != nil {
		yield(nil, fmt.Errorf("client: stream %q: %w", target, err))
		return
	}
	st, err := s.openStream(out.id, target)
	if err != nil {
		yield(nil, err)
		return
	}
	if err := s.write(ctx, out.rec); err != nil {
		s.endStream(out.id, err, false) // never sent: nothing to cancel
		yield(nil, err)
		return
	}
	ups := s.startUploads(ctx, out.uploads)
	// leave ends the stream on the client's side: it stops taking items,
	// ends the streams to the server, then cancels the invocation unless
	// the server has ended it. The streams end first so that a hub method
	// still reading one sees its end rather than wait for it after the
	// server has forgotten it.
	leave := sync.OnceValue(func() uploadsEnd {
		cancel := s.leaveStream(out.id, st)
		e := ups.finish()
		if cancel {
			c.cancelStream(s, out.id)
		}
		return e
	})
	defer leave() // a panic in the loop body unwinds through here

	err = readStream(ctx, st, yield)
	e := leave()
	switch {
	case errors.Is(err, errLoopStopped):
	case e.failed != nil: // the cause of whatever the server said
		yield(nil, fmt.Errorf("client: stream %q: %w", target, e.failed))
	case err != nil:
		yield(nil, err)
	}
}

// readStream yields the stream's items until it ends, ctx ends or the
// loop breaks. It returns why the stream ended (nil for the server's plain
// Completion), or errLoopStopped.
func readStream(ctx context.Context, st *stream, yield func(json.RawMessage, error) bool) error {
	for {
		select {
		case item := <-st.items:
			if ctx.Err() != nil { // no item once ctx has ended
				return ctx.Err()
			}
			if !yield(item, nil) {
				return errLoopStopped
			}
		case <-st.ended:
			// The items that came before the end. Once ended is closed the
			// reader adds at most one more (see session.deliver).
		drain:
			for range cap(st.items) + 1 {
				select {
				case item := <-st.items:
					if ctx.Err() != nil {
						return ctx.Err()
					}
					if !yield(item, nil) {
						return errLoopStopped
					}
				default:
					break drain
				}
			}
			return st.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stream is a stream from the server, from its StreamInvocation until its
// loop stops. The reader delivers its items; the session ends it.
type stream struct {
	target string
	items  chan json.RawMessage // capacity Options.StreamBufferCapacity; never closed
	quit   chan struct{}        // closed when the loop stops listening
	ended  chan struct{}        // closed, under session.mu, once no item will come

	// err and cancel are set under session.mu before ended is closed.
	err    error // why it ended; nil for the server's plain Completion
	cancel bool  // the server may still stream: leaveStream cancels it
}

// endLocked ends the stream. The caller holds session.mu and has taken
// the stream out of session.streams.
func (st *stream) endLocked(err error, cancel bool) {
	st.err, st.cancel = err, cancel
	close(st.ended)
}

// openStream registers a stream from the server before its
// StreamInvocation is sent, so that no item can come first.
func (s *session) openStream(id, target string) (*stream, error) {
	st := &stream{
		target: target,
		items:  make(chan json.RawMessage, s.c.opts.StreamBufferCapacity),
		quit:   make(chan struct{}),
		ended:  make(chan struct{}),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cause != nil {
		return nil, notConnected(s.cause)
	}
	s.streams[id] = st
	return st, nil
}

// endStream ends the stream id with err, unless it ended already.
func (s *session) endStream(id string, err error, cancel bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.streams[id]; st != nil {
		delete(s.streams, id)
		st.endLocked(err, cancel)
	}
}

// completeStream ends a stream with the server's Completion. It reports
// false when m is not for a live stream. Reader goroutine only.
func (s *session) completeStream(m *protocol.Message) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[m.InvocationID]
	if st == nil {
		return false
	}
	delete(s.streams, m.InvocationID)
	var err error
	if m.Error != "" {
		err = &InvocationError{Target: st.target, Message: m.Error}
	}
	st.endLocked(err, false)
	return true
}

// streamItem hands a StreamItem to its stream. It reports false when m is
// not for a live stream. Reader goroutine only.
func (s *session) streamItem(m *protocol.Message) bool {
	s.mu.Lock()
	st := s.streams[m.InvocationID]
	s.mu.Unlock()
	if st == nil {
		return false
	}
	s.deliver(m.InvocationID, st, m.Item)
	return true
}

// deliver puts an item in the stream's buffer. When the buffer is full the
// reader waits, so the server's messages queue up in TCP rather than in
// memory, as enqueue does for handlers; the server timeout is suspended
// meanwhile, as the delay is the client's. After StreamStallTimeout the
// stream fails with ErrStreamStalled and reading resumes. Reader goroutine
// only.
func (s *session) deliver(id string, st *stream, item json.RawMessage) {
	select {
	case st.items <- item:
		return
	case <-st.quit:
		return
	default:
	}
	s.stalled.Store(true)
	defer func() {
		s.lastRecv.Store(s.c.now())
		s.stalled.Store(false)
	}()
	timeout := s.c.opts.StreamStallTimeout
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case st.items <- item:
	case <-st.quit:
	case <-s.stop:
	case <-t.C:
		s.c.log.LogAttrs(context.Background(), slog.LevelWarn, "stream stalled: its loop took no item",
			slog.String("conn_id", s.id), slog.String("target", st.target), slog.Duration("timeout", timeout))
		s.endStream(id, fmt.Errorf("%w (stream %q, for %v)", ErrStreamStalled, st.target, timeout), true)
	}
}

// leaveStream runs once when the loop stops listening: it unregisters the
// stream and wakes a reader waiting for room in it. It reports whether the
// server may still be streaming, so that the stream must be cancelled.
func (s *session) leaveStream(id string, st *stream) (cancel bool) {
	s.mu.Lock()
	cancel = st.cancel
	if s.streams[id] == st {
		delete(s.streams, id)
		cancel = true
	}
	s.mu.Unlock()
	close(st.quit)
	return cancel
}

// cancelStream sends the server a CancelInvocation for the stream id. A
// session that has ended drops it.
func (c *Conn) cancelStream(s *session, id string) {
	rec := protocol.AppendMessage(nil, &protocol.Message{Type: protocol.TypeCancelInvocation, InvocationID: id})
	if err := s.write(c.life, rec); err != nil {
		c.logDebug("stream cancel not sent", s.id, err)
	}
}
