package signalhub_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub/protocol"
)

// msgpackHandshake is the handshake request of the official MessagePack
// clients.
const msgpackHandshake = `{"protocol":"messagepack","version":1}` + rs

// mpReceived is one record a MessagePack client got: its bytes with the
// length prefix (wire) and without (body), decoded when it is a hub
// message.
type mpReceived struct {
	wire, body []byte
	msg        protocol.Message
	err        error
}

func (r mpReceived) String() string { return fmt.Sprintf("% x", r.wire) }

// mpClient is a minimal SignalR MessagePack client over a coder/websocket
// connection, the counterpart of client: a reader goroutine splits
// incoming binary messages into records and queues them in the client's
// inbox; the wait methods take them from it, bounded by their context. It notes every text
// message and every record split across messages, which the official
// clients refuse, and Cleanup fails the test for them.
type mpClient struct {
	ID string // connectionId from negotiate

	ws     *websocket.Conn
	nextID atomic.Int64
	done   chan struct{} // closed when the reader has exited

	inbox[mpReceived]
}

// DialMsgPack negotiates, connects and handshakes with the MessagePack
// protocol (in a text message, as the JavaScript client does), then waits
// until OnConnected succeeded.
func (f *fixture) DialMsgPack(t testing.TB, o dialOptions) *mpClient {
	t.Helper()
	ctx := waitCtx(t)
	neg, err := f.negotiate(ctx, o)
	require.NoError(t, err)
	ws, _, err := f.DialWS(ctx, neg.ConnectionToken, o.Query, o.Header)
	require.NoError(t, err)
	hs := o.Handshake
	if hs == "" {
		hs = strings.TrimSuffix(msgpackHandshake, rs)
	}
	require.NoError(t, ws.Write(ctx, websocket.MessageText, []byte(hs+rs)))
	_, resp, err := ws.Read(ctx)
	require.NoError(t, err, "handshake response")
	require.Equal(t, "{}"+rs, string(resp), "handshake response")
	c := newMsgPackClient(t, ws)
	c.ID = neg.ConnectionID
	_, err = f.waitConnected(ctx, c.ID)
	require.NoError(t, err)
	return c
}

// newMsgPackClient reads ws, whose handshake is done, until it closes.
func newMsgPackClient(t testing.TB, ws *websocket.Conn) *mpClient {
	c := &mpClient{ws: ws, done: make(chan struct{}), inbox: inbox[mpReceived]{ended: "connection closed"}}
	go c.readLoop()
	c.checkProblems(t, "messages a MessagePack client refuses")
	t.Cleanup(c.Drop)
	return c
}

func (c *mpClient) readLoop() {
	defer close(c.done)
	for {
		typ, data, err := c.ws.Read(context.Background())
		if err != nil {
			c.closeWith(err)
			return
		}
		var recs []mpReceived
		var problem string
		if typ != websocket.MessageBinary {
			problem = fmt.Sprintf("a %v message: %.80q", typ, data)
		}
		for rest := data; len(rest) > 0; {
			body, tail, ok, err := protocol.NextMsgPackRecord(rest)
			if err != nil || !ok {
				problem = fmt.Sprintf("a message ending inside a record (%v): % .80x", err, data)
				break
			}
			r := mpReceived{wire: rest[:len(rest)-len(tail)], body: body}
			r.msg, r.err = protocol.DecodeMsgPackMessage(body)
			recs = append(recs, r)
			rest = tail
		}
		if problem != "" {
			c.refuse(problem)
		}
		c.push(recs...)
	}
}

func isMsgPackPing(r mpReceived) bool { return r.err == nil && r.msg.Type == protocol.TypePing }

// NextRecord returns the next record, Pings included.
func (c *mpClient) NextRecord(t testing.TB) mpReceived {
	t.Helper()
	r, err := c.take(waitCtx(t), "a record", func(mpReceived) bool { return true }, nil)
	require.NoError(t, err)
	return r
}

// Next returns the next record that is not a Ping.
func (c *mpClient) Next(t testing.TB) mpReceived {
	t.Helper()
	r, err := c.take(waitCtx(t), "a message", func(r mpReceived) bool { return !isMsgPackPing(r) }, isMsgPackPing)
	require.NoError(t, err)
	require.NoError(t, r.err, "record %s", r)
	return r
}

// SendBinary writes data as one binary message, as it is.
func (c *mpClient) SendBinary(t testing.TB, data ...[]byte) {
	t.Helper()
	var msg []byte
	for _, d := range data {
		msg = append(msg, d...)
	}
	require.NoError(t, c.ws.Write(waitCtx(t), websocket.MessageBinary, msg))
}

// invocation encodes an Invocation; an empty id makes it non-blocking.
func mpInvocation(t testing.TB, id, target string, args ...any) []byte {
	t.Helper()
	rec, err := protocol.AppendMsgPackInvocationArgs(nil, id, target, args)
	require.NoError(t, err)
	return rec
}

// StartInvoke sends a blocking Invocation and returns its invocationId.
func (c *mpClient) StartInvoke(t testing.TB, target string, args ...any) string {
	t.Helper()
	id := strconv.FormatInt(c.nextID.Add(1), 10)
	c.SendBinary(t, mpInvocation(t, id, target, args...))
	return id
}

// Completion waits for the Completion of invocation id; other messages
// stay queued.
func (c *mpClient) Completion(t testing.TB, id string) mpReceived {
	t.Helper()
	r, err := c.take(waitCtx(t), "the completion of invocation "+id, func(r mpReceived) bool {
		return r.err == nil && r.msg.Type == protocol.TypeCompletion && r.msg.InvocationID == id
	}, nil)
	require.NoError(t, err)
	return r
}

// Invoke calls target and returns its Completion.
func (c *mpClient) Invoke(t testing.TB, target string, args ...any) protocol.Message {
	t.Helper()
	return c.Completion(t, c.StartInvoke(t, target, args...)).msg
}

// ExpectResult invokes target and requires a result Completion whose
// result is the MessagePack encoding of want.
func (c *mpClient) ExpectResult(t testing.TB, want any, target string, args ...any) {
	t.Helper()
	m := c.Invoke(t, target, args...)
	require.Empty(t, m.Error, "invoke %s", target)
	enc, err := protocol.AppendMsgPackValue(nil, want)
	require.NoError(t, err)
	assert.Equal(t, enc, []byte(m.Result), "result of %s: want % x, got % x", target, enc, m.Result)
}

// ExpectError invokes target and requires an error Completion with
// exactly want.
func (c *mpClient) ExpectError(t testing.TB, want, target string, args ...any) {
	t.Helper()
	m := c.Invoke(t, target, args...)
	assert.Nil(t, m.Result, "an error Completion carries no result")
	assert.Equal(t, want, m.Error, "error of %s", target)
}

// ExpectInvocation requires the next non-Ping record to be exactly the
// non-blocking Invocation of target with args, as the hub encodes it.
func (c *mpClient) ExpectInvocation(t testing.TB, target string, args ...any) {
	t.Helper()
	r := c.Next(t)
	assert.Equal(t, mpInvocation(t, "", target, args...), r.wire, "want Invocation of %s", target)
}

// ExpectClose requires the next non-Ping record to be a Close message and
// the connection to close after it; it returns the message and the
// WebSocket close status.
func (c *mpClient) ExpectClose(t testing.TB) (protocol.Message, websocket.StatusCode) {
	t.Helper()
	r := c.Next(t)
	require.Equal(t, protocol.TypeClose, r.msg.Type, "want a Close message, got %s", r)
	return r.msg, websocket.CloseStatus(c.ExpectClosed(t))
}

// ExpectClosed requires the connection to close and returns the error
// that ended the reader.
func (c *mpClient) ExpectClosed(t testing.TB) error {
	t.Helper()
	select {
	case <-c.done:
	case <-waitCtx(t).Done():
		require.FailNow(t, "connection still open")
	}
	return c.readError()
}

// Close ends the connection as the official clients do: a Close message
// [7, nil], then a normal WebSocket close.
func (c *mpClient) Close(t testing.TB) {
	t.Helper()
	c.SendBinary(t, protocol.AppendMsgPackClose(nil, "", false))
	_ = c.ws.Close(websocket.StatusNormalClosure, "")
	<-c.done
}

// Drop closes the socket without any handshake and waits for the reader.
func (c *mpClient) Drop() {
	_ = c.ws.CloseNow()
	<-c.done
}
