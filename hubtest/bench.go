package hubtest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/backplane"
	"github.com/signalhub/signalhub/client"
)

// BenchmarkGroupSend measures a group send end to end, for engine
// packages to run against their backplane: from SendToGroup on node 1,
// through the backplane to the other nodes, through each node's WebSocket
// to Go clients spread evenly over the nodes, with 1 to 4 nodes and 10 or
// 100 members. nodes=1 is the single-node figure (no backplane). It
// reports deliveries per second and the p50 and p99 delay from the send to
// the client's handler. newBackplane returns a new engine instance of one
// cluster per call; each sub-benchmark should get a cluster of its own
// (say, a new channel prefix).
//
// Everything runs in one process, so the figures show the cost per
// delivery of the whole path on this machine, not the capacity of a real
// cluster of machines.
func BenchmarkGroupSend(b *testing.B, newBackplane func(tb testing.TB) backplane.Backplane) {
	for _, nodes := range []int{1, 2, 3, 4} {
		for _, members := range []int{10, 100} {
			b.Run(fmt.Sprintf("nodes=%d/members=%d", nodes, members), func(b *testing.B) {
				benchGroupSend(b, newBackplane, nodes, members)
			})
		}
	}
}

// latencies collects send-to-handler delays and counts deliveries.
type latencies struct {
	mu      sync.Mutex // guards all fields
	samples []time.Duration
	count   int64
	want    int64
	reached chan struct{} // closed when count reaches want
}

func (l *latencies) add(sent int64) {
	d := time.Duration(time.Now().UnixNano() - sent)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.samples = append(l.samples, d)
	l.count++
	if l.reached != nil && l.count >= l.want {
		close(l.reached)
		l.reached = nil
	}
}

// waitFor blocks until n deliveries have been counted.
func (l *latencies) waitFor(tb testing.TB, n int64) {
	l.mu.Lock()
	if l.count >= n {
		l.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	l.reached, l.want = ch, n
	l.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		l.mu.Lock()
		defer l.mu.Unlock()
		tb.Fatalf("delivered %d of %d", l.count, n)
	}
}

func (l *latencies) percentile(p float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.samples) == 0 {
		return 0
	}
	s := slices.Clone(l.samples)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1))]
}

func benchGroupSend(b *testing.B, newBackplane func(tb testing.TB) backplane.Backplane, nodes, members int) {
	servers := make([]*Server, nodes)
	for i := range servers {
		opts := &signalhub.Options{SendQueueLength: 1 << 16, SendQueueBytes: 1 << 26}
		if nodes > 1 {
			opts.Backplane, opts.NodeID = newBackplane(b), fmt.Sprintf("n%d", i+1)
		}
		servers[i] = NewServer(b, NewHub(b, opts))
	}
	lat := &latencies{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range members {
		s := servers[i%nodes]
		c, err := client.New(s.URL, &client.Options{HTTPClient: s.HTTPClient, QueueLength: 1 << 14})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.On("M", lat.add); err != nil {
			b.Fatal(err)
		}
		if err := c.Start(ctx); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		if err := s.Hub.AddToGroup(ctx, c.ConnectionID(), "g"); err != nil {
			b.Fatal(err)
		}
	}
	hub := servers[0].Hub
	const window = 64 // sends in flight, so that no queue overflows
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := hub.SendToGroup(ctx, "g", "M", time.Now().UnixNano()); err != nil {
			b.Fatal(err)
		}
		if i%window == window-1 {
			lat.waitFor(b, int64(i+1)*int64(members))
		}
	}
	lat.waitFor(b, int64(b.N)*int64(members))
	b.StopTimer()
	b.ReportMetric(float64(b.N*members)/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(lat.percentile(0.5).Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat.percentile(0.99).Microseconds()), "p99-µs")
}
