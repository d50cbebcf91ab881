package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/client"
)

// maxTicks bounds the streams of the endless-looking producers below.
const maxTicks = 1_000_000

// producer is a hub method streaming 0, 1, 2, ... (up to maxTicks) that
// reports, once its loop ends, how many items it produced and the error of
// its Context at that moment.
type producer struct {
	ended chan producerEnd
}

type producerEnd struct {
	produced int
	ctxErr   error
}

func newProducer() *producer { return &producer{ended: make(chan producerEnd, 8)} }

func (p *producer) method(c *signalhub.Context) iter.Seq[int] {
	return func(yield func(int) bool) {
		i := 0
		defer func() { p.ended <- producerEnd{produced: i, ctxErr: c.Context().Err()} }()
		for ; i < maxTicks; i++ {
			if !yield(i) {
				return
			}
		}
	}
}

// collect ranges over seq and returns its items and final error.
func collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var items []T
	for v, err := range seq {
		if err != nil {
			return items, err
		}
		items = append(items, v)
	}
	return items, nil
}

func streamMethods(p *producer) map[string]any {
	return map[string]any{
		"Counter": func(c *signalhub.Context, n int) iter.Seq[int] {
			return func(yield func(int) bool) {
				for i := range n {
					if !yield(i) {
						return
					}
				}
			}
		},
		"Points": func(c *signalhub.Context, n int) iter.Seq2[point, error] {
			return func(yield func(point, error) bool) {
				for i := range n {
					if !yield(point{X: i, Y: -i}, nil) {
						return
					}
				}
			}
		},
		"Empty": func(c *signalhub.Context) <-chan int { return nil },
		"FailAfter": func(c *signalhub.Context, n int) iter.Seq2[int, error] {
			return func(yield func(int, error) bool) {
				for i := range n {
					if !yield(i, nil) {
						return
					}
				}
				yield(0, signalhub.HubError{Message: "out of ticks"})
			}
		},
		"Words": func(c *signalhub.Context) iter.Seq[string] { return slices.Values([]string{"a", "b"}) },
		"Ticks": p.method,
		"Add":   func(c *signalhub.Context, a, b int) int { return a + b },
		// Streams to the server.
		"Sum": func(c *signalhub.Context, in <-chan int) int {
			sum := 0
			for v := range in {
				sum += v
			}
			return sum
		},
		"Join": func(c *signalhub.Context, sep string, words iter.Seq2[string, error], suffix string) (string, error) {
			var got []string
			for w, err := range words {
				if err != nil {
					return "", signalhub.HubError{Message: "upload failed: " + err.Error()}
				}
				got = append(got, w)
			}
			return fmt.Sprint(len(got), ":", got, sep, suffix), nil
		},
		"Double": func(c *signalhub.Context, in iter.Seq2[int, error]) iter.Seq2[int, error] {
			return func(yield func(int, error) bool) {
				for v, err := range in {
					if err != nil {
						yield(0, err)
						return
					}
					if !yield(2*v, nil) {
						return
					}
				}
			}
		},
		"Zip": func(c *signalhub.Context, a, b <-chan int) []int {
			// Takes one item of each in turn, so both streams must flow at once.
			var out []int
			for {
				x, ok1 := <-a
				y, ok2 := <-b
				if !ok1 || !ok2 {
					return out
				}
				out = append(out, x, y)
			}
		},
	}
}

func streamHub(t testing.TB, p *producer) *hubServer {
	return startHub(t, &signalhub.Options{Methods: streamMethods(p)})
}

func TestStreamItems(t *testing.T) {
	s := streamHub(t, newProducer())
	c := dial(t, s.Srv, s.URL, nil)
	ctx := waitCtx(t)

	items, err := collect(client.StreamAs[int](ctx, c, "Counter", 100))
	require.NoError(t, err)
	want := make([]int, 100)
	for i := range want {
		want[i] = i
	}
	assert.Equal(t, want, items, "every item, in order")

	pts, err := collect(client.StreamAs[point](ctx, c, "points", 3)) // case-insensitive, as Invoke
	require.NoError(t, err)
	assert.Equal(t, []point{{0, 0}, {1, -1}, {2, -2}}, pts)

	raw, err := collect(c.Stream(ctx, "Words"))
	require.NoError(t, err)
	require.Len(t, raw, 2)
	assert.JSONEq(t, `"a"`, string(raw[0]))
	assert.JSONEq(t, `"b"`, string(raw[1]))

	empty, err := collect(client.StreamAs[int](ctx, c, "Empty"))
	require.NoError(t, err)
	assert.Empty(t, empty)

	// Each loop over the sequence calls the method anew.
	seq := client.StreamAs[int](ctx, c, "Counter", 2)
	for range 2 {
		items, err := collect(seq)
		require.NoError(t, err)
		assert.Equal(t, []int{0, 1}, items)
	}
}

func TestStreamServerErrors(t *testing.T) {
	s := streamHub(t, newProducer())
	c := dial(t, s.Srv, s.URL, nil)
	ctx := waitCtx(t)

	items, err := collect(client.StreamAs[int](ctx, c, "FailAfter", 3))
	assert.Equal(t, []int{0, 1, 2}, items, "the items before the error are delivered")
	var ie *client.InvocationError
	require.ErrorAs(t, err, &ie)
	assert.Equal(t, "FailAfter", ie.Target)
	assert.Equal(t, "An error occurred on the server while streaming results. HubException: out of ticks", ie.Message)

	tests := []struct {
		target  string
		message string
	}{
		{"NoSuchMethod", "Failed to invoke 'NoSuchMethod' due to an error on the server. HubException: Method does not exist."},
		{"Add", "The client attempted to invoke the non-streaming 'Add' method with a streaming invocation."},
	}
	for _, tc := range tests {
		items, err := collect(c.Stream(ctx, tc.target, 1, 2))
		assert.Empty(t, items)
		require.ErrorAs(t, err, &ie, tc.target)
		assert.Equal(t, tc.message, ie.Message)
	}
	_, err = c.Invoke(ctx, "Counter", 1)
	require.ErrorAs(t, err, &ie)
	assert.Equal(t, "The client attempted to invoke the streaming 'Counter' method with a non-streaming invocation.", ie.Message)

	// The connection goes on.
	n, err := client.InvokeAs[int](ctx, c, "Add", 1, 2)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
}

func TestStreamBreakCancelsOnServer(t *testing.T) {
	p := newProducer()
	s := streamHub(t, p)
	c := dial(t, s.Srv, s.URL, nil)
	ctx := waitCtx(t)

	var got []int
	for v, err := range client.StreamAs[int](ctx, c, "Ticks") {
		require.NoError(t, err)
		got = append(got, v)
		if len(got) == 3 {
			break
		}
	}
	assert.Equal(t, []int{0, 1, 2}, got)
	end := recv(t, p.ended)
	assert.ErrorIs(t, end.ctxErr, context.Canceled, "the producer's Context ended")
	assert.Less(t, end.produced, maxTicks, "the producer stopped early")

	// The connection goes on, and another stream works.
	n, err := client.InvokeAs[int](ctx, c, "Add", 20, 22)
	require.NoError(t, err)
	assert.Equal(t, 42, n)
	items, err := collect(client.StreamAs[int](ctx, c, "Counter", 2))
	require.NoError(t, err)
	assert.Equal(t, []int{0, 1}, items)
}

func TestStreamContextCancelsOnServer(t *testing.T) {
	p := newProducer()
	s := streamHub(t, p)
	c := dial(t, s.Srv, s.URL, nil)

	ctx, cancel := context.WithCancel(waitCtx(t))
	defer cancel()
	var got []int
	var last error
	for v, err := range client.StreamAs[int](ctx, c, "Ticks") {
		if err != nil {
			last = err
			break
		}
		got = append(got, v)
		if len(got) == 2 {
			cancel()
		}
		require.Less(t, len(got), 2+32+1, "items kept coming after cancel")
	}
	assert.ErrorIs(t, last, context.Canceled)
	assert.Equal(t, []int{0, 1}, got, "no item after ctx ended")
	end := recv(t, p.ended)
	assert.ErrorIs(t, end.ctxErr, context.Canceled, "the producer's Context ended")

	// A canceled ctx fails at once, without calling the method.
	items, err := collect(client.StreamAs[int](ctx, c, "Ticks"))
	assert.Empty(t, items)
	assert.ErrorIs(t, err, context.Canceled)
	select {
	case e := <-p.ended:
		t.Fatalf("the method ran: %+v", e)
	default:
	}
}

func TestStreamDecodeErrorCancels(t *testing.T) {
	p := newProducer()
	s := streamHub(t, p)
	c := dial(t, s.Srv, s.URL, nil)
	ctx := waitCtx(t)

	items, err := collect(client.StreamAs[string](ctx, c, "Ticks"))
	assert.Empty(t, items)
	assert.ErrorContains(t, err, `client: stream "Ticks": decode item`)
	var je *json.UnmarshalTypeError
	assert.ErrorAs(t, err, &je)
	end := recv(t, p.ended)
	assert.ErrorIs(t, end.ctxErr, context.Canceled)
}

func TestStreamBadInput(t *testing.T) {
	s := streamHub(t, newProducer())
	ctx := waitCtx(t)

	notStarted, err := client.New(s.URL, clientOptions(t, s.Srv, nil))
	require.NoError(t, err)
	_, err = collect(notStarted.Stream(ctx, "Counter", 1))
	assert.ErrorIs(t, err, client.ErrNotConnected)
	require.NoError(t, notStarted.Close())
	_, err = collect(notStarted.Stream(ctx, "Counter", 1))
	assert.ErrorIs(t, err, client.ErrClosed)

	c := dial(t, s.Srv, s.URL, nil)
	_, err = collect(c.Stream(ctx, "", 1))
	assert.ErrorIs(t, err, client.ErrEmptyTarget)

	var nilSeq iter.Seq[int]
	var nilChan <-chan int
	bad := []struct {
		name string
		arg  any
		msg  string
	}{
		{"send-only channel", make(chan<- int), "encode argument 0: a send-only channel (chan<- int) cannot be streamed"},
		{"plain func", func() {}, "encode argument 0: func() is neither a JSON value nor a stream"},
		{"iter.Seq2 without error", func(func(int, string) bool) {}, "is neither a JSON value nor a stream"},
		{"nil iter.Seq", nilSeq, "encode argument 0: nil iter.Seq[int]"},
		{"nil channel", nilChan, "encode argument 0: nil <-chan int"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := collect(c.Stream(ctx, "Sum", tc.arg))
			assert.ErrorContains(t, err, tc.msg)
			_, err = c.Invoke(ctx, "Sum", tc.arg)
			assert.ErrorContains(t, err, tc.msg)
			assert.ErrorContains(t, c.Send(ctx, "Sum", tc.arg), tc.msg)
		})
	}

	// None of that reached the server, or hurt the connection.
	n, err := client.InvokeAs[int](ctx, c, "Add", 1, 1)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
}

func TestConcurrentStreams(t *testing.T) {
	s := streamHub(t, newProducer())
	c := dial(t, s.Srv, s.URL, nil)
	const streams, items = 8, 200
	var wg sync.WaitGroup
	for g := range streams {
		wg.Go(func() {
			ctx := waitCtx(t)
			n := items + g
			got, err := collect(client.StreamAs[int](ctx, c, "Counter", n))
			if !assert.NoError(t, err) {
				return
			}
			if assert.Len(t, got, n) {
				for i, v := range got {
					if v != i {
						assert.Failf(t, "out of order", "stream %d: item %d is %d", g, i, v)
						return
					}
				}
			}
			sum, err := client.InvokeAs[int](ctx, c, "Sum", slices.Values([]int{g, 1}))
			assert.NoError(t, err)
			assert.Equal(t, g+1, sum)
		})
	}
	wg.Wait()
}

func TestStreamStalls(t *testing.T) {
	fourQueued := make(chan struct{})
	ended := make(chan error, 1)
	s := startHub(t, &signalhub.Options{Methods: map[string]any{
		"Ticks": func(c *signalhub.Context) iter.Seq[int] {
			return func(yield func(int) bool) {
				defer func() { ended <- c.Context().Err() }()
				for i := range maxTicks {
					if !yield(i) {
						return
					}
					if i == 3 {
						close(fourQueued) // items 0 to 3 are ahead of anything sent later
					}
				}
			}
		},
		"Add": func(c *signalhub.Context, a, b int) int { return a + b },
	}})
	c := dial(t, s.Srv, s.URL, &client.Options{
		StreamBufferCapacity: 2,
		StreamStallTimeout:   200 * time.Millisecond,
	})
	ctx := waitCtx(t)

	// The loop body waits for its own connection: the reader is stuck on
	// the full buffer until the stall fails the stream.
	var got []int
	var last error
	for v, err := range client.StreamAs[int](ctx, c, "Ticks") {
		if err != nil {
			last = err
			break
		}
		got = append(got, v)
		if len(got) == 1 {
			recv(t, fourQueued) // item 3 will find the buffer full
			n, err := client.InvokeAs[int](ctx, c, "Add", 1, 2)
			require.NoError(t, err, "the stall freed the connection")
			assert.Equal(t, 3, n)
		}
		require.LessOrEqual(t, len(got), 1+2+1, "more items than the buffer holds")
	}
	assert.ErrorIs(t, last, client.ErrStreamStalled)
	assert.EqualError(t, last, `client: stream stalled: the loop took no item while its buffer was full (stream "Ticks", for 200ms)`)
	assert.Equal(t, []int{0, 1, 2}, got, "the buffered items come first, in order")
	assert.ErrorIs(t, recv(t, ended), context.Canceled, "the client canceled the stalled stream")

	n, err := client.InvokeAs[int](ctx, c, "Add", 2, 2)
	require.NoError(t, err)
	assert.Equal(t, 4, n)
}

func TestStreamEndsWhenConnectionDrops(t *testing.T) {
	hubA, handlerA := newHub(t, &signalhub.Options{Methods: map[string]any{
		"Wait": func(c *signalhub.Context) iter.Seq[int] {
			return func(yield func(int) bool) {
				if yield(1) {
					<-c.Context().Done()
				}
			}
		},
	}})
	hubB, handlerB := newHub(t, &signalhub.Options{Methods: streamMethods(newProducer())})
	t.Cleanup(func() {
		assert.NoError(t, hubA.Close())
		assert.NoError(t, hubB.Close())
	})
	sw := startSwitchServer(t, handlerA)
	ev := newEvents()
	c := dial(t, sw.Srv, sw.Srv.URL+"/hub", ev.options(client.Options{Reconnect: client.DelaysReconnect(0)}))
	ctx := waitCtx(t)

	var got []int
	var last error
	for v, err := range client.StreamAs[int](ctx, c, "Wait") {
		if err != nil {
			last = err
			break
		}
		got = append(got, v)
		require.Len(t, got, 1)
		sw.Set(handlerB)
		require.NoError(t, hubA.Close()) // drops the socket without a Close message
	}
	assert.Equal(t, []int{1}, got)
	assert.ErrorIs(t, last, client.ErrConnectionLost, "a stream does not survive a reconnect")

	recv(t, ev.reconnected)
	items, err := collect(client.StreamAs[int](ctx, c, "Counter", 3))
	require.NoError(t, err)
	assert.Equal(t, []int{0, 1, 2}, items, "streams work on the new connection")
}

func TestStreamEndsOnClose(t *testing.T) {
	s := streamHub(t, newProducer())
	c, err := client.Dial(waitCtx(t), s.URL, clientOptions(t, s.Srv, nil))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	ctx := waitCtx(t)
	var last error
	for _, err := range client.StreamAs[int](ctx, c, "Ticks") {
		if err != nil {
			last = err
			break
		}
		// Close waits for the client's goroutines, never for this loop.
		require.NoError(t, c.Close())
	}
	assert.ErrorIs(t, last, client.ErrClosed)
}

func TestUploadChannel(t *testing.T) {
	s := streamHub(t, newProducer())
	c := dial(t, s.Srv, s.URL, nil)
	ctx := waitCtx(t)

	in := make(chan int)
	go func() {
		defer close(in)
		for i := 1; i <= 100; i++ {
			select {
			case in <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var recvOnly <-chan int = in
	sum, err := client.InvokeAs[int](ctx, c, "Sum", recvOnly)
	require.NoError(t, err)
	assert.Equal(t, 5050, sum)

	empty := make(chan int)
	close(empty)
	sum, err = client.InvokeAs[int](ctx, c, "Sum", empty)
	require.NoError(t, err)
	assert.Zero(t, sum)
}

func TestUploadIterators(t *testing.T) {
	s := streamHub(t, newProducer())
	c := dial(t, s.Srv, s.URL, nil)
	ctx := waitCtx(t)

	sum, err := client.InvokeAs[int](ctx, c, "Sum", slices.Values([]int{1, 2, 3}))
	require.NoError(t, err)
	assert.Equal(t, 6, sum)

	// Plain arguments around the stream keep their places.
	words := func(yield func(string, error) bool) {
		_ = yield("x", nil) && yield("y", nil)
	}
	joined, err := client.InvokeAs[string](ctx, c, "Join", "-", iter.Seq2[string, error](words), "!")
	require.NoError(t, err)
	assert.Equal(t, "2:[x y]-!", joined)

	// A stream both ways.
	doubled, err := collect(client.StreamAs[int](ctx, c, "Double", slices.Values([]int{1, 2, 3})))
	require.NoError(t, err)
	assert.Equal(t, []int{2, 4, 6}, doubled)

	// Two streams at once, read in turn by the method.
	zipped, err := client.InvokeAs[[]int](ctx, c, "Zip", slices.Values([]int{1, 3, 5}), slices.Values([]int{2, 4, 6}))
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2, 3, 4, 5, 6}, zipped)
}

func TestUploadError(t *testing.T) {
	s := streamHub(t, newProducer())
	c := dial(t, s.Srv, s.URL, nil)
	ctx := waitCtx(t)

	failing := func(yield func(string, error) bool) {
		if yield("x", nil) {
			yield("", errors.New("disk full"))
		}
	}
	_, err := c.Invoke(ctx, "Join", "-", iter.Seq2[string, error](failing), "!")
	var ie *client.InvocationError
	require.ErrorAs(t, err, &ie, "the hub method saw the error")
	assert.Equal(t, "An unexpected error occurred invoking 'Join' on the server. HubException: upload failed: signalhub: client error: disk full", ie.Message)

	// An error without text still ends the stream with an error.
	_, err = c.Invoke(ctx, "Join", "-", iter.Seq2[string, error](func(yield func(string, error) bool) {
		yield("", errors.New(""))
	}), "!")
	require.ErrorAs(t, err, &ie)
	assert.Equal(t, "An unexpected error occurred invoking 'Join' on the server. HubException: upload failed: signalhub: client error: client: the stream's iterator yielded an error", ie.Message)

	// An item that cannot be encoded completes the stream with an error,
	// and Invoke reports it although the method succeeded.
	unencodable := func(yield func(any) bool) { _ = yield(1) && yield(func() {}) }
	_, err = c.Invoke(ctx, "Sum", iter.Seq[any](unencodable))
	assert.EqualError(t, err, `client: invoke "Sum": stream argument 0: encode item: json: unsupported type: func()`)

	// A panicking iterator too.
	_, err = c.Invoke(ctx, "Sum", iter.Seq[int](func(yield func(int) bool) { panic("boom") }))
	assert.EqualError(t, err, `client: invoke "Sum": stream argument 0 panicked: boom`)

	n, err := client.InvokeAs[int](ctx, c, "Add", 1, 1)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
}

func TestUploadCancel(t *testing.T) {
	type seen struct {
		items []int
		err   error
	}
	for _, tc := range []struct {
		name      string
		send, seq bool
	}{
		{"invoke with a channel", false, false},
		{"send with a channel", true, false},
		{"invoke with an iterator that watches ctx", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			progress := make(chan int, 2)
			result := make(chan seen, 1)
			s := startHub(t, &signalhub.Options{Methods: map[string]any{
				"Watch": func(c *signalhub.Context, in iter.Seq2[int, error]) {
					var got seen
					for v, err := range in {
						if err != nil {
							got.err = err
							break
						}
						got.items = append(got.items, v)
						progress <- v
					}
					result <- got
				},
			}})
			c := dial(t, s.Srv, s.URL, nil)
			ctx, cancel := context.WithCancel(waitCtx(t))
			defer cancel()
			in := make(chan int) // never closed: only ctx ends the stream
			var arg any = in
			if tc.seq {
				arg = iter.Seq[int](func(yield func(int) bool) {
					for range maxTicks {
						select {
						case v := <-in:
							if !yield(v) {
								return
							}
						case <-ctx.Done():
							return // looks like the end, but ctx ended
						}
					}
				})
			}
			errc := make(chan error, 1)
			go func() {
				if tc.send {
					errc <- c.Send(ctx, "Watch", arg)
				} else {
					_, err := c.Invoke(ctx, "Watch", arg)
					errc <- err
				}
			}()
			for i := range 2 {
				in <- i
				assert.Equal(t, i, recv(t, progress))
			}
			cancel()
			assert.ErrorIs(t, recv(t, errc), context.Canceled)
			got := recv(t, result)
			assert.Equal(t, []int{0, 1}, got.items)
			var ce *signalhub.ClientError
			require.ErrorAs(t, got.err, &ce, "the stream ended with an error")
			assert.Equal(t, "client: stream canceled: context canceled", ce.Message)
		})
	}
}

func TestSendWithUpload(t *testing.T) {
	got := make(chan []string, 1)
	s := startHub(t, &signalhub.Options{Methods: map[string]any{
		"Record": func(c *signalhub.Context, prefix string, in <-chan string) {
			var all []string
			for v := range in {
				all = append(all, prefix+v)
			}
			got <- all
		},
	}})
	c := dial(t, s.Srv, s.URL, nil)
	ctx := waitCtx(t)
	words := make([]string, 50)
	for i := range words {
		words[i] = strconv.Itoa(i)
	}
	require.NoError(t, c.Send(ctx, "Record", ">", slices.Values(words)))
	all := recv(t, got)
	require.Len(t, all, 50)
	assert.Equal(t, ">0", all[0])
	assert.Equal(t, ">49", all[49])
}

func TestUploadStopsWhenInvocationEnds(t *testing.T) {
	s := startHub(t, &signalhub.Options{Methods: map[string]any{
		// Takes one item and returns: the rest of the stream is not needed.
		"First": func(c *signalhub.Context, in <-chan int) int { return <-in },
	}})
	c := dial(t, s.Srv, s.URL, nil)
	ctx := waitCtx(t)

	yielded := 0
	endless := func(yield func(int) bool) {
		for i := range maxTicks {
			yielded++
			if !yield(i + 7) {
				return
			}
		}
	}
	n, err := client.InvokeAs[int](ctx, c, "First", iter.Seq[int](endless))
	require.NoError(t, err)
	assert.Equal(t, 7, n)
	assert.Less(t, yielded, maxTicks, "the iterator was stopped once the method returned")

	in := make(chan int, 1)
	in <- 9 // never closed
	n, err = client.InvokeAs[int](ctx, c, "First", in)
	require.NoError(t, err)
	assert.Equal(t, 9, n, "Invoke returned although the channel stays open")
}

func TestStreamBreakEndsUploads(t *testing.T) {
	ended := make(chan []int, 1)
	s := startHub(t, &signalhub.Options{Methods: map[string]any{
		// Echoes its upload, and reads it to the end whatever its Context
		// says.
		"Echo": func(c *signalhub.Context, in <-chan int) <-chan int {
			out := make(chan int)
			go func() {
				defer close(out)
				var seen []int
				defer func() { ended <- seen }()
				for v := range in {
					seen = append(seen, v)
					select {
					case out <- v:
					case <-c.Context().Done():
					}
				}
			}()
			return out
		},
	}})
	c := dial(t, s.Srv, s.URL, nil)
	ctx := waitCtx(t)

	in := make(chan int, 1) // never closed
	in <- 1
	for v, err := range client.StreamAs[int](ctx, c, "Echo", in) {
		require.NoError(t, err)
		assert.Equal(t, 1, v)
		break
	}
	assert.Equal(t, []int{1}, recv(t, ended), "the hub method's upload ended with the loop")
}

func TestUploadEndsWhenConnectionDrops(t *testing.T) {
	reading := make(chan struct{}, 1)
	s := startHub(t, &signalhub.Options{Authenticate: userAuth, Methods: map[string]any{
		"Sum": func(c *signalhub.Context, in <-chan int) int {
			sum := 0
			for v := range in {
				sum += v
				reading <- struct{}{}
			}
			return sum
		},
	}})
	for _, send := range []bool{false, true} {
		t.Run(fmt.Sprintf("send=%v", send), func(t *testing.T) {
			user := fmt.Sprint("user-", send)
			c := dial(t, s.Srv, s.URL, &client.Options{Header: userHeader(user)})
			in := make(chan int) // never closed
			errc := make(chan error, 1)
			go func() {
				if send {
					errc <- c.Send(waitCtx(t), "Sum", in)
				} else {
					_, err := c.Invoke(waitCtx(t), "Sum", in)
					errc <- err
				}
			}()
			in <- 1
			recv(t, reading)
			// The stream waits for its next item when the server closes
			// the connection.
			require.NoError(t, s.Hub.DisconnectUser(waitCtx(t), user, "bye"))
			err := recv(t, errc)
			var ce *client.CloseError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "bye", ce.Message)
		})
	}
}
