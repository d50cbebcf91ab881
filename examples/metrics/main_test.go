package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/client"
	"github.com/signalhub/signalhub/examples/chatapp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestMetricsEndpoint runs the example on a loopback port, has a client
// connect, invoke, send and leave, then scrapes /metrics and finds what
// happened there: the connection gone from the active ones, its duration
// recorded, the invocations counted under the method's name, and every
// message in and out.
func TestMetricsEndpoint(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	disconnected := make(chan error, 1)
	cfg := chatapp.Config{
		Key:    []byte("test-key"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Hub: signalhub.Options{
			KeepAliveInterval: time.Hour, // no Pings from the hub among the counted messages
			OnDisconnected:    func(_ *signalhub.Context, err error) { disconnected <- err },
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serve(ctx, ln, cfg) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-served)
	})
	base := "http://" + ln.Addr().String()

	waitCtx, waitCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer waitCancel()
	// No keep-alive Pings either, but the one the client sends as it
	// connects.
	c, err := client.New(base+"/chathub", &client.Options{KeepAliveInterval: time.Hour})
	require.NoError(t, err)
	received := make(chan string, 2)
	require.NoError(t, c.On("ReceiveMessage", func(user, message string) { received <- message }))
	require.NoError(t, c.Start(waitCtx))
	_, err = c.Invoke(waitCtx, "SendMessage", "hello")
	require.NoError(t, err)
	require.NoError(t, c.Send(waitCtx, "SendMessage", "again"))
	for _, want := range []string{"hello", "again"} {
		select {
		case got := <-received:
			assert.Equal(t, want, got)
		case <-waitCtx.Done():
			require.FailNow(t, "message not received", want)
		}
	}
	require.NoError(t, c.Close())
	select {
	case err := <-disconnected:
		require.NoError(t, err, "a close by the client")
	case <-waitCtx.Done():
		require.FailNow(t, "the hub did not see the client leave")
	}

	families := scrape(t, base+"/metrics")
	conn := map[string]string{"signalr_transport": "web_sockets", "signalhub_protocol": "json"}
	closed := map[string]string{"signalr_transport": "web_sockets", "signalhub_protocol": "json", "signalr_connection_status": "normal_closure"}
	checks := []struct {
		family string
		labels map[string]string
		value  func(*dto.Metric) float64
		want   float64
	}{
		{"signalr_server_active_connections", conn, gauge, 0},
		{"signalr_server_connection_duration_seconds", closed, histCount, 1},
		{"signalhub_server_invocation_duration_seconds", map[string]string{"rpc_method": "SendMessage"}, histCount, 2},
		// The Completion of the invoke, and ReceiveMessage twice.
		{"signalhub_server_sent_messages_total", conn, counter, 3},
		// The first Ping, the invoke, the send and the Close message.
		{"signalhub_server_received_messages_total", conn, counter, 4},
	}
	for _, c := range checks {
		m := find(t, families, c.family, c.labels)
		if m != nil {
			assert.Equal(t, c.want, c.value(m), "%s%v", c.family, c.labels)
		}
	}
	for _, name := range []string{"signalhub_server_sent_bytes_total", "signalhub_server_received_bytes_total"} {
		if m := find(t, families, name, conn); m != nil {
			assert.Greater(t, counter(m), float64(len(`{"type":6}`)*3), name)
		}
	}
	dur := find(t, families, "signalr_server_connection_duration_seconds", closed)
	if dur != nil {
		assert.Positive(t, dur.GetHistogram().GetSampleSum())
	}
}

// scrape GETs url and parses Prometheus's text format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	require.NoError(t, err, "%s", body)
	return families
}

// find returns the metric of family whose labels include labels, failing
// the test (and returning nil) when there is none.
func find(t *testing.T, families map[string]*dto.MetricFamily, family string, labels map[string]string) *dto.Metric {
	t.Helper()
	f, ok := families[family]
	if !assert.True(t, ok, "no family %s among %d", family, len(families)) {
		return nil
	}
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range labels {
			match = match && have[k] == v
		}
		if match {
			return m
		}
	}
	assert.Fail(t, "no such series", "%s%v among %v", family, labels, f.GetMetric())
	return nil
}

func gauge(m *dto.Metric) float64     { return m.GetGauge().GetValue() }
func counter(m *dto.Metric) float64   { return m.GetCounter().GetValue() }
func histCount(m *dto.Metric) float64 { return float64(m.GetHistogram().GetSampleCount()) }
