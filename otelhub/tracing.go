package otelhub

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/signalhub/signalhub"
)

// AttrConnectionID is the ID of the connection whose hub method a span
// traces. It is on spans only: metrics would get one series per
// connection.
const AttrConnectionID attribute.Key = "signalhub.connection.id"

// TracingOptions configures Tracing.
type TracingOptions struct {
	// TracerProvider provides the tracer. Defaults to
	// otel.GetTracerProvider().
	TracerProvider trace.TracerProvider

	// Service names the hub in spans: their rpc.service attribute, and
	// the first part of their names, "Service/Method", as ASP.NET Core
	// names them after the hub class. Defaults to none: spans are named
	// after the method alone.
	Service string
}

// Tracing returns a filter that traces every hub method invocation with a
// span of kind server, named after the method (see
// TracingOptions.Service), with the attributes rpc.system ("signalr"),
// rpc.method (the name registered in Options.Methods) and
// AttrConnectionID. An invocation that fails, with an error or a panic,
// gets the span status Error, the error as an event and AttrErrorType.
//
// The span's parent is the span in the invocation's context,
// Context.Context(): the connection's, or the stream's for a streaming
// invocation; clients propagate none. The hub method gets the span in its
// Context.Context() (see signalhub.Context.WithContext), so that what it
// traces in turn nests under it. For a method that streams its result,
// the span covers the call that returns the stream.
//
// Put it first in Options.Filters to trace the other filters too:
//
//	Filters: []signalhub.Filter{otelhub.Tracing(nil), authorize}
func Tracing(opts *TracingOptions) signalhub.Filter {
	var o TracingOptions
	if opts != nil {
		o = *opts
	}
	tp := o.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	tracer := tp.Tracer(ScopeName)
	prefix := ""
	fixed := []attribute.KeyValue{attribute.String("rpc.system", "signalr")}
	if o.Service != "" {
		prefix = o.Service + "/"
		fixed = append(fixed, attribute.String("rpc.service", o.Service))
	}
	return signalhub.Filter{Invoke: func(c *signalhub.Context, inv *signalhub.Invocation,
		next func(*signalhub.Context, *signalhub.Invocation) (any, error)) (res any, err error) {
		attrs := make([]attribute.KeyValue, 0, len(fixed)+2)
		attrs = append(attrs, fixed...)
		attrs = append(attrs, AttrMethod.String(inv.Method), AttrConnectionID.String(c.ConnectionID()))
		ctx, span := tracer.Start(c.Context(), prefix+inv.Method,
			trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
		defer span.End()
		panicked := true
		defer func() {
			if panicked {
				// The hub recovers it; the span says what happened.
				span.SetStatus(codes.Error, "panic")
				span.SetAttributes(AttrErrorType.String("panic"))
			}
		}()
		res, err = next(c.WithContext(ctx), inv)
		panicked = false
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			span.SetAttributes(AttrErrorType.String(errorTypes[errorType(err)]))
		}
		return res, err
	}}
}
