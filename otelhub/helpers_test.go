package otelhub_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/otelhub"
)

// newMetrics returns a Metrics on a meter provider of its own, read by
// the returned in-memory reader.
func newMetrics(t *testing.T) (*otelhub.Metrics, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { require.NoError(t, mp.Shutdown(context.Background())) })
	m, err := otelhub.NewMetrics(&otelhub.MetricsOptions{MeterProvider: mp})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	return m, reader
}

// scrape is one collection, by metric name.
type scrape map[string]metricdata.Metrics

func collect(t *testing.T, r *sdkmetric.ManualReader) scrape {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	out := scrape{}
	for _, sm := range rm.ScopeMetrics {
		require.Equal(t, otelhub.ScopeName, sm.Scope.Name)
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// sum returns the value of the int64 sum's point whose attributes are
// exactly attrs; ok is false when there is none.
func (s scrape) sum(t *testing.T, name string, attrs ...attribute.KeyValue) (v int64, ok bool) {
	t.Helper()
	m, found := s[name]
	if !found {
		return 0, false
	}
	data, isSum := m.Data.(metricdata.Sum[int64])
	require.True(t, isSum, "%s is a %T", name, m.Data)
	want := attribute.NewSet(attrs...)
	for _, dp := range data.DataPoints {
		if dp.Attributes.Equals(&want) {
			return dp.Value, true
		}
	}
	return 0, false
}

// hist returns the float64 histogram's point whose attributes are exactly
// attrs; ok is false when there is none.
func (s scrape) hist(t *testing.T, name string, attrs ...attribute.KeyValue) (dp metricdata.HistogramDataPoint[float64], ok bool) {
	t.Helper()
	m, found := s[name]
	if !found {
		return dp, false
	}
	data, isHist := m.Data.(metricdata.Histogram[float64])
	require.True(t, isHist, "%s is a %T", name, m.Data)
	want := attribute.NewSet(attrs...)
	for _, p := range data.DataPoints {
		if p.Attributes.Equals(&want) {
			return p, true
		}
	}
	return dp, false
}

// points lists every point of a metric with its attributes, for failure
// messages and for checks on which series exist.
func (s scrape) points(name string) []string {
	var out []string
	switch d := s[name].Data.(type) {
	case metricdata.Sum[int64]:
		for _, dp := range d.DataPoints {
			out = append(out, fmt.Sprintf("%s=%d", dp.Attributes.Encoded(attribute.DefaultEncoder()), dp.Value))
		}
	case metricdata.Histogram[float64]:
		for _, dp := range d.DataPoints {
			out = append(out, fmt.Sprintf("%s count=%d", dp.Attributes.Encoded(attribute.DefaultEncoder()), dp.Count))
		}
	}
	return out
}

// disconnects records OnDisconnected by connection ID.
type disconnects struct {
	mu   sync.Mutex
	errs map[string]chan error
}

func newDisconnects() *disconnects { return &disconnects{errs: map[string]chan error{}} }

func (d *disconnects) ch(id string) chan error {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.errs[id]
	if c == nil {
		c = make(chan error, 1)
		d.errs[id] = c
	}
	return c
}

// hook is Options.OnDisconnected.
func (d *disconnects) hook(c *signalhub.Context, err error) { d.ch(c.ConnectionID()) <- err }

// wait returns the error OnDisconnected got for id, failing the test if
// it does not run within 10s.
func (d *disconnects) wait(t *testing.T, id string) error {
	t.Helper()
	select {
	case err := <-d.ch(id):
		return err
	case <-time.After(10 * time.Second):
		require.FailNow(t, "OnDisconnected did not run", "connection %s", id)
		return nil
	}
}

// totals adds up what the hub reported through signalhub.Metrics, by
// connection ID, to check otelhub's figures against.
type totals struct {
	mu     sync.Mutex
	byConn map[string]*counts
}

// counts are one connection's messages and bytes.
type counts struct{ sent, sentBytes, received, receivedBytes int64 }

func newTotals() *totals { return &totals{byConn: map[string]*counts{}} }

func (tot *totals) of(id string) *counts {
	c := tot.byConn[id]
	if c == nil {
		c = &counts{}
		tot.byConn[id] = c
	}
	return c
}

// tee returns hooks that call m's and count messages in tot.
func tee(m *signalhub.Metrics, tot *totals) *signalhub.Metrics {
	out := *m
	out.MessagesSent = func(c signalhub.ConnectionInfo, n, bytes int) {
		tot.mu.Lock()
		tot.of(c.ID).sent += int64(n)
		tot.of(c.ID).sentBytes += int64(bytes)
		tot.mu.Unlock()
		m.MessagesSent(c, n, bytes)
	}
	out.MessageReceived = func(c signalhub.ConnectionInfo, bytes int) {
		tot.mu.Lock()
		tot.of(c.ID).received++
		tot.of(c.ID).receivedBytes += int64(bytes)
		tot.mu.Unlock()
		m.MessageReceived(c, bytes)
	}
	return &out
}

// get returns the counts of connection id, or of all of them for "".
func (tot *totals) get(id string) counts {
	tot.mu.Lock()
	defer tot.mu.Unlock()
	if id != "" {
		return *tot.of(id)
	}
	var sum counts
	for _, c := range tot.byConn {
		sum.sent += c.sent
		sum.sentBytes += c.sentBytes
		sum.received += c.received
		sum.receivedBytes += c.receivedBytes
	}
	return sum
}

func joined(s []string) string { return strings.Join(s, "; ") }
