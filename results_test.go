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

func TestInvokeConnectionAcrossNodes(t *testing.T) {
	t.Parallel()
	nodes, _ := hubtest.NewCluster(t, 2, &signalhub.Options{Methods: map[string]any{
		// Asks a connection that may be on the other node.
		"AskPeer": func(c *signalhub.Context, peer, question string) (string, error) {
			ctx, cancel := context.WithTimeout(c.Context(), 5*time.Second)
			defer cancel()
			return signalhub.InvokeConnectionAs[string](ctx, c.Hub(), peer, "Ask", question)
		},
	}})
	alice, bob := nodes[0].Connect("alice"), nodes[1].Connect("bob")
	release := make(chan struct{})
	require.NoError(t, bob.Conn.On("Ask", func(q string) (string, error) { return "bob says " + q, nil }))
	require.NoError(t, bob.Conn.On("Count", func(v map[string]int, n int) (map[string]int, error) { v["seen"] = n; return v, nil }))
	require.NoError(t, bob.Conn.On("Fail", func() (int, error) { return 0, errors.New("no way") }))
	require.NoError(t, bob.Conn.On("Wait", func() (int, error) { <-release; return 1, nil }))
	defer close(release)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	answer, err := signalhub.InvokeConnectionAs[map[string]int](ctx, nodes[0].Hub, bob.ID(), "Count", map[string]int{"n": 1}, 2)
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"n": 1, "seen": 2}, answer, "arguments and answers travel as JSON")
	assert.JSONEq(t, `"bob says hi"`, string(alice.MustInvoke("AskPeer", bob.ID(), "hi")), "from a hub method on the other node")

	var ce *signalhub.ClientError
	_, err = nodes[0].Hub.InvokeConnection(ctx, bob.ID(), "Fail")
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "no way", ce.Message)
	_, err = nodes[0].Hub.InvokeConnection(ctx, bob.ID(), "NoHandler")
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Client didn't provide a result.", ce.Message)

	// The deadline travels with the request.
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	_, err = nodes[0].Hub.InvokeConnection(short, bob.ID(), "Wait")
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	// A connection of the other node that does not exist, and one of a
	// node that is not in the cluster.
	_, err = nodes[0].Hub.InvokeConnection(ctx, "node2.nobody", "Ask", "x")
	assert.ErrorIs(t, err, signalhub.ErrConnectionNotFound)
	_, err = nodes[0].Hub.InvokeConnection(ctx, "node9.nobody", "Ask", "x")
	assert.ErrorIs(t, err, signalhub.ErrConnectionNotFound)

	// The connection ends while the other node waits for its answer.
	carol := nodes[1].Connect("carol")
	asked := make(chan struct{})
	require.NoError(t, carol.Conn.On("Hold", func() (int, error) { close(asked); <-release; return 1, nil }))
	carolID := carol.ID()
	waiting := make(chan error, 1)
	go func() {
		_, err := nodes[0].Hub.InvokeConnection(ctx, carolID, "Hold")
		waiting <- err
	}()
	<-asked
	// (The client's handler is still blocked: the server ends it.)
	require.NoError(t, nodes[1].Hub.DisconnectUser(ctx, "carol", ""))
	select {
	case err := <-waiting:
		assert.ErrorIs(t, err, signalhub.ErrClientDisconnected)
	case <-ctx.Done():
		t.Fatal("no answer after the connection ended")
	}
}

func TestInvokeConnectionNodeLeaves(t *testing.T) {
	t.Parallel()
	nodes, _ := hubtest.NewCluster(t, 2, nil)
	bob := nodes[1].Connect("bob")
	release, asked := make(chan struct{}), make(chan struct{})
	defer close(release)
	require.NoError(t, bob.Conn.On("Wait", func() (int, error) { close(asked); <-release; return 1, nil }))
	id := bob.ID()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	waiting := make(chan error, 1)
	go func() {
		_, err := nodes[0].Hub.InvokeConnection(ctx, id, "Wait")
		waiting <- err
	}()
	<-asked
	require.NoError(t, nodes[1].Hub.Close())
	select {
	case err := <-waiting:
		assert.ErrorIs(t, err, signalhub.ErrClientDisconnected)
	case <-ctx.Done():
		t.Fatal("no answer after the node left")
	}
}
