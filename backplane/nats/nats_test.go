package nats_test

import (
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	natsgo "github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub/backplane"
	"github.com/signalhub/signalhub/backplane/nats"
)

// queueLength is the length of a Backplane's queue, as documented.
const queueLength = 4096

func TestNewOptions(t *testing.T) {
	url := startServer(t, -1).ClientURL()
	nc := connect(t, url)

	_, err := nats.New(nats.Options{})
	require.ErrorContains(t, err, "Options.Conn is nil")

	for _, prefix := range []string{"a..b", ".a", "a.", "a b", "tab\t", "a.*", "a.>", "a*", "é", strings.Repeat("p", 257)} {
		t.Run("bad "+prefix, func(t *testing.T) {
			_, err := nats.New(nats.Options{Conn: nc, Prefix: prefix})
			require.ErrorContains(t, err, "Options.Prefix")
		})
	}
	for _, prefix := range []string{"", "signalhub", "app.hub-1", "x_y", "A.B.C"} {
		t.Run("good "+prefix, func(t *testing.T) {
			bp, err := nats.New(nats.Options{Conn: nc, Prefix: prefix})
			require.NoError(t, err)
			require.NoError(t, bp.Close()) // never started
			require.ErrorIs(t, bp.Close(), backplane.ErrClosed)
			require.ErrorIs(t, bp.Subscribe(t.Context(), "ch"), backplane.ErrClosed)
		})
	}
}

func TestCallsBeforeStart(t *testing.T) {
	url := startServer(t, -1).ClientURL()
	bp := newBackplane(t, connect(t, url), "early")
	defer bp.Close()
	for name, err := range map[string]error{
		"Subscribe":   bp.Subscribe(t.Context(), "ch"),
		"Unsubscribe": bp.Unsubscribe(t.Context(), "ch"),
		"Publish":     bp.Publish(t.Context(), "ch", nil),
	} {
		assert.ErrorContains(t, err, "not started", name)
		assert.NotErrorIs(t, err, backplane.ErrClosed, name)
	}
	require.Error(t, bp.Start(t.Context(), nil), "nil Handler")
	require.NoError(t, bp.Start(t.Context(), func(string, []byte) {}))
	require.ErrorContains(t, bp.Start(t.Context(), func(string, []byte) {}), "already started")
	require.ErrorContains(t, bp.Subscribe(t.Context(), ""), "empty channel")
}

// Close ends the Backplane's subscriptions but leaves the connection,
// which the application owns, open.
func TestCloseLeavesConn(t *testing.T) {
	url := startServer(t, -1).ClientURL()
	nc := connect(t, url)
	own, err := nc.SubscribeSync("application.subject")
	require.NoError(t, err)
	n := startNodeOn(t, nc, newBackplane(t, nc, "close"))
	n.subscribe(t, "a", "b", "c")
	require.Equal(t, 4, nc.NumSubscriptions())

	require.NoError(t, n.Close())
	assert.Equal(t, 1, nc.NumSubscriptions())
	assert.True(t, own.IsValid())
	assert.True(t, nc.IsConnected())
	require.NoError(t, nc.Publish("application.subject", []byte("still mine")))
	m, err := own.NextMsg(waitLimit)
	require.NoError(t, err)
	assert.Equal(t, "still mine", string(m.Data))
}

// Hubs with different prefixes share a server without seeing each
// other's messages, and channel names that differ only past the length
// at which they are hashed stay apart.
func TestPrefixesAndLongNames(t *testing.T) {
	url := startServer(t, -1).ClientURL()
	one, two := startNode(t, url, "one"), startNode(t, url, "app.two")
	long := strings.Repeat("long group name ", 4096) // 64 KiB
	channels := []string{"all", "group:x", long + "1", long + "2", strings.Repeat("é", 128), strings.Repeat("é", 128) + "!"}
	one.subscribe(t, channels...)
	two.subscribe(t, channels...)
	for i, ch := range channels {
		one.publish(t, ch, "one "+strconv.Itoa(i))
		two.publish(t, ch, "two "+strconv.Itoa(i))
	}
	for i, ch := range channels {
		one.expect(t, ch, "one "+strconv.Itoa(i))
		two.expect(t, ch, "two "+strconv.Itoa(i))
	}
	// The server took the long subjects without closing the connections.
	assert.True(t, one.nc.IsConnected())
	assert.True(t, two.nc.IsConnected())
}

// A Handler slower than the traffic makes the NATS client drop what does
// not fit in the queue; the Backplane logs the loss and goes on.
func TestSlowHandlerDrops(t *testing.T) {
	url := startServer(t, -1).ClientURL()
	asyncErrs := make(chan error, 16)
	nc := connect(t, url, natsgo.ErrorHandler(func(_ *natsgo.Conn, _ *natsgo.Subscription, err error) {
		select {
		case asyncErrs <- err:
		default:
		}
	}))
	var logs logBuffer
	bp, err := nats.New(nats.Options{Conn: nc, Prefix: "slow", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)

	entered, release := make(chan struct{}), make(chan struct{})
	got := make(chan string, 2*queueLength)
	var calls atomic.Int64
	require.NoError(t, bp.Start(t.Context(), func(_ string, data []byte) {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
		got <- string(data)
	}))
	var released atomic.Bool
	t.Cleanup(func() {
		if released.CompareAndSwap(false, true) {
			close(release)
		}
		_ = bp.Close()
	})
	require.NoError(t, bp.Subscribe(t.Context(), "flood"))

	const extra = 300
	pub := startNode(t, url, "slow")
	for i := range queueLength + 1 + extra {
		pub.publish(t, "flood", strconv.Itoa(i))
	}
	next(t, entered)
	eventually(t, "the subscriber's client has read every message", func() bool {
		return nc.Stats().InMsgs >= queueLength+1+extra
	})
	released.Store(true)
	close(release)

	// The Handler's message and the full queue behind it arrive, in order;
	// the rest were dropped.
	for i := range queueLength + 1 {
		require.Equal(t, strconv.Itoa(i), next(t, got))
	}
	pub.publish(t, "flood", "after")
	require.Equal(t, "after", next(t, got))
	require.ErrorIs(t, next(t, asyncErrs), natsgo.ErrSlowConsumer)
	eventually(t, "the drop is logged", func() bool {
		return strings.Contains(logs.String(), "dropped="+strconv.Itoa(extra))
	})
	assert.Contains(t, logs.String(), "level=WARN")
}

// Unsubscribe also discards the channel's messages that are queued.
func TestUnsubscribeDiscardsQueued(t *testing.T) {
	url := startServer(t, -1).ClientURL()
	nc := connect(t, url)
	bp := newBackplane(t, nc, "queued")
	entered, release := make(chan struct{}), make(chan struct{})
	got := make(chan received, 16)
	require.NoError(t, bp.Start(t.Context(), func(channel string, data []byte) {
		if channel == "hold" {
			close(entered)
			<-release
		}
		got <- received{channel, string(data)}
	}))
	t.Cleanup(func() { _ = bp.Close() })
	for _, ch := range []string{"hold", "dropped", "kept"} {
		require.NoError(t, bp.Subscribe(t.Context(), ch))
	}

	pub := startNode(t, url, "queued")
	pub.publish(t, "hold", "h")
	next(t, entered)
	for i := range 5 {
		pub.publish(t, "dropped", strconv.Itoa(i))
	}
	pub.publish(t, "kept", "k")
	eventually(t, "all queued", func() bool { return nc.Stats().InMsgs >= 7 })
	require.NoError(t, bp.Unsubscribe(t.Context(), "dropped"))
	close(release)
	require.Equal(t, received{"hold", "h"}, next(t, got))
	require.Equal(t, received{"kept", "k"}, next(t, got))
}

// A message larger than the server accepts is refused as such, not as
// an outage.
func TestPublishTooLarge(t *testing.T) {
	url := startServer(t, -1).ClientURL()
	n := startNode(t, url, "large")
	err := n.Publish(t.Context(), "ch", make([]byte, n.nc.MaxPayload()+1))
	require.ErrorIs(t, err, natsgo.ErrMaxPayload)
	require.NotErrorIs(t, err, backplane.ErrUnavailable)
	n.subscribe(t, "ch")
	n.publish(t, "ch", "fine")
	n.expect(t, "ch", "fine")
}
