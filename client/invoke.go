package client

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/signalhub/signalhub/protocol"
)

// Invoke calls the hub method target with args, each encoded as JSON, and
// waits for its Completion. It returns the method's result as raw JSON
// ("null" for a method without one); see InvokeAs to decode it.
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
	id := strconv.FormatUint(c.nextID.Add(1)-1, 10)
	rec, err := protocol.AppendInvocationArgs(make([]byte, 0, protocol.SizeHint(target, args)), id, target, args)
	if err != nil {
		return nil, fmt.Errorf("client: invoke %q: %w", target, err)
	}
	done, err := s.register(id, target)
	if err != nil {
		return nil, err
	}
	if err := s.write(ctx, rec); err != nil {
		s.forget(id)
		return nil, err
	}
	select {
	case r := <-done:
		return r.raw, r.err
	case <-ctx.Done():
		s.forget(id)
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
	rec, err := protocol.AppendInvocationArgs(make([]byte, 0, protocol.SizeHint(target, args)), "", target, args)
	if err != nil {
		return fmt.Errorf("client: send %q: %w", target, err)
	}
	return s.write(ctx, rec)
}
