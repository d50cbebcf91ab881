package signalhub_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
)

// Shutdown lets the invocations a connection already sent finish: one that
// wraps up when its Context ends gets its error Completion, one that
// ignores it gets its result, one that waited behind them still runs, and
// one sent after Shutdown began is refused. The Close comes after them all.
func TestShutdownDrainsInvocations(t *testing.T) {
	t.Parallel()
	started := make(chan string, 4)
	release := make(chan struct{})
	f := newFixture(t, &signalhub.Options{
		MaxParallelInvocations: 2,
		Methods: map[string]any{
			"Polite": func(c *signalhub.Context) error {
				started <- "Polite"
				<-c.Context().Done()
				return signalhub.HubError{Message: "interrupted: " + context.Cause(c.Context()).Error()}
			},
			"Stubborn": func(c *signalhub.Context) string {
				started <- "Stubborn"
				<-release
				return "finished"
			},
			"Queued": func(c *signalhub.Context) string { return "ran" },
		},
	})
	c := f.Dial(t, dialOptions{})
	ctx := waitCtx(t)
	// One frame: Queued waits, as both workers are busy. The stream
	// invocation after it is refused by the reading goroutine itself, so
	// its answer shows that Queued was received before Shutdown starts.
	polite, stubborn, queued := "p", "s", "q"
	require.NoError(t, c.SendRecords(ctx,
		`{"type":1,"invocationId":"p","target":"Polite","arguments":[]}`,
		`{"type":1,"invocationId":"s","target":"Stubborn","arguments":[]}`,
		`{"type":1,"invocationId":"q","target":"Queued","arguments":[]}`,
		`{"type":4,"invocationId":"received","target":"Queued","arguments":[]}`))
	_, errMsg, err := c.Completion(ctx, "received")
	require.NoError(t, err)
	require.NotEmpty(t, errMsg)
	<-started
	<-started

	shut := make(chan error, 1)
	go func() { shut <- f.Hub.Shutdown(context.Background()) }()

	// Polite sees its Context end and answers with an error.
	_, errMsg, err = c.Completion(ctx, polite)
	require.NoError(t, err)
	assert.Equal(t, "An unexpected error occurred invoking 'Polite' on the server. HubException: interrupted: "+signalhub.ErrHubClosed.Error(), errMsg)

	// While Stubborn runs, a new invocation is refused.
	late, err := c.StartInvoke(ctx, "Queued")
	require.NoError(t, err)
	_, errMsg, err = c.Completion(ctx, late)
	require.NoError(t, err)
	assert.Equal(t, "Failed to invoke 'Queued': the server is shutting down.", errMsg)
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned while an invocation ran: %v", err)
	default:
	}

	close(release)
	res, errMsg, err := c.Completion(ctx, stubborn)
	require.NoError(t, err)
	assert.Empty(t, errMsg)
	assert.JSONEq(t, `"finished"`, string(res))
	res, errMsg, err = c.Completion(ctx, queued)
	require.NoError(t, err)
	assert.Empty(t, errMsg)
	assert.JSONEq(t, `"ran"`, string(res))

	m, _ := c.ExpectClose(t)
	assert.True(t, m.AllowReconnect)
	require.NoError(t, <-shut)
	assert.ErrorIs(t, f.WaitDisconnected(t, c.ID), signalhub.ErrHubClosed)
}

// A Shutdown whose context ends while invocations still run drops the
// connections, as documented.
func TestShutdownDeadlineDropsRunningInvocations(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	f := newFixture(t, &signalhub.Options{Methods: map[string]any{
		"Stubborn": func(c *signalhub.Context) { started <- struct{}{}; <-release },
	}})
	c := f.Dial(t, dialOptions{})
	_, err := c.StartInvoke(waitCtx(t), "Stubborn")
	require.NoError(t, err)
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	shut := make(chan error, 1)
	go func() { shut <- f.Hub.Shutdown(ctx) }()
	cancel()
	c.ExpectClosed(t) // dropped: the Stubborn call cannot hold the hub
	close(release)
	assert.True(t, errors.Is(<-shut, context.Canceled))
}
