package otelhub_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/client"
	"github.com/signalhub/signalhub/hubtest"
	"github.com/signalhub/signalhub/otelhub"
	"github.com/signalhub/signalhub/protocol"
)

var (
	webSockets = otelhub.AttrTransport.String("web_sockets")
	jsonProto  = otelhub.AttrProtocol.String("json")
)

// quiet connects a test client that sends no Pings during the test, so
// that every message is one the test sent.
func quiet(srv *hubtest.Server, user string) *hubtest.Client {
	return srv.ConnectWith(hubtest.ConnectOptions{User: user, Options: client.Options{KeepAliveInterval: time.Hour}})
}

// TestConnectionsAndMessages: active connections go up and down by
// transport and protocol, each closed connection's duration is recorded
// with its status, and the message counters are exactly what the hub
// reported.
func TestConnectionsAndMessages(t *testing.T) {
	t.Parallel()
	m, reader := newMetrics(t)
	tot := newTotals()
	dis := newDisconnects()
	srv := hubtest.NewServer(t, hubtest.NewHub(t, &signalhub.Options{
		Metrics:           tee(m.Hooks(), tot),
		KeepAliveInterval: time.Hour, // no Pings from the hub either
		OnDisconnected:    dis.hook,
		Methods: map[string]any{
			"Add":  func(c *signalhub.Context, a, b int) int { return a + b },
			"Echo": func(c *signalhub.Context, s string) error { return c.Caller().Send(c.Context(), "Echoed", s) },
		},
	}))
	start := time.Now()
	alice, bob := quiet(srv, "alice"), quiet(srv, "bob")
	aliceID, bobID := alice.ID(), bob.ID() // a closed client has none
	// Each client sends a Ping as it connects, before anything else; an
	// invocation shows that the hub has read bob's.
	bob.MustInvoke("Add", 0, 0)

	s := collect(t, reader)
	active, ok := s.sum(t, otelhub.MetricActiveConnections, webSockets, jsonProto)
	require.True(t, ok, "series: %s", joined(s.points(otelhub.MetricActiveConnections)))
	assert.EqualValues(t, 2, active)
	_, ok = s.hist(t, otelhub.MetricConnectionDuration, otelhub.AttrConnectionStatus.String("normal_closure"), webSockets, jsonProto)
	assert.False(t, ok, "no connection has ended")

	assert.JSONEq(t, "3", string(alice.MustInvoke("Add", 1, 2)))
	alice.Send("Echo", "hi")
	alice.Expect("Echoed", "hi")
	alice.Close()
	require.NoError(t, dis.wait(t, aliceID))

	s = collect(t, reader)
	active, _ = s.sum(t, otelhub.MetricActiveConnections, webSockets, jsonProto)
	assert.EqualValues(t, 1, active, "bob is still connected")
	dur, ok := s.hist(t, otelhub.MetricConnectionDuration, otelhub.AttrConnectionStatus.String("normal_closure"), webSockets, jsonProto)
	require.True(t, ok, "series: %s", joined(s.points(otelhub.MetricConnectionDuration)))
	assert.EqualValues(t, 1, dur.Count)
	assert.Positive(t, dur.Sum)
	assert.Less(t, dur.Sum, time.Since(start).Seconds())

	a, all := tot.get(aliceID), tot.get("")
	assert.EqualValues(t, 2, a.sent, "to alice: the Completion of Add and Echoed")
	assert.EqualValues(t, 4, a.received, "from alice: her first Ping, Add, Echo and her Close message")
	assert.EqualValues(t, 3, all.sent, "and to bob, the Completion of his Add")
	assert.EqualValues(t, 6, all.received, "and from bob, his Ping and Add")
	for _, c := range []struct {
		name string
		want int64
	}{
		{otelhub.MetricSentMessages, all.sent},
		{otelhub.MetricSentBytes, all.sentBytes},
		{otelhub.MetricReceivedMessages, all.received},
		{otelhub.MetricReceivedBytes, all.receivedBytes},
	} {
		v, ok := s.sum(t, c.name, webSockets, jsonProto)
		assert.True(t, ok, c.name)
		assert.Equal(t, c.want, v, c.name)
	}
	assert.Greater(t, all.sentBytes, all.sent*int64(len(`{"type":3}`)))

	bob.Close()
	require.NoError(t, dis.wait(t, bobID))
	s = collect(t, reader)
	active, _ = s.sum(t, otelhub.MetricActiveConnections, webSockets, jsonProto)
	assert.Zero(t, active)
	dur, _ = s.hist(t, otelhub.MetricConnectionDuration, otelhub.AttrConnectionStatus.String("normal_closure"), webSockets, jsonProto)
	assert.EqualValues(t, 2, dur.Count)
	assert.Empty(t, s.points(otelhub.MetricSlowConsumerCloses))
}

// TestCloseStatuses: a shutdown and a client timeout are told apart in
// the duration's status.
func TestCloseStatuses(t *testing.T) {
	t.Parallel()
	m, reader := newMetrics(t)
	dis := newDisconnects()
	hub := hubtest.NewHub(t, &signalhub.Options{
		Metrics: m.Hooks(), OnDisconnected: dis.hook,
		ClientTimeout: 200 * time.Millisecond, KeepAliveInterval: 50 * time.Millisecond,
	})
	srv := hubtest.NewServer(t, hub)
	silent := quiet(srv, "silent").ID() // sends no Ping within the client timeout
	assert.ErrorIs(t, dis.wait(t, silent), signalhub.ErrClientTimeout)
	other := srv.Connect("other").ID()
	require.NoError(t, hub.Shutdown(context.Background()))
	assert.ErrorIs(t, dis.wait(t, other), signalhub.ErrHubClosed)

	s := collect(t, reader)
	for _, status := range []string{"timeout", "app_shutdown"} {
		dp, ok := s.hist(t, otelhub.MetricConnectionDuration, otelhub.AttrConnectionStatus.String(status), webSockets, jsonProto)
		if assert.True(t, ok, "%s; series: %s", status, joined(s.points(otelhub.MetricConnectionDuration))) {
			assert.EqualValues(t, 1, dp.Count, status)
		}
	}
	timedOut, _ := s.hist(t, otelhub.MetricConnectionDuration, otelhub.AttrConnectionStatus.String("timeout"), webSockets, jsonProto)
	assert.GreaterOrEqual(t, timedOut.Sum, 0.2, "it lasted the client timeout at least")
	active, _ := s.sum(t, otelhub.MetricActiveConnections, webSockets, jsonProto)
	assert.Zero(t, active)
}

// TestSlowConsumerCounted: a connection whose queue overflows is counted
// as a slow-consumer close, and its duration gets that status.
func TestSlowConsumerCounted(t *testing.T) {
	t.Parallel()
	m, reader := newMetrics(t)
	dis := newDisconnects()
	hub := hubtest.NewHub(t, &signalhub.Options{
		Metrics: m.Hooks(), OnDisconnected: dis.hook,
		SendQueueLength: 1, // a second message before the writer takes the first overflows
	})
	srv := hubtest.NewServer(t, hub)
	slow, fine := srv.Connect("slow").ID(), srv.Connect("fine")
	gone := dis.ch(slow)
	ctx := context.Background()
	payload := strings.Repeat("x", 4096)
	var cause error
flood:
	for range 100_000 {
		select {
		case cause = <-gone:
			break flood
		default:
		}
		require.NoError(t, hub.SendToConnection(ctx, slow, "Flood", payload))
	}
	if cause == nil {
		cause = dis.wait(t, slow)
	}
	require.ErrorIs(t, cause, signalhub.ErrSlowConsumer)

	s := collect(t, reader)
	closes, ok := s.sum(t, otelhub.MetricSlowConsumerCloses, webSockets, jsonProto)
	require.True(t, ok, "series: %s", joined(s.points(otelhub.MetricSlowConsumerCloses)))
	assert.EqualValues(t, 1, closes)
	dp, ok := s.hist(t, otelhub.MetricConnectionDuration, otelhub.AttrConnectionStatus.String("slow_consumer"), webSockets, jsonProto)
	require.True(t, ok, "series: %s", joined(s.points(otelhub.MetricConnectionDuration)))
	assert.EqualValues(t, 1, dp.Count)
	active, _ := s.sum(t, otelhub.MetricActiveConnections, webSockets, jsonProto)
	assert.EqualValues(t, 1, active, "the other connection stays")
	fine.Close()
}

// TestInvocations: every invocation of a registered method is recorded
// under its registered name with its outcome, and failures are counted
// by error type; invocations of unknown methods make no series.
func TestInvocations(t *testing.T) {
	t.Parallel()
	m, reader := newMetrics(t)
	srv := hubtest.NewServer(t, hubtest.NewHub(t, &signalhub.Options{
		Metrics: m.Hooks(),
		Methods: map[string]any{
			"Add":    func(c *signalhub.Context, a, b int) int { return a + b },
			"Refuse": func(c *signalhub.Context) error { return signalhub.HubError{Message: "not allowed"} },
			"Fail":   func(c *signalhub.Context) error { return errors.New("database down") },
			"Panic":  func(c *signalhub.Context) { panic("bug") },
			"Wait": func(c *signalhub.Context) error {
				ctx, cancel := context.WithTimeout(c.Context(), time.Millisecond)
				defer cancel()
				<-ctx.Done()
				return ctx.Err()
			},
		},
	}))
	cl := srv.Connect("alice")
	cl.MustInvoke("Add", 1, 2)
	cl.MustInvoke("add", 3, 4) // the registered spelling is recorded
	for _, method := range []string{"Refuse", "Fail", "Panic", "Wait", "Missing", "Refuse"} {
		_, err := cl.Invoke(method)
		require.Error(t, err, method)
	}
	_, err := cl.Invoke("Add", "not a number", 2) // binding fails: not an invocation that ran
	require.Error(t, err)

	s := collect(t, reader)
	method := otelhub.AttrMethod.String
	errType := otelhub.AttrErrorType.String
	tests := []struct {
		method, errType string
		count           uint64
	}{
		{"Add", "", 2},
		{"Refuse", "hub_error", 2},
		{"Fail", "_OTHER", 1},
		{"Panic", "_OTHER", 1},
		{"Wait", "timeout", 1},
	}
	for _, tc := range tests {
		attrs := []attribute.KeyValue{method(tc.method)}
		if tc.errType != "" {
			attrs = append(attrs, errType(tc.errType))
		}
		dp, ok := s.hist(t, otelhub.MetricInvocationDuration, attrs...)
		if !assert.True(t, ok, "%s %s; series: %s", tc.method, tc.errType, joined(s.points(otelhub.MetricInvocationDuration))) {
			continue
		}
		assert.Equal(t, tc.count, dp.Count, tc.method)
		assert.Positive(t, dp.Sum, tc.method)
		errs, ok := s.sum(t, otelhub.MetricInvocationErrors, attrs...)
		if tc.errType == "" {
			assert.False(t, ok, "%s counts no errors", tc.method)
		} else {
			assert.EqualValues(t, tc.count, errs, tc.method)
		}
	}
	wait, _ := s.hist(t, otelhub.MetricInvocationDuration, method("Wait"), errType("timeout"))
	assert.GreaterOrEqual(t, wait.Sum, 0.001, "Wait lasted its timeout at least")
	assert.Len(t, s.points(otelhub.MetricInvocationDuration), len(tests), "one series per method and outcome: %s",
		joined(s.points(otelhub.MetricInvocationDuration)))
	for _, p := range s.points(otelhub.MetricInvocationDuration) {
		assert.NotContains(t, p, "Missing")
	}
}

// TestBackplanePublishes: publishes to the in-memory backplane are
// recorded by kind, and those it refused are counted as errors.
func TestBackplanePublishes(t *testing.T) {
	t.Parallel()
	m, reader := newMetrics(t)
	nodes, bus := hubtest.NewCluster(t, 2, &signalhub.Options{Metrics: m.Hooks()})
	kind := otelhub.AttrBackplaneKind.String
	ctx := context.Background()

	s := collect(t, reader)
	hb, ok := s.hist(t, otelhub.MetricPublishDuration, kind("heartbeat"))
	require.True(t, ok, "series: %s", joined(s.points(otelhub.MetricPublishDuration)))
	assert.GreaterOrEqual(t, hb.Count, uint64(2), "each node's first heartbeat")
	_, ok = s.hist(t, otelhub.MetricPublishDuration, kind("invocation"))
	assert.False(t, ok, "nothing sent yet")

	require.NoError(t, nodes[0].Hub.SendToGroup(ctx, "g", "Hello"))
	bus.SetAvailable(false)
	require.ErrorIs(t, nodes[0].Hub.SendToGroup(ctx, "g", "Hello"), signalhub.ErrBackplaneUnavailable)
	require.ErrorIs(t, nodes[1].Hub.SendToAll(ctx, "Hello"), signalhub.ErrBackplaneUnavailable)
	bus.SetAvailable(true)

	s = collect(t, reader)
	ok1, ok := s.hist(t, otelhub.MetricPublishDuration, kind("invocation"))
	require.True(t, ok, "series: %s", joined(s.points(otelhub.MetricPublishDuration)))
	assert.EqualValues(t, 1, ok1.Count)
	failed, ok := s.hist(t, otelhub.MetricPublishDuration, kind("invocation"), otelhub.AttrErrorType.String("unavailable"))
	require.True(t, ok, "series: %s", joined(s.points(otelhub.MetricPublishDuration)))
	assert.EqualValues(t, 2, failed.Count)
	errs, _ := s.sum(t, otelhub.MetricPublishErrors, kind("invocation"), otelhub.AttrErrorType.String("unavailable"))
	assert.EqualValues(t, 2, errs)
}

// TestSharedAndClosed: one Metrics adds up the figures of several hubs,
// and after Close the asynchronous instruments report nothing.
func TestSharedAndClosed(t *testing.T) {
	t.Parallel()
	m, reader := newMetrics(t)
	dis := newDisconnects()
	for range 2 {
		srv := hubtest.NewServer(t, hubtest.NewHub(t, &signalhub.Options{Metrics: m.Hooks(), OnDisconnected: dis.hook}))
		c := srv.Connect("alice")
		id := c.ID()
		c.Close()
		require.NoError(t, dis.wait(t, id))
	}
	s := collect(t, reader)
	dp, _ := s.hist(t, otelhub.MetricConnectionDuration, otelhub.AttrConnectionStatus.String("normal_closure"), webSockets, jsonProto)
	assert.EqualValues(t, 2, dp.Count)
	received, ok := s.sum(t, otelhub.MetricReceivedMessages, webSockets, jsonProto)
	assert.True(t, ok)
	assert.Positive(t, received, "the Close messages")

	require.NoError(t, m.Close())
	s = collect(t, reader)
	assert.Empty(t, s.points(otelhub.MetricReceivedMessages))
}

// TestAttributeValues: every transport, and the cause of every way a
// connection ends, map to their attribute values; a transport or
// protocol the hub does not name yet gets "_OTHER".
func TestAttributeValues(t *testing.T) {
	t.Parallel()
	m, reader := newMetrics(t)
	h := m.Hooks()
	for _, tc := range []struct {
		transport, want string
	}{
		{protocol.TransportWebSockets, "web_sockets"},
		{protocol.TransportServerSentEvents, "server_sent_events"},
		{protocol.TransportLongPolling, "long_polling"},
		{"WebTransport", "_OTHER"},
	} {
		c := signalhub.ConnectionInfo{ID: tc.transport, Transport: tc.transport, Protocol: protocol.ProtocolMessagePack}
		h.ConnectionOpened(c)
		h.MessageReceived(c, 10)
		s := collect(t, reader)
		tr := otelhub.AttrTransport.String(tc.want)
		mp := otelhub.AttrProtocol.String("messagepack")
		active, _ := s.sum(t, otelhub.MetricActiveConnections, tr, mp)
		assert.EqualValues(t, 1, active, tc.transport)
		got, _ := s.sum(t, otelhub.MetricReceivedBytes, tr, mp)
		assert.EqualValues(t, 10, got, tc.transport)
		h.ConnectionClosed(c, time.Second, nil)
	}

	ws := signalhub.ConnectionInfo{ID: "c", Transport: protocol.TransportWebSockets, Protocol: "cbor"}
	causes := []struct {
		cause error
		want  string
	}{
		{nil, "normal_closure"},
		{signalhub.ErrHubClosed, "app_shutdown"},
		{fmt.Errorf("wrapped: %w", signalhub.ErrClientTimeout), "timeout"},
		{fmt.Errorf("signalhub: write: %w", context.DeadlineExceeded), "timeout"},
		{signalhub.ErrSlowConsumer, "slow_consumer"},
		{signalhub.ErrAuthExpired, "auth_expired"},
		{signalhub.ErrUserDisconnected, "user_disconnected"},
		{fmt.Errorf("%w: bad record", signalhub.ErrProtocol), "protocol_error"},
		{signalhub.ErrMessageTooLarge, "protocol_error"},
		{signalhub.ErrRateLimited, "policy_violation"},
		{signalhub.ErrTooManyInvocations, "policy_violation"},
		{errors.New("connection reset by peer"), "error"},
	}
	for _, c := range causes {
		h.ConnectionOpened(ws)
		h.ConnectionClosed(ws, time.Second, c.cause)
	}
	s := collect(t, reader)
	want := map[string]uint64{}
	for _, c := range causes {
		want[c.want]++
	}
	for status, n := range want {
		dp, ok := s.hist(t, otelhub.MetricConnectionDuration, otelhub.AttrConnectionStatus.String(status),
			webSockets, otelhub.AttrProtocol.String("_OTHER"))
		if assert.True(t, ok, status) {
			assert.Equal(t, n, dp.Count, status)
			assert.InDelta(t, float64(n), dp.Sum, 1e-9, status)
		}
	}
	slow, _ := s.sum(t, otelhub.MetricSlowConsumerCloses, webSockets, otelhub.AttrProtocol.String("_OTHER"))
	assert.EqualValues(t, 1, slow)
}
