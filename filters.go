package signalhub

import (
	"fmt"
	"reflect"
)

// Invocation is a hub method call as a Filter sees it.
type Invocation struct {
	// Method is the hub method's name as registered in Options.Methods.
	Method string
	// Args are the call's decoded arguments, after the *Context. A filter
	// may replace them with values of the same types.
	Args []any
}

// A Filter wraps what the hub does for every connection: hub method
// invocations, OnConnected and OnDisconnected, like ASP.NET Core's hub
// filters. Each field is optional. A filter calls next to go on, or
// returns without calling it to stop there; Options.Filters run in order,
// the first one outermost. Panics in filters are recovered like those of
// hub methods.
//
// Typical filters log, measure, or authorize per method:
//
//	signalhub.Filter{Invoke: func(c *signalhub.Context, inv *signalhub.Invocation,
//		next func(*signalhub.Context, *signalhub.Invocation) (any, error)) (any, error) {
//		if inv.Method == "Ban" && c.Claims().String("role") != "admin" {
//			return nil, signalhub.HubError{Message: "not allowed"}
//		}
//		return next(c, inv)
//	}}
type Filter struct {
	// Invoke wraps every hub method invocation. next runs the rest of the
	// chain and the method, and returns the method's result (nil for a
	// method without one) and error. What Invoke returns is what the
	// client gets: an error becomes an error Completion (see HubError).
	// The Context passed to next is the one the method gets: c, or
	// c.WithContext(ctx) to hand it a context carrying a trace span or
	// other values.
	Invoke func(c *Context, inv *Invocation, next func(*Context, *Invocation) (any, error)) (any, error)

	// OnConnected wraps Options.OnConnected; an error closes the
	// connection as an error from Options.OnConnected does.
	OnConnected func(c *Context, next func(*Context) error) error

	// OnDisconnected wraps Options.OnDisconnected.
	OnDisconnected func(c *Context, err error, next func(*Context, error))
}

// invokeFilters runs the invocation of m with the decoded arguments in
// (after the *Context) through Options.Filters, with cx as the Context.
func (c *conn) invokeFilters(cx *Context, m *method, in []reflect.Value) (result any, err error) {
	inv := &Invocation{Method: m.name, Args: make([]any, len(in)-1)}
	for i, v := range in[1:] {
		inv.Args[i] = v.Interface()
	}
	next := func(cx *Context, inv *Invocation) (any, error) {
		if cx != nil && cx.conn == c {
			in[0] = reflect.ValueOf(cx) // a filter's Context.WithContext
		}
		if len(inv.Args) != len(m.params) {
			return nil, fmt.Errorf("signalhub: a filter passed %d arguments to %s, which takes %d", len(inv.Args), m.name, len(m.params))
		}
		for i, a := range inv.Args {
			v := reflect.ValueOf(a)
			switch {
			case !v.IsValid():
				v = reflect.Zero(m.params[i])
			case !v.Type().AssignableTo(m.params[i]):
				return nil, fmt.Errorf("signalhub: a filter passed %T as argument %d of %s, which takes %s", a, i+1, m.name, m.params[i])
			}
			in[i+1] = v
		}
		out, err := c.call(m, in)
		if err != nil || !m.result {
			return nil, err
		}
		return out[0].Interface(), nil
	}
	filters := c.hub.opts.Filters
	for i := len(filters) - 1; i >= 0; i-- {
		if f := filters[i].Invoke; f != nil {
			inner := next
			next = func(cx *Context, inv *Invocation) (any, error) { return f(cx, inv, inner) }
		}
	}
	err = c.hub.callHook(c, "hub filter", func() error {
		var ferr error
		result, ferr = next(cx, inv)
		return ferr
	})
	return result, err
}

// connectedChain is Options.OnConnected wrapped in the filters' OnConnected.
func (h *Hub) connectedChain() func(*Context) error {
	next := h.opts.OnConnected
	if next == nil {
		next = func(*Context) error { return nil }
	}
	for i := len(h.opts.Filters) - 1; i >= 0; i-- {
		if f := h.opts.Filters[i].OnConnected; f != nil {
			inner := next
			next = func(c *Context) error { return f(c, inner) }
		}
	}
	return next
}

// disconnectedChain is Options.OnDisconnected wrapped in the filters'
// OnDisconnected.
func (h *Hub) disconnectedChain() func(*Context, error) {
	next := h.opts.OnDisconnected
	if next == nil {
		next = func(*Context, error) {}
	}
	for i := len(h.opts.Filters) - 1; i >= 0; i-- {
		if f := h.opts.Filters[i].OnDisconnected; f != nil {
			inner := next
			next = func(c *Context, err error) { f(c, err, inner) }
		}
	}
	return next
}
