package e2e

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
)

// TestClientResultsWithOfficialClient has the hub invoke the official
// client's handlers and wait for their answers: from a hub method asking
// its own caller, and from the server's code directly, with a value, an
// object, a thrown error and a missing handler.
func TestClientResultsWithOfficialClient(t *testing.T) {
	hub, err := signalhub.New(&signalhub.Options{
		Authenticate: func(r *http.Request) (signalhub.Claims, error) {
			return signalhub.Claims{"sub": r.Header.Get("X-User")}, nil
		},
		Methods: map[string]any{
			"Confirm": func(c *signalhub.Context, question string) (string, error) {
				ctx, cancel := context.WithTimeout(c.Context(), stepTimeout)
				defer cancel()
				return signalhub.InvokeConnectionAs[string](ctx, c.Hub(), c.ConnectionID(), "Ask", question)
			},
		},
	})
	require.NoError(t, err)
	node := startNode(t, "results.mjs", serveHub(t, hub))
	node.next(t, "confirmed: sure?!")
	node.next(t, "ready")
	ids := hub.UserConnections("js")
	require.Len(t, ids, 1)

	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	answer, err := signalhub.InvokeConnectionAs[string](ctx, hub, ids[0], "Ask", "hello")
	require.NoError(t, err)
	assert.Equal(t, "hello!", answer)

	later, err := hub.InvokeConnection(ctx, ids[0], "Later", 20)
	require.NoError(t, err)
	assert.JSONEq(t, `{"waited":20}`, string(later), "an async handler's answer")
	node.next(t, "answering later 20")

	var ce *signalhub.ClientError
	_, err = hub.InvokeConnection(ctx, ids[0], "Throw")
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Error: nope", ce.Message, "the client sends the thrown error's text")

	_, err = hub.InvokeConnection(ctx, ids[0], "Missing")
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Client didn't provide a result.", ce.Message)

	// A deadline ends the wait, and a late answer harms nothing.
	short, cancelShort := context.WithTimeout(ctx, time.Millisecond)
	defer cancelShort()
	_, err = hub.InvokeConnection(short, ids[0], "Later", 200)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	// The answer comes after the wait gave up; the client's next answer,
	// sent after it on the same socket, shows it was read and dropped.
	node.next(t, "answering later 200")
	answer, err = signalhub.InvokeConnectionAs[string](ctx, hub, ids[0], "Ask", "still there")
	require.NoError(t, err)
	assert.Equal(t, "still there!", answer)
	assert.Len(t, hub.UserConnections("js"), 1, "the late answer did not end the connection")

	_, err = io.WriteString(node.stdin, "done\n")
	require.NoError(t, err)
	node.next(t, "done")
	require.NoError(t, node.wait(), "node exit status\n%s", node)
}
