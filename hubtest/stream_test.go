package hubtest_test

import (
	"context"
	"errors"
	"iter"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/client"
	"github.com/signalhub/signalhub/hubtest"
)

func countdown(c *signalhub.Context, from int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := from; i > 0; i-- {
			if !yield(i) {
				return
			}
		}
	}
}

func streamMethods() map[string]any {
	return map[string]any{
		"Countdown": countdown,
		"FailAfter": func(c *signalhub.Context, n int) iter.Seq2[int, error] {
			return func(yield func(int, error) bool) {
				for i := range n {
					if !yield(i, nil) {
						return
					}
				}
				yield(0, signalhub.HubError{Message: "no more"})
			}
		},
		"Sum": func(c *signalhub.Context, in <-chan int) int {
			sum := 0
			for v := range in {
				sum += v
			}
			return sum
		},
		"Collect": func(c *signalhub.Context, in iter.Seq2[string, error]) ([]string, error) {
			var got []string
			for v, err := range in {
				if err != nil {
					return nil, signalhub.HubError{Message: "upload failed: " + err.Error()}
				}
				got = append(got, v)
			}
			return got, nil
		},
	}
}

func TestStream(t *testing.T) {
	t.Parallel()
	servers(t, &signalhub.Options{Methods: streamMethods()}, func(t *testing.T, srv *hubtest.Server) {
		c := srv.Connect("alice")

		items := c.MustStream("Countdown", 3)
		require.Len(t, items, 3)
		for i, want := range []string{"3", "2", "1"} {
			assert.JSONEq(t, want, string(items[i]))
		}
		items, err := c.Stream("Countdown", 0)
		require.NoError(t, err)
		assert.Empty(t, items)

		items, err = c.Stream("FailAfter", 2)
		assert.Len(t, items, 2, "the items before the error")
		var ie *client.InvocationError
		require.ErrorAs(t, err, &ie)
		assert.Contains(t, ie.Message, "HubException: no more")

		// Streams to the hub are arguments, as for the client.
		assert.JSONEq(t, "6", string(c.MustInvoke("Sum", slices.Values([]int{1, 2, 3}))))
		assert.JSONEq(t, `["a","b"]`, string(c.MustInvoke("Collect", slices.Values([]string{"a", "b"}))))
		failing := func(yield func(string, error) bool) {
			_ = yield("a", nil) && yield("", errors.New("disk full"))
		}
		_, err = c.Invoke("Collect", iter.Seq2[string, error](failing))
		require.ErrorAs(t, err, &ie)
		assert.Contains(t, ie.Message, "upload failed: signalhub: client error: disk full")
	})
}

func TestOpenStream(t *testing.T) {
	t.Parallel()
	servers(t, &signalhub.Options{Methods: streamMethods()}, func(t *testing.T, srv *hubtest.Server) {
		c := srv.Connect("alice")

		// Two streams at once on one connection, read in turn.
		a, b := c.OpenStream("Countdown", 3), c.OpenStream("Countdown", 2)
		a.Expect(3)
		b.Expect(2)
		assert.JSONEq(t, "2", string(a.Next()))
		a.Expect(1)
		b.Expect(1)
		a.ExpectEnd()
		b.ExpectEnd()
		a.ExpectEnd() // the end stays the end

		f := c.OpenStream("FailAfter", 1)
		f.Expect(0)
		var ie *client.InvocationError
		require.ErrorAs(t, f.End(), &ie)
		assert.Contains(t, ie.Message, "HubException: no more")
	})
}

func TestOpenStreamCancel(t *testing.T) {
	t.Parallel()
	ended := make(chan error, 1)
	hub := hubtest.NewHub(t, &signalhub.Options{Methods: map[string]any{
		"Ticks": func(c *signalhub.Context) iter.Seq[int] {
			return func(yield func(int) bool) {
				defer func() { ended <- c.Context().Err() }()
				for i := range 1_000_000 {
					if !yield(i) {
						return
					}
				}
			}
		},
		"Add": func(c *signalhub.Context, a, b int) int { return a + b },
	}})
	c := hubtest.NewServer(t, hub).Connect("alice")

	s := c.OpenStream("Ticks")
	s.Expect(0, 1, 2)
	s.Cancel()
	select {
	case err := <-ended:
		assert.ErrorIs(t, err, context.Canceled, "the hub method's Context ended")
	case <-t.Context().Done():
		t.Fatal("test ended")
	case <-time.After(hubtest.Timeout):
		t.Fatal("the hub method still streams after Cancel")
	}
	s.Cancel() // again: nothing happens
	assert.JSONEq(t, "3", string(c.MustInvoke("Add", 1, 2)), "the connection goes on")

	// A stream the test leaves open is cancelled when the test ends.
	c.OpenStream("Ticks").Expect(0)
}

func TestStreamFailuresSayWhatArrived(t *testing.T) {
	t.Parallel()
	connect := func(tb testing.TB) *hubtest.Client {
		return hubtest.NewServer(tb, hubtest.NewHub(tb, &signalhub.Options{Methods: streamMethods()})).Connect("gina")
	}
	f := failure(t, func(tb testing.TB) {
		connect(tb).OpenStream("Countdown", 3).Expect(3, 5)
	})
	assert.Contains(t, f, "stream Countdown: want item 5, got 2; items so far: 3, 2")

	f = failure(t, func(tb testing.TB) {
		s := connect(tb).OpenStream("Countdown", 1)
		s.Expect(1)
		s.Next()
	})
	assert.Contains(t, f, "stream Countdown ended (completed) where an item was expected; items so far: 1")

	f = failure(t, func(tb testing.TB) {
		_ = connect(tb).OpenStream("Countdown", 3).End()
	})
	assert.Contains(t, f, "stream Countdown sent 3 where its end was expected")

	f = failure(t, func(tb testing.TB) {
		s := connect(tb).OpenStream("FailAfter", 1)
		s.Expect(0)
		s.ExpectEnd()
	})
	assert.Contains(t, f, "stream FailAfter ended with client: invoke \"FailAfter\": An error occurred on the server while streaming results. HubException: no more; items so far: 0")

	f = failure(t, func(tb testing.TB) {
		connect(tb).MustStream("FailAfter", 2)
	})
	assert.Contains(t, f, "streaming FailAfter: client: invoke \"FailAfter\"")
	assert.Contains(t, f, "items so far: 0, 1")

	f = failure(t, func(tb testing.TB) {
		connect(tb).OpenStream("NoSuchMethod").Next()
	})
	assert.Contains(t, f, "Method does not exist")
}
