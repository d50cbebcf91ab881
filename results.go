package signalhub

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/signalhub/signalhub/protocol"
)

// ClientError is the error a client answered an InvokeConnection with (for
// example "Client didn't provide a result." when it has no handler for the
// target, as the official clients answer).
type ClientError struct {
	// Message is the error text the client sent.
	Message string
}

// Error returns the client's message.
func (e *ClientError) Error() string { return "signalhub: client error: " + e.Message }

// clientReply is a client's Completion for an invocation the server made.
type clientReply struct {
	result json.RawMessage
	err    string
}

// InvokeConnection invokes target with args on one connection of this hub
// and waits for the client's answer (a client result): the JSON value its
// handler returned. It returns ctx's error when ctx ends first (bound every
// call with a deadline), ErrClientDisconnected when the connection ends
// first, a *ClientError when the client answered with an error, and
// ErrConnectionNotFound for a connection this hub does not hold (client
// results across the nodes of a cluster are not supported yet).
//
// A hub method may call it for its own caller: the answer is read while
// the method waits, even with one invocation at a time.
func (h *Hub) InvokeConnection(ctx context.Context, connectionID, target string, args ...any) (json.RawMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if connectionID == "" || target == "" {
		return nil, fmt.Errorf("signalhub: invoke connection: %w", ErrEmptyName)
	}
	h.mu.RLock()
	closed, c := h.closed, h.conns[connectionID]
	h.mu.RUnlock()
	if closed {
		return nil, ErrHubClosed
	}
	if c == nil {
		return nil, fmt.Errorf("signalhub: invoke %s on connection %q: %w", target, connectionID, ErrConnectionNotFound)
	}
	id, reply := c.awaitReply()
	defer c.forgetReply(id)
	rec, err := protocol.AppendInvocationArgs(make([]byte, 0, protocol.SizeHint(target, args)+len(id)+20), id, target, args)
	if err != nil {
		return nil, fmt.Errorf("signalhub: invoke %s: %w", target, err)
	}
	if !c.enqueue(rec) {
		return nil, fmt.Errorf("signalhub: invoke %s: %w", target, ErrClientDisconnected)
	}
	select {
	case r := <-reply:
		if r.err != "" {
			return nil, &ClientError{Message: r.err}
		}
		return r.result, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.ctx.Done():
		return nil, fmt.Errorf("signalhub: invoke %s: %w", target, ErrClientDisconnected)
	}
}

// InvokeConnectionAs is InvokeConnection with the answer decoded into T.
func InvokeConnectionAs[T any](ctx context.Context, h *Hub, connectionID, target string, args ...any) (T, error) {
	var v T
	raw, err := h.InvokeConnection(ctx, connectionID, target, args...)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("signalhub: invoke %s: decoding the answer: %w", target, err)
	}
	return v, nil
}

// awaitReply registers an invocation ID for a client's answer.
func (c *conn) awaitReply() (string, chan clientReply) {
	ch := make(chan clientReply, 1)
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.nextReply++
	// A prefix no official client uses for its own invocations (they
	// number them from 0), so that answers are told apart in logs.
	id := "s" + strconv.FormatUint(c.nextReply, 10)
	if c.replies == nil {
		c.replies = make(map[string]chan clientReply)
	}
	c.replies[id] = ch
	return id, ch
}

func (c *conn) forgetReply(id string) {
	c.rmu.Lock()
	delete(c.replies, id)
	c.rmu.Unlock()
}

// deliverReply hands a client's Completion to the InvokeConnection that
// waits for it; one for an ID nobody waits for is ignored.
func (c *conn) deliverReply(m *protocol.Message) {
	c.rmu.Lock()
	ch := c.replies[m.InvocationID]
	delete(c.replies, m.InvocationID)
	c.rmu.Unlock()
	if ch != nil {
		ch <- clientReply{result: m.Result, err: m.Error}
	}
}
