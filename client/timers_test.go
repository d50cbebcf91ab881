package client_test

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/client"
	"github.com/signalhub/signalhub/protocol"
)

// These tests run the default keep-alive and timeout settings in a
// synctest bubble, over an in-memory network, so that minutes pass
// instantly and timers fire at exact instants.

// memHub serves a hub at memURL and returns it with the HTTP client that
// reaches it.
func memHub(t *testing.T, opts *signalhub.Options) (*signalhub.Hub, *http.Client) {
	hub, handler := newHub(t, opts)
	t.Cleanup(func() { assert.NoError(t, hub.Close()) })
	return hub, memServe(t, handler)
}

// dialMem connects to memURL through hc. Cleanup closes the client.
func dialMem(t *testing.T, hc *http.Client, opts *client.Options) *client.Conn {
	var o client.Options
	if opts != nil {
		o = *opts
	}
	o.HTTPClient = hc
	c, err := client.Dial(t.Context(), memURL, clientOptions(t, nil, &o))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, c.Close()) })
	return c
}

// silentServer completes the handshake and then never sends; it reports
// every Ping it receives.
func silentServer(t *testing.T, pings chan<- time.Time) *http.Client {
	return memServe(t, rawHandler(t, "{}"+rs, func(ctx context.Context, ws *websocket.Conn) {
		r := &recordReader{ws: ws}
		for {
			m, err := r.Next(ctx)
			if err != nil {
				return
			}
			if m.Type == protocol.TypePing {
				pings <- time.Now()
			}
		}
	}))
}

// TestKeepAlive: with the default settings on both sides, a client that
// sends nothing but its keep-alive Pings stays connected for as long as it
// likes, while one whose Pings are too rare is dropped by the hub after its
// 30s client timeout.
func TestKeepAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		disconnected := make(chan string, 2)
		_, hc := memHub(t, &signalhub.Options{
			Methods:        testMethods(),
			OnDisconnected: func(c *signalhub.Context, err error) { disconnected <- c.ConnectionID() },
		})
		alive := dialMem(t, hc, nil)
		idle := dialMem(t, hc, &client.Options{KeepAliveInterval: time.Hour})
		start := time.Now()

		<-idle.Done()
		elapsed := time.Since(start)
		assert.GreaterOrEqual(t, elapsed, 30*time.Second)
		assert.Less(t, elapsed, 31*time.Second)
		var ce *client.CloseError
		require.ErrorAs(t, idle.Err(), &ce)
		assert.Contains(t, ce.Message, "Server timeout elapsed without receiving a message from the client.")
		assert.True(t, ce.AllowReconnect)
		assert.Empty(t, idle.ConnectionID())
		synctest.Wait()
		require.Len(t, disconnected, 1)
		<-disconnected

		time.Sleep(10 * time.Minute)
		synctest.Wait()
		assert.Empty(t, disconnected)
		assert.Nil(t, alive.Err())
		n, err := client.InvokeAs[int](t.Context(), alive, "Add", 1, 2)
		require.NoError(t, err)
		assert.Equal(t, 3, n)
	})
}

// TestServerTimeout: against a server that never sends, the client pings
// after the handshake and every 15s, and gives up after 30s.
func TestServerTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pings := make(chan time.Time, 8)
		hc := silentServer(t, pings)
		closed := make(chan error, 1)
		c := dialMem(t, hc, &client.Options{
			SkipNegotiation: true,
			OnClose:         func(err error) { closed <- err },
		})
		start := time.Now()
		assert.ErrorIs(t, <-closed, client.ErrServerTimeout)
		assert.Equal(t, 30*time.Second, time.Since(start))
		<-c.Done()
		assert.ErrorIs(t, c.Err(), client.ErrServerTimeout)
		synctest.Wait()
		require.Len(t, pings, 2)
		assert.Equal(t, start, <-pings)
		assert.Equal(t, start.Add(15*time.Second), <-pings)
	})
}

// TestServerTimeoutReconnects: a server timeout is a lost connection, which
// the ReconnectPolicy replaces.
func TestServerTimeoutReconnects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hc := silentServer(t, make(chan time.Time, 16))
		reconnecting := make(chan error, 4)
		reconnected := make(chan string, 4)
		dialMem(t, hc, &client.Options{
			SkipNegotiation: true,
			Reconnect:       client.DelaysReconnect(5 * time.Second),
			OnReconnecting:  func(err error) { reconnecting <- err },
			OnReconnected:   func(id string) { reconnected <- id },
		})
		start := time.Now()
		assert.ErrorIs(t, <-reconnecting, client.ErrServerTimeout)
		assert.Equal(t, 30*time.Second, time.Since(start))
		assert.Empty(t, <-reconnected) // no connection ID without negotiate
		assert.Equal(t, 35*time.Second, time.Since(start))
		assert.ErrorIs(t, <-reconnecting, client.ErrServerTimeout)
		assert.Equal(t, 65*time.Second, time.Since(start))
	})
}
