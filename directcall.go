package signalhub

import "encoding/json"

// directCall calls a hub method without reflection: it binds args (as
// many as the method takes, which the caller has checked) to the method's
// parameters with bind and calls it with cx. bound is false when an
// argument does not fit its parameter; the method then does not run.
type directCall func(cx *Context, bind func(raw []byte, v any) error, args []json.RawMessage) (bound bool, err error)

// directCallOf returns a directCall of fn for the signatures hub methods
// have most, or nil: up to two parameters after the *Context, each a
// string (names, text) or a json.RawMessage (a payload passed on as it
// came), and no result but an optional error. reflect.Value.Call costs
// more than the rest of a small method's invocation, and its frames grow
// the worker goroutine's stack past 4 KiB, which the garbage collector
// shrinks again while the worker waits. Other signatures, and every
// method when filters wrap invocations, go through reflection.
func directCallOf(fn any) directCall {
	type raw = json.RawMessage
	switch fn := fn.(type) {
	case func(*Context):
		return direct0(func(c *Context) error { fn(c); return nil })
	case func(*Context) error:
		return direct0(fn)
	case func(*Context, string):
		return direct1(noError1(fn))
	case func(*Context, string) error:
		return direct1(fn)
	case func(*Context, raw):
		return direct1(noError1(fn))
	case func(*Context, raw) error:
		return direct1(fn)
	case func(*Context, string, string):
		return direct2(noError2(fn))
	case func(*Context, string, string) error:
		return direct2(fn)
	case func(*Context, string, raw):
		return direct2(noError2(fn))
	case func(*Context, string, raw) error:
		return direct2(fn)
	case func(*Context, raw, string):
		return direct2(noError2(fn))
	case func(*Context, raw, string) error:
		return direct2(fn)
	case func(*Context, raw, raw):
		return direct2(noError2(fn))
	case func(*Context, raw, raw) error:
		return direct2(fn)
	}
	return nil
}

func direct0(fn func(*Context) error) directCall {
	return func(cx *Context, _ func([]byte, any) error, _ []json.RawMessage) (bool, error) {
		return true, fn(cx)
	}
}

func direct1[A any](fn func(*Context, A) error) directCall {
	return func(cx *Context, bind func([]byte, any) error, args []json.RawMessage) (bool, error) {
		var a A
		if bind(args[0], &a) != nil {
			return false, nil
		}
		return true, fn(cx, a)
	}
}

func direct2[A, B any](fn func(*Context, A, B) error) directCall {
	return func(cx *Context, bind func([]byte, any) error, args []json.RawMessage) (bool, error) {
		var a A
		var b B
		if bind(args[0], &a) != nil || bind(args[1], &b) != nil {
			return false, nil
		}
		return true, fn(cx, a, b)
	}
}

func noError1[A any](fn func(*Context, A)) func(*Context, A) error {
	return func(c *Context, a A) error { fn(c, a); return nil }
}

func noError2[A, B any](fn func(*Context, A, B)) func(*Context, A, B) error {
	return func(c *Context, a A, b B) error { fn(c, a, b); return nil }
}
