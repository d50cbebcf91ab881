package signalhub

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/signalhub/signalhub/backplane"
)

// atomicMetrics is Metrics that do what an exporter's hooks should do on
// the hot paths: add to atomic counters, to be read when metrics are
// collected. The benchmarks below compare the hub with it and without.
type atomicMetrics struct {
	conns, messages, bytes, received, invocations, publishes atomic.Int64
}

func (a *atomicMetrics) metrics() *Metrics {
	return &Metrics{
		ConnectionOpened: func(ConnectionInfo) { a.conns.Add(1) },
		ConnectionClosed: func(ConnectionInfo, time.Duration, error) { a.conns.Add(-1) },
		MessagesSent: func(_ ConnectionInfo, n, bytes int) {
			a.messages.Add(int64(n))
			a.bytes.Add(int64(bytes))
		},
		MessageReceived:    func(ConnectionInfo, int) { a.received.Add(1) },
		InvocationDone:     func(ConnectionInfo, string, time.Duration, error) { a.invocations.Add(1) },
		BackplanePublished: func(backplane.Kind, time.Duration, error) { a.publishes.Add(1) },
	}
}

// BenchmarkSendToGroupMetrics is BenchmarkSendToGroup with Options.Metrics
// set: a send's fan-out calls no hook, so it must cost the same, with the
// same 2 allocations per send.
func BenchmarkSendToGroupMetrics(b *testing.B) {
	benchSendToGroup(b, &Options{Metrics: new(atomicMetrics).metrics()}, groupSizes, attachJSONConns)
}

// BenchmarkSendToGroupDeliveredMetrics is BenchmarkSendToGroupDelivered
// with Options.Metrics set: every writer reports each batch it writes. It
// checks at the end that every delivery was counted.
func BenchmarkSendToGroupDeliveredMetrics(b *testing.B) {
	a := new(atomicMetrics)
	benchSendToGroupDelivered(b, a.metrics())
	if a.messages.Load() == 0 || a.bytes.Load() == 0 {
		b.Fatalf("%d messages and %d bytes counted", a.messages.Load(), a.bytes.Load())
	}
}
