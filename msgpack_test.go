package signalhub_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/backplane/backplanetest"
	"github.com/signalhub/signalhub/protocol"
)

// msgpackMethods are hub methods that take and return the kinds of value
// MessagePack carries; notes receives what Note is sent.
func msgpackMethods(notes chan<- string) map[string]any {
	return map[string]any{
		"Add":     func(c *signalhub.Context, a, b int) int { return a + b },
		"Echo":    func(c *signalhub.Context, s string) string { return s },
		"Sum":     func(c *signalhub.Context, xs []int) int { return sumInts(xs) },
		"Swap":    func(c *signalhub.Context, p point) point { return point{X: p.Y, Y: p.X} },
		"IsNil":   func(c *signalhub.Context, p *point) bool { return p == nil },
		"Reverse": func(c *signalhub.Context, b []byte) []byte { slices.Reverse(b); return b },
		"Keys": func(c *signalhub.Context, m map[string]int) []string {
			keys := make([]string, 0, len(m))
			for k, v := range m {
				keys = append(keys, fmt.Sprint(k, "=", v))
			}
			slices.Sort(keys)
			return keys
		},
		"Later":   func(c *signalhub.Context, t time.Time) time.Time { return t.Add(time.Hour) },
		"Kinds":   func(c *signalhub.Context, v []any) string { return fmt.Sprintf("%T", v) },
		"Half":    func(c *signalhub.Context, f float64) float64 { return f / 2 },
		"Small":   func(c *signalhub.Context, n int8) int8 { return n },
		"Nothing": func(c *signalhub.Context) {},
		"Refuse":  func(c *signalhub.Context) error { return signalhub.HubError{Message: "not allowed"} },
		"Note":    func(c *signalhub.Context, s string) { notes <- s },
		"Join": func(c *signalhub.Context, group string) error {
			return c.Hub().AddToGroup(c.Context(), c.ConnectionID(), group)
		},
		"Me":  func(c *signalhub.Context) string { return c.ConnectionID() },
		"Raw": func(c *signalhub.Context, v json.RawMessage) json.RawMessage { return v },
	}
}

func TestMsgPackInvokeTypedParameters(t *testing.T) {
	t.Parallel()
	notes := make(chan string, 1)
	f := newFixture(t, &signalhub.Options{Methods: msgpackMethods(notes)})
	c := f.DialMsgPack(t, dialOptions{})
	when := time.Date(2025, 3, 4, 5, 6, 7, 890_000_000, time.UTC)

	c.ExpectResult(t, 42, "Add", 40, 2)
	c.ExpectResult(t, -1, "Add", int64(math.MinInt64), int64(math.MaxInt64)) // int64 encodings
	c.ExpectResult(t, "héllo 世界 \x1e", "Echo", "héllo 世界 \x1e")
	c.ExpectResult(t, 6, "Sum", []int{1, 2, 3})
	c.ExpectResult(t, map[string]any{"x": 2, "y": 1}, "Swap", map[string]any{"x": 1, "y": 2})
	c.ExpectResult(t, true, "IsNil", nil)
	c.ExpectResult(t, false, "IsNil", map[string]any{})
	c.ExpectResult(t, []byte{3, 2, 1, 0}, "Reverse", []byte{0, 1, 2, 3})
	c.ExpectResult(t, []string{"a=1", "b=2"}, "Keys", map[string]any{"b": 2, "a": 1})
	c.ExpectResult(t, when.Add(time.Hour), "Later", when)
	c.ExpectResult(t, 1.25, "Half", 2.5)
	c.ExpectResult(t, 1.5, "Half", 3) // an integer into a float64
	c.ExpectResult(t, int8(-128), "Small", -128)
	c.ExpectResult(t, "[]interface {}", "Kinds", []any{1, "x", nil})
	// A json.RawMessage parameter gets JSON, and a json.RawMessage result
	// goes back as MessagePack.
	c.ExpectResult(t, map[string]any{"b": "AQI=", "a": 1.5}, "Raw", map[string]any{"b": []byte{1, 2}, "a": 1.5})

	// A void method's Completion carries a nil result, as ASP.NET Core's.
	id := c.StartInvoke(t, "Nothing")
	assert.Equal(t, protocol.AppendMsgPackCompletion(nil, id, nil), c.Completion(t, id).wire)
	// The whole record of a result, byte for byte.
	id = c.StartInvoke(t, "Add", 1, 2)
	assert.Equal(t, protocol.AppendMsgPackCompletion(nil, id, []byte{0x03}), c.Completion(t, id).wire)

	// A non-blocking invocation (nil ID) runs and gets no Completion: the
	// next record is the Completion of the invocation after it.
	c.SendBinary(t, mpInvocation(t, "", "Note", "fire and forget"))
	id = c.StartInvoke(t, "Echo", "after")
	assert.Equal(t, "fire and forget", <-notes)
	r := c.Next(t)
	assert.Equal(t, protocol.TypeCompletion, r.msg.Type)
	assert.Equal(t, id, r.msg.InvocationID, "the first record after the non-blocking invocation")
}

// TestMsgPackArgumentsAsTheOfficialClientWritesThem sends records built
// by hand the way @microsoft/signalr-protocol-msgpack writes them: a
// Date as a 64-bit timestamp, a Uint8Array as bin 8, numbers in their
// shortest forms, and six elements when there are stream IDs.
func TestMsgPackArgumentsAsTheOfficialClientWritesThem(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{Methods: msgpackMethods(nil), DetailedErrors: true})
	c := f.DialMsgPack(t, dialOptions{})

	date := []byte{0xd7, 0xff, 0xd4, 0x31, 0x4a, 0x00, 0x67, 0xc6, 0x8a, 0x3f} // 2025-03-04T05:06:07.890Z
	rec := withPrefix(cat([]byte{0x95, 0x01, 0x80, 0xa1, '7', 0xa5}, "Later", []byte{0x91}, date))
	c.SendBinary(t, rec)
	m := c.Completion(t, "7").msg
	require.Empty(t, m.Error)
	var got time.Time
	require.NoError(t, protocol.UnmarshalMsgPack(m.Result, &got))
	assert.True(t, got.Equal(time.Date(2025, 3, 4, 6, 6, 7, 890_000_000, time.UTC)), "%v", got)

	c.SendBinary(t, withPrefix(cat([]byte{0x95, 0x01, 0x80, 0xa1, '8', 0xa7}, "Reverse", []byte{0x91, 0xc4, 0x02, 0x0a, 0x0b})))
	assert.Equal(t, []byte{0xc4, 0x02, 0x0b, 0x0a}, []byte(c.Completion(t, "8").msg.Result))

	// Six elements: an upload stream, which this server refuses with
	// SignalR's error.
	c.SendBinary(t, withPrefix(cat([]byte{0x96, 0x01, 0x80, 0xa1, '9', 0xa4}, "Echo", []byte{0x91, 0xa1, 'a', 0x91, 0xa1, '3'})))
	assert.Equal(t, "An unexpected error occurred invoking 'Echo' on the server. HubException: Client sent 1 stream(s), Hub method expects 0.",
		c.Completion(t, "9").msg.Error)
}

// cat joins byte slices and strings.
func cat(parts ...any) []byte {
	var out []byte
	for _, p := range parts {
		switch x := p.(type) {
		case []byte:
			out = append(out, x...)
		case string:
			out = append(out, x...)
		}
	}
	return out
}

// withPrefix frames a record body with its length prefix.
func withPrefix(body []byte) []byte {
	var out []byte
	n := len(body)
	for n >= 0x80 {
		out = append(out, byte(n)|0x80)
		n >>= 7
	}
	return append(append(out, byte(n)), body...)
}

func TestMsgPackInvocationErrors(t *testing.T) {
	t.Parallel()
	for _, detailed := range []bool{false, true} {
		t.Run(fmt.Sprintf("DetailedErrors=%v", detailed), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, &signalhub.Options{Methods: msgpackMethods(nil), DetailedErrors: detailed})
			c := f.DialMsgPack(t, dialOptions{})
			binding, count := "Failed to invoke 'Add' due to an error on the server.", "Failed to invoke 'Add' due to an error on the server."
			small := "Failed to invoke 'Small' due to an error on the server."
			if detailed {
				binding += " InvalidDataException: Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked."
				small += " InvalidDataException: Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked."
				count += " InvalidDataException: Invocation provides 1 argument(s) but target expects 2."
			}
			c.ExpectError(t, binding, "Add", "forty", 2)
			c.ExpectError(t, binding, "Add", []byte{1}, 2)
			c.ExpectError(t, count, "Add", 1)
			c.ExpectError(t, small, "Small", 128) // does not fit an int8
			c.ExpectError(t, "Failed to invoke 'Swap' due to an error on the server."+map[bool]string{
				true: " InvalidDataException: Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked.",
			}[detailed], "Swap", "not a map")
			c.ExpectError(t, "Failed to invoke 'Missing' due to an error on the server. HubException: Method does not exist.", "Missing")
			c.ExpectError(t, "An unexpected error occurred invoking 'Refuse' on the server. HubException: not allowed", "Refuse")
			// The connection is as good as new.
			c.ExpectResult(t, 3, "Add", 1, 2)
		})
	}
}

// countedArg counts how often each protocol encodes it.
type countedArg struct{ json, msgpack *atomic.Int32 }

func (a countedArg) MarshalJSON() ([]byte, error) {
	a.json.Add(1)
	return []byte(`"counted"`), nil
}

func (a countedArg) EncodeMsgpack(e *msgpack.Encoder) error {
	a.msgpack.Add(1)
	return e.EncodeString("counted")
}

func newCountedArg() countedArg { return countedArg{new(atomic.Int32), new(atomic.Int32)} }

// TestMsgPackMixedGroup sends to audiences of JSON and MessagePack
// connections at once: each connection gets the message in its own
// protocol, byte for byte what the protocol's encoder writes, and the
// arguments are encoded once per protocol, whatever the audience's size;
// MessagePack not at all once no MessagePack connection is left.
func TestMsgPackMixedGroup(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{Methods: msgpackMethods(nil)}, userClaims)
	j1, j2 := f.DialUser(t, "alice"), f.DialUser(t, "bob")
	m1 := f.DialMsgPack(t, dialOptions{Query: url.Values{"user": {"alice"}}})
	m2 := f.DialMsgPack(t, dialOptions{Query: url.Values{"user": {"carol"}}})
	outsider := f.DialMsgPack(t, dialOptions{})
	ctx := waitCtx(t)
	for _, id := range []string{j1.ID, j2.ID, m1.ID, m2.ID} {
		require.NoError(t, f.Hub.AddToGroup(ctx, id, "g"))
	}

	counted := newCountedArg()
	args := []any{"alice", []byte{1, 2, 3}, 2.5, map[string]any{"k": []int{1}}, counted}
	require.NoError(t, f.Hub.SendToGroup(ctx, "g", "News", args...))
	for _, j := range []*client{j1, j2} {
		raw, err := j.NextRaw(ctx)
		require.NoError(t, err)
		assert.JSONEq(t, `{"type":1,"target":"News","arguments":["alice","AQID",2.5,{"k":[1]},"counted"]}`, string(raw))
	}
	want := mpInvocation(t, "", "News", "alice", []byte{1, 2, 3}, 2.5, map[string]any{"k": []int{1}}, "counted")
	for _, m := range []*mpClient{m1, m2} {
		assert.Equal(t, want, m.Next(t).wire)
	}
	assert.Equal(t, int32(1), counted.json.Load(), "JSON encodings of one send")
	assert.Equal(t, int32(1), counted.msgpack.Load(), "MessagePack encodings of one send")
	require.NoError(t, f.Hub.SendToConnection(ctx, outsider.ID, "Marker", "only"))
	outsider.ExpectInvocation(t, "Marker", "only") // the group send did not reach it

	// A user with a connection of each protocol.
	require.NoError(t, f.Hub.SendToUser(ctx, "alice", "Hi", 1))
	j1.ExpectInvocation(t, "Hi", 1)
	m1.ExpectInvocation(t, "Hi", 1)
	require.NoError(t, f.Hub.SendToAllExcept(ctx, []string{m2.ID, j2.ID}, "AllBut", nil))
	j1.ExpectInvocation(t, "AllBut", nil)
	m1.ExpectInvocation(t, "AllBut", nil)
	outsider.ExpectInvocation(t, "AllBut", nil)
	f.mark(t, j2, "j2")
	require.NoError(t, f.Hub.SendToConnection(ctx, m2.ID, "Marker", "m2"))
	m2.ExpectInvocation(t, "Marker", "m2")

	// Once the MessagePack connections are gone, sends encode JSON only.
	for _, m := range []*mpClient{m1, m2, outsider} {
		m.Close(t)
		require.NoError(t, f.WaitDisconnected(t, m.ID))
	}
	counted = newCountedArg()
	require.NoError(t, f.Hub.SendToAll(ctx, "News", counted))
	j1.ExpectInvocation(t, "News", "counted")
	j2.ExpectInvocation(t, "News", "counted")
	assert.Equal(t, int32(1), counted.json.Load())
	assert.Equal(t, int32(0), counted.msgpack.Load(), "no MessagePack connection, no MessagePack encoding")
}

// TestMsgPackSendEncodingError: arguments MessagePack cannot encode fail
// the send before anyone gets it, on a hub with MessagePack connections.
func TestMsgPackSendEncodingError(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	j := f.Dial(t, dialOptions{})
	m := f.DialMsgPack(t, dialOptions{})
	ctx := waitCtx(t)
	// A map with a complex key: encoding/json refuses it, and so the send.
	err := f.Hub.SendToAll(ctx, "X", map[complex64]int{1: 1})
	require.Error(t, err)
	// A json.RawMessage holding no valid JSON fails both encoders.
	require.Error(t, f.Hub.SendToAll(ctx, "X", json.RawMessage(`{`)))
	// What JSON can encode and MessagePack cannot: a func in a field that
	// JSON leaves out but MessagePack's struct tags keep.
	type jsonOnly struct {
		F func() `json:"-" msgpack:"f"`
	}
	err = f.Hub.SendToAll(ctx, "X", jsonOnly{F: func() {}})
	require.ErrorContains(t, err, "MessagePack")
	f.mark(t, j, "nothing before")
	require.NoError(t, f.Hub.SendToConnection(ctx, m.ID, "Marker", "nothing before"))
	m.ExpectInvocation(t, "Marker", "nothing before")
}

// TestMsgPackFrames: a MessagePack connection reads and writes binary
// messages; a text message after the handshake closes it with a reason,
// as a binary message closes a JSON connection; a MessagePack handshake
// may come in a binary message, as the .NET client sends it.
func TestMsgPackFrames(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{Methods: msgpackMethods(nil)})
	bystander := f.Dial(t, dialOptions{})

	c := f.DialMsgPack(t, dialOptions{})
	require.NoError(t, c.ws.Write(waitCtx(t), websocket.MessageText, []byte(`{"type":6}`+rs)))
	m, status := c.ExpectClose(t)
	assert.Equal(t, "Connection closed with an error. Text messages are not supported by the 'messagepack' protocol.", m.Error)
	assert.True(t, m.AllowReconnect)
	assert.Equal(t, websocket.StatusUnsupportedData, status)
	cause := f.WaitDisconnected(t, c.ID)
	assert.ErrorIs(t, cause, signalhub.ErrProtocol)

	// The handshake in a binary message, followed by a Ping and an
	// invocation in the same message.
	ctx := waitCtx(t)
	neg, err := f.negotiate(ctx, dialOptions{})
	require.NoError(t, err)
	ws, _, err := f.DialWS(ctx, neg.ConnectionToken, nil, nil)
	require.NoError(t, err)
	require.NoError(t, ws.Write(ctx, websocket.MessageBinary,
		cat(msgpackHandshake, protocol.AppendMsgPackPing(nil), mpInvocation(t, "1", "Add", 2, 3))))
	_, resp, err := ws.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, "{}"+rs, string(resp))
	bc := newMsgPackClient(t, ws)
	assert.Equal(t, []byte{0x05}, []byte(bc.Completion(t, "1").msg.Result))

	// Records after the handshake in its text message are text records.
	ws2, _, err := f.DialWS(ctx, "", nil, nil)
	require.NoError(t, err)
	require.NoError(t, ws2.Write(ctx, websocket.MessageText, cat(msgpackHandshake, protocol.AppendMsgPackPing(nil))))
	_, resp, err = ws2.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, "{}"+rs, string(resp))
	tc := newMsgPackClient(t, ws2)
	m, status = tc.ExpectClose(t)
	assert.Equal(t, "Connection closed with an error. Text messages are not supported by the 'messagepack' protocol.", m.Error)
	assert.Equal(t, websocket.StatusUnsupportedData, status)

	f.mark(t, bystander, "unharmed")
}

// TestMsgPackBadInput sends records that break the protocol: each closes
// its connection with a Close message giving the reason, never a panic,
// and a bystander of each protocol is unharmed.
func TestMsgPackBadInput(t *testing.T) {
	t.Parallel()
	const invalid = "Connection closed with an error. protocol: invalid message: "
	big := mpInvocation(t, "1", "Echo", strings.Repeat("a", 32<<10)) // over 32 KiB, a three-byte prefix
	tests := []struct {
		name   string
		send   [][]byte
		errMsg string
		status websocket.StatusCode
	}{
		{"length prefix longer than five bytes", [][]byte{{0x80, 0x80, 0x80, 0x80, 0x80, 0x01}},
			invalid + "record length prefix longer than 5 bytes", websocket.StatusPolicyViolation},
		{"length prefix over 2 GB", [][]byte{{0xff, 0xff, 0xff, 0xff, 0x0f}},
			invalid + "record length prefix over 2 GB", websocket.StatusPolicyViolation},
		{"record over MaxMessageSize, refused from its prefix", [][]byte{withPrefix(make([]byte, 32<<10+1))[:4]},
			limitMessage, websocket.StatusMessageTooBig},
		{"record over MaxMessageSize, its prefix split across messages", [][]byte{big[:1], big[1:2], big[2:5]},
			limitMessage, websocket.StatusMessageTooBig},
		{"record that is not an array", [][]byte{withPrefix([]byte{0x81, 0xa1, 'a', 0x01})},
			invalid + "want an array, got a map (0x81)", websocket.StatusPolicyViolation},
		{"array announcing more elements than the record holds", [][]byte{withPrefix([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})},
			invalid + "4294967295 elements announced, 0 bytes left", websocket.StatusPolicyViolation},
		{"argument announcing more bytes than the record holds", [][]byte{withPrefix(cat([]byte{0x95, 0x01, 0x80, 0xa1, '1', 0xa4}, "Echo", []byte{0x91, 0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'}))},
			invalid + "arguments: unexpected end of MessagePack data", websocket.StatusPolicyViolation},
		{"empty record", [][]byte{{0x00}},
			invalid + "unexpected end of MessagePack data", websocket.StatusPolicyViolation},
		{"invocation without a target", [][]byte{withPrefix([]byte{0x95, 0x01, 0x80, 0xa1, '1', 0xc0, 0x90})},
			invalid + "target: want a string, got nil (0xc0)", websocket.StatusPolicyViolation},
		{"completion of an unknown kind", [][]byte{withPrefix([]byte{0x95, 0x03, 0x80, 0xa1, '1', 0x07, 0xc0})},
			invalid + "unknown Completion result kind 7", websocket.StatusPolicyViolation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, &signalhub.Options{Methods: msgpackMethods(nil)})
			jsonBystander := f.Dial(t, dialOptions{})
			mpBystander := f.DialMsgPack(t, dialOptions{})
			c := f.DialMsgPack(t, dialOptions{})
			for _, msg := range tc.send {
				c.SendBinary(t, msg)
			}
			m, status := c.ExpectClose(t)
			assert.Equal(t, tc.errMsg, m.Error)
			assert.True(t, m.AllowReconnect)
			assert.Equal(t, tc.status, status)
			assert.Error(t, f.WaitDisconnected(t, c.ID))

			f.mark(t, jsonBystander, "unharmed")
			mpBystander.ExpectResult(t, "unharmed", "Echo", "unharmed")
		})
	}
}

// TestMsgPackFraming: records may share a message and span messages;
// unknown message types are ignored; a record of exactly MaxMessageSize
// is accepted.
func TestMsgPackFraming(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{Methods: msgpackMethods(nil), MaxMessageSize: 1000})
	c := f.DialMsgPack(t, dialOptions{})

	three := cat(mpInvocation(t, "1", "Add", 1, 2), withPrefix([]byte{0x92, 0x63, 0xc0}), mpInvocation(t, "2", "Add", 3, 4))
	c.SendBinary(t, three[:5])
	c.SendBinary(t, three[5:len(three)-1]) // the prefix of the second record in one message, its body in the next
	c.SendBinary(t, three[len(three)-1:])
	assert.Equal(t, []byte{0x03}, []byte(c.Completion(t, "1").msg.Result))
	assert.Equal(t, []byte{0x07}, []byte(c.Completion(t, "2").msg.Result))

	// A record of exactly 1000 bytes (a two-byte prefix, 14 bytes of
	// invocation around a str16 argument), then one of 1001.
	exact := mpInvocation(t, "3", "Echo", strings.Repeat("x", 986))
	require.Len(t, exact, 2+1000)
	c.SendBinary(t, exact)
	assert.Empty(t, c.Completion(t, "3").msg.Error)
	over := mpInvocation(t, "4", "Echo", strings.Repeat("x", 987))
	require.Len(t, over, 2+1001)
	c.SendBinary(t, over[:2]) // the length alone is enough to refuse it
	m, status := c.ExpectClose(t)
	assert.Equal(t, "Connection closed with an error. The maximum message size of 1000B was exceeded.", m.Error)
	assert.Equal(t, websocket.StatusMessageTooBig, status)
	assert.ErrorIs(t, f.WaitDisconnected(t, c.ID), signalhub.ErrMessageTooLarge)
}

// TestMsgPackPingAndClose: the hub's Ping is exactly 0x91 0x06, and its
// Close messages are MessagePack.
func TestMsgPackPingAndClose(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{
		Methods:           map[string]any{"Quit": func(c *signalhub.Context) { c.Abort() }},
		KeepAliveInterval: 50 * time.Millisecond,
	})
	c := f.DialMsgPack(t, dialOptions{})
	assert.Equal(t, []byte{0x02, 0x91, 0x06}, c.NextRecord(t).wire, "a keep-alive Ping")

	c.SendBinary(t, mpInvocation(t, "", "Quit"))
	r, err := c.take(waitCtx(t), "the Close", func(r mpReceived) bool { return !isMsgPackPing(r) }, isMsgPackPing)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x03, 0x92, 0x07, 0xc0}, r.wire, "[7, nil]: closed by the hub method, no reconnect")
	assert.Equal(t, websocket.StatusNormalClosure, websocket.CloseStatus(c.ExpectClosed(t)))
	assert.NoError(t, f.WaitDisconnected(t, c.ID))

	// Shutdown invites clients to reconnect elsewhere.
	c2 := f.DialMsgPack(t, dialOptions{})
	require.NoError(t, f.Hub.Shutdown(waitCtx(t)))
	r, err = c2.take(waitCtx(t), "the Close", func(r mpReceived) bool { return !isMsgPackPing(r) }, isMsgPackPing)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x04, 0x93, 0x07, 0xc0, 0xc3}, r.wire, "[7, nil, true]")
	assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(c2.ExpectClosed(t)))
}

// TestMsgPackClientResults: the hub invokes a MessagePack client's handler
// and waits for its answer, decoded in the client's protocol.
func TestMsgPackClientResults(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{Methods: map[string]any{
		"Confirm": func(c *signalhub.Context, question string) (string, error) {
			return signalhub.InvokeConnectionAs[string](c.Context(), c.Hub(), c.ConnectionID(), "Ask", question)
		},
	}})
	c := f.DialMsgPack(t, dialOptions{})

	// answer reads the hub's invocation of target and answers it with rec
	// built for its ID.
	answer := func(target string, args []any, rec func(id string) []byte) {
		t.Helper()
		m := c.Next(t).msg
		require.Equal(t, protocol.TypeInvocation, m.Type)
		require.Equal(t, target, m.Target)
		require.NotEmpty(t, m.InvocationID, "a client result's invocation has an ID")
		want := make([][]byte, len(args))
		for i, a := range args {
			var err error
			want[i], err = protocol.AppendMsgPackValue(nil, a)
			require.NoError(t, err)
		}
		got := make([][]byte, len(m.Arguments))
		for i, a := range m.Arguments {
			got[i] = a
		}
		assert.Equal(t, want, got, "arguments of %s", target)
		c.SendBinary(t, rec(m.InvocationID))
	}
	result := func(v any) func(string) []byte {
		return func(id string) []byte {
			enc, err := protocol.AppendMsgPackValue(nil, v)
			require.NoError(t, err)
			return protocol.AppendMsgPackCompletion(nil, id, enc)
		}
	}

	// From a hub method, asking its own caller.
	id := c.StartInvoke(t, "Confirm", "sure?")
	answer("Ask", []any{"sure?"}, result("sure?!"))
	m := c.Completion(t, id).msg
	require.Empty(t, m.Error)
	assert.Equal(t, []byte{0xa6, 's', 'u', 'r', 'e', '?', '!'}, []byte(m.Result))

	// From the server's code: the answer as JSON, typed, and errors.
	type outcome struct {
		raw []byte
		err error
	}
	ask := func(target string, args ...any) <-chan outcome {
		ch := make(chan outcome, 1)
		go func() {
			raw, err := f.Hub.InvokeConnection(waitCtx(t), c.ID, target, args...)
			ch <- outcome{raw, err}
		}()
		return ch
	}
	got := ask("Blob", 1)
	answer("Blob", []any{1}, result(map[string]any{"data": []byte{1, 2, 3}, "at": time.Unix(60, 0)}))
	o := <-got
	require.NoError(t, o.err)
	assert.JSONEq(t, `{"at":"1970-01-01T00:01:00Z","data":"AQID"}`, string(o.raw), "the JSON form of the answer")

	typed := make(chan []byte, 1)
	go func() {
		b, err := signalhub.InvokeConnectionAs[[]byte](waitCtx(t), f.Hub, c.ID, "Bytes")
		assert.NoError(t, err)
		typed <- b
	}()
	answer("Bytes", nil, result([]byte{9, 8}))
	assert.Equal(t, []byte{9, 8}, <-typed, "decoded from MessagePack into []byte")

	got = ask("Fail")
	answer("Fail", nil, func(id string) []byte { return protocol.AppendMsgPackCompletionError(nil, id, "Error: nope") })
	o = <-got
	var ce *signalhub.ClientError
	require.ErrorAs(t, o.err, &ce)
	assert.Equal(t, "Error: nope", ce.Message)

	got = ask("NaN")
	answer("NaN", nil, result(math.NaN()))
	o = <-got
	assert.ErrorContains(t, o.err, "the answer has no JSON form")

	got = ask("Void")
	answer("Void", nil, func(id string) []byte { return protocol.AppendMsgPackCompletionVoid(nil, id) })
	o = <-got
	require.NoError(t, o.err)
	assert.Nil(t, o.raw, "no result")
}

// TestMsgPackAcrossNodes: two hubs on the in-memory backplane, each with a
// JSON and a MessagePack client in one group. A send on either node
// reaches all four, each in its protocol, and the MessagePack clients on
// the other node get binary data and timestamps as such: the backplane
// carries the MessagePack record the origin encoded.
func TestMsgPackAcrossNodes(t *testing.T) {
	t.Parallel()
	bus := backplanetest.NewBus()
	node := func(id string) *fixture {
		return newFixture(t, &signalhub.Options{Methods: msgpackMethods(nil), Backplane: bus.Node(), NodeID: id})
	}
	n1, n2 := node("n1"), node("n2")
	j1, m1 := n1.Dial(t, dialOptions{}), n1.DialMsgPack(t, dialOptions{})
	j2, m2 := n2.Dial(t, dialOptions{}), n2.DialMsgPack(t, dialOptions{})
	for _, c := range []*client{j1, j2} {
		c.ExpectResult(t, "null", "Join", "room")
	}
	for _, c := range []*mpClient{m1, m2} {
		c.ExpectResult(t, nil, "Join", "room")
	}

	at := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	for i, from := range []*fixture{n1, n2} {
		blob := []byte{byte(i), 0xff}
		require.NoError(t, from.Hub.SendToGroup(waitCtx(t), "room", "File", "report.pdf", blob, at, 7))
		wantJSON := fmt.Sprintf(`["report.pdf",%q,"2030-01-02T03:04:05.000000006Z",7]`, []any{"AP8=", "Af8="}[i])
		for _, j := range []*client{j1, j2} {
			m := j.ExpectNext(t)
			assert.Equal(t, "File", m.Target)
			got := "[" + strings.Join(rawStrings(m.Arguments), ",") + "]"
			assert.JSONEq(t, wantJSON, got)
		}
		for _, m := range []*mpClient{m1, m2} {
			m.ExpectInvocation(t, "File", "report.pdf", blob, at, 7)
		}
	}

	// Targeted sends across nodes too, to a MessagePack connection.
	require.NoError(t, n1.Hub.SendToConnection(waitCtx(t), m2.ID, "Direct", []byte{42}))
	m2.ExpectInvocation(t, "Direct", []byte{42})
	require.NoError(t, n2.Hub.SendToAll(waitCtx(t), "Everyone", int64(math.MaxInt64)))
	m1.ExpectInvocation(t, "Everyone", int64(math.MaxInt64))
	m2.ExpectInvocation(t, "Everyone", int64(math.MaxInt64))
	j1.ExpectInvocation(t, "Everyone", int64(math.MaxInt64))
	j2.ExpectInvocation(t, "Everyone", int64(math.MaxInt64))
}

func rawStrings(raws []json.RawMessage) []string {
	out := make([]string, len(raws))
	for i, r := range raws {
		out[i] = string(r)
	}
	return out
}

// TestMsgPackHandshakeVersions: versions up to 2 are accepted, as for
// JSON, and protocol names match case-insensitively.
func TestMsgPackHandshakeVersions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{Methods: msgpackMethods(nil)})
	for _, hs := range []string{
		`{"protocol":"messagepack","version":2}`,
		`{"protocol":"MessagePack","version":1}`,
	} {
		c := f.DialMsgPack(t, dialOptions{Handshake: hs})
		c.ExpectResult(t, c.ID, "Me")
	}
}
