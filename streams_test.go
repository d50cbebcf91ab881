package signalhub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/protocol"
)

// streamItems reads the StreamItems of invocation id up to its Completion
// and returns the items' JSON and the Completion.
func (c *client) streamItems(t testing.TB, id string) ([]string, protocol.Message) {
	t.Helper()
	var items []string
	for {
		m := c.ExpectNext(t)
		require.Equal(t, id, m.InvocationID, "a message of another invocation: %+v", m)
		switch m.Type {
		case protocol.TypeStreamItem:
			items = append(items, string(m.Item))
		case protocol.TypeCompletion:
			return items, m
		default:
			t.Fatalf("unexpected %v in stream %s: %+v", m.Type, id, m)
		}
	}
}

// streamInvocation is a StreamInvocation record.
func streamInvocation(id, target string, args ...any) string {
	raw, err := json.Marshal(args)
	if err != nil {
		panic(err)
	}
	if args == nil {
		raw = []byte("[]")
	}
	return fmt.Sprintf(`{"type":4,"invocationId":%q,"target":%q,"arguments":%s}`, id, target, raw)
}

func TestStreamToClientKinds(t *testing.T) {
	t.Parallel()
	opts := &signalhub.Options{Methods: map[string]any{
		"Chan": func(c *signalhub.Context, n int) <-chan int {
			ch := make(chan int)
			go func() {
				defer close(ch)
				for i := range n {
					select {
					case ch <- i:
					case <-c.Context().Done():
						return
					}
				}
			}()
			return ch
		},
		"Seq": func(c *signalhub.Context, n int) iter.Seq[string] {
			return func(yield func(string) bool) {
				for i := range n {
					if !yield("s" + strconv.Itoa(i)) {
						return
					}
				}
			}
		},
		"Seq2": func(c *signalhub.Context, n int) (iter.Seq2[map[string]int, error], error) {
			return func(yield func(map[string]int, error) bool) {
				for i := range n {
					if !yield(map[string]int{"i": i}, nil) {
						return
					}
				}
			}, nil
		},
		"Empty": func(c *signalhub.Context) <-chan int { return nil },
	}}
	f := newFixture(t, opts)
	c := f.Dial(t, dialOptions{})
	ctx := waitCtx(t)

	require.NoError(t, c.SendRecords(ctx, streamInvocation("1", "Chan", 3)))
	items, done := c.streamItems(t, "1")
	assert.Equal(t, []string{"0", "1", "2"}, items)
	assert.Empty(t, done.Error)
	assert.Nil(t, done.Result, "a stream's Completion carries no result")

	require.NoError(t, c.SendRecords(ctx, streamInvocation("2", "seq", 2)))
	items, done = c.streamItems(t, "2")
	assert.Equal(t, []string{`"s0"`, `"s1"`}, items)
	assert.Empty(t, done.Error)

	require.NoError(t, c.SendRecords(ctx, streamInvocation("3", "Seq2", 2)))
	items, done = c.streamItems(t, "3")
	assert.Equal(t, []string{`{"i":0}`, `{"i":1}`}, items)
	assert.Empty(t, done.Error)

	require.NoError(t, c.SendRecords(ctx, streamInvocation("4", "Empty")))
	items, done = c.streamItems(t, "4")
	assert.Empty(t, items)
	assert.Empty(t, done.Error)
}

func TestStreamToClientErrors(t *testing.T) {
	t.Parallel()
	failAfter := func(n int, err error) iter.Seq2[int, error] {
		return func(yield func(int, error) bool) {
			for i := range n {
				if !yield(i, nil) {
					return
				}
			}
			yield(0, err)
		}
	}
	methods := map[string]any{
		"Fail": func(c *signalhub.Context) iter.Seq2[int, error] { return failAfter(2, errors.New("disk on fire")) },
		"HubFail": func(c *signalhub.Context) iter.Seq2[int, error] {
			return failAfter(1, signalhub.HubError{Message: "no more"})
		},
		"Refuse": func(c *signalhub.Context) (<-chan int, error) { return nil, signalhub.HubError{Message: "not you"} },
		"Panic": func(c *signalhub.Context) iter.Seq[int] {
			return func(yield func(int) bool) { yield(1); panic("boom") }
		},
		"BadItem": func(c *signalhub.Context) iter.Seq[any] {
			return func(yield func(any) bool) { _ = yield(1) && yield(func() {}) }
		},
		"Plain":  func(c *signalhub.Context) int { return 1 },
		"Upload": func(c *signalhub.Context, in <-chan int) int { return 0 },
		"Overyield": func(c *signalhub.Context) iter.Seq[any] {
			return func(yield func(any) bool) {
				yield(1)
				yield(func() {}) // cannot be encoded: yield returns false
				yield(2)         // a broken iterator goes on anyway
			}
		},
	}
	for _, detailed := range []bool{false, true} {
		t.Run(fmt.Sprintf("detailed=%v", detailed), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, &signalhub.Options{Methods: methods, DetailedErrors: detailed})
			c := f.Dial(t, dialOptions{})
			ctx := waitCtx(t)

			require.NoError(t, c.SendRecords(ctx, streamInvocation("1", "Fail")))
			items, done := c.streamItems(t, "1")
			assert.Equal(t, []string{"0", "1"}, items, "items before the error stay delivered")
			if detailed {
				assert.Equal(t, "An error occurred on the server while streaming results. disk on fire", done.Error)
			} else {
				assert.Equal(t, "An error occurred on the server while streaming results.", done.Error)
			}

			require.NoError(t, c.SendRecords(ctx, streamInvocation("2", "HubFail")))
			_, done = c.streamItems(t, "2")
			assert.Equal(t, "An error occurred on the server while streaming results. HubException: no more", done.Error)

			require.NoError(t, c.SendRecords(ctx, streamInvocation("3", "Refuse")))
			_, done = c.streamItems(t, "3")
			assert.Equal(t, "An unexpected error occurred invoking 'Refuse' on the server. HubException: not you", done.Error)

			require.NoError(t, c.SendRecords(ctx, streamInvocation("4", "Panic")))
			items, done = c.streamItems(t, "4")
			assert.Equal(t, []string{"1"}, items)
			assert.True(t, strings.HasPrefix(done.Error, "An error occurred on the server while streaming results."), "%q", done.Error)

			require.NoError(t, c.SendRecords(ctx, streamInvocation("5", "BadItem")))
			items, done = c.streamItems(t, "5")
			assert.Equal(t, []string{"1"}, items)
			assert.True(t, strings.HasPrefix(done.Error, "An error occurred on the server while streaming results."), done.Error)

			require.NoError(t, c.SendRecords(ctx, streamInvocation("6", "Overyield")))
			items, done = c.streamItems(t, "6")
			assert.Equal(t, []string{"1"}, items)
			assert.True(t, strings.HasPrefix(done.Error, "An error occurred on the server while streaming results."), done.Error)

			// Calls of the wrong kind.
			require.NoError(t, c.SendRecords(ctx, streamInvocation("7", "Plain")))
			_, done = c.streamItems(t, "7")
			assert.Equal(t, "The client attempted to invoke the non-streaming 'Plain' method with a streaming invocation.", done.Error)
			_, errMsg, err := c.Invoke(ctx, "Fail")
			require.NoError(t, err)
			assert.Equal(t, "The client attempted to invoke the streaming 'Fail' method with a non-streaming invocation.", errMsg)
			_, errMsg, err = c.Invoke(ctx, "Upload")
			require.NoError(t, err)
			assert.Equal(t, "An unexpected error occurred invoking 'Upload' on the server. HubException: Client sent 0 stream(s), Hub method expects 1.", errMsg)
			require.NoError(t, c.SendRecords(ctx, `{"type":1,"invocationId":"8","target":"Plain","arguments":[],"streamIds":["a"]}`))
			_, done = c.streamItems(t, "8")
			assert.Equal(t, "An unexpected error occurred invoking 'Plain' on the server. HubException: Client sent 1 stream(s), Hub method expects 0.", done.Error)
			require.NoError(t, c.SendRecords(ctx, streamInvocation("9", "Nope")))
			_, done = c.streamItems(t, "9")
			assert.Equal(t, "Failed to invoke 'Nope' due to an error on the server. HubException: Method does not exist.", done.Error)

			// The connection is fine after all of it.
			require.NoError(t, c.SendRecords(ctx, streamInvocation("10", "Fail")))
			items, _ = c.streamItems(t, "10")
			assert.Len(t, items, 2)
		})
	}
}

// ticker is a stream method that yields 0, 1, 2, … until its Context ends,
// reporting the cause on stopped.
func ticker(stopped chan<- error) func(c *signalhub.Context) iter.Seq[int] {
	return func(c *signalhub.Context) iter.Seq[int] {
		return func(yield func(int) bool) {
			defer func() {
				err := context.Cause(c.Context())
				if err == nil {
					err = errors.New("yield refused the item")
				}
				stopped <- err
			}()
			for i := 0; ; i++ {
				if !yield(i) {
					return
				}
			}
		}
	}
}

// holder is a stream method that yields 0 and then holds the stream open
// until its Context ends, reporting the cause on stopped.
func holder(stopped chan<- error) func(c *signalhub.Context) iter.Seq[int] {
	return func(c *signalhub.Context) iter.Seq[int] {
		return func(yield func(int) bool) {
			if yield(0) {
				<-c.Context().Done()
			}
			stopped <- context.Cause(c.Context())
		}
	}
}

func TestStreamCancelByClient(t *testing.T) {
	t.Parallel()
	stopped := make(chan error, 1)
	chanStopped := make(chan error, 1)
	f := newFixture(t, &signalhub.Options{Methods: map[string]any{
		"Ticker": ticker(stopped),
		"Waiter": func(c *signalhub.Context) <-chan int {
			ch := make(chan int, 1)
			ch <- 7
			go func() {
				<-c.Context().Done()
				chanStopped <- context.Cause(c.Context())
			}()
			return ch
		},
		"Echo": func(c *signalhub.Context, s string) string { return s },
	}})
	c := f.Dial(t, dialOptions{})
	ctx := waitCtx(t)

	require.NoError(t, c.SendRecords(ctx, streamInvocation("1", "Ticker")))
	first := c.ExpectNext(t)
	require.Equal(t, protocol.TypeStreamItem, first.Type)
	require.NoError(t, c.SendRecords(ctx, `{"type":5,"invocationId":"1"}`))
	select {
	case err := <-stopped:
		assert.ErrorContains(t, err, "cancelled by the client")
	case <-ctx.Done():
		t.Fatal("the producer did not stop after CancelInvocation")
	}
	// Items already queued may still arrive; then the Completion, without
	// an error.
	for {
		m := c.ExpectNext(t)
		require.Equal(t, "1", m.InvocationID)
		if m.Type == protocol.TypeCompletion {
			assert.Empty(t, m.Error)
			break
		}
		require.Equal(t, protocol.TypeStreamItem, m.Type)
	}

	require.NoError(t, c.SendRecords(ctx, streamInvocation("2", "Waiter")))
	m := c.ExpectNext(t)
	assert.Equal(t, json.RawMessage("7"), m.Item)
	require.NoError(t, c.SendRecords(ctx, `{"type":5,"invocationId":"2"}`, `{"type":5,"invocationId":"unknown"}`))
	select {
	case err := <-chanStopped:
		assert.ErrorContains(t, err, "cancelled by the client")
	case <-ctx.Done():
		t.Fatal("the channel producer's Context did not end after CancelInvocation")
	}
	_, done := c.streamItems(t, "2")
	assert.Empty(t, done.Error)
	c.ExpectResult(t, `"after"`, "Echo", "after")
}

func TestStreamEndsWithConnection(t *testing.T) {
	t.Parallel()
	stopped := make(chan error, 1)
	f := newFixture(t, &signalhub.Options{Methods: map[string]any{"Ticker": ticker(stopped)}})
	c := f.Dial(t, dialOptions{})
	ctx := waitCtx(t)
	require.NoError(t, c.SendRecords(ctx, streamInvocation("1", "Ticker")))
	c.ExpectNext(t)
	c.Drop()
	select {
	case err := <-stopped:
		assert.Error(t, err)
	case <-ctx.Done():
		t.Fatal("the producer did not stop when the connection ended")
	}
	assert.Error(t, f.WaitDisconnected(t, c.ID), "dropped socket")
}

func TestStreamBackpressure(t *testing.T) {
	t.Parallel()
	const n = 2000
	stopped := make(chan error, 1)
	f := newFixture(t, &signalhub.Options{
		// A tiny queue: without backpressure the producer would overflow it
		// at once and the client would be closed as a slow consumer.
		SendQueueLength: 4,
		Methods: map[string]any{
			"Count": func(c *signalhub.Context) iter.Seq[string] {
				return func(yield func(string) bool) {
					for i := range n {
						if !yield(strings.Repeat("x", 100) + strconv.Itoa(i)) {
							return
						}
					}
				}
			},
			"Ticker": ticker(stopped),
		},
	}, userClaims)
	c := f.Dial(t, dialOptions{})
	ctx := waitCtx(t)
	require.NoError(t, c.SendRecords(ctx, streamInvocation("1", "Count")))
	items, done := c.streamItems(t, "1")
	require.Len(t, items, n)
	for i, it := range items {
		require.Equal(t, `"`+strings.Repeat("x", 100)+strconv.Itoa(i)+`"`, it)
	}
	assert.Empty(t, done.Error)

	// A client that stops reading holds the producer, not the server: it
	// waits until the connection ends.
	quiet := f.Dial(t, dialOptions{NoReader: true, Query: url.Values{"user": {"quiet"}}})
	require.NoError(t, quiet.SendRecords(ctx, streamInvocation("1", "Ticker")))
	select {
	case err := <-stopped:
		t.Fatalf("the producer ended early: %v", err)
	case <-time.After(200 * time.Millisecond): // a negative check: nothing may happen
	}
	assert.Len(t, f.Hub.UserConnections("quiet"), 1, "the client that stopped reading was not closed as a slow consumer")
	require.NoError(t, f.Hub.DisconnectUser(ctx, "quiet", "bye"))
	select {
	case err := <-stopped:
		assert.Error(t, err)
	case <-ctx.Done():
		t.Fatal("the waiting producer did not stop when the connection was closed")
	}
}

func TestStreamsBesideInvocations(t *testing.T) {
	t.Parallel()
	stopped := make(chan error, 4)
	f := newFixture(t, &signalhub.Options{
		MaxStreams: 2,
		Methods: map[string]any{
			"Hold": holder(stopped),
			"Echo": func(c *signalhub.Context, s string) string { return s },
		},
	})
	c := f.Dial(t, dialOptions{})
	ctx := waitCtx(t)
	// Two open streams, with the default MaxParallelInvocations of 1:
	// invocations still run.
	require.NoError(t, c.SendRecords(ctx, streamInvocation("a", "Hold"), streamInvocation("b", "Hold")))
	c.ExpectResult(t, `"free"`, "Echo", "free")

	require.NoError(t, c.SendRecords(ctx, streamInvocation("c", "Hold")))
	_, errMsg, err := c.Completion(ctx, "c")
	require.NoError(t, err)
	assert.Equal(t, "Failed to invoke 'Hold': the connection already has 2 streams open, the most allowed.", errMsg)
	require.NoError(t, c.SendRecords(ctx, streamInvocation("a", "Hold")))
	_, errMsg, err = c.Completion(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, "Invocation ID 'a' is already in use.", errMsg)

	require.NoError(t, c.SendRecords(ctx, `{"type":5,"invocationId":"a"}`, `{"type":5,"invocationId":"b"}`))
	for range 2 {
		<-stopped
	}
	_, errMsg, err = c.Completion(ctx, "b")
	require.NoError(t, err)
	assert.Empty(t, errMsg)
	require.NoError(t, c.SendRecords(ctx, streamInvocation("d", "Hold")))
	c.ExpectNext(t) // an item: the slot is free again
}

func TestStreamShutdown(t *testing.T) {
	t.Parallel()
	stopped := make(chan error, 1)
	f := newFixture(t, &signalhub.Options{Methods: map[string]any{"Hold": holder(stopped)}})
	c := f.Dial(t, dialOptions{})
	ctx := waitCtx(t)
	require.NoError(t, c.SendRecords(ctx, streamInvocation("1", "Hold")))
	c.ExpectNext(t)
	require.NoError(t, f.Hub.Shutdown(ctx))
	assert.ErrorIs(t, <-stopped, signalhub.ErrHubClosed)
	var last protocol.Message
	for {
		m := c.ExpectNext(t)
		if m.Type != protocol.TypeStreamItem {
			last = m
			break
		}
	}
	assert.Equal(t, protocol.TypeCompletion, last.Type)
	assert.Equal(t, "An error occurred on the server while streaming results. The server is shutting down.", last.Error)
	assert.Equal(t, protocol.TypeClose, c.ExpectNext(t).Type)
}

func TestStreamFromClient(t *testing.T) {
	t.Parallel()
	got := make(chan error, 4)
	f := newFixture(t, &signalhub.Options{Methods: map[string]any{
		"Join": func(c *signalhub.Context, sep string, parts <-chan string) string {
			var all []string
			for p := range parts {
				all = append(all, p)
			}
			return strings.Join(all, sep)
		},
		"Sum": func(c *signalhub.Context, a iter.Seq2[int, error], b iter.Seq2[int, error]) (int, error) {
			total := 0
			for _, s := range []iter.Seq2[int, error]{a, b} {
				for v, err := range s {
					if err != nil {
						got <- err
						return 0, err
					}
					total += v
				}
			}
			return total, nil
		},
		"Echo": func(c *signalhub.Context, s string) string { return s },
	}})
	c := f.Dial(t, dialOptions{})
	ctx := waitCtx(t)

	// The official client's order: the invocation, the items, the end.
	require.NoError(t, c.SendRecords(ctx,
		`{"type":1,"invocationId":"1","target":"Join","arguments":["-"],"streamIds":["s1"]}`,
		`{"type":2,"invocationId":"s1","item":"a"}`,
		`{"type":2,"invocationId":"s1","item":"b"}`,
	))
	require.NoError(t, c.SendRecords(ctx, `{"type":2,"invocationId":"s1","item":"c"}`, `{"type":3,"invocationId":"s1"}`))
	res, errMsg, err := c.Completion(ctx, "1")
	require.NoError(t, err)
	assert.Empty(t, errMsg)
	assert.Equal(t, `"a-b-c"`, string(res))

	// Two streams, interleaved; items of unknown streams are ignored.
	require.NoError(t, c.SendRecords(ctx,
		`{"type":1,"invocationId":"2","target":"Sum","arguments":[],"streamIds":["x","y"]}`,
		`{"type":2,"invocationId":"y","item":10}`,
		`{"type":2,"invocationId":"x","item":1}`,
		`{"type":2,"invocationId":"zzz","item":1000}`,
		`{"type":3,"invocationId":"x"}`,
		`{"type":2,"invocationId":"y","item":20}`,
		`{"type":3,"invocationId":"y"}`,
	))
	res, errMsg, err = c.Completion(ctx, "2")
	require.NoError(t, err)
	assert.Empty(t, errMsg)
	assert.Equal(t, "31", string(res))

	// The client ends a stream with an error: the method sees it.
	require.NoError(t, c.SendRecords(ctx,
		`{"type":1,"invocationId":"3","target":"Sum","arguments":[],"streamIds":["x","y"]}`,
		`{"type":2,"invocationId":"x","item":1}`,
		`{"type":3,"invocationId":"x","error":"camera unplugged"}`,
	))
	var ce *signalhub.ClientError
	require.ErrorAs(t, <-got, &ce)
	assert.Equal(t, "camera unplugged", ce.Message)
	_, errMsg, err = c.Completion(ctx, "3")
	require.NoError(t, err)
	assert.Equal(t, "An unexpected error occurred invoking 'Sum' on the server.", errMsg)

	// An item that does not fit the stream's type ends it.
	require.NoError(t, c.SendRecords(ctx,
		`{"type":1,"invocationId":"4","target":"Sum","arguments":[],"streamIds":["p","q"]}`,
		`{"type":2,"invocationId":"p","item":"not a number"}`,
	))
	assert.ErrorIs(t, <-got, signalhub.ErrBadStreamItem)
	_, _, err = c.Completion(ctx, "4")
	require.NoError(t, err)

	// Stream IDs must be unique.
	require.NoError(t, c.SendRecords(ctx, `{"type":1,"invocationId":"5","target":"Sum","arguments":[],"streamIds":["d","d"]}`))
	_, errMsg, err = c.Completion(ctx, "5")
	require.NoError(t, err)
	assert.Equal(t, "Stream ID 'd' is already in use.", errMsg)

	// Arguments beside streams are checked as usual.
	require.NoError(t, c.SendRecords(ctx, `{"type":1,"invocationId":"6","target":"Join","arguments":[1],"streamIds":["s"]}`))
	_, errMsg, err = c.Completion(ctx, "6")
	require.NoError(t, err)
	assert.Equal(t, "Failed to invoke 'Join' due to an error on the server.", errMsg)
	require.NoError(t, c.SendRecords(ctx, `{"type":2,"invocationId":"s","item":"late"}`, `{"type":3,"invocationId":"s"}`))
	c.ExpectResult(t, `"ok"`, "Echo", "ok")
}

func TestStreamFromClientBackpressure(t *testing.T) {
	t.Parallel()
	const capacity = 3
	gate := make(chan struct{})
	buffered := make(chan int, 1)
	f := newFixture(t, &signalhub.Options{
		StreamBufferCapacity: capacity,
		Methods: map[string]any{
			"Slow": func(c *signalhub.Context, in <-chan int) int {
				<-gate
				buffered <- len(in)
				n := 0
				for v := range in {
					n += v
				}
				return n
			},
			"Echo": func(c *signalhub.Context, s string) string { return s },
		},
	})
	c := f.Dial(t, dialOptions{})
	ctx := waitCtx(t)
	recs := []string{`{"type":1,"invocationId":"slow","target":"Slow","arguments":[],"streamIds":["s"]}`}
	for i := 1; i <= 10; i++ {
		recs = append(recs, fmt.Sprintf(`{"type":2,"invocationId":"s","item":%d}`, i))
	}
	recs = append(recs, `{"type":3,"invocationId":"s"}`)
	require.NoError(t, c.SendRecords(ctx, recs...))
	echo, err := c.StartInvoke(ctx, "Echo", "behind")
	require.NoError(t, err)
	// While the method takes nothing, the connection stops reading after
	// the buffer: the invocation behind the items does not run.
	_, _, err = c.Completion(timeoutCtx(t, 200*time.Millisecond), echo)
	require.Error(t, err, "a negative check: the Echo must wait behind the full stream")
	close(gate)
	assert.Equal(t, capacity, <-buffered, "the stream buffer holds StreamBufferCapacity items")
	res, errMsg, err := c.Completion(ctx, "slow")
	require.NoError(t, err)
	assert.Empty(t, errMsg)
	assert.Equal(t, "55", string(res), "no item lost")
	res, _, err = c.Completion(ctx, echo)
	require.NoError(t, err)
	assert.Equal(t, `"behind"`, string(res))
}

func TestStreamFromClientConnectionEnds(t *testing.T) {
	t.Parallel()
	seen := make(chan error, 1)
	var items atomic.Int32
	f := newFixture(t, &signalhub.Options{Methods: map[string]any{
		"Collect": func(c *signalhub.Context, in iter.Seq2[string, error]) {
			for _, err := range in {
				if err != nil {
					seen <- err
					return
				}
				items.Add(1)
			}
			seen <- nil
		},
	}})
	c := f.Dial(t, dialOptions{})
	ctx := waitCtx(t)
	require.NoError(t, c.SendRecords(ctx,
		`{"type":1,"invocationId":"1","target":"Collect","arguments":[],"streamIds":["s"]}`,
		`{"type":2,"invocationId":"s","item":"a"}`))
	c.Drop()
	select {
	case err := <-seen:
		assert.ErrorIs(t, err, signalhub.ErrClientDisconnected)
	case <-ctx.Done():
		t.Fatal("the method reading the stream did not see the connection end")
	}
	assert.Equal(t, int32(1), items.Load())
}

// timeoutCtx is a context that ends after d (or with the test).
func timeoutCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
