package redis_test

import (
	"context"
	"encoding/binary"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCrossNode measures deliveries from one node's Publish to
// another node's Handler through a real redis-server: msgs/s counts
// delivered messages over the time until the last one arrived, and p50-us
// and p99-us are percentiles of the publish-to-Handler latency. Messages
// are 128 bytes, the size of a small hub invocation.
func BenchmarkCrossNode(b *testing.B) {
	for _, tc := range []struct {
		name     string
		parallel bool
	}{
		{"publishers=1", false},
		{"publishers=GOMAXPROCS", true},
	} {
		b.Run(tc.name, func(b *testing.B) { benchCrossNode(b, tc.parallel) })
	}
}

const (
	benchSize    = 128
	benchWindow  = 4096    // messages in flight at most, so Redis never buffers many
	benchSamples = 1 << 20 // latencies kept; later ones overwrite the oldest
)

func benchCrossNode(b *testing.B, parallel bool) {
	srv := startServer(b)
	pre := prefix(b)
	pub, sub := newBackplane(b, srv, pre), newBackplane(b, srv, pre)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	var (
		delivered atomic.Int64
		credits   = make(chan struct{}, benchWindow)
		samples   = make([]int64, benchSamples)
	)
	require := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	require(pub.Start(ctx, func(string, []byte) {}))
	require(sub.Start(ctx, func(_ string, data []byte) {
		sent := int64(binary.BigEndian.Uint64(data))
		i := delivered.Add(1) - 1
		samples[i%benchSamples] = time.Now().UnixNano() - sent
		<-credits
	}))
	require(sub.Subscribe(ctx, "bench"))

	publish := func(buf []byte) error {
		credits <- struct{}{}
		binary.BigEndian.PutUint64(buf, uint64(time.Now().UnixNano()))
		return pub.Publish(ctx, "bench", buf)
	}
	var published atomic.Int64
	b.ReportAllocs()
	start := time.Now()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			buf := make([]byte, benchSize)
			for pb.Next() {
				if err := publish(buf); err != nil {
					b.Error(err)
					return
				}
				published.Add(1)
			}
		})
	} else {
		buf := make([]byte, benchSize)
		for b.Loop() {
			require(publish(buf))
			published.Add(1)
		}
	}
	for delivered.Load() < published.Load() { // drain before stopping the clock
		if ctx.Err() != nil {
			b.Fatalf("%d of %d messages delivered", delivered.Load(), published.Load())
		}
		time.Sleep(time.Millisecond) // polling a counter, not synchronising
	}
	elapsed := time.Since(start)
	b.StopTimer()

	n := min(delivered.Load(), benchSamples)
	lat := slices.Clone(samples[:n])
	slices.Sort(lat)
	b.ReportMetric(float64(delivered.Load())/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(lat[n/2])/1e3, "p50-us")
	b.ReportMetric(float64(lat[n*99/100])/1e3, "p99-us")
}
