package client_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub/client"
	"github.com/signalhub/signalhub/protocol"
)

// TestStreamWire checks the records of a stream with an upload against a
// hand-written server: IDs as the official clients allocate them (stream
// IDs first), the upload's items and Completion, and the CancelInvocation
// when the loop breaks.
func TestStreamWire(t *testing.T) {
	got := make(chan protocol.Message, 8)
	srv := startRawServer(t, func(ctx context.Context, ws *websocket.Conn) {
		r := &recordReader{ws: ws}
		next := func() bool {
			for range 16 { // Pings may come in between
				m, err := r.Next(ctx)
				if err != nil {
					return false
				}
				if m.Type != protocol.TypePing {
					got <- m
					return true
				}
			}
			return false
		}
		// The StreamInvocation, the upload's two items and its Completion.
		for range 4 {
			if !next() {
				return
			}
		}
		items := `{"type":2,"invocationId":"1","item":10}` + rs + `{"type":2,"invocationId":"1","item":20}` + rs
		if ws.Write(ctx, websocket.MessageText, []byte(items)) != nil || !next() { // the CancelInvocation
			return
		}
		// Late items and the Completion after a cancel are ignored.
		late := `{"type":2,"invocationId":"1","item":30}` + rs + `{"type":3,"invocationId":"1"}` + rs +
			`{"type":1,"target":"Note","arguments":["after"]}` + rs
		if ws.Write(ctx, websocket.MessageText, []byte(late)) != nil {
			return
		}
		drain(ctx, ws)
	})
	c := dial(t, srv.Srv, srv.URL, &client.Options{SkipNegotiation: true})
	notes := make(chan string, 1)
	require.NoError(t, c.On("Note", func(s string) { notes <- s }))
	ctx := waitCtx(t)

	var first []int
	for v, err := range client.StreamAs[int](ctx, c, "Echo", "x", slices.Values([]string{"a", "b"})) {
		require.NoError(t, err)
		first = append(first, v)
		break
	}
	assert.Equal(t, []int{10}, first)

	inv := recv(t, got)
	assert.Equal(t, protocol.TypeStreamInvocation, inv.Type)
	assert.Equal(t, "1", inv.InvocationID)
	assert.Equal(t, "Echo", inv.Target)
	assert.Equal(t, []json.RawMessage{json.RawMessage(`"x"`)}, inv.Arguments, "the stream is not among the arguments")
	assert.Equal(t, []string{"0"}, inv.StreamIDs)
	for _, want := range []string{`"a"`, `"b"`} {
		m := recv(t, got)
		assert.Equal(t, protocol.TypeStreamItem, m.Type)
		assert.Equal(t, "0", m.InvocationID)
		assert.JSONEq(t, want, string(m.Item))
	}
	done := recv(t, got)
	assert.Equal(t, protocol.TypeCompletion, done.Type)
	assert.Equal(t, "0", done.InvocationID)
	assert.Empty(t, done.Error)
	assert.Nil(t, done.Result)
	cancel := recv(t, got)
	assert.Equal(t, protocol.TypeCancelInvocation, cancel.Type)
	assert.Equal(t, "1", cancel.InvocationID)

	// The message after the late records arrives: they did no harm.
	assert.Equal(t, "after", recv(t, notes))
	assert.Nil(t, c.Err())
}

// TestStreamItemForInvoke: a StreamItem for a plain Invoke fails it as a
// protocol error, as before streams existed.
func TestStreamItemForInvoke(t *testing.T) {
	srv := startRawServer(t, func(ctx context.Context, ws *websocket.Conn) {
		r := &recordReader{ws: ws}
		for range 16 {
			m, err := r.Next(ctx)
			if err != nil {
				return
			}
			if m.Type == protocol.TypeInvocation {
				rec := protocol.AppendStreamItem(nil, m.InvocationID, []byte("1"))
				if ws.Write(ctx, websocket.MessageText, rec) != nil {
					return
				}
				break
			}
		}
		drain(ctx, ws)
	})
	c := dial(t, srv.Srv, srv.URL, &client.Options{SkipNegotiation: true})
	_, err := c.Invoke(waitCtx(t), "Add", 1, 2)
	assert.ErrorIs(t, err, client.ErrProtocol)
}
