package client_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/client"
)

func TestInvokeResults(t *testing.T) {
	s := testHub(t)
	c := dial(t, s.Srv, s.URL, nil)
	ctx := waitCtx(t)
	assert.NotEmpty(t, c.ConnectionID())

	raw, err := c.Invoke(ctx, "Add", 40, 2)
	require.NoError(t, err)
	assert.JSONEq(t, "42", string(raw))

	n, err := client.InvokeAs[int](ctx, c, "add", 1, 2) // hub methods match case-insensitively
	require.NoError(t, err)
	assert.Equal(t, 3, n)

	str, err := client.InvokeAs[string](ctx, c, "Echo", "h\u00e9llo \"q\" \u2028")
	require.NoError(t, err)
	assert.Equal(t, "h\u00e9llo \"q\" \u2028", str)

	p, err := client.InvokeAs[point](ctx, c, "Mirror", point{X: 1, Y: 2})
	require.NoError(t, err)
	assert.Equal(t, point{X: 2, Y: 1}, p)

	raw, err = c.Invoke(ctx, "Nothing")
	require.NoError(t, err)
	assert.JSONEq(t, "null", string(raw))
	zero, err := client.InvokeAs[int](ctx, c, "Nothing")
	require.NoError(t, err)
	assert.Zero(t, zero)

	_, err = client.InvokeAs[int](ctx, c, "Echo", "not a number")
	assert.ErrorContains(t, err, "decode result")
}

func TestInvocationErrors(t *testing.T) {
	s := testHub(t)
	c := dial(t, s.Srv, s.URL, nil)
	tests := []struct {
		name    string
		target  string
		args    []any
		message string
	}{
		{"unknown method", "NoSuchMethod", nil, "Failed to invoke 'NoSuchMethod' due to an error on the server. HubException: Method does not exist."},
		{"hub error", "Fail", nil, "An unexpected error occurred invoking 'Fail' on the server. HubException: nope"},
		{"wrong argument count", "Add", []any{1}, "Failed to invoke 'Add' due to an error on the server."},
		{"wrong argument type", "Add", []any{"a", "b"}, "Failed to invoke 'Add' due to an error on the server."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Invoke(waitCtx(t), tc.target, tc.args...)
			var ie *client.InvocationError
			require.ErrorAs(t, err, &ie)
			assert.Equal(t, tc.target, ie.Target)
			assert.Equal(t, tc.message, ie.Message)
		})
	}
	// The connection survives failed invocations.
	n, err := client.InvokeAs[int](waitCtx(t), c, "Add", 1, 1)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
}

func TestInvokeBadArguments(t *testing.T) {
	s := testHub(t)
	c := dial(t, s.Srv, s.URL, nil)
	ctx := waitCtx(t)
	_, err := c.Invoke(ctx, "Echo", func() {})
	assert.ErrorContains(t, err, "encode argument 0")
	assert.ErrorContains(t, c.Send(ctx, "Echo", make(chan<- int)), "encode argument 0")
	_, err = c.Invoke(ctx, "")
	assert.ErrorIs(t, err, client.ErrEmptyTarget)
	assert.ErrorIs(t, c.Send(ctx, ""), client.ErrEmptyTarget)

	n, err := client.InvokeAs[int](ctx, c, "Add", 2, 2)
	require.NoError(t, err)
	assert.Equal(t, 4, n)
}

func TestSend(t *testing.T) {
	got := make(chan string, 1)
	s := startHub(t, &signalhub.Options{Methods: map[string]any{
		"Record": func(c *signalhub.Context, text string) { got <- text },
	}})
	c := dial(t, s.Srv, s.URL, nil)
	ctx := waitCtx(t)
	require.NoError(t, c.Send(ctx, "Record", "hello"))
	assert.Equal(t, "hello", recv(t, got))
	// No Completion comes back, not even for an error.
	require.NoError(t, c.Send(ctx, "NoSuchMethod"))
	require.NoError(t, c.Send(ctx, "Record", "again"))
	assert.Equal(t, "again", recv(t, got))
}

func TestInvokeContext(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	s := startHub(t, &signalhub.Options{Methods: map[string]any{
		"Slow": func(c *signalhub.Context) int {
			entered <- struct{}{}
			<-release
			return 1
		},
		"Add": func(c *signalhub.Context, a, b int) int { return a + b },
	}})
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock)
	c := dial(t, s.Srv, s.URL, nil)

	done, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Invoke(done, "Add", 1, 1)
	assert.ErrorIs(t, err, context.Canceled)

	ctx, cancel := context.WithCancel(waitCtx(t))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Invoke(ctx, "Slow")
		errc <- err
	}()
	recv(t, entered)
	cancel()
	assert.ErrorIs(t, recv(t, errc), context.Canceled)

	// The late Completion is ignored and the connection keeps working.
	unblock()
	n, err := client.InvokeAs[int](waitCtx(t), c, "Add", 20, 22)
	require.NoError(t, err)
	assert.Equal(t, 42, n)
}

func TestConcurrentInvokes(t *testing.T) {
	s := startHub(t, &signalhub.Options{
		Methods:                testMethods(),
		MaxParallelInvocations: 4,
		InvocationRate:         -1, // 480 calls per connection at full speed
	})
	const clients, goroutines, calls = 4, 16, 25
	var wg sync.WaitGroup
	for range clients {
		c := dial(t, s.Srv, s.URL, nil)
		for g := range goroutines {
			wg.Go(func() {
				ctx := waitCtx(t)
				for i := range calls {
					n, err := client.InvokeAs[int](ctx, c, "Add", g, i)
					if !assert.NoError(t, err) {
						return
					}
					assert.Equal(t, g+i, n)
					if i%5 == 0 {
						assert.NoError(t, c.Send(ctx, "Nothing"))
					}
				}
			})
		}
	}
	wg.Wait()
}

func TestPendingInvokeFailsWhenConnectionDrops(t *testing.T) {
	entered := make(chan struct{}, 1)
	s := startHub(t, &signalhub.Options{Methods: map[string]any{
		"Block": func(c *signalhub.Context) {
			entered <- struct{}{}
			<-c.Context().Done()
		},
	}})
	closed := make(chan error, 1)
	c := dial(t, s.Srv, s.URL, &client.Options{OnClose: func(err error) { closed <- err }})
	errc := make(chan error, 1)
	go func() {
		_, err := c.Invoke(waitCtx(t), "Block")
		errc <- err
	}()
	recv(t, entered)
	require.NoError(t, s.Hub.Close()) // drops every socket without a Close message

	assert.ErrorIs(t, recv(t, errc), client.ErrConnectionLost)
	assert.ErrorIs(t, recv(t, closed), client.ErrConnectionLost)
	waitDone(t, c)
	assert.ErrorIs(t, c.Err(), client.ErrConnectionLost)
	_, err := c.Invoke(waitCtx(t), "Block")
	assert.ErrorIs(t, err, client.ErrClosed)
	assert.ErrorIs(t, c.Send(waitCtx(t), "Block"), client.ErrClosed)
}
