package otelhub_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/client"
	"github.com/signalhub/signalhub/otelhub"
)

func ExampleNewMetrics() {
	// An in-memory reader stands in for an exporter here; with
	// Prometheus, it would be go.opentelemetry.io/otel/exporters/prometheus.
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(context.Background())

	metrics, err := otelhub.NewMetrics(&otelhub.MetricsOptions{MeterProvider: provider})
	if err != nil {
		log.Fatal(err)
	}
	defer metrics.Close()
	disconnected := make(chan struct{})
	hub, err := signalhub.New(&signalhub.Options{
		Methods:        map[string]any{"Add": func(c *signalhub.Context, a, b int) int { return a + b }},
		Metrics:        metrics.Hooks(),
		Filters:        []signalhub.Filter{otelhub.Tracing(nil)}, // spans too, from the global tracer provider
		OnDisconnected: func(*signalhub.Context, error) { close(disconnected) },
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	hub.Mount(mux, "/hub")
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer hub.Close()

	ctx := context.Background()
	c, err := client.Dial(ctx, srv.URL+"/hub", nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Invoke(ctx, "Add", 40, 2); err != nil {
		log.Fatal(err)
	}
	_ = c.Close()
	<-disconnected

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		log.Fatal(err)
	}
	var lines []string
	for _, m := range rm.ScopeMetrics[0].Metrics {
		switch data := m.Data.(type) {
		case metricdata.Sum[int64]:
			if m.Name == otelhub.MetricActiveConnections {
				lines = append(lines, fmt.Sprint(m.Name, " ", data.DataPoints[0].Value, " ", describe(data.DataPoints[0].Attributes)))
			}
		case metricdata.Histogram[float64]:
			for _, dp := range data.DataPoints {
				lines = append(lines, fmt.Sprint(m.Name, " count ", dp.Count, " ", describe(dp.Attributes)))
			}
		}
	}
	slices.Sort(lines)
	fmt.Println(strings.Join(lines, "\n"))
	// Output:
	// signalhub.server.invocation.duration count 1 rpc.method=Add
	// signalr.server.active_connections 0 signalhub.protocol=json,signalr.transport=web_sockets
	// signalr.server.connection.duration count 1 signalhub.protocol=json,signalr.connection.status=normal_closure,signalr.transport=web_sockets
}

// describe lists attributes as key=value, sorted by key.
func describe(s attribute.Set) string {
	return s.Encoded(attribute.DefaultEncoder())
}
