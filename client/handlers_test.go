package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub/client"
	"github.com/signalhub/signalhub/protocol"
)

type chatMessage struct{ From, Text string }

// receiver registers a ReceiveMessage handler (under the given spelling)
// that forwards to the returned channel.
func receiver(t *testing.T, c *client.Conn, target string) <-chan chatMessage {
	got := make(chan chatMessage, 16)
	require.NoError(t, c.On(target, func(from, text string) { got <- chatMessage{from, text} }))
	return got
}

func TestHandlersReceiveAudiences(t *testing.T) {
	s := testHub(t)
	alice := dial(t, s.Srv, s.URL, &client.Options{Header: userHeader("alice")})
	bob := dial(t, s.Srv, s.URL, &client.Options{Header: userHeader("bob")})
	toAlice := receiver(t, alice, "ReceiveMessage")
	toBob := receiver(t, bob, "receivemessage") // targets match case-insensitively
	ctx := waitCtx(t)
	hub := s.Hub

	require.NoError(t, hub.SendToUser(ctx, "alice", "ReceiveMessage", "hub", "to alice"))
	require.NoError(t, hub.SendToAll(ctx, "RECEIVEMESSAGE", "hub", "to all"))
	assert.Equal(t, chatMessage{"hub", "to alice"}, recv(t, toAlice))
	assert.Equal(t, chatMessage{"hub", "to all"}, recv(t, toAlice))
	// Messages to one connection keep their order: bob's first message is
	// the broadcast, so he did not get alice's.
	assert.Equal(t, chatMessage{"hub", "to all"}, recv(t, toBob))

	_, err := bob.Invoke(ctx, "Join", "room")
	require.NoError(t, err)
	require.NoError(t, hub.SendToGroup(ctx, "room", "ReceiveMessage", "hub", "to room"))
	require.NoError(t, hub.SendToAll(ctx, "ReceiveMessage", "hub", "end"))
	assert.Equal(t, chatMessage{"hub", "to room"}, recv(t, toBob))
	assert.Equal(t, chatMessage{"hub", "end"}, recv(t, toBob))
	assert.Equal(t, chatMessage{"hub", "end"}, recv(t, toAlice))
}

func TestSeveralHandlersRunInOrder(t *testing.T) {
	s := testHub(t)
	c := dial(t, s.Srv, s.URL, nil)
	got := make(chan string, 16)
	require.NoError(t, c.On("Note", func(text string) { got <- "first " + text }))
	require.NoError(t, c.On("note", func(text string) { got <- "second " + text }))
	ctx := waitCtx(t)
	for _, text := range []string{"a", "b"} {
		require.NoError(t, s.Hub.SendToAll(ctx, "Note", text))
	}
	for _, want := range []string{"first a", "second a", "first b", "second b"} {
		assert.Equal(t, want, recv(t, got))
	}
}

func TestHandlerCallsInvoke(t *testing.T) {
	s := testHub(t)
	c := dial(t, s.Srv, s.URL, nil)
	results := make(chan int, 1)
	require.NoError(t, c.On("Pong", func(text string) {
		n, err := client.InvokeAs[int](waitCtx(t), c, "Add", len(text), 1)
		assert.NoError(t, err)
		results <- n
	}))
	_, err := c.Invoke(waitCtx(t), "Ping", "abcd") // the hub answers with Pong
	require.NoError(t, err)
	assert.Equal(t, 5, recv(t, results))
}

func TestHandlerFailuresAreContained(t *testing.T) {
	s := testHub(t)
	c := dial(t, s.Srv, s.URL, nil)
	got := make(chan string, 16)
	require.NoError(t, c.On("Note", func(text string) {
		if text == "boom" {
			panic("boom")
		}
		got <- "string " + text
	}))
	require.NoError(t, c.On("Note", func(n int) { got <- "int" })) // never fits
	require.NoError(t, c.On("Note", func(text string) error { return errors.New("ignored") }))
	ctx := waitCtx(t)
	require.NoError(t, s.Hub.SendToAll(ctx, "Note", "boom"))
	require.NoError(t, s.Hub.SendToAll(ctx, "Note", "ok"))
	require.NoError(t, s.Hub.SendToAll(ctx, "Note", "a", "b")) // too many arguments
	require.NoError(t, s.Hub.SendToAll(ctx, "Unhandled", 1))
	require.NoError(t, s.Hub.SendToAll(ctx, "Note", "last"))
	assert.Equal(t, "string ok", recv(t, got))
	assert.Equal(t, "string last", recv(t, got))
	assert.Nil(t, c.Err())
}

func TestOnRejectsBadHandlers(t *testing.T) {
	c, err := client.New("http://127.0.0.1:1/hub", nil)
	require.NoError(t, err)
	defer c.Close()
	assert.ErrorIs(t, c.On("", func() {}), client.ErrEmptyTarget)
	var nilFunc func()
	for name, h := range map[string]any{
		"nil":            nil,
		"nil func":       nilFunc,
		"not a func":     42,
		"variadic":       func(...int) {},
		"second not err": func() (int, int) { return 0, 0 },
		"three results":  func() (int, int, error) { return 0, 0, nil },
	} {
		assert.Error(t, c.On("x", h), name)
	}
	for name, h := range map[string]any{
		"void":         func(string, int) {},
		"error":        func() error { return nil },
		"value":        func() int { return 0 },
		"value, error": func(json []byte) (point, error) { return point{}, nil },
	} {
		assert.NoError(t, c.On("x", h), name)
	}
}

// TestBackpressure: with a queue of one message, a blocked handler stops
// the reader instead of dropping messages, and the wait does not count as
// a server timeout.
func TestBackpressure(t *testing.T) {
	s := testHub(t)
	const serverTimeout = 200 * time.Millisecond
	c := dial(t, s.Srv, s.URL, &client.Options{
		QueueLength:       1,
		ServerTimeout:     serverTimeout,
		KeepAliveInterval: 50 * time.Millisecond,
	})
	release := make(chan struct{})
	got := make(chan int, 64)
	require.NoError(t, c.On("N", func(n int) {
		if n == 0 {
			<-release
		}
		got <- n
	}))
	ctx := waitCtx(t)
	const count = 50
	for i := range count {
		require.NoError(t, s.Hub.SendToAll(ctx, "N", i))
	}
	// Hold the dispatcher for well over a server timeout.
	select {
	case <-c.Done():
		require.FailNow(t, "connection ended", "%v", c.Err())
	case <-time.After(3 * serverTimeout):
	}
	close(release)
	for i := range count {
		assert.Equal(t, i, recv(t, got))
	}
	n, err := client.InvokeAs[int](ctx, c, "Add", 1, 2)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
}

func TestCloseFromHandler(t *testing.T) {
	s := testHub(t)
	closed := make(chan error, 1)
	c := dial(t, s.Srv, s.URL, &client.Options{OnClose: func(err error) { closed <- err }})
	returned := make(chan struct{})
	require.NoError(t, c.On("Bye", func() {
		assert.NoError(t, c.Close())
		close(returned)
	}))
	require.NoError(t, s.Hub.SendToAll(waitCtx(t), "Bye"))
	recv(t, returned)
	waitDone(t, c)
	assert.NoError(t, recv(t, closed))
	assert.ErrorIs(t, c.Err(), client.ErrClosed)
}

// clientResultServer sends invocations that wait for a result and
// reports the Completions the client sent, by invocation ID.
func clientResultServer(t *testing.T, invocations []string, completions chan<- map[string]protocol.Message) *rawServer {
	return startRawServer(t, func(ctx context.Context, ws *websocket.Conn) {
		for _, inv := range invocations {
			if err := ws.Write(ctx, websocket.MessageText, []byte(inv+rs)); err != nil {
				return
			}
		}
		r := &recordReader{ws: ws}
		got := make(map[string]protocol.Message)
		for len(got) < len(invocations)-1 { // the last one has no ID
			m, err := r.Next(ctx)
			if err != nil {
				return
			}
			if m.Type == protocol.TypeCompletion {
				got[m.InvocationID] = m
			}
		}
		completions <- got
		drain(ctx, ws)
	})
}

func TestClientResults(t *testing.T) {
	completions := make(chan map[string]protocol.Message, 1)
	srv := clientResultServer(t, []string{
		`{"type":1,"invocationId":"s1","target":"sum","arguments":[20,22]}`,
		`{"type":1,"invocationId":"s2","target":"Fail","arguments":[]}`,
		`{"type":1,"invocationId":"s3","target":"Void","arguments":[]}`,
		`{"type":1,"invocationId":"s4","target":"Unknown","arguments":[]}`,
		`{"type":1,"invocationId":"s5","target":"Multi","arguments":[]}`,
		`{"type":1,"invocationId":"s6","target":"Panic","arguments":[]}`,
		`{"type":1,"invocationId":"s7","target":"Sum","arguments":["x",1]}`,
		`{"type":1,"invocationId":"s8","target":"Point","arguments":[]}`,
		`{"type":1,"invocationId":"s9","target":"Nil","arguments":[]}`,
		`{"type":1,"invocationId":"s10","target":"OnlyError","arguments":[]}`,
		`{"type":1,"target":"Sum","arguments":[1,2]}`,
	}, completions)
	c, err := client.New(srv.URL, clientOptions(t, srv.Srv, &client.Options{SkipNegotiation: true}))
	require.NoError(t, err)
	defer c.Close()
	voidRan := make(chan struct{}, 1)
	on := func(target string, h any) { require.NoError(t, c.On(target, h)) }
	on("Sum", func(a, b int) int { return a + b })
	on("Fail", func() (string, error) { return "", errors.New("no way") })
	on("Void", func() { voidRan <- struct{}{} })
	on("Multi", func() int { return 1 })
	on("Multi", func() int { return 2 })
	on("Panic", func() int { panic("boom") })
	on("Point", func() point { return point{X: 1, Y: 2} })
	on("Nil", func() *point { return nil })
	on("OnlyError", func() error { return errors.New("only an error") })
	require.NoError(t, c.Start(waitCtx(t)))

	got := recv(t, completions)
	result := func(id string) string {
		m := got[id]
		assert.Empty(t, m.Error, id)
		return string(m.Result)
	}
	errorOf := func(id string) string {
		m := got[id]
		assert.Nil(t, m.Result, id)
		return m.Error
	}
	assert.Equal(t, "42", result("s1"))
	assert.Equal(t, "no way", errorOf("s2"))
	assert.Equal(t, "Client didn't provide a result.", errorOf("s3"))
	recv(t, voidRan)
	assert.Equal(t, "Client didn't provide a result.", errorOf("s4"))
	assert.Equal(t, "1", result("s5"))
	assert.Contains(t, errorOf("s6"), "panicked: boom")
	assert.Contains(t, errorOf("s7"), "argument 0")
	assert.JSONEq(t, `{"X":1,"Y":2}`, result("s8"))
	assert.Equal(t, "null", result("s9"))
	assert.Equal(t, "only an error", errorOf("s10"))
	assert.Len(t, got, 10)
}

func TestOnAnySeesEveryInvocation(t *testing.T) {
	s := testHub(t)
	c := dial(t, s.Srv, s.URL, nil)
	type seen struct {
		target string
		args   string
	}
	got := make(chan seen, 16)
	require.NoError(t, c.OnAny(func(target string, args []json.RawMessage) {
		b, _ := json.Marshal(args)
		got <- seen{target, string(b)}
	}))
	handled := receiver(t, c, "ReceiveMessage")
	assert.Error(t, c.OnAny(nil))

	ctx := waitCtx(t)
	require.NoError(t, s.Hub.SendToAll(ctx, "NoHandler", 1, "two"))
	require.NoError(t, s.Hub.SendToAll(ctx, "ReceiveMessage", "hub", "hi"))
	assert.Equal(t, seen{"NoHandler", `[1,"two"]`}, recv(t, got))
	assert.Equal(t, seen{"ReceiveMessage", `["hub","hi"]`}, recv(t, got))
	assert.Equal(t, chatMessage{"hub", "hi"}, recv(t, handled), "handlers still run")
}
