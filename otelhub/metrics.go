package otelhub

import (
	"context"
	"errors"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/backplane"
	"github.com/signalhub/signalhub/protocol"
)

// ScopeName is the instrumentation scope of the meter and the tracer that
// otelhub uses.
const ScopeName = "github.com/signalhub/signalhub/otelhub"

// The metrics that Metrics records. The first two are ASP.NET Core
// SignalR's, with the attributes of OpenTelemetry's semantic conventions
// for them; the others are signalhub's own, named in the same style.
const (
	// MetricActiveConnections counts the connections open now
	// (UpDownCounter, {connection}), by AttrTransport and AttrProtocol.
	MetricActiveConnections = "signalr.server.active_connections"
	// MetricConnectionDuration is how long connections lasted (Histogram,
	// s), by AttrConnectionStatus, AttrTransport and AttrProtocol.
	MetricConnectionDuration = "signalr.server.connection.duration"
	// MetricSlowConsumerCloses counts the connections closed because their
	// outgoing queue was full (Counter, {connection}), by AttrTransport and
	// AttrProtocol.
	MetricSlowConsumerCloses = "signalhub.server.connection.slow_consumer_closes"
	// MetricSentMessages counts the hub protocol messages written to
	// connections (Counter, {message}), by AttrTransport and AttrProtocol.
	MetricSentMessages = "signalhub.server.sent.messages"
	// MetricSentBytes counts their bytes (Counter, By).
	MetricSentBytes = "signalhub.server.sent.bytes"
	// MetricReceivedMessages counts the hub protocol messages received
	// after the handshakes (Counter, {message}), by AttrTransport and
	// AttrProtocol.
	MetricReceivedMessages = "signalhub.server.received.messages"
	// MetricReceivedBytes counts their bytes (Counter, By).
	MetricReceivedBytes = "signalhub.server.received.bytes"
	// MetricInvocationDuration is how long hub method invocations took
	// (Histogram, s), by AttrMethod and, for those that failed,
	// AttrErrorType.
	MetricInvocationDuration = "signalhub.server.invocation.duration"
	// MetricInvocationErrors counts the invocations that failed (Counter,
	// {invocation}), by AttrMethod and AttrErrorType.
	MetricInvocationErrors = "signalhub.server.invocation.errors"
	// MetricPublishDuration is how long backplane publishes took
	// (Histogram, s), by AttrBackplaneKind and, for those that failed,
	// AttrErrorType.
	MetricPublishDuration = "signalhub.backplane.publish.duration"
	// MetricPublishErrors counts the backplane publishes that failed
	// (Counter, {message}), by AttrBackplaneKind and AttrErrorType.
	MetricPublishErrors = "signalhub.backplane.publish.errors"
)

// The attributes of the metrics and spans. Each has a small, fixed set of
// values, except AttrMethod, which takes the names of the registered hub
// methods only, and AttrConnectionID, which is on spans only.
const (
	// AttrTransport is the connection's transport: "web_sockets",
	// "server_sent_events" or "long_polling", as in ASP.NET Core.
	AttrTransport attribute.Key = "signalr.transport"
	// AttrConnectionStatus says why a connection ended: "normal_closure"
	// (the client closed it, or a hub method with Context.Abort),
	// "app_shutdown" (Hub.Shutdown or Hub.Close), "timeout" (the client
	// went silent, or a write took too long), as in ASP.NET Core, and
	// signalhub's own "slow_consumer", "auth_expired",
	// "user_disconnected" (Hub.DisconnectUser), "protocol_error" (a
	// malformed or oversize message), "policy_violation" (the invocation
	// rate or pending invocations limit) and "error" (the transport
	// failed, OnConnected returned an error, ...).
	AttrConnectionStatus attribute.Key = "signalr.connection.status"
	// AttrProtocol is the connection's hub protocol: "json" or
	// "messagepack".
	AttrProtocol attribute.Key = "signalhub.protocol"
	// AttrMethod is the hub method's name as registered in
	// signalhub.Options.Methods.
	AttrMethod attribute.Key = "rpc.method"
	// AttrErrorType says how an invocation or a publish failed:
	// "hub_error" (a signalhub.HubError), "unavailable" and "closed"
	// (backplane.ErrUnavailable and backplane.ErrClosed), "canceled" and
	// "timeout" (context.Canceled and context.DeadlineExceeded), or
	// "_OTHER" (a hub method's panic included, which the hub turns into
	// an error); on spans also "panic", for a panic in a filter that
	// Tracing wraps.
	AttrErrorType attribute.Key = "error.type"
	// AttrBackplaneKind is the kind of a backplane message, in snake case:
	// "invocation", "add_to_group", "remove_from_group", "reply",
	// "heartbeat", "query" or "client_invocation".
	AttrBackplaneKind attribute.Key = "signalhub.backplane.message.kind"
)

// MetricsOptions configures NewMetrics.
type MetricsOptions struct {
	// MeterProvider provides the meter of the instruments. Defaults to
	// otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
}

// Metrics records hubs' measurements (see signalhub.Metrics) with
// OpenTelemetry instruments. Pass its Hooks in signalhub.Options.Metrics;
// one Metrics may serve several hubs, whose figures it adds up.
//
// On the hot paths, a connection's writer and reader, it only adds to
// atomic counters, which asynchronous instruments report when the metrics
// are collected; connections, invocations and publishes are recorded as
// they end, with attribute sets made once, so that only a method's first
// invocation and a failure's classification (errors.As) allocate. A
// Metrics is safe for concurrent use.
type Metrics struct {
	active        metric.Int64UpDownCounter
	duration      metric.Float64Histogram
	slow          metric.Int64Counter
	sent          metric.Int64ObservableCounter
	sentBytes     metric.Int64ObservableCounter
	received      metric.Int64ObservableCounter
	receivedBytes metric.Int64ObservableCounter
	invDuration   metric.Float64Histogram
	invErrors     metric.Int64Counter
	pubDuration   metric.Float64Histogram
	pubErrors     metric.Int64Counter
	reg           metric.Registration

	series [len(transports)][len(protocols)]connSeries
	kinds  [len(kindNames)]outcomes

	methods   atomic.Pointer[map[string]*outcomes] // copied on write
	methodsMu sync.Mutex                           // serialises the writes of methods
}

// connSeries are the counters and attribute sets of the connections of
// one transport and protocol.
type connSeries struct {
	used                                     atomic.Bool // a connection opened: observe the counters
	sent, sentBytes, received, receivedBytes atomic.Int64

	add     []metric.AddOption     // transport and protocol
	observe []metric.ObserveOption // the same
	closed  [len(statuses)][]metric.RecordOption
}

// outcomes are the attribute sets of a method's invocations, or of one
// kind of backplane publish: ok for a success, and per error type for a
// failure.
type outcomes struct {
	ok     []metric.RecordOption
	failed [len(errorTypes)]struct {
		record []metric.RecordOption
		add    []metric.AddOption
	}
}

var (
	transports = [...]string{"web_sockets", "server_sent_events", "long_polling", "_OTHER"}
	protocols  = [...]string{protocol.ProtocolJSON, protocol.ProtocolMessagePack, "_OTHER"}
	statuses   = [...]string{
		statusNormal: "normal_closure", statusShutdown: "app_shutdown", statusTimeout: "timeout",
		statusSlowConsumer: "slow_consumer", statusAuthExpired: "auth_expired",
		statusUserDisconnected: "user_disconnected", statusProtocolError: "protocol_error",
		statusPolicyViolation: "policy_violation", statusError: "error",
	}
	errorTypes = [...]string{
		errHub: "hub_error", errUnavailable: "unavailable", errClosed: "closed",
		errCanceled: "canceled", errTimeout: "timeout", errOther: "_OTHER",
	}
	// kindNames are indexed by backplane.Kind; 0 stands for the kinds
	// this version does not know.
	kindNames = [...]string{
		0: "_OTHER", backplane.Invocation: "invocation", backplane.AddToGroup: "add_to_group",
		backplane.RemoveFromGroup: "remove_from_group", backplane.Reply: "reply",
		backplane.Heartbeat: "heartbeat", backplane.Query: "query", backplane.ClientInvocation: "client_invocation",
	}
)

// Indexes in statuses.
const (
	statusNormal = iota
	statusShutdown
	statusTimeout
	statusSlowConsumer
	statusAuthExpired
	statusUserDisconnected
	statusProtocolError
	statusPolicyViolation
	statusError
)

// Indexes in errorTypes.
const (
	errHub = iota
	errUnavailable
	errClosed
	errCanceled
	errTimeout
	errOther
)

// Bucket boundaries, in seconds: those the semantic conventions advise
// for signalr.server.connection.duration; OpenTelemetry's for request
// durations; and finer ones for publishes, which take a network round
// trip at most.
var (
	connectionBuckets = []float64{0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300}
	invocationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
	publishBuckets    = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}
)

// NewMetrics creates the instruments of every metric on the meter
// provider of opts (nil means defaults) and registers the callback of the
// asynchronous ones; Close unregisters it. It returns the provider's
// error for an instrument it could not create.
func NewMetrics(opts *MetricsOptions) (*Metrics, error) {
	var mp metric.MeterProvider
	if opts != nil {
		mp = opts.MeterProvider
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(ScopeName)
	m := &Metrics{}
	var errs []error
	check := func(err error) { errs = append(errs, err) }
	var err error
	m.active, err = meter.Int64UpDownCounter(MetricActiveConnections, metric.WithUnit("{connection}"),
		metric.WithDescription("Number of connections that are currently active on the server."))
	check(err)
	m.duration, err = meter.Float64Histogram(MetricConnectionDuration, metric.WithUnit("s"),
		metric.WithDescription("The duration of connections on the server."),
		metric.WithExplicitBucketBoundaries(connectionBuckets...))
	check(err)
	m.slow, err = meter.Int64Counter(MetricSlowConsumerCloses, metric.WithUnit("{connection}"),
		metric.WithDescription("Connections closed because their outgoing queue was full."))
	check(err)
	m.sent, err = meter.Int64ObservableCounter(MetricSentMessages, metric.WithUnit("{message}"),
		metric.WithDescription("Hub protocol messages written to connections."))
	check(err)
	m.sentBytes, err = meter.Int64ObservableCounter(MetricSentBytes, metric.WithUnit("By"),
		metric.WithDescription("Bytes of the hub protocol messages written to connections."))
	check(err)
	m.received, err = meter.Int64ObservableCounter(MetricReceivedMessages, metric.WithUnit("{message}"),
		metric.WithDescription("Hub protocol messages received from connections after their handshakes."))
	check(err)
	m.receivedBytes, err = meter.Int64ObservableCounter(MetricReceivedBytes, metric.WithUnit("By"),
		metric.WithDescription("Bytes of the hub protocol messages received from connections."))
	check(err)
	m.invDuration, err = meter.Float64Histogram(MetricInvocationDuration, metric.WithUnit("s"),
		metric.WithDescription("The duration of hub method invocations."),
		metric.WithExplicitBucketBoundaries(invocationBuckets...))
	check(err)
	m.invErrors, err = meter.Int64Counter(MetricInvocationErrors, metric.WithUnit("{invocation}"),
		metric.WithDescription("Hub method invocations that failed."))
	check(err)
	m.pubDuration, err = meter.Float64Histogram(MetricPublishDuration, metric.WithUnit("s"),
		metric.WithDescription("The duration of backplane publishes."),
		metric.WithExplicitBucketBoundaries(publishBuckets...))
	check(err)
	m.pubErrors, err = meter.Int64Counter(MetricPublishErrors, metric.WithUnit("{message}"),
		metric.WithDescription("Backplane publishes that failed."))
	check(err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	for t := range m.series {
		for p := range m.series[t] {
			s := &m.series[t][p]
			attrs := []attribute.KeyValue{AttrTransport.String(transports[t]), AttrProtocol.String(protocols[p])}
			set := metric.WithAttributeSet(attribute.NewSet(attrs...))
			s.add = []metric.AddOption{set}
			s.observe = []metric.ObserveOption{set}
			for st := range statuses {
				s.closed[st] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(
					append(attrs, AttrConnectionStatus.String(statuses[st]))...))}
			}
		}
	}
	for k := range m.kinds {
		m.kinds[k] = newOutcomes(AttrBackplaneKind.String(kindNames[k]))
	}
	m.methods.Store(&map[string]*outcomes{})
	m.reg, err = meter.RegisterCallback(m.observe, m.sent, m.sentBytes, m.received, m.receivedBytes)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func newOutcomes(attr attribute.KeyValue) outcomes {
	var o outcomes
	o.ok = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attr))}
	for i, t := range errorTypes {
		set := metric.WithAttributeSet(attribute.NewSet(attr, AttrErrorType.String(t)))
		o.failed[i].record = []metric.RecordOption{set}
		o.failed[i].add = []metric.AddOption{set}
	}
	return o
}

// Hooks returns the signalhub.Metrics to set in signalhub.Options.Metrics.
func (m *Metrics) Hooks() *signalhub.Metrics {
	return &signalhub.Metrics{
		ConnectionOpened:   m.connectionOpened,
		ConnectionClosed:   m.connectionClosed,
		MessagesSent:       m.messagesSent,
		MessageReceived:    m.messageReceived,
		InvocationDone:     m.invocationDone,
		BackplanePublished: m.backplanePublished,
	}
}

// Close unregisters the callback of the asynchronous instruments, which
// then report nothing more. The hubs using m should be shut down first.
func (m *Metrics) Close() error {
	return m.reg.Unregister()
}

// observe reports the message counters of every transport and protocol
// that has had a connection.
func (m *Metrics) observe(_ context.Context, o metric.Observer) error {
	for t := range m.series {
		for p := range m.series[t] {
			s := &m.series[t][p]
			if !s.used.Load() {
				continue
			}
			o.ObserveInt64(m.sent, s.sent.Load(), s.observe...)
			o.ObserveInt64(m.sentBytes, s.sentBytes.Load(), s.observe...)
			o.ObserveInt64(m.received, s.received.Load(), s.observe...)
			o.ObserveInt64(m.receivedBytes, s.receivedBytes.Load(), s.observe...)
		}
	}
	return nil
}

// seriesOf returns the series of c's transport and protocol.
func (m *Metrics) seriesOf(c signalhub.ConnectionInfo) *connSeries {
	t := len(transports) - 1
	switch c.Transport {
	case protocol.TransportWebSockets:
		t = 0
	case protocol.TransportServerSentEvents:
		t = 1
	case protocol.TransportLongPolling:
		t = 2
	}
	p := len(protocols) - 1
	switch c.Protocol {
	case protocol.ProtocolJSON:
		p = 0
	case protocol.ProtocolMessagePack:
		p = 1
	}
	return &m.series[t][p]
}

func (m *Metrics) connectionOpened(c signalhub.ConnectionInfo) {
	s := m.seriesOf(c)
	s.used.Store(true)
	m.active.Add(context.Background(), 1, s.add...)
}

func (m *Metrics) connectionClosed(c signalhub.ConnectionInfo, d time.Duration, cause error) {
	ctx := context.Background()
	s := m.seriesOf(c)
	m.active.Add(ctx, -1, s.add...)
	st := closeStatus(cause)
	m.duration.Record(ctx, d.Seconds(), s.closed[st]...)
	if st == statusSlowConsumer {
		m.slow.Add(ctx, 1, s.add...)
	}
}

func (m *Metrics) messagesSent(c signalhub.ConnectionInfo, n, bytes int) {
	s := m.seriesOf(c)
	s.sent.Add(int64(n))
	s.sentBytes.Add(int64(bytes))
}

func (m *Metrics) messageReceived(c signalhub.ConnectionInfo, bytes int) {
	s := m.seriesOf(c)
	s.received.Add(1)
	s.receivedBytes.Add(int64(bytes))
}

func (m *Metrics) invocationDone(_ signalhub.ConnectionInfo, method string, d time.Duration, err error) {
	m.record(m.method(method), m.invDuration, m.invErrors, d, err)
}

func (m *Metrics) backplanePublished(kind backplane.Kind, d time.Duration, err error) {
	k := 0
	if kind.Known() && int(kind) < len(m.kinds) {
		k = int(kind)
	}
	m.record(&m.kinds[k], m.pubDuration, m.pubErrors, d, err)
}

// record records the duration of an invocation or a publish, and counts
// it as an error if it failed.
func (m *Metrics) record(o *outcomes, h metric.Float64Histogram, errs metric.Int64Counter, d time.Duration, err error) {
	ctx := context.Background()
	if err == nil {
		h.Record(ctx, d.Seconds(), o.ok...)
		return
	}
	f := &o.failed[errorType(err)]
	h.Record(ctx, d.Seconds(), f.record...)
	errs.Add(ctx, 1, f.add...)
}

// method returns the attribute sets of a hub method's invocations, made
// on its first invocation. The hub names registered methods only, so the
// map stays as small as Options.Methods.
func (m *Metrics) method(name string) *outcomes {
	if o := (*m.methods.Load())[name]; o != nil {
		return o
	}
	m.methodsMu.Lock()
	defer m.methodsMu.Unlock()
	old := *m.methods.Load()
	if o := old[name]; o != nil {
		return o
	}
	next := maps.Clone(old)
	o := newOutcomes(AttrMethod.String(name))
	next[name] = &o
	m.methods.Store(&next)
	return &o
}

// closeStatus returns the index in statuses of a connection's end.
func closeStatus(cause error) int {
	switch {
	case cause == nil:
		return statusNormal
	case errors.Is(cause, signalhub.ErrHubClosed):
		return statusShutdown
	case errors.Is(cause, signalhub.ErrClientTimeout), errors.Is(cause, context.DeadlineExceeded):
		return statusTimeout
	case errors.Is(cause, signalhub.ErrSlowConsumer):
		return statusSlowConsumer
	case errors.Is(cause, signalhub.ErrAuthExpired):
		return statusAuthExpired
	case errors.Is(cause, signalhub.ErrUserDisconnected):
		return statusUserDisconnected
	case errors.Is(cause, signalhub.ErrProtocol), errors.Is(cause, signalhub.ErrMessageTooLarge):
		return statusProtocolError
	case errors.Is(cause, signalhub.ErrRateLimited), errors.Is(cause, signalhub.ErrTooManyInvocations):
		return statusPolicyViolation
	}
	return statusError
}

// errorType returns the index in errorTypes of an error.
func errorType(err error) int {
	var he signalhub.HubError
	var hp *signalhub.HubError
	switch {
	case errors.As(err, &he), errors.As(err, &hp) && hp != nil:
		return errHub
	case errors.Is(err, backplane.ErrUnavailable):
		return errUnavailable
	case errors.Is(err, backplane.ErrClosed):
		return errClosed
	case errors.Is(err, context.Canceled):
		return errCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return errTimeout
	}
	return errOther
}
