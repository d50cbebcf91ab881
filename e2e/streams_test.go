package e2e

import (
	"context"
	"errors"
	"iter"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
)

// TestStreamingWithOfficialClient streams both ways with the official
// client: a server stream read to its end, one the client disposes (the
// producer must see its Context end), one that fails, uploads from a
// Subject that completes or errors, and a stream in and out at once; with
// the JSON and the MessagePack hub protocols.
func TestStreamingWithOfficialClient(t *testing.T) {
	for _, protocol := range []string{"json", "messagepack"} {
		t.Run(protocol, func(t *testing.T) { testStreaming(t, protocol) })
	}
}

func testStreaming(t *testing.T, protocol string) {
	cancelled := make(chan error, 1)
	uploadErr := make(chan error, 1)
	hub, err := signalhub.New(&signalhub.Options{
		Metrics: protocolCheck(t, protocol),
		Methods: map[string]any{
			"Counter": func(c *signalhub.Context, n int) <-chan int {
				ch := make(chan int)
				go func() {
					defer close(ch)
					for i := range n {
						select {
						case ch <- i * 10:
						case <-c.Context().Done():
							return
						}
					}
				}()
				return ch
			},
			"Endless": func(c *signalhub.Context) iter.Seq[int] {
				return func(yield func(int) bool) {
					for i := 0; yield(i); i++ {
					}
					cancelled <- context.Cause(c.Context())
				}
			},
			"Fail": func(c *signalhub.Context) iter.Seq2[string, error] {
				return func(yield func(string, error) bool) {
					_ = yield("one", nil) && yield("", signalhub.HubError{Message: "the source went away"})
				}
			},
			"Sum": func(c *signalhub.Context, numbers iter.Seq2[int, error]) (int, error) {
				total := 0
				for n, err := range numbers {
					if err != nil {
						uploadErr <- err
						return 0, signalhub.HubError{Message: "upload failed"}
					}
					total += n
				}
				return total, nil
			},
			"Upper": func(c *signalhub.Context, words <-chan string) iter.Seq[string] {
				return func(yield func(string) bool) {
					for w := range words {
						if !yield(strings.ToUpper(w)) {
							return
						}
					}
				}
			},
		},
	})
	require.NoError(t, err)
	node := startNode(t, "streams.mjs", serveHub(t, hub), protocol)
	node.next(t, "counter: [0,10,20,30,40]")
	node.next(t, "cancelled after 3")
	select {
	case cause := <-cancelled:
		assert.ErrorContains(t, cause, "cancelled by the client", "the producer's Context ends when the client disposes")
	case <-time.After(stepTimeout):
		t.Fatal("the producer of the disposed stream did not stop")
	}
	node.next(t, "failed: An error occurred on the server while streaming results. HubException: the source went away")
	node.next(t, "sum: 10")
	node.next(t, "upload failed: An unexpected error occurred invoking 'Sum' on the server. HubException: upload failed")
	var ce *signalhub.ClientError
	require.ErrorAs(t, <-uploadErr, &ce)
	assert.Equal(t, "camera unplugged", ce.Message, "the client's error reaches the method")
	assert.False(t, errors.Is(ce, signalhub.ErrClientDisconnected))
	node.next(t, "upper: [\"A\",\"BC\",\"DEF\"]")
	node.next(t, "done")
	require.NoError(t, node.wait(), "node exit status\n%s", node)
}
