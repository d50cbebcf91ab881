package signalhub

import "context"

// WithContext returns a copy of c whose Context method returns ctx; the
// rest is c's, connection and item store included. A Filter uses it to
// hand the hub method a context carrying values, such as a trace span:
//
//	ctx, span := tracer.Start(c.Context(), inv.Method)
//	defer span.End()
//	return next(c.WithContext(ctx), inv)
//
// ctx should derive from c.Context(), so that it still ends when the
// connection does (or the client cancels the stream). A nil ctx panics.
func (c *Context) WithContext(ctx context.Context) *Context {
	if ctx == nil {
		panic("signalhub: Context.WithContext: nil context")
	}
	return &Context{conn: c.conn, ctx: ctx}
}
