package nats_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// maxSamples bounds the latencies a benchmark keeps.
const maxSamples = 1 << 20

// BenchmarkCrossNode measures deliveries from one node to another through
// an embedded NATS server on loopback: Publish on one node (which returns
// once the server has the message), the Handler on the other. It reports
// deliveries per second, drain included, and the latency from Publish to
// Handler. Allocations include the embedded server's.
//
// window bounds the messages in flight, below the receiver's queue so
// that none is dropped: with 1, each message waits for the previous one's
// delivery and the latency is the unloaded one; with 1024 the publishers
// run at full speed and the latency includes queueing at the receiver.
func BenchmarkCrossNode(b *testing.B) {
	url := startServer(b, -1).ClientURL()
	for _, bc := range []struct{ publishers, window int }{{1, 1}, {1, 1024}, {16, 1024}} {
		b.Run(fmt.Sprintf("publishers=%d/window=%d", bc.publishers, bc.window), func(b *testing.B) {
			benchCrossNode(b, url, bc.publishers, bc.window)
		})
	}
}

func benchCrossNode(b *testing.B, url string, publishers, window int) {
	prefix := prefixOf(b.Name())
	pub := startNode(b, url, prefix)
	nc := connect(b, url)
	sub := newBackplane(b, nc, prefix)

	base := time.Now() // payloads carry send times as offsets from base
	sem := make(chan struct{}, window)
	lats := make([]time.Duration, 0, maxSamples)
	require.NoError(b, sub.Start(b.Context(), func(_ string, data []byte) {
		if len(lats) < cap(lats) {
			lats = append(lats, time.Since(base)-time.Duration(binary.BigEndian.Uint64(data)))
		}
		<-sem
	}))
	b.Cleanup(func() { _ = sub.Close() })
	require.NoError(b, sub.Subscribe(b.Context(), "group:bench"))

	ctx, cancel := context.WithTimeout(b.Context(), time.Minute)
	defer cancel()
	send := func(data []byte) error {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("no room in the window: %w", ctx.Err())
		}
		binary.BigEndian.PutUint64(data, uint64(time.Since(base)))
		return pub.Publish(ctx, "group:bench", data)
	}

	b.ReportAllocs()
	b.SetBytes(256)
	start := time.Now()
	if publishers == 1 {
		data := make([]byte, 256)
		for b.Loop() {
			if err := send(data); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		b.SetParallelism((publishers + 1) / 2) // per GOMAXPROCS; 2 on the reference machine
		b.RunParallel(func(pb *testing.PB) {
			data := make([]byte, 256)
			for pb.Next() {
				if err := send(data); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	// Drain: the window is full again once every message was handled.
	for range window {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			b.Fatalf("messages lost: %v", ctx.Err())
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()

	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	if len(lats) > 0 {
		slices.Sort(lats)
		b.ReportMetric(float64(lats[len(lats)/2].Nanoseconds())/1e3, "p50-µs")
		b.ReportMetric(float64(lats[len(lats)*99/100].Nanoseconds())/1e3, "p99-µs")
	}
}
