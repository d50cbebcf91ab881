package redis_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub/backplane"
	"github.com/signalhub/signalhub/backplane/backplanetest"
	"github.com/signalhub/signalhub/backplane/redis"
)

func TestConformance(t *testing.T) {
	srv := startServer(t)
	backplanetest.Run(t, func(t *testing.T) backplane.Backplane {
		return newBackplane(t, srv, prefix(t))
	})
}

func TestNew(t *testing.T) {
	_, err := redis.New(redis.Options{})
	require.Error(t, err, "a nil client")

	// New and Close do no I/O: a client of an address where nothing
	// listens will do.
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = client.Close() })
	bp, err := redis.New(redis.Options{Client: client})
	require.NoError(t, err)
	ctx := within(t, 5*time.Second)
	assert.Error(t, bp.Publish(ctx, "ch", nil), "Publish before Start")
	assert.Error(t, bp.Subscribe(ctx, "ch"), "Subscribe before Start")
	assert.Error(t, bp.Unsubscribe(ctx, "ch"), "Unsubscribe before Start")
	assert.Error(t, bp.Start(ctx, nil), "Start with a nil Handler")
	require.NoError(t, bp.Close())
	assert.ErrorIs(t, bp.Close(), backplane.ErrClosed)
	assert.ErrorIs(t, bp.Start(ctx, func(string, []byte) {}), backplane.ErrClosed)
}

// node is a started engine whose Handler forwards messages to got.
type node struct {
	bp   *redis.Backplane
	got  chan string // "<channel> <data>"
	stop chan struct{}
}

func startNode(t *testing.T, srv *server, prefix string) *node {
	t.Helper()
	n := &node{bp: newBackplane(t, srv, prefix), got: make(chan string, 1<<14), stop: make(chan struct{})}
	t.Cleanup(func() { close(n.stop) }) // runs before Close: the Handler never blocks it
	require.NoError(t, n.bp.Start(t.Context(), func(channel string, data []byte) {
		select {
		case n.got <- channel + " " + string(data):
		case <-n.stop:
		}
	}))
	return n
}

// next returns the node's next message, or fails the test after d.
func (n *node) next(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case m := <-n.got:
		return m
	case <-time.After(d):
		t.Fatalf("no message within %v", d)
		return ""
	}
}

// TestChannelNames checks the Redis channel names, the default prefix and
// that the client stays open after Close.
func TestChannelNames(t *testing.T) {
	srv := startServer(t)
	ctx := within(t, 10*time.Second)
	plain := srv.client(t)
	watch := plain.Subscribe(ctx, "signalhub:all", prefix(t)+":all")
	t.Cleanup(func() { _ = watch.Close() })
	for range 2 {
		_, err := watch.Receive(ctx) // the two confirmations
		require.NoError(t, err)
	}

	client := srv.client(t)
	bp, err := redis.New(redis.Options{Client: client, Logger: testLogger(t)})
	require.NoError(t, err)
	require.NoError(t, bp.Start(ctx, func(string, []byte) {}))
	require.NoError(t, bp.Publish(ctx, "all", []byte("default prefix")))
	custom := newBackplane(t, srv, prefix(t))
	require.NoError(t, custom.Start(ctx, func(string, []byte) {}))
	require.NoError(t, custom.Publish(ctx, "all", []byte("custom prefix")))

	for _, want := range []string{"signalhub:all default prefix", prefix(t) + ":all custom prefix"} {
		m, err := watch.ReceiveMessage(ctx)
		require.NoError(t, err)
		assert.Equal(t, want, m.Channel+" "+m.Payload)
	}

	require.NoError(t, bp.Close())
	assert.NoError(t, client.Ping(ctx).Err(), "Close must leave the user's client open")
}

// TestSubscribeGivesUp checks that a Subscribe whose confirmation comes too
// late fails with ErrUnavailable and leaves no subscription behind.
func TestSubscribeGivesUp(t *testing.T) {
	srv := startServer(t)
	ctx := within(t, 10*time.Second)
	n := startNode(t, srv, prefix(t))
	admin := srv.client(t)
	name := prefix(t) + ":late"

	// The pub/sub connection is open, so the SUBSCRIBE below goes out at
	// once; Redis then holds every command for a while, so it is confirmed
	// only after the call has given up.
	require.NoError(t, n.bp.Subscribe(ctx, "ready"))
	require.NoError(t, admin.Do(ctx, "client", "pause", 500, "all").Err())
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err := n.bp.Subscribe(short, "late")
	cancel()
	require.ErrorIs(t, err, backplane.ErrUnavailable)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// This one's confirmation comes after the late one's.
	require.NoError(t, n.bp.Subscribe(ctx, "marker"))

	for {
		subs, err := admin.PubSubNumSub(ctx, name).Result()
		require.NoError(t, err)
		if subs[name] == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the engine kept its subscription to %q after Subscribe failed", name)
		case <-time.After(10 * time.Millisecond):
		}
	}
	require.NoError(t, n.bp.Publish(ctx, "late", []byte("lost")))
	require.NoError(t, n.bp.Publish(ctx, "marker", []byte("m")))
	assert.Equal(t, "marker m", n.next(t, 5*time.Second))
}

// TestRedisRestart kills redis-server while two nodes exchange messages,
// checks that calls fail with ErrUnavailable within their context, then
// restarts it on the same port and waits for the nodes to get messages
// again without subscribing anew.
func TestRedisRestart(t *testing.T) {
	srv := startServer(t)
	pre := prefix(t)
	a, b := startNode(t, srv, pre), startNode(t, srv, pre)
	ctx := within(t, 60*time.Second)
	require.NoError(t, a.bp.Subscribe(ctx, "ch"))
	require.NoError(t, b.bp.Subscribe(ctx, "ch"))

	// Traffic from a to both, until a Publish fails.
	var (
		traffic   sync.WaitGroup
		published atomic.Int64
		failed    = make(chan error, 1)
	)
	traffic.Go(func() {
		for i := 0; ; i++ {
			err := a.bp.Publish(ctx, "ch", fmt.Appendf(nil, "traffic %d", i))
			if err != nil {
				failed <- err
				return
			}
			published.Add(1)
		}
	})
	for range 10 { // traffic flows before the crash
		require.True(t, strings.HasPrefix(b.next(t, 5*time.Second), "ch traffic "))
	}
	srv.kill()
	traffic.Wait()
	err := <-failed
	require.ErrorIs(t, err, backplane.ErrUnavailable, "a Publish in flight when the server died")
	t.Logf("%d messages published before the crash", published.Load())

	// While the server is down, calls fail within their context.
	const bound = 2 * time.Second
	for name, call := range map[string]func(context.Context) error{
		"Publish":   func(ctx context.Context) error { return a.bp.Publish(ctx, "ch", []byte("down")) },
		"Subscribe": func(ctx context.Context) error { return b.bp.Subscribe(ctx, "other") },
	} {
		short, cancel := context.WithTimeout(ctx, bound)
		start := time.Now()
		err := call(short)
		cancel()
		elapsed := time.Since(start)
		assert.ErrorIs(t, err, backplane.ErrUnavailable, "%s while the server is down", name)
		assert.Less(t, elapsed, bound+500*time.Millisecond, "%s blocked past its context", name)
	}

	srv.restart()

	// Markers from a reach a and b once each has reconnected and
	// subscribed again by itself; until then, they are lost.
	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var gotA, gotB string
	for i := 0; gotA == "" || gotB == ""; i++ {
		select {
		case <-deadline:
			t.Fatalf("markers after the restart: node a got %q, node b got %q within 15s", gotA, gotB)
		case m := <-a.got:
			if strings.HasPrefix(m, "ch marker ") {
				gotA = m
			}
		case m := <-b.got:
			if strings.HasPrefix(m, "ch marker ") {
				gotB = m
			}
		case <-tick.C:
			_ = a.bp.Publish(ctx, "ch", fmt.Appendf(nil, "marker %d", i)) // fails until a's pool reconnects
		}
	}
	t.Logf("after the restart, node a got %q and node b got %q", gotA, gotB)

	// Both nodes are back to normal: a new subscription works, and a
	// message published now reaches both subscribers of "ch" exactly once.
	require.NoError(t, b.bp.Subscribe(ctx, "after"))
	require.NoError(t, a.bp.Publish(ctx, "after", []byte("restart")))
	require.NoError(t, a.bp.Publish(ctx, "ch", []byte("final")))
	assert.Equal(t, "after restart", fresh(t, b), "node b's new subscription")
	assert.Equal(t, "ch final", fresh(t, b))
	assert.Equal(t, "ch final", fresh(t, a))
}

// fresh returns n's next message that is neither traffic from before the
// crash nor a marker from the polling after the restart.
func fresh(t *testing.T, n *node) string {
	t.Helper()
	for {
		m := n.next(t, 5*time.Second)
		if !strings.HasPrefix(m, "ch traffic ") && !strings.HasPrefix(m, "ch marker ") {
			return m
		}
	}
}
