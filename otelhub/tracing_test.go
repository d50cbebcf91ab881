package otelhub_test

import (
	"context"
	"errors"
	"iter"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/hubtest"
	"github.com/signalhub/signalhub/otelhub"
)

// newTracer returns a tracer provider whose ended spans the recorder
// keeps.
func newTracer(t *testing.T) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	t.Helper()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { require.NoError(t, tp.Shutdown(context.Background())) })
	return tp, sr
}

// ended returns the ended spans by name.
func ended(sr *tracetest.SpanRecorder) map[string]sdktrace.ReadOnlySpan {
	out := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range sr.Ended() {
		out[s.Name()] = s
	}
	return out
}

func attrsOf(s sdktrace.ReadOnlySpan) map[attribute.Key]string {
	out := map[attribute.Key]string{}
	for _, kv := range s.Attributes() {
		out[kv.Key] = kv.Value.String()
	}
	return out
}

// TestTracing: each invocation gets a server span named after the hub
// and the method, with the RPC attributes and the connection ID; the
// method's own spans nest under it; a failure sets the status Error, and
// unknown methods make no span.
func TestTracing(t *testing.T) {
	t.Parallel()
	tp, sr := newTracer(t)
	srv := hubtest.NewServer(t, hubtest.NewHub(t, &signalhub.Options{
		Filters: []signalhub.Filter{otelhub.Tracing(&otelhub.TracingOptions{TracerProvider: tp, Service: "ChatHub"})},
		Methods: map[string]any{
			"Add": func(c *signalhub.Context, a, b int) int {
				_, span := tp.Tracer("app").Start(c.Context(), "work")
				span.End()
				return a + b
			},
			"Refuse": func(c *signalhub.Context) error { return signalhub.HubError{Message: "not allowed"} },
			"Fail":   func(c *signalhub.Context) error { return errors.New("database down") },
			"Count":  func(c *signalhub.Context, n int) iter.Seq[int] { return slices.Values(make([]int, n)) },
		},
	}))
	cl := srv.Connect("alice")
	cl.MustInvoke("add", 1, 2)
	for _, m := range []string{"Refuse", "Fail", "Missing"} {
		_, err := cl.Invoke(m)
		require.Error(t, err, m)
	}
	assert.Len(t, cl.MustStream("Count", 2), 2)

	spans := ended(sr)
	names := make([]string, 0, len(spans))
	for n := range spans {
		names = append(names, n)
	}
	assert.ElementsMatch(t, []string{"work", "ChatHub/Add", "ChatHub/Refuse", "ChatHub/Fail", "ChatHub/Count"}, names)

	add := spans["ChatHub/Add"]
	require.NotNil(t, add)
	assert.Equal(t, trace.SpanKindServer, add.SpanKind())
	assert.Equal(t, map[attribute.Key]string{
		"rpc.system": "signalr", "rpc.service": "ChatHub", "rpc.method": "Add", "signalhub.connection.id": cl.ID(),
	}, attrsOf(add))
	assert.Equal(t, codes.Unset, add.Status().Code)
	assert.False(t, add.Parent().IsValid(), "the connection's context carries no span")
	work := spans["work"]
	require.NotNil(t, work)
	assert.Equal(t, add.SpanContext().SpanID(), work.Parent().SpanID(), "the method's span nests under the invocation's")
	assert.Equal(t, add.SpanContext().TraceID(), work.SpanContext().TraceID())

	for name, errType := range map[string]string{"ChatHub/Refuse": "hub_error", "ChatHub/Fail": "_OTHER"} {
		s := spans[name]
		require.NotNil(t, s, name)
		assert.Equal(t, codes.Error, s.Status().Code, name)
		assert.Equal(t, errType, attrsOf(s)["error.type"], name)
		require.Len(t, s.Events(), 1, name)
		assert.Equal(t, "exception", s.Events()[0].Name, name)
	}
	assert.Equal(t, "not allowed", spans["ChatHub/Refuse"].Status().Description)
	assert.Equal(t, "database down", spans["ChatHub/Fail"].Status().Description)
	assert.Equal(t, codes.Unset, spans["ChatHub/Count"].Status().Code)
}

// TestTracingPanicAndDefaults: without a Service, spans are named after
// the method; a panic in a later filter sets the status Error, and the
// hub recovers it as ever.
func TestTracingPanicAndDefaults(t *testing.T) {
	t.Parallel()
	tp, sr := newTracer(t)
	srv := hubtest.NewServer(t, hubtest.NewHub(t, &signalhub.Options{
		Filters: []signalhub.Filter{
			otelhub.Tracing(&otelhub.TracingOptions{TracerProvider: tp}),
			{Invoke: func(c *signalhub.Context, inv *signalhub.Invocation,
				next func(*signalhub.Context, *signalhub.Invocation) (any, error)) (any, error) {
				if inv.Method == "Boom" {
					panic("filter bug")
				}
				return next(c, inv)
			}},
		},
		Methods: map[string]any{
			"Boom": func(c *signalhub.Context) {},
			"Ok":   func(c *signalhub.Context) {},
		},
	}))
	cl := srv.Connect("")
	_, err := cl.Invoke("Boom")
	require.Error(t, err)
	cl.MustInvoke("Ok")

	spans := ended(sr)
	require.Len(t, spans, 2)
	boom := spans["Boom"]
	require.NotNil(t, boom)
	assert.Equal(t, codes.Error, boom.Status().Code)
	assert.Equal(t, "panic", attrsOf(boom)["error.type"])
	ok := spans["Ok"]
	require.NotNil(t, ok)
	assert.Equal(t, codes.Unset, ok.Status().Code)
	assert.NotContains(t, attrsOf(ok), attribute.Key("rpc.service"))
}
