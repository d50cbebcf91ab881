package otelhub_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/backplane"
	"github.com/signalhub/signalhub/otelhub"
	"github.com/signalhub/signalhub/protocol"
)

// BenchmarkHooks measures each hook with OpenTelemetry's SDK behind it:
// the writer's and reader's hooks are atomic adds, the others one
// synchronous instrument call or two; only classifying a failure
// allocates.
func BenchmarkHooks(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(context.Background())
	m, err := otelhub.NewMetrics(&otelhub.MetricsOptions{MeterProvider: mp})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	h := m.Hooks()
	c := signalhub.ConnectionInfo{ID: "c1", Transport: protocol.TransportWebSockets, Protocol: protocol.ProtocolJSON}
	failed := signalhub.HubError{Message: "no"}
	unavailable := fmt.Errorf("publish: %w", backplane.ErrUnavailable)
	cases := []struct {
		name string
		call func()
	}{
		{"MessagesSent", func() { h.MessagesSent(c, 4, 400) }},
		{"MessageReceived", func() { h.MessageReceived(c, 100) }},
		{"InvocationDone", func() { h.InvocationDone(c, "SendMessage", time.Millisecond, nil) }},
		{"InvocationDone/error", func() { h.InvocationDone(c, "SendMessage", time.Millisecond, failed) }},
		{"ConnectionOpenedClosed", func() {
			h.ConnectionOpened(c)
			h.ConnectionClosed(c, time.Minute, nil)
		}},
		{"BackplanePublished", func() { h.BackplanePublished(backplane.Invocation, time.Millisecond, nil) }},
		{"BackplanePublished/error", func() {
			h.BackplanePublished(backplane.Invocation, time.Millisecond, unavailable)
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tc.call()
			}
		})
	}
}
