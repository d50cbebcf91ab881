package backplanetest_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub/backplane"
	"github.com/signalhub/signalhub/backplane/backplanetest"
)

func TestBus(t *testing.T) {
	bus := backplanetest.NewBus()
	backplanetest.Run(t, func(*testing.T) backplane.Backplane { return bus.Node() })
}

// startNode starts a bus node with h (nil: discard) and closes it when the
// test ends.
func startNode(t *testing.T, bus *backplanetest.Bus, h backplane.Handler) backplane.Backplane {
	t.Helper()
	if h == nil {
		h = func(string, []byte) {}
	}
	n := bus.Node()
	require.NoError(t, n.Start(t.Context(), h))
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// forward returns a Handler that sends each message's data to the channel.
func forward(ch chan<- string) backplane.Handler {
	return func(channel string, data []byte) { ch <- channel + ": " + string(data) }
}

// receive returns the next forwarded message, failing after a while.
func receive(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
		return ""
	}
}

// gate is a Handler that blocks on its first message until release is
// closed, and forwards every message after it.
type gate struct {
	entered, release chan struct{}
	calls            atomic.Int64
	got              chan string
}

// newGate returns a gate; the caller must open it (t.Cleanup(g.open) after
// starting the node, so that it runs before the node's Close, which waits
// for the Handler).
func newGate(buffer int) *gate {
	return &gate{entered: make(chan struct{}), release: make(chan struct{}), got: make(chan string, buffer)}
}

func (g *gate) handle(channel string, data []byte) {
	if g.calls.Add(1) == 1 {
		close(g.entered)
		<-g.release
	}
	g.got <- channel + ": " + string(data)
}

func (g *gate) open() {
	select {
	case <-g.release:
	default:
		close(g.release)
	}
}

func TestBusFullQueue(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	bus := backplanetest.NewBus()
	slow := newGate(backplanetest.QueueLength + 2)
	fastGot := make(chan string, backplanetest.QueueLength+2)
	pub := startNode(t, bus, nil)
	slowNode := startNode(t, bus, slow.handle)
	t.Cleanup(slow.open)
	fast := startNode(t, bus, forward(fastGot))
	require.NoError(t, slowNode.Subscribe(ctx, "ch"))
	require.NoError(t, fast.Subscribe(ctx, "ch"))

	require.NoError(t, pub.Publish(ctx, "ch", []byte("first")))
	<-slow.entered // slow's queue is empty again, its Handler stuck
	require.Equal(t, "ch: first", receive(t, fastGot))
	for i := range backplanetest.QueueLength {
		require.NoError(t, pub.Publish(ctx, "ch", fmt.Appendf(nil, "%d", i)), "message %d", i)
		// fast keeps up (its queue never holds more than this message),
		// so only slow's queue fills, however the goroutines are run.
		require.Equal(t, fmt.Sprintf("ch: %d", i), receive(t, fastGot))
	}
	err := pub.Publish(ctx, "ch", []byte("too many"))
	require.ErrorIs(t, err, backplane.ErrUnavailable)
	require.NoError(t, pub.Publish(ctx, "other", []byte("x")), "other channels are not affected")

	// The failed message reached no node, not even the one keeping up.
	require.NoError(t, fast.Unsubscribe(ctx, "ch"))
	require.NoError(t, fast.Subscribe(ctx, "marker"))
	require.NoError(t, pub.Publish(ctx, "marker", []byte("m")))
	require.Equal(t, "marker: m", receive(t, fastGot))

	// Once the Handler catches up, Publish works again.
	slow.open()
	for range backplanetest.QueueLength + 1 {
		receive(t, slow.got)
	}
	require.NoError(t, pub.Publish(ctx, "ch", []byte("again")))
	assert.Equal(t, "ch: again", receive(t, slow.got))
}

func TestBusSetAvailable(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	bus := backplanetest.NewBus()
	g := newGate(8)
	pub := startNode(t, bus, nil)
	sub := startNode(t, bus, g.handle)
	t.Cleanup(g.open)
	require.NoError(t, sub.Subscribe(ctx, "ch"))
	require.NoError(t, sub.Subscribe(ctx, "leaving"))
	require.NoError(t, pub.Publish(ctx, "ch", []byte("blocks")))
	<-g.entered
	require.NoError(t, pub.Publish(ctx, "ch", []byte("queued")))

	bus.SetAvailable(false)
	require.ErrorIs(t, pub.Publish(ctx, "ch", []byte("lost")), backplane.ErrUnavailable)
	require.ErrorIs(t, sub.Subscribe(ctx, "new"), backplane.ErrUnavailable)
	require.NoError(t, sub.Unsubscribe(ctx, "leaving"), "Unsubscribe needs no broker")
	late := bus.Node()
	require.NoError(t, late.Start(ctx, func(string, []byte) {}), "Start needs no broker")
	require.NoError(t, late.Close())
	g.open()
	assert.Equal(t, "ch: blocks", receive(t, g.got))
	assert.Equal(t, "ch: queued", receive(t, g.got), "queued messages are still delivered")

	bus.SetAvailable(true)
	require.NoError(t, sub.Subscribe(ctx, "new"))
	require.NoError(t, pub.Publish(ctx, "leaving", []byte("unsubscribed")))
	require.NoError(t, pub.Publish(ctx, "ch", []byte("after")))
	require.NoError(t, pub.Publish(ctx, "new", []byte("subscribed after")))
	assert.Equal(t, "ch: after", receive(t, g.got), "subscriptions survive an outage")
	assert.Equal(t, "new: subscribed after", receive(t, g.got))
}

func TestBusMisuse(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	bus := backplanetest.NewBus()

	unstarted := bus.Node()
	require.ErrorContains(t, unstarted.Subscribe(ctx, "ch"), "not started")
	require.ErrorContains(t, unstarted.Unsubscribe(ctx, "ch"), "not started")
	require.ErrorContains(t, unstarted.Publish(ctx, "ch", nil), "not started")
	require.Error(t, unstarted.Start(ctx, nil), "nil Handler")
	require.NoError(t, unstarted.Close())

	n := startNode(t, bus, nil)
	require.Error(t, n.Start(ctx, func(string, []byte) {}), "second Start")
	for name, err := range map[string]error{
		"Subscribe":   n.Subscribe(ctx, ""),
		"Unsubscribe": n.Unsubscribe(ctx, ""),
		"Publish":     n.Publish(ctx, "", nil),
	} {
		assert.ErrorContains(t, err, "empty channel name", name)
	}

	done, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, n.Subscribe(done, "ch"), context.Canceled)
	require.ErrorIs(t, n.Publish(done, "ch", nil), context.Canceled)
	require.ErrorIs(t, bus.Node().Start(done, func(string, []byte) {}), context.Canceled)
}

// A Handler may publish; Publish never waits for Handlers, so even a node
// that publishes to itself from its Handler does not deadlock.
func TestBusHandlerPublishesToItself(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	bus := backplanetest.NewBus()
	got := make(chan string, 100)
	n := bus.Node()
	count := 0
	require.NoError(t, n.Start(ctx, func(channel string, data []byte) {
		count++
		if count < 100 {
			if err := n.Publish(ctx, channel, data); err != nil {
				got <- err.Error()
				return
			}
		}
		got <- string(data)
	}))
	t.Cleanup(func() { _ = n.Close() })
	require.NoError(t, n.Subscribe(ctx, "loop"))
	require.NoError(t, n.Publish(ctx, "loop", []byte("x")))
	for range 100 {
		require.Equal(t, "x", receive(t, got))
	}
}
