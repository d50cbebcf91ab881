package signalhub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/signalhub/signalhub/backplane"
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

// InvokeConnection invokes target with args on one connection and waits
// for the client's answer (a client result): the JSON value its handler
// returned. A MessagePack client's answer is converted to JSON (binary
// data becomes a base64 string, a timestamp an RFC 3339 string);
// InvokeConnectionAs decodes it without that detour. In a cluster the
// connection may be on any node: the request and the answer travel over
// the backplane. It returns ctx's error when ctx ends first (bound every
// call with a deadline), ErrClientDisconnected when the connection (or,
// in a cluster, its node) ends first, a *ClientError when the client
// answered with an error, and ErrConnectionNotFound for a connection that
// does not exist.
//
// A hub method may call it for its own caller: the answer is read while
// the method waits, even with one invocation at a time.
func (h *Hub) InvokeConnection(ctx context.Context, connectionID, target string, args ...any) (json.RawMessage, error) {
	raw, p, err := h.invokeConnection(ctx, connectionID, target, args)
	if err != nil {
		return nil, err
	}
	j, err := p.toJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("signalhub: invoke %s: the answer has no JSON form: %w", target, err)
	}
	return j, nil
}

// invokeConnection is InvokeConnection returning the answer in the
// encoding of the connection's protocol, which it returns too.
func (h *Hub) invokeConnection(ctx context.Context, connectionID, target string, args []any) ([]byte, *hubProtocol, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if connectionID == "" || target == "" {
		return nil, nil, fmt.Errorf("signalhub: invoke connection: %w", ErrEmptyName)
	}
	h.mu.RLock()
	closed, c := h.closed, h.conns[connectionID]
	h.mu.RUnlock()
	if closed {
		return nil, nil, ErrHubClosed
	}
	if c == nil {
		if h.cl != nil {
			if node := ownerOf(connectionID); node != "" && node != h.cl.nodeID {
				raw, err := h.invokeRemote(ctx, node, connectionID, target, args)
				return raw, jsonHub, err
			}
		}
		return nil, nil, fmt.Errorf("signalhub: invoke %s on connection %q: %w", target, connectionID, ErrConnectionNotFound)
	}
	return c.invokeClient(ctx, target, args)
}

// invokeClient is invokeConnection on a connection of this node.
func (c *conn) invokeClient(ctx context.Context, target string, args []any) ([]byte, *hubProtocol, error) {
	id, reply := c.awaitReply()
	defer c.forgetReply(id)
	rec, err := c.proto.appendInvocation(make([]byte, 0, protocol.SizeHint(target, args)+len(id)+20), id, target, args)
	if err != nil {
		return nil, nil, fmt.Errorf("signalhub: invoke %s: %w", target, err)
	}
	if !c.enqueue(rec) {
		return nil, nil, fmt.Errorf("signalhub: invoke %s: %w", target, ErrClientDisconnected)
	}
	select {
	case r := <-reply:
		if r.err != "" {
			return nil, nil, &ClientError{Message: r.err}
		}
		return r.result, c.proto, nil
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	case <-c.ctx.Done():
		return nil, nil, fmt.Errorf("signalhub: invoke %s: %w", target, ErrClientDisconnected)
	}
}

// InvokeConnectionAs is InvokeConnection with the answer decoded into T
// from the connection's protocol, JSON or MessagePack.
func InvokeConnectionAs[T any](ctx context.Context, h *Hub, connectionID, target string, args ...any) (T, error) {
	var v T
	raw, p, err := h.invokeConnection(ctx, connectionID, target, args)
	if err != nil {
		return v, err
	}
	if err := p.bind(raw, &v); err != nil {
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

// Client results across nodes: the asking node publishes a
// ClientInvocation to the owner's node channel; the owner invokes its
// connection on a goroutine of its own and Replies with the outcome, one
// tag byte and its text.
const (
	replyResult       = 'r' // the client's answer, JSON
	replyClientError  = 'e' // the client's error text
	replyNotFound     = 'n' // no such connection on the owner
	replyDisconnected = 'd' // the connection ended first
	replyTimeout      = 't' // the deadline passed on the owner
	replyFailed       = 'x' // anything else: its text
)

// maxRemoteInvocations bounds the client invocations a node runs for other
// nodes at once; beyond it requests are answered with an error at once.
const maxRemoteInvocations = 4096

// invokeRemote is InvokeConnection for a connection of another node.
func (h *Hub) invokeRemote(ctx context.Context, node, connID, target string, args []any) (json.RawMessage, error) {
	cl := h.cl
	payload, err := protocol.EncodeArguments(args)
	if err != nil {
		return nil, fmt.Errorf("signalhub: invoke %s: %w", target, err)
	}
	wait := ""
	if deadline, ok := ctx.Deadline(); ok {
		wait = strconv.FormatInt(max(1, time.Until(deadline).Milliseconds()), 10)
	}
	replies := make(chan reply, 1)
	id, forget := cl.await(replies)
	defer forget()
	if !slices.Contains(h.liveNodes(), node) {
		return nil, fmt.Errorf("signalhub: invoke %s on connection %q: node %s is not in the cluster: %w",
			target, connID, node, ErrConnectionNotFound)
	}
	m := backplane.Message{Origin: cl.nodeID, Kind: backplane.ClientInvocation, ID: id,
		Names: []string{connID, target, wait}, Payload: payload}
	if err := h.publishTo(ctx, chanNode+node, &m); err != nil {
		return nil, fmt.Errorf("signalhub: invoke %s: %w", target, err)
	}
	// The owner answers when its client does; meanwhile make sure it lives.
	check := time.NewTicker(h.opts.NodeTimeout / 3)
	defer check.Stop()
	for {
		cl.mu.Lock()
		changed := cl.nodesChanged
		cl.mu.Unlock()
		select {
		case r := <-replies:
			return remoteOutcome(target, connID, r.payload)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-changed:
		case <-check.C:
		}
		if !slices.Contains(h.liveNodes(), node) {
			return nil, fmt.Errorf("signalhub: invoke %s on connection %q: node %s left: %w", target, connID, node, ErrClientDisconnected)
		}
	}
}

// remoteOutcome turns an owner's Reply into InvokeConnection's result.
func remoteOutcome(target, connID, payload string) (json.RawMessage, error) {
	if payload == "" {
		return nil, fmt.Errorf("signalhub: invoke %s: empty answer from the connection's node", target)
	}
	text := payload[1:]
	switch payload[0] {
	case replyResult:
		return json.RawMessage(text), nil
	case replyClientError:
		return nil, &ClientError{Message: text}
	case replyNotFound:
		return nil, fmt.Errorf("signalhub: invoke %s on connection %q: %w", target, connID, ErrConnectionNotFound)
	case replyDisconnected:
		return nil, fmt.Errorf("signalhub: invoke %s: %w", target, ErrClientDisconnected)
	case replyTimeout:
		return nil, context.DeadlineExceeded
	}
	return nil, fmt.Errorf("signalhub: invoke %s on connection %q: %s", target, connID, text)
}

// answerClientInvocation runs another node's InvokeConnection on a local
// connection and Replies with the outcome. It runs on a goroutine of its
// own, counted in h.wg, so that the backplane's delivery goes on.
func (h *Hub) answerClientInvocation(m backplane.Message) {
	defer h.wg.Done()
	defer func() { <-h.cl.remoteSlots }()
	ctx := context.Background()
	cancel := context.CancelFunc(func() {})
	if ms, err := strconv.ParseInt(m.Names[2], 10, 64); err == nil && ms > 0 {
		ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
	}
	defer cancel()
	var args []json.RawMessage
	var result json.RawMessage
	err := json.Unmarshal(m.Payload, &args)
	if err == nil {
		h.mu.RLock()
		c := h.conns[m.Names[0]]
		h.mu.RUnlock()
		if c == nil {
			err = ErrConnectionNotFound
		} else {
			vals := make([]any, len(args))
			for i, a := range args {
				vals[i] = a
			}
			var raw []byte
			var p *hubProtocol
			if raw, p, err = c.invokeClient(ctx, m.Names[1], vals); err == nil {
				result, err = p.toJSON(raw)
			}
		}
	}
	h.replyTo(m, clientOutcome(result, err))
}

// clientOutcome encodes a local InvokeConnection's outcome for a Reply.
func clientOutcome(result json.RawMessage, err error) []byte {
	var ce *ClientError
	switch {
	case err == nil:
		return append([]byte{replyResult}, result...)
	case errors.As(err, &ce):
		return append([]byte{replyClientError}, ce.Message...)
	case errors.Is(err, ErrConnectionNotFound):
		return []byte{replyNotFound}
	case errors.Is(err, ErrClientDisconnected):
		return []byte{replyDisconnected}
	case errors.Is(err, context.DeadlineExceeded):
		return []byte{replyTimeout}
	}
	return append([]byte{replyFailed}, err.Error()...)
}

// replyTo publishes a Reply to request m.
func (h *Hub) replyTo(m backplane.Message, payload []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
	defer cancel()
	r := backplane.Message{Origin: h.cl.nodeID, Kind: backplane.Reply, ID: m.ID, Payload: payload}
	if err := h.publishTo(ctx, chanNode+m.Origin, &r); err != nil {
		h.log.LogAttrs(ctx, slog.LevelWarn, "backplane reply failed", slog.String("node_id", m.Origin), slog.Any("err", err))
	}
}
