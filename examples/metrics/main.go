// Command metrics is the chat of examples/chat with its metrics served at
// /metrics for Prometheus to scrape: the hub reports what happens through
// otelhub, which records it with OpenTelemetry, and OpenTelemetry's
// Prometheus exporter serves it in Prometheus's text format.
//
//	go run ./examples/metrics            # http://localhost:5000, metrics at /metrics
//	go run ./examples/metrics -addr 127.0.0.1:8080
//
// A scrape config for it:
//
//	scrape_configs:
//	  - job_name: chat
//	    static_configs:
//	      - targets: ["localhost:5000"]
//
// Hub method invocations are traced too, with the global tracer provider,
// which exports nothing until the program sets one (otel.SetTracerProvider
// with an exporter of your choice).
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/examples/chatapp"
	"github.com/signalhub/signalhub/otelhub"
)

func main() {
	addr := flag.String("addr", "localhost:5000", "address to listen on")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Error("listen failed", "err", err)
		os.Exit(1)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cfg := chatapp.Config{Key: key, BundlePath: chatapp.FindBundle(), Logger: log}
	log.Info("chat listening", "url", "http://"+ln.Addr().String()+"/", "metrics", "http://"+ln.Addr().String()+"/metrics")
	if err := serve(ctx, ln, cfg); err != nil {
		log.Error("chat failed", "err", err)
		os.Exit(1)
	}
}

// serve serves the chat built from cfg, with its metrics at /metrics, on
// ln until ctx ends, then shuts the server and the hub down.
func serve(ctx context.Context, ln net.Listener, cfg chatapp.Config) error {
	// The exporter is a metric reader: each scrape of /metrics collects
	// the current figures. A registry of its own keeps the Go runtime's
	// default collectors out; use prometheus.DefaultRegisterer to have
	// them as well.
	registry := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry))
	if err != nil {
		return err
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer provider.Shutdown(context.Background())
	metrics, err := otelhub.NewMetrics(&otelhub.MetricsOptions{MeterProvider: provider})
	if err != nil {
		return err
	}
	defer metrics.Close()

	cfg.Hub.Metrics = metrics.Hooks()
	cfg.Hub.Filters = append([]signalhub.Filter{otelhub.Tracing(&otelhub.TracingOptions{Service: "ChatHub"})}, cfg.Hub.Filters...)
	app, err := chatapp.New(cfg)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	mux.Handle("/", app.Mux)

	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	// http.Server.Shutdown does not wait for WebSockets: the hub closes
	// them, and serve waits for it.
	hubDone := make(chan error, 1)
	srv.RegisterOnShutdown(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hubDone <- app.Hub.Shutdown(ctx)
	})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	err = srv.Serve(ln)
	cancel() // a failed Serve shuts down too
	<-stopped
	hubErr := <-hubDone
	if !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return hubErr
}
