package client_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/client"
)

// events records a connection's callbacks.
type events struct {
	reconnecting chan error
	reconnected  chan string
	closed       chan error
}

func newEvents() *events {
	return &events{
		reconnecting: make(chan error, 8),
		reconnected:  make(chan string, 8),
		closed:       make(chan error, 8),
	}
}

// options returns client options reporting to e.
func (e *events) options(o client.Options) *client.Options {
	o.OnReconnecting = func(err error) { e.reconnecting <- err }
	o.OnReconnected = func(id string) { e.reconnected <- id }
	o.OnClose = func(err error) { e.closed <- err }
	return &o
}

func TestCloseIsIdempotent(t *testing.T) {
	s := testHub(t)
	ev := newEvents()
	c := dial(t, s.Srv, s.URL, ev.options(client.Options{}))
	require.NoError(t, c.Close())
	require.NoError(t, c.Close())
	select {
	case <-c.Done():
	default:
		require.FailNow(t, "Done is open after Close")
	}
	assert.NoError(t, recv(t, ev.closed))
	assert.Empty(t, ev.closed, "OnClose runs once")
	assert.ErrorIs(t, c.Err(), client.ErrClosed)
	assert.Empty(t, c.ConnectionID())
	ctx := waitCtx(t)
	_, err := c.Invoke(ctx, "Add", 1, 2)
	assert.ErrorIs(t, err, client.ErrClosed)
	assert.ErrorIs(t, c.Send(ctx, "Add", 1, 2), client.ErrClosed)
	assert.ErrorIs(t, c.Start(ctx), client.ErrClosed)
}

func TestCloseSendsCloseMessage(t *testing.T) {
	disconnected := make(chan error, 1)
	s := startHub(t, &signalhub.Options{
		OnDisconnected: func(c *signalhub.Context, err error) { disconnected <- err },
	})
	c := dial(t, s.Srv, s.URL, nil)
	require.NoError(t, c.Close())
	// The hub reports a graceful close (nil) only for a Close message or a
	// normal close frame.
	assert.NoError(t, recv(t, disconnected))
}

func TestConnWithoutStart(t *testing.T) {
	ev := newEvents()
	c, err := client.New("http://127.0.0.1:1/hub", ev.options(client.Options{}))
	require.NoError(t, err)
	assert.Nil(t, c.Err())
	_, err = c.Invoke(waitCtx(t), "Add")
	assert.ErrorIs(t, err, client.ErrNotConnected)
	require.NoError(t, c.Close())
	<-c.Done()
	assert.ErrorIs(t, c.Err(), client.ErrClosed)
	assert.ErrorIs(t, c.Start(waitCtx(t)), client.ErrClosed)
	assert.Empty(t, ev.closed, "OnClose is for connections that started")
}

func TestStartTwice(t *testing.T) {
	s := testHub(t)
	c := dial(t, s.Srv, s.URL, nil)
	assert.ErrorIs(t, c.Start(waitCtx(t)), client.ErrAlreadyStarted)
}

func TestStartAgainAfterFailure(t *testing.T) {
	hub, h := newHub(t, &signalhub.Options{Methods: testMethods()})
	t.Cleanup(func() { assert.NoError(t, hub.Close()) })
	sw := startSwitchServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not yet", http.StatusServiceUnavailable)
	}))
	c, err := client.New(sw.Srv.URL+"/hub", clientOptions(t, sw.Srv, nil))
	require.NoError(t, err)
	defer c.Close()
	var he *client.HTTPError
	require.ErrorAs(t, c.Start(waitCtx(t)), &he)
	assert.Equal(t, http.StatusServiceUnavailable, he.StatusCode)
	sw.Set(h)
	require.NoError(t, c.Start(waitCtx(t)))
	n, err := client.InvokeAs[int](waitCtx(t), c, "Add", 1, 1)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
}

func TestCloseDuringStart(t *testing.T) {
	arrived := make(chan struct{})
	srv := startSwitchServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done() // answer only when the client gives up
	}))
	c, err := client.New(srv.Srv.URL+"/hub", clientOptions(t, srv.Srv, nil))
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() { errc <- c.Start(context.Background()) }()
	recv(t, arrived)
	require.NoError(t, c.Close())
	assert.ErrorIs(t, recv(t, errc), client.ErrClosed)
	assert.ErrorIs(t, c.Err(), client.ErrClosed)
}

func TestStartContextBoundsStart(t *testing.T) {
	srv := startRawServerHandshake(t, "", drain)
	ctx, cancel := context.WithTimeout(waitCtx(t), 50*time.Millisecond)
	defer cancel()
	c, err := client.Dial(ctx, srv.URL, clientOptions(t, srv.Srv, &client.Options{SkipNegotiation: true}))
	assert.Nil(t, c)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestServerCloseWithError(t *testing.T) {
	release := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	s := startHub(t, &signalhub.Options{OnConnected: func(c *signalhub.Context) error {
		<-release
		return signalhub.HubError{Message: "go away"}
	}})
	t.Cleanup(unblock)
	ev := newEvents()
	c := dial(t, s.Srv, s.URL, ev.options(client.Options{Reconnect: client.DelaysReconnect(0)}))
	unblock()

	err := recv(t, ev.closed)
	var ce *client.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Connection closed with an error. HubException: go away", ce.Message)
	assert.False(t, ce.AllowReconnect)
	waitDone(t, c)
	assert.Equal(t, err, c.Err())
	assert.Empty(t, ev.reconnecting, "no reconnect without the server's permission")
}

func TestServerCloseWithoutError(t *testing.T) {
	s := startHub(t, &signalhub.Options{Methods: map[string]any{
		"Leave": func(c *signalhub.Context) { c.Abort() },
	}})
	ev := newEvents()
	c := dial(t, s.Srv, s.URL, ev.options(client.Options{Reconnect: client.DelaysReconnect(0)}))
	_, _ = c.Invoke(waitCtx(t), "Leave") // the Completion may lose the race with the close
	waitDone(t, c)
	var ce *client.CloseError
	require.ErrorAs(t, c.Err(), &ce)
	assert.Equal(t, client.CloseError{}, *ce)
	assert.Empty(t, ev.reconnecting)
}

func TestReconnectToAnotherHub(t *testing.T) {
	hubA, handlerA := newHub(t, &signalhub.Options{Methods: testMethods()})
	hubB, handlerB := newHub(t, &signalhub.Options{Methods: testMethods()})
	t.Cleanup(func() {
		assert.NoError(t, hubA.Close())
		assert.NoError(t, hubB.Close())
	})
	sw := startSwitchServer(t, handlerA)
	ev := newEvents()
	c := dial(t, sw.Srv, sw.Srv.URL+"/hub", ev.options(client.Options{
		Reconnect: client.DelaysReconnect(0, 10*time.Millisecond, 10*time.Millisecond),
	}))
	got := make(chan string, 4)
	require.NoError(t, c.On("Note", func(s string) { got <- s }))
	ctx := waitCtx(t)
	oldID := c.ConnectionID()
	require.NotEmpty(t, oldID)
	require.NoError(t, hubA.SendToAll(ctx, "Note", "from A"))
	assert.Equal(t, "from A", recv(t, got))

	// Hub A goes away; the same URL is now served by hub B.
	sw.Set(handlerB)
	require.NoError(t, hubA.Shutdown(ctx))

	var ce *client.CloseError
	require.ErrorAs(t, recv(t, ev.reconnecting), &ce)
	assert.True(t, ce.AllowReconnect)
	newID := recv(t, ev.reconnected)
	assert.NotEqual(t, oldID, newID)
	assert.Equal(t, newID, c.ConnectionID())
	id, err := client.InvokeAs[string](ctx, c, "ConnectionID")
	require.NoError(t, err)
	assert.Equal(t, newID, id, "hub B holds the new connection")
	assert.Equal(t, 1, hubB.Stats().Connections)

	n, err := client.InvokeAs[int](ctx, c, "Add", 2, 3)
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	require.NoError(t, hubB.SendToAll(ctx, "Note", "from B"))
	assert.Equal(t, "from B", recv(t, got))
	assert.Nil(t, c.Err())
	assert.Empty(t, ev.closed)
}

func TestReconnectGivesUp(t *testing.T) {
	hub, h := newHub(t, nil)
	t.Cleanup(func() { assert.NoError(t, hub.Close()) })
	sw := startSwitchServer(t, h)
	ev := newEvents()
	var attempts []int
	c := dial(t, sw.Srv, sw.Srv.URL+"/hub", ev.options(client.Options{
		Reconnect: func(attempt int, elapsed time.Duration, lastErr error) (time.Duration, bool) {
			attempts = append(attempts, attempt)
			assert.Error(t, lastErr)
			return time.Millisecond, attempt < 3
		},
	}))
	sw.Set(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "gone", http.StatusServiceUnavailable)
	}))
	require.NoError(t, hub.Shutdown(waitCtx(t)))

	recv(t, ev.reconnecting)
	err := recv(t, ev.closed)
	assert.ErrorIs(t, err, client.ErrReconnectFailed)
	var he *client.HTTPError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, http.StatusServiceUnavailable, he.StatusCode)
	waitDone(t, c)
	assert.Equal(t, err, c.Err())
	assert.Equal(t, []int{0, 1, 2, 3}, attempts)
	assert.Empty(t, ev.reconnected)
}

func TestReconnectPolicyRefusesFirstAttempt(t *testing.T) {
	s := testHub(t)
	ev := newEvents()
	var lastErr error
	c := dial(t, s.Srv, s.URL, ev.options(client.Options{
		Reconnect: func(attempt int, elapsed time.Duration, err error) (time.Duration, bool) {
			lastErr = err
			return 0, false
		},
	}))
	require.NoError(t, s.Hub.Shutdown(waitCtx(t)))
	err := recv(t, ev.closed)
	var ce *client.CloseError
	require.ErrorAs(t, err, &ce)
	assert.True(t, ce.AllowReconnect)
	waitDone(t, c)
	assert.Equal(t, err, lastErr)
	assert.Equal(t, err, c.Err())
	assert.Empty(t, ev.reconnecting)
}

func TestWhileReconnecting(t *testing.T) {
	s := testHub(t)
	ev := newEvents()
	c := dial(t, s.Srv, s.URL, ev.options(client.Options{
		Reconnect: func(int, time.Duration, error) (time.Duration, bool) { return time.Hour, true },
	}))
	require.NoError(t, s.Hub.Shutdown(waitCtx(t)))
	recv(t, ev.reconnecting)

	// Calls fail at once rather than wait, as in the official clients.
	ctx := waitCtx(t)
	_, err := c.Invoke(ctx, "Add", 1, 2)
	assert.ErrorIs(t, err, client.ErrNotConnected)
	assert.ErrorIs(t, c.Send(ctx, "Add", 1, 2), client.ErrNotConnected)
	assert.Empty(t, c.ConnectionID())
	assert.Nil(t, c.Err())

	// Close stops the reconnect that waits for its delay.
	require.NoError(t, c.Close())
	assert.NoError(t, recv(t, ev.closed))
	assert.ErrorIs(t, c.Err(), client.ErrClosed)
	assert.Empty(t, ev.reconnected)
}
