package redis_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub/backplane/redis"
)

// TestSubscribeFromBlockedHandler checks that a Handler may subscribe while
// its queue is full: the reader reads ahead to find the confirmation, up
// to ReadAhead messages more, and drops what comes beyond them.
func TestSubscribeFromBlockedHandler(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flood int
	}{
		{"within read-ahead", redis.QueueLength + redis.ReadAhead/2},
		{"beyond read-ahead", redis.QueueLength + redis.ReadAhead + 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t)
			pre := prefix(t)
			ctx := within(t, 60*time.Second)
			var logs lockedBuffer
			client := srv.client(t)
			b, err := redis.New(redis.Options{Client: client, Prefix: pre,
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
			require.NoError(t, err)
			t.Cleanup(func() { _ = b.Close() })

			release := make(chan struct{})
			subscribed := make(chan error, 1)
			got := make(chan string, 2*tc.flood)
			require.NoError(t, b.Start(ctx, func(channel string, data []byte) {
				if channel == "go" {
					select {
					case <-release:
					case <-ctx.Done():
					}
					subscribed <- b.Subscribe(ctx, "new")
					return
				}
				got <- channel + " " + string(data)
			}))
			require.NoError(t, b.Subscribe(ctx, "go"))
			require.NoError(t, b.Subscribe(ctx, "flood"))

			a := newBackplane(t, srv, pre)
			require.NoError(t, a.Start(ctx, func(string, []byte) {}))
			require.NoError(t, a.Publish(ctx, "go", nil))
			for i := range tc.flood {
				require.NoError(t, a.Publish(ctx, "flood", strconv.AppendInt(nil, int64(i), 10)))
			}
			for redis.QueueLen(b) < redis.QueueLength { // the reader has stopped
				select {
				case <-ctx.Done():
					t.Fatalf("queue holds %d messages, want %d", redis.QueueLen(b), redis.QueueLength)
				case <-time.After(5 * time.Millisecond):
				}
			}

			close(release)
			select {
			case err := <-subscribed:
				require.NoError(t, err, "Subscribe from the Handler")
			case <-time.After(10 * time.Second):
				t.Fatal("Subscribe from the Handler did not return: deadlock")
			}
			require.NoError(t, a.Publish(ctx, "new", []byte("works")))

			// The flood arrives in order, up to what read-ahead allows, then
			// the message on the new channel.
			want := min(tc.flood, redis.QueueLength+redis.ReadAhead)
			next := 0
			for {
				var m string
				select {
				case m = <-got:
				case <-ctx.Done():
					t.Fatalf("after %d flood messages: nothing more", next)
				}
				if m == "new works" {
					break
				}
				require.Equal(t, "flood "+strconv.Itoa(next), m)
				next++
			}
			assert.Equal(t, want, next, "flood messages delivered")
			if dropped := tc.flood - want; dropped > 0 {
				assert.Contains(t, logs.String(), fmt.Sprintf("dropped=%d", dropped))
			} else {
				assert.NotContains(t, logs.String(), "dropped")
			}
		})
	}
}

// lockedBuffer is a bytes.Buffer for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
