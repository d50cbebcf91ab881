package signalhub_test

import (
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
)

// A client that closes its WebSocket while the server is writing to it
// gets the server's close frame (a clean close for the client), and
// OnDisconnected sees a graceful end, not the write that the close cut
// short.
func TestClientCloseWhileServerWrites(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{SendQueueLength: 1 << 16, SendQueueBytes: 1 << 28})
	payload := strings.Repeat("x", 8<<10)
	for round := range 10 {
		c := f.Dial(t, dialOptions{})
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for range 20_000 { // bounded: the round ends long before
				select {
				case <-stop:
					return
				default:
				}
				if f.Hub.SendToConnection(waitCtx(t), c.ID, "M", payload) != nil {
					return
				}
			}
		}()
		for range 5 {
			_, err := c.Next(waitCtx(t))
			require.NoError(t, err)
		}
		closeErr := c.ws.Close(websocket.StatusNormalClosure, "bye")
		close(stop)
		<-done
		assert.NoError(t, closeErr, "round %d: the server answered the client's close", round)
		assert.NoError(t, f.WaitDisconnected(t, c.ID), "round %d: OnDisconnected's cause", round)
	}
}
