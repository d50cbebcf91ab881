// Package otelhub records the metrics of a signalhub hub with OpenTelemetry
// and traces its hub method invocations.
//
// It is a module of its own, so that the hub itself depends on no
// OpenTelemetry package: the hub reports what happens through the funcs of
// signalhub.Options.Metrics, which cost nothing when unset, and otelhub
// turns them into OpenTelemetry instruments.
//
//	metrics, err := otelhub.NewMetrics(&otelhub.MetricsOptions{MeterProvider: provider})
//	if err != nil {
//		return err
//	}
//	hub, err := signalhub.New(&signalhub.Options{
//		Methods: methods,
//		Metrics: metrics.Hooks(),
//		Filters: []signalhub.Filter{otelhub.Tracing(nil)}, // spans, from the global tracer provider
//	})
//
// # Metrics
//
// Connections follow ASP.NET Core SignalR's metrics, with the attributes
// of OpenTelemetry's semantic conventions for them, so that dashboards
// made for ASP.NET Core work: signalr.server.active_connections and
// signalr.server.connection.duration. The other metrics are signalhub's
// own, in the same style (see the Metric constants): slow-consumer
// closes, messages and bytes sent and received, hub method invocations
// (duration and errors, per method) and backplane publishes (duration and
// errors, per kind of message). Every attribute takes a small, fixed set
// of values; the method attribute takes the names registered in
// Options.Methods only, whatever clients invoke.
//
// Metrics stays off the hot paths: a send's fan-out calls nothing, a
// connection's writer and reader add to atomic counters that
// asynchronous instruments read when the metrics are collected, and
// what is recorded as it happens (connections, invocations, publishes) is
// recorded with attribute sets made once.
//
// # Tracing
//
// Tracing is a signalhub.Filter that wraps every hub method invocation in
// a span and hands the span to the method in its Context, so that the
// method's own spans nest under it.
package otelhub
