package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/signalhub/signalhub/protocol"
)

// Invoke calls the hub method target with args, each encoded as JSON, and
// waits for its Completion. It returns the method's result as raw JSON
// ("null" for a method without one); see InvokeAs to decode it.
//
// An argument that is a channel the client can receive from (<-chan T or
// chan T), an iter.Seq[T] or an iter.Seq2[T, error] is a stream to the
// server, for a hub method parameter that takes one: once the invocation
// is sent, a goroutine per stream sends its items until the channel is
// closed or the iterator returns, then completes the stream. An error
// yielded by an iter.Seq2 completes the stream with its text, which the
// hub method sees as the stream's error. A stream still running when the
// Completion arrives, or when ctx ends first, is stopped and completed
// with an error. Invoke returns once the streams have stopped: an
// iterator is stopped at its next yield, so one that blocks between items
// should watch ctx too. An item that does not encode as JSON (or a
// panicking iterator) completes its stream with an error, and Invoke
// returns that error whatever the method answered.
//
// An error Completion is returned as an *InvocationError. If ctx ends
// first, Invoke returns ctx.Err() and the server's late Completion is
// ignored; the server is not told (SignalR cannot cancel an invocation).
// If the connection is lost meanwhile, Invoke returns its error (such as a
// *CloseError or one wrapping ErrConnectionLost). Invoke returns
// ErrNotConnected before Start and while reconnecting, ErrClosed after
// Close or once the connection has ended (see Err), and ErrEmptyTarget for
// an empty target.
func (c *Conn) Invoke(ctx context.Context, target string, args ...any) (json.RawMessage, error) {
	if target == "" {
		return nil, ErrEmptyTarget
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s, err := c.current()
	if err != nil {
		return nil, err
	}
	out, err := c.prepare(protocol.TypeInvocation, true, target, args)
	if err != nil {
		return nil, fmt.Errorf("client: invoke %q: %w", target, err)
	}
	done, err := s.register(out.id, target)
	if err != nil {
		return nil, err
	}
	if err := s.write(ctx, out.rec); err != nil {
		s.forget(out.id)
		return nil, err
	}
	ups := s.startUploads(ctx, out.uploads)
	defer ups.finish()
	select {
	case r := <-done:
		switch e := ups.finish(); {
		case e.failed != nil:
			return nil, fmt.Errorf("client: invoke %q: %w", target, e.failed)
		case e.canceled:
			// ctx ended as the Completion came: a stream was cut short.
			return nil, ctx.Err()
		}
		return r.raw, r.err
	case <-ctx.Done():
		s.forget(out.id)
		return nil, ctx.Err()
	}
}

// InvokeAs is Invoke decoding the result into a T. A method without a
// result gives T's zero value.
func InvokeAs[T any](ctx context.Context, c *Conn, target string, args ...any) (T, error) {
	var v T
	raw, err := c.Invoke(ctx, target, args...)
	if err != nil {
		return v, err
	}
	if len(raw) == 0 {
		return v, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("client: invoke %q: decode result: %w", target, err)
	}
	return v, nil
}

// Send calls the hub method target with args without waiting for it: the
// server sends no Completion, not even for an error. Send returns once the
// message is written to the socket. ctx bounds the wait for another write
// to finish. Errors are those of Invoke, minus the server's.
//
// With stream arguments (see Invoke), Send returns once every stream has
// been sent and completed, or failed: ctx ending stops them, each
// completed with an error, and Send returns ctx.Err(); a lost connection
// returns its error.
func (c *Conn) Send(ctx context.Context, target string, args ...any) error {
	if target == "" {
		return ErrEmptyTarget
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s, err := c.current()
	if err != nil {
		return err
	}
	out, err := c.prepare(protocol.TypeInvocation, false, target, args)
	if err != nil {
		return fmt.Errorf("client: send %q: %w", target, err)
	}
	if err := s.write(ctx, out.rec); err != nil {
		return err
	}
	switch e := s.startUploads(ctx, out.uploads).wait(); {
	case e.failed != nil:
		return fmt.Errorf("client: send %q: %w", target, e.failed)
	case e.canceled:
		return ctx.Err()
	case e.lost != nil:
		return fmt.Errorf("client: send %q: %w", target, e.lost)
	}
	return nil
}
