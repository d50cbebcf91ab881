package nats_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub/backplane"
	"github.com/signalhub/signalhub/backplane/nats"
)

// fastReconnect makes a client retry every 50 ms forever and refuse
// publishes while it is disconnected instead of buffering them: the
// options the package documentation recommends, with a short wait.
var fastReconnect = []natsgo.Option{
	natsgo.ReconnectWait(50 * time.Millisecond),
	natsgo.ReconnectJitter(0, 0),
	natsgo.MaxReconnects(-1),
	natsgo.ReconnectBufSize(-1),
}

// unavailableWithin checks that call fails with an error wrapping
// backplane.ErrUnavailable before its context of limit ends, or at most
// shortly after.
func unavailableWithin(t *testing.T, limit time.Duration, what string, call func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	start := time.Now()
	err := call(ctx)
	elapsed := time.Since(start)
	require.ErrorIs(t, err, backplane.ErrUnavailable, what)
	assert.Less(t, elapsed, limit+time.Second/2, "%s blocked past its context", what)
}

func TestServerRestart(t *testing.T) {
	srv := startServer(t, -1)
	port := serverPort(t, srv)
	url := srv.ClientURL()
	var logs logBuffer
	ncA := connect(t, url, fastReconnect...)
	bpA, err := nats.New(nats.Options{Conn: ncA, Prefix: "restart", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	a := startNodeOn(t, ncA, bpA)
	b := startNode(t, url, "restart", fastReconnect...)
	a.subscribe(t, "room 1")
	b.subscribe(t, "room 1", "traffic")
	a.publish(t, "room 1", "before")
	a.expect(t, "room 1", "before")
	b.expect(t, "room 1", "before")

	// a publishes on "traffic" every millisecond until the test says
	// stop; any error but ErrUnavailable is a failure. Messages sent
	// after b unsubscribed from "traffic" say so.
	var unsubscribed atomic.Bool
	stopTraffic := make(chan struct{})
	trafficErr := make(chan error, 1)
	var unavailable int
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopTraffic:
				trafficErr <- nil
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := a.Publish(ctx, "traffic", fmt.Appendf(nil, "%d unsubscribed=%t", i, unsubscribed.Load()))
			cancel()
			if errors.Is(err, backplane.ErrUnavailable) {
				unavailable++
			} else if err != nil {
				trafficErr <- err
				return
			}
		}
	})
	defer func() {
		select {
		case <-stopTraffic:
		default:
			close(stopTraffic)
		}
		wg.Wait()
	}()
	for b.next(t).channel != "traffic" { // mid-traffic
	}

	srv.Shutdown()
	srv.WaitForShutdown()
	waitStatus(t, a.nc, natsgo.RECONNECTING)
	waitStatus(t, b.nc, natsgo.RECONNECTING)
	unavailableWithin(t, time.Second, "Publish while the server is down", func(ctx context.Context) error {
		return a.Publish(ctx, "room 1", []byte("lost"))
	})
	unavailableWithin(t, time.Second, "Subscribe while the server is down", func(ctx context.Context) error {
		return b.Subscribe(ctx, "new channel")
	})
	// Unsubscribe needs no server.
	require.NoError(t, b.Unsubscribe(t.Context(), "traffic"))
	unsubscribed.Store(true)

	startServer(t, port) // a new server on the same port: no state survives
	waitStatus(t, a.nc, natsgo.CONNECTED)
	waitStatus(t, b.nc, natsgo.CONNECTED)

	// The clients subscribe again by themselves; until the server has
	// b's subscription, a's markers may be lost, so a sends one per tick
	// until one arrives.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(waitLimit)
	found := false
	for i := 0; !found; i++ {
		a.publish(t, "room 1", fmt.Sprintf("after %d", i))
	drain:
		for {
			select {
			case m := <-b.got:
				require.False(t, m.channel == "traffic" && strings.HasSuffix(m.data, "unsubscribed=true"),
					"b got %q on traffic, which it left during the outage", m.data)
				require.NotEqual(t, "lost", m.data)
				if m.channel == "room 1" && strings.HasPrefix(m.data, "after ") {
					found = true
					break drain
				}
			case <-tick.C:
				break drain
			case <-deadline:
				t.Fatalf("no message reached b within %v of the restart", waitLimit)
			}
		}
	}
	// a gets its own markers too, and the new channel subscribes now.
	for m := a.next(t); m.channel != "room 1" || !strings.HasPrefix(m.data, "after "); m = a.next(t) {
	}
	b.subscribe(t, "new channel")
	a.publish(t, "new channel", "welcome back")
	for m := b.next(t); m != (received{"new channel", "welcome back"}); m = b.next(t) {
		require.False(t, m.channel == "traffic" && strings.HasSuffix(m.data, "unsubscribed=true"),
			"b got %q on traffic, which it left during the outage", m.data)
	}

	close(stopTraffic)
	wg.Wait()
	require.NoError(t, <-trafficErr)
	t.Logf("%d publishes failed with ErrUnavailable during the outage", unavailable)
	assert.Contains(t, logs.String(), "lost the server")
	assert.Contains(t, logs.String(), "connected to the server")
	// Closed before the server's cleanup, so that they log no outage.
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
}

// An application may start while its server is down: the client keeps
// trying (nats.RetryOnFailedConnect) and the Backplane reports
// ErrUnavailable until it is connected.
func TestStartWhileServerDown(t *testing.T) {
	srv := startServer(t, -1)
	port := serverPort(t, srv)
	url := srv.ClientURL()
	srv.Shutdown()
	srv.WaitForShutdown()

	nc := connect(t, url, append([]natsgo.Option{natsgo.RetryOnFailedConnect(true)}, fastReconnect...)...)
	n := startNodeOn(t, nc, newBackplane(t, nc, "late"))
	unavailableWithin(t, time.Second, "Subscribe before the first connect", func(ctx context.Context) error {
		return n.Subscribe(ctx, "ch")
	})
	unavailableWithin(t, time.Second, "Publish before the first connect", func(ctx context.Context) error {
		return n.Publish(ctx, "ch", []byte("x"))
	})

	startServer(t, port)
	waitStatus(t, nc, natsgo.CONNECTED)
	n.subscribe(t, "ch")
	n.publish(t, "ch", "hello")
	n.expect(t, "ch", "hello")
	require.NoError(t, n.Close())
}

// Closing the connection before the Backplane makes it unavailable, and
// is logged as an error: the application got the order wrong, or the
// client gave up reconnecting.
func TestConnClosedFirst(t *testing.T) {
	url := startServer(t, -1).ClientURL()
	var logs logBuffer
	nc := connect(t, url)
	bp, err := nats.New(nats.Options{Conn: nc, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	n := startNodeOn(t, nc, bp)
	n.subscribe(t, "ch")

	nc.Close()
	unavailableWithin(t, time.Second, "Publish", func(ctx context.Context) error { return n.Publish(ctx, "ch", nil) })
	unavailableWithin(t, time.Second, "Subscribe", func(ctx context.Context) error { return n.Subscribe(ctx, "other") })
	require.NoError(t, n.Unsubscribe(t.Context(), "ch"))
	require.NoError(t, n.Close())
	assert.Contains(t, logs.String(), "level=ERROR")
	assert.Contains(t, logs.String(), "connection is closed")
}
