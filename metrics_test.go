package signalhub_test

import (
	"errors"
	"iter"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/backplane"
	"github.com/signalhub/signalhub/hubtest"
	"github.com/signalhub/signalhub/protocol"
)

// metricEvent is one call of a Metrics func, or of OnDisconnected, which
// the tests record to check the order.
type metricEvent struct {
	kind     string // "opened", "closed", "sent", "received", "invocation", "published", "OnDisconnected"
	conn     signalhub.ConnectionInfo
	d        time.Duration
	err      error
	method   string
	n, bytes int
	bpKind   backplane.Kind
}

// metricRecorder records every call of the Metrics it returns.
type metricRecorder struct {
	mu      sync.Mutex // guards events and changed
	events  []metricEvent
	changed chan struct{} // closed and replaced when an event is added
}

func newMetricRecorder() *metricRecorder {
	return &metricRecorder{changed: make(chan struct{})}
}

func (r *metricRecorder) add(e metricEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	close(r.changed)
	r.changed = make(chan struct{})
}

// waitFor waits until there are n events of kind (for any connection)
// and returns them; it fails the test after waitTimeout.
func (r *metricRecorder) waitFor(t testing.TB, kind string, n int) []metricEvent {
	t.Helper()
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	for {
		r.mu.Lock()
		changed := r.changed
		r.mu.Unlock()
		if got := r.of(kind, ""); len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-timeout.C:
			require.FailNow(t, "too few events", "%d of %d %s events", len(r.of(kind, "")), n, kind)
		}
	}
}

func (r *metricRecorder) metrics() *signalhub.Metrics {
	return &signalhub.Metrics{
		ConnectionOpened: func(c signalhub.ConnectionInfo) { r.add(metricEvent{kind: "opened", conn: c}) },
		ConnectionClosed: func(c signalhub.ConnectionInfo, d time.Duration, cause error) {
			r.add(metricEvent{kind: "closed", conn: c, d: d, err: cause})
		},
		MessagesSent: func(c signalhub.ConnectionInfo, n, bytes int) {
			r.add(metricEvent{kind: "sent", conn: c, n: n, bytes: bytes})
		},
		MessageReceived: func(c signalhub.ConnectionInfo, bytes int) {
			r.add(metricEvent{kind: "received", conn: c, n: 1, bytes: bytes})
		},
		InvocationDone: func(c signalhub.ConnectionInfo, method string, d time.Duration, err error) {
			r.add(metricEvent{kind: "invocation", conn: c, method: method, d: d, err: err})
		},
		BackplanePublished: func(kind backplane.Kind, d time.Duration, err error) {
			r.add(metricEvent{kind: "published", bpKind: kind, d: d, err: err})
		},
	}
}

// of returns the events of kind for connection id ("" for any), in order.
func (r *metricRecorder) of(kind, id string) []metricEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []metricEvent
	for _, e := range r.events {
		if e.kind == kind && (id == "" || e.conn.ID == id) {
			out = append(out, e)
		}
	}
	return out
}

// lifecycle returns the kinds of the opened, closed and OnDisconnected
// events of connection id, in order.
func (r *metricRecorder) lifecycle(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.conn.ID == id && (e.kind == "opened" || e.kind == "closed" || e.kind == "OnDisconnected") {
			out = append(out, e.kind)
		}
	}
	return out
}

// total adds up n and bytes of the events of kind for connection id.
func (r *metricRecorder) total(kind, id string) (n, bytes int) {
	for _, e := range r.of(kind, id) {
		n += e.n
		bytes += e.bytes
	}
	return n, bytes
}

// TestMetricsJSONConnection follows one JSON connection through every
// Metrics func: its records in and out, counted and sized exactly as they
// crossed the socket, its invocations under their registered names, and
// its close after the writer's last batch and before OnDisconnected.
func TestMetricsJSONConnection(t *testing.T) {
	t.Parallel()
	rec := newMetricRecorder()
	errBoom := errors.New("boom")
	f := newFixture(t, &signalhub.Options{
		Metrics:           rec.metrics(),
		KeepAliveInterval: time.Hour, // no Pings among the counted records
		Methods: map[string]any{
			"Add":  func(c *signalhub.Context, a, b int) int { return a + b },
			"Fail": func(c *signalhub.Context) error { return errBoom },
			"Echo": func(c *signalhub.Context, s string) error {
				return c.Caller().Send(c.Context(), "Echoed", s)
			},
		},
		OnDisconnected: func(c *signalhub.Context, err error) {
			rec.add(metricEvent{kind: "OnDisconnected", conn: signalhub.ConnectionInfo{ID: c.ConnectionID()}})
		},
	})
	c := f.Dial(t, dialOptions{})
	ctx := waitCtx(t)

	opened := rec.of("opened", c.ID)
	require.Len(t, opened, 1)
	assert.Equal(t, signalhub.ConnectionInfo{ID: c.ID, Transport: protocol.TransportWebSockets, Protocol: protocol.ProtocolJSON}, opened[0].conn)

	// What the client sends, and the records it gets back, each with its
	// separator.
	var sentBytes, gotBytes int
	send := func(id, target string, args ...any) {
		r, err := invocationRecord(id, target, args...)
		require.NoError(t, err)
		require.NoError(t, c.SendRaw(ctx, r))
		sentBytes += len(r)
	}
	next := func() protocol.Message {
		raw, err := c.NextRecord(ctx)
		require.NoError(t, err)
		gotBytes += len(raw) + 1
		m, err := protocol.DecodeMessage(raw)
		require.NoError(t, err)
		return m
	}
	send("1", "add", 1, 2) // matched case-insensitively, reported as registered
	assert.JSONEq(t, "3", string(next().Result))
	send("2", "Fail")
	assert.NotEmpty(t, next().Error)
	send("", "Echo", "hi")
	assert.Equal(t, "Echoed", next().Target)
	send("3", "Missing") // not a registered method: no invocation reported
	assert.NotEmpty(t, next().Error)
	closeRec := `{"type":7}` + rs
	require.NoError(t, c.SendRaw(ctx, []byte(closeRec)))
	sentBytes += len(closeRec)
	require.NoError(t, f.WaitDisconnected(t, c.ID))

	n, bytes := rec.total("received", c.ID)
	assert.Equal(t, 5, n, "records received: four invocations and the Close")
	assert.Equal(t, sentBytes, bytes, "bytes received")
	n, bytes = rec.total("sent", c.ID)
	assert.Equal(t, 4, n, "records sent: three Completions and Echoed")
	assert.Equal(t, gotBytes, bytes, "bytes sent")

	inv := rec.of("invocation", c.ID)
	require.Len(t, inv, 3)
	assert.Equal(t, []string{"Add", "Fail", "Echo"}, []string{inv[0].method, inv[1].method, inv[2].method})
	assert.NoError(t, inv[0].err)
	assert.ErrorIs(t, inv[1].err, errBoom)
	assert.NoError(t, inv[2].err)
	for _, e := range inv {
		assert.Positive(t, e.d, e.method)
	}

	closed := rec.of("closed", c.ID)
	require.Len(t, closed, 1)
	assert.Equal(t, opened[0].conn, closed[0].conn)
	assert.NoError(t, closed[0].err, "a close by the client")
	assert.Positive(t, closed[0].d)
	assert.Equal(t, []string{"opened", "closed", "OnDisconnected"}, rec.lifecycle(c.ID))
	assert.Empty(t, rec.of("published", ""), "no backplane, no publishes")
}

// TestMetricsMessagePackConnection: a MessagePack connection is reported
// as such, and its records are sized with their length prefixes.
func TestMetricsMessagePackConnection(t *testing.T) {
	t.Parallel()
	rec := newMetricRecorder()
	f := newFixture(t, &signalhub.Options{
		Metrics:           rec.metrics(),
		KeepAliveInterval: time.Hour,
		Methods:           map[string]any{"Echo": func(c *signalhub.Context, s string) string { return s }},
	})
	c := f.DialMsgPack(t, dialOptions{})
	// A 200-byte argument makes records whose prefix takes two bytes.
	long := string(make([]byte, 200))
	call := mpInvocation(t, "1", "Echo", long)
	c.SendBinary(t, call)
	done := c.Completion(t, "1")
	c.Close(t)
	require.NoError(t, f.WaitDisconnected(t, c.ID))

	closed := rec.of("closed", c.ID)
	require.Len(t, closed, 1)
	assert.Equal(t, protocol.ProtocolMessagePack, closed[0].conn.Protocol)
	n, bytes := rec.total("received", c.ID)
	assert.Equal(t, 2, n, "the invocation and the Close")
	assert.Equal(t, len(call)+len(protocol.AppendMsgPackClose(nil, "", false)), bytes)
	n, bytes = rec.total("sent", c.ID)
	assert.Equal(t, 1, n)
	assert.Equal(t, len(done.wire), bytes)
	require.Greater(t, len(done.wire)-len(done.body), 1, "the test needs a prefix of more than one byte")
}

// TestMetricsCloseCause: ConnectionClosed gets the cause OnDisconnected
// gets, here a client timeout.
func TestMetricsCloseCause(t *testing.T) {
	t.Parallel()
	rec := newMetricRecorder()
	f := newFixture(t, &signalhub.Options{Metrics: rec.metrics(), ClientTimeout: 100 * time.Millisecond})
	c := f.Dial(t, dialOptions{}) // sends nothing after the handshake
	assert.ErrorIs(t, f.WaitDisconnected(t, c.ID), signalhub.ErrClientTimeout)
	closed := rec.of("closed", c.ID)
	require.Len(t, closed, 1)
	assert.ErrorIs(t, closed[0].err, signalhub.ErrClientTimeout)
	assert.GreaterOrEqual(t, closed[0].d, 100*time.Millisecond)
	n, _ := rec.total("sent", c.ID)
	assert.Equal(t, 1, n, "the Close message")
}

// TestMetricsStreamingInvocations: a streaming invocation is reported when
// its stream ends, with the error that ended it, and as a success when the
// client cancelled it.
func TestMetricsStreamingInvocations(t *testing.T) {
	t.Parallel()
	rec := newMetricRecorder()
	errStream := errors.New("stream broke")
	started := make(chan struct{}, 1)
	srv := hubtest.NewServer(t, hubtest.NewHub(t, &signalhub.Options{
		Metrics: rec.metrics(),
		Methods: map[string]any{
			"Count": func(c *signalhub.Context, n int) iter.Seq[int] {
				return func(yield func(int) bool) {
					for i := range n {
						if !yield(i) {
							return
						}
					}
				}
			},
			"Broken": func(c *signalhub.Context) iter.Seq2[int, error] {
				return func(yield func(int, error) bool) {
					if yield(1, nil) {
						yield(0, errStream)
					}
				}
			},
			"Forever": func(c *signalhub.Context) <-chan int {
				ch := make(chan int)
				go func() {
					defer close(ch)
					started <- struct{}{}
					<-c.Context().Done()
				}()
				return ch
			},
			"Sum": func(c *signalhub.Context, xs <-chan int) int {
				s := 0
				for x := range xs {
					s += x
				}
				return s
			},
		},
	}))
	cl := srv.Connect("alice")

	assert.Len(t, cl.MustStream("Count", 3), 3)
	_, err := cl.Stream("Broken")
	require.Error(t, err)
	assert.JSONEq(t, "6", string(cl.MustInvoke("Sum", slices.Values([]int{1, 2, 3}))))
	s := cl.OpenStream("Forever")
	<-started
	s.Cancel()
	// A stream's end reaches the client before the invocation is
	// reported, and the cancelled one's end does not reach it at all.
	inv := rec.waitFor(t, "invocation", 4)
	require.Len(t, inv, 4)
	byMethod := map[string]error{}
	for _, e := range inv {
		byMethod[e.method] = e.err
	}
	assert.NoError(t, byMethod["Count"])
	assert.ErrorIs(t, byMethod["Broken"], errStream)
	assert.NoError(t, byMethod["Sum"])
	assert.Contains(t, byMethod, "Forever")
	assert.NoError(t, byMethod["Forever"], "cancelled by the client")
}

// TestMetricsBackplanePublishes: every publish is reported with its kind,
// and a publish the backplane refused with its error.
func TestMetricsBackplanePublishes(t *testing.T) {
	t.Parallel()
	rec := newMetricRecorder()
	nodes, bus := hubtest.NewCluster(t, 2, &signalhub.Options{Metrics: rec.metrics()})
	ctx := waitCtx(t)
	invocations := func() []metricEvent {
		var out []metricEvent
		for _, e := range rec.of("published", "") {
			if e.bpKind == backplane.Invocation {
				out = append(out, e)
			}
		}
		return out
	}
	assert.NotEmpty(t, rec.of("published", ""), "the heartbeats that joined the cluster")
	assert.Empty(t, invocations())

	require.NoError(t, nodes[0].Hub.SendToGroup(ctx, "g", "Hello"))
	got := invocations()
	require.Len(t, got, 1)
	assert.NoError(t, got[0].err)

	bus.SetAvailable(false)
	err := nodes[0].Hub.SendToGroup(ctx, "g", "Hello")
	require.ErrorIs(t, err, signalhub.ErrBackplaneUnavailable)
	bus.SetAvailable(true)
	got = invocations()
	require.Len(t, got, 2)
	assert.ErrorIs(t, got[1].err, backplane.ErrUnavailable)
}

// TestMetricsOptionsCopied: New copies Options.Metrics, so that changing
// the caller's value afterwards changes nothing.
func TestMetricsOptionsCopied(t *testing.T) {
	t.Parallel()
	rec := newMetricRecorder()
	m := rec.metrics()
	f := newFixture(t, &signalhub.Options{Metrics: m})
	m.ConnectionOpened = func(signalhub.ConnectionInfo) { t.Error("the caller's changed Metrics was called") }
	c := f.Dial(t, dialOptions{})
	assert.Len(t, rec.of("opened", c.ID), 1)
}

// TestMetricsHTTPTransports: connections on Server-Sent Events and Long
// Polling are reported with their transport, and their messages counted
// as on WebSockets.
func TestMetricsHTTPTransports(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		sse       bool
		transport string
	}{
		{"ServerSentEvents", true, protocol.TransportServerSentEvents},
		{"LongPolling", false, protocol.TransportLongPolling},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := newMetricRecorder()
			f := newFixture(t, &signalhub.Options{
				Metrics:           rec.metrics(),
				KeepAliveInterval: time.Hour,
				Methods:           map[string]any{"Add": func(c *signalhub.Context, a, b int) int { return a + b }},
			})
			c := f.DialHTTP(t, httpDialOptions{SSE: tc.sse})
			id := c.ID
			c.ExpectResult(t, "3", "Add", 1, 2)
			c.Close()
			require.NoError(t, f.WaitDisconnected(t, id))

			closed := rec.of("closed", id)
			require.Len(t, closed, 1)
			assert.Equal(t, signalhub.ConnectionInfo{ID: id, Transport: tc.transport, Protocol: protocol.ProtocolJSON}, closed[0].conn)
			assert.NoError(t, closed[0].err)
			n, _ := rec.total("received", id)
			assert.Equal(t, 2, n, "the invocation and the Close")
			n, _ = rec.total("sent", id)
			assert.Equal(t, 1, n, "the Completion")
			inv := rec.of("invocation", id)
			require.Len(t, inv, 1)
			assert.Equal(t, tc.transport, inv[0].conn.Transport)
		})
	}
}

// TestMetricsStatefulResume: a stateful-reconnect connection whose socket
// drops and is resumed stays one connection: opened once, closed once at
// its real end, its invocations reported once each.
func TestMetricsStatefulResume(t *testing.T) {
	t.Parallel()
	var records atomic.Int64
	rec := newMetricRecorder()
	f := statefulFixture(t, signalhub.Options{Metrics: rec.metrics()}, &records)
	ctx := waitCtx(t)
	c := statefulDial(t, f, "ann")
	c.ExpectResult(t, "1", "Record", 1)
	c.Drop()

	r := resumeWS(t, f, c.Token, "ann")
	require.NoError(t, r.SendRecords(ctx,
		`{"type":9,"sequenceId":1}`,
		`{"type":1,"invocationId":"1","target":"Record","arguments":[1]}`, // a repeat: dropped
		`{"type":1,"invocationId":"2","target":"Record","arguments":[2]}`,
	))
	res, errMsg, err := r.Completion(ctx, "2")
	require.NoError(t, err)
	require.Empty(t, errMsg)
	assert.Equal(t, "2", string(res))
	assert.Empty(t, rec.of("closed", c.ID), "resumed, not closed")
	r.Close()
	require.NoError(t, f.WaitDisconnected(t, c.ID))

	assert.Len(t, rec.of("opened", c.ID), 1)
	closed := rec.of("closed", c.ID)
	require.Len(t, closed, 1)
	assert.NoError(t, closed[0].err)
	assert.Equal(t, protocol.TransportWebSockets, closed[0].conn.Transport)
	assert.Len(t, rec.of("invocation", c.ID), 2, "Record(1) and Record(2); the repeat did not run")
	assert.EqualValues(t, 2, records.Load())
}
