package signalhub_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/hubtest"
)

func TestInvokeConnection(t *testing.T) {
	t.Parallel()
	hub := hubtest.NewHub(t, &signalhub.Options{Methods: map[string]any{
		// A hub method asking its own caller, with one invocation at a time.
		"Confirm": func(c *signalhub.Context, question string) (string, error) {
			ctx, cancel := context.WithTimeout(c.Context(), 5*time.Second)
			defer cancel()
			ok, err := signalhub.InvokeConnectionAs[bool](ctx, c.Hub(), c.ConnectionID(), "Ask", question)
			if err != nil {
				return "", err
			}
			if ok {
				return "confirmed", nil
			}
			return "declined", nil
		},
	}})
	srv := hubtest.NewServer(t, hub)
	alice := srv.Connect("alice")
	require.NoError(t, alice.Conn.On("Ask", func(q string) (bool, error) { return q == "sure?", nil }))
	require.NoError(t, alice.Conn.On("Fail", func() (int, error) { return 0, errors.New("no way") }))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	raw, err := hub.InvokeConnection(ctx, alice.ID(), "Ask", "sure?")
	require.NoError(t, err)
	assert.JSONEq(t, "true", string(raw))

	ok, err := signalhub.InvokeConnectionAs[bool](ctx, hub, alice.ID(), "Ask", "really?")
	require.NoError(t, err)
	assert.False(t, ok)

	assert.JSONEq(t, `"confirmed"`, string(alice.MustInvoke("Confirm", "sure?")), "a hub method waits for its own caller")

	var ce *signalhub.ClientError
	_, err = hub.InvokeConnection(ctx, alice.ID(), "Fail")
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "no way", ce.Message)

	_, err = hub.InvokeConnection(ctx, alice.ID(), "NoHandler")
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Client didn't provide a result.", ce.Message)

	_, err = hub.InvokeConnection(ctx, "nobody", "Ask", "x")
	assert.ErrorIs(t, err, signalhub.ErrConnectionNotFound)
	_, err = hub.InvokeConnection(ctx, alice.ID(), "", "x")
	assert.ErrorIs(t, err, signalhub.ErrEmptyName)
}

func TestInvokeConnectionEnds(t *testing.T) {
	t.Parallel()
	hub := hubtest.NewHub(t, nil)
	srv := hubtest.NewServer(t, hub)
	slow := srv.Connect("slow")
	asked := make(chan struct{})
	release := make(chan struct{})
	require.NoError(t, slow.Conn.On("Think", func() (int, error) {
		close(asked)
		<-release
		return 42, nil
	}))
	defer close(release)

	// The caller's deadline.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := hub.InvokeConnection(ctx, slow.ID(), "Think")
		errc <- err
	}()
	<-asked
	cancel()
	assert.ErrorIs(t, <-errc, context.Canceled)

	// The connection ends while the server waits.
	other := srv.Connect("other")
	thinking := make(chan struct{})
	require.NoError(t, other.Conn.On("Think", func() (int, error) { close(thinking); <-release; return 0, nil }))
	go func() {
		_, err := hub.InvokeConnection(context.Background(), other.ID(), "Think")
		errc <- err
	}()
	<-thinking
	require.NoError(t, hub.DisconnectUser(context.Background(), "other", "bye"))
	assert.ErrorIs(t, <-errc, signalhub.ErrClientDisconnected)
}
