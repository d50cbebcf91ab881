package signalhub

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
	"strings"
	"unicode/utf8"

	"github.com/signalhub/signalhub/protocol"
)

// method is a registered hub method, analysed once by reflection.
type method struct {
	name   string
	fn     reflect.Value
	params []reflect.Type // the parameters after *Context
	result bool           // returns a value
	errOut bool           // returns an error (last)

	// stream says how the result streams to the client (streamNone for a
	// method whose result is one value).
	stream streamKind
	// uploads are the indexes in params of the streams from the client;
	// the client sends the other parameters as arguments.
	uploads []int
	// direct calls fn without reflection, for the signatures hub methods
	// have most (see directCallOf); nil for the others.
	direct directCall
}

// args is how many arguments the client sends: the parameters that are
// not streams from the client.
func (m *method) args() int { return len(m.params) - len(m.uploads) }

// streaming reports whether invocations of m run as streams (streams.go):
// the result streams to the client, or the client streams to it.
func (m *method) streaming() bool { return m.stream != streamNone || len(m.uploads) > 0 }

var (
	contextPtrType = reflect.TypeFor[*Context]()
	errorType      = reflect.TypeFor[error]()
)

// newMethod checks fn's signature.
func newMethod(name string, fn any) (*method, error) {
	if fn == nil {
		return nil, fmt.Errorf("signalhub: method %q is nil", name)
	}
	v := reflect.ValueOf(fn)
	t := v.Type()
	if t.Kind() != reflect.Func {
		return nil, fmt.Errorf("signalhub: method %q: want a func, got %T", name, fn)
	}
	if v.IsNil() {
		return nil, fmt.Errorf("signalhub: method %q is a nil func", name)
	}
	if t.NumIn() == 0 || t.In(0) != contextPtrType {
		return nil, fmt.Errorf("signalhub: method %q: first parameter must be *signalhub.Context", name)
	}
	if t.IsVariadic() {
		return nil, fmt.Errorf("signalhub: method %q: variadic methods are not supported", name)
	}
	m := &method{name: name, fn: v, direct: directCallOf(fn)}
	for i := 1; i < t.NumIn(); i++ {
		p := t.In(i)
		if k, _ := uploadKindOf(p); k != streamNone {
			m.uploads = append(m.uploads, i-1)
		} else if p.Kind() == reflect.Chan || p.Kind() == reflect.Func {
			return nil, fmt.Errorf("signalhub: method %q: parameter %d (%s) can be neither sent as JSON nor streamed: "+
				"a stream from the client is a <-chan T or an iter.Seq2[T, error]", name, i, p)
		}
		m.params = append(m.params, p)
	}
	switch t.NumOut() {
	case 0:
	case 1:
		if t.Out(0) == errorType {
			m.errOut = true
		} else {
			m.result = true
		}
	case 2:
		if t.Out(1) != errorType {
			return nil, fmt.Errorf("signalhub: method %q: second result must be error", name)
		}
		m.result, m.errOut = true, true
	default:
		return nil, fmt.Errorf("signalhub: method %q: at most two results (value, error)", name)
	}
	if m.result {
		m.stream = streamKindOf(t.Out(0))
		if m.stream == streamNone && (t.Out(0).Kind() == reflect.Chan || t.Out(0).Kind() == reflect.Func) {
			return nil, fmt.Errorf("signalhub: method %q: result %s can be neither sent as JSON nor streamed: "+
				"a stream to the client is a <-chan T, an iter.Seq[T] or an iter.Seq2[T, error]", name, t.Out(0))
		}
	}
	return m, nil
}

// compileMethods validates Options.Methods into a case-insensitive table.
func compileMethods(in map[string]any) (map[string]*method, error) {
	out := make(map[string]*method, len(in))
	for name, fn := range in {
		if name == "" {
			return nil, fmt.Errorf("signalhub: method name: %w", ErrEmptyName)
		}
		key := strings.ToLower(name)
		if prev, dup := out[key]; dup {
			return nil, fmt.Errorf("signalhub: methods %q and %q differ only in case", prev.name, name)
		}
		m, err := newMethod(name, fn)
		if err != nil {
			return nil, err
		}
		out[key] = m
	}
	return out, nil
}

// method returns the method named target, in any case, or nil.
func (h *Hub) method(target string) *method {
	// An ASP.NET-style name has capitals, for which strings.ToLower
	// allocates: lower an ASCII name on the stack instead.
	var buf [64]byte
	if len(target) > len(buf) {
		return h.methods[strings.ToLower(target)]
	}
	key := buf[:len(target)]
	for i := range len(target) {
		c := target[i]
		if c >= utf8.RuneSelf {
			return h.methods[strings.ToLower(target)]
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		key[i] = c
	}
	return h.methods[string(key)]
}

// HubError is an error a hub method returns to show its message to the
// client, like ASP.NET Core's HubException. Other errors reach the client as
// a generic message unless Options.DetailedErrors is set, so that internal
// details do not leak. It may be returned as a value or a pointer, and
// wrapped.
type HubError struct {
	// Message is the text the client sees after "HubException: ".
	Message string
}

// Error returns the message.
func (e HubError) Error() string { return e.Message }

// Completion error texts, as ASP.NET Core words them so that clients see
// the same messages from either server.
const (
	errInvokeFailed   = "Failed to invoke '%s' due to an error on the server."
	errUnexpected     = "An unexpected error occurred invoking '%s' on the server."
	detailNoMethod    = " HubException: Method does not exist."
	detailArgCount    = " InvalidDataException: Invocation provides %d argument(s) but target expects %d."
	detailArgBinding  = " InvalidDataException: Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked."
	detailStreamCount = " HubException: Client sent %d stream(s), Hub method expects %d."
)

// invoke runs one Invocation message and sends its Completion. Streaming
// invocations never get here: the read loop starts them (streams.go).
func (c *conn) invoke(msg *protocol.Message) {
	h := c.hub
	m := h.method(msg.Target)
	if m == nil {
		c.complete(msg.InvocationID, nil, fmt.Sprintf(errInvokeFailed, msg.Target)+detailNoMethod)
		return
	}
	if m.streaming() {
		c.complete(msg.InvocationID, nil, m.mismatch(msg))
		return
	}
	var res any
	var err error
	text := ""
	start := c.invocationStart()
	if m.direct != nil && !h.invokeFiltered {
		text, err = c.callDirect(m, msg)
	} else {
		var in []reflect.Value
		if in, text = c.bindArgs(&c.hctx, m, msg); text == "" {
			res, err = c.run(&c.hctx, m, in)
		}
	}
	if text != "" {
		c.complete(msg.InvocationID, nil, text)
		return
	}
	c.invocationDone(m, start, err)
	if err != nil {
		c.logDebug("hub method failed", slog.String("method", m.name), slog.Any("err", err))
		c.complete(msg.InvocationID, nil, h.errorText(fmt.Sprintf(errUnexpected, msg.Target), err))
		return
	}
	c.completeResult(msg, m, res, m.result || res != nil)
}

// mismatch is the error text for an invocation whose kind (plain or
// streaming, with or without streams from the client) does not fit m, or
// "" when it fits.
func (m *method) mismatch(msg *protocol.Message) string {
	switch {
	case msg.Type == protocol.TypeStreamInvocation && m.stream == streamNone:
		return fmt.Sprintf("The client attempted to invoke the non-streaming '%s' method with a streaming invocation.", msg.Target)
	case msg.Type == protocol.TypeInvocation && m.stream != streamNone:
		return fmt.Sprintf("The client attempted to invoke the streaming '%s' method with a non-streaming invocation.", msg.Target)
	case len(msg.StreamIDs) != len(m.uploads):
		return fmt.Sprintf(errUnexpected, msg.Target) + fmt.Sprintf(detailStreamCount, len(msg.StreamIDs), len(m.uploads))
	}
	return ""
}

// bindArgs decodes msg's arguments into m's parameters, after cx; the
// slots of streams from the client are left for the caller. A non-empty
// text is the error for the client when the arguments do not fit.
func (c *conn) bindArgs(cx *Context, m *method, msg *protocol.Message) (in []reflect.Value, text string) {
	if len(msg.Arguments) != m.args() {
		return nil, c.argCountText(m, msg)
	}
	in = make([]reflect.Value, 1+len(m.params))
	in[0] = reflect.ValueOf(cx)
	arg, up := 0, 0
	for i, t := range m.params {
		if up < len(m.uploads) && m.uploads[up] == i {
			up++
			continue
		}
		p := reflect.New(t)
		if err := c.proto.bind(msg.Arguments[arg], p.Interface()); err != nil {
			return nil, c.argBindingText(msg)
		}
		arg++
		in[i+1] = p.Elem()
	}
	return in, ""
}

// argCountText is the error text for an invocation with more or fewer
// arguments than m takes.
func (c *conn) argCountText(m *method, msg *protocol.Message) string {
	text := fmt.Sprintf(errInvokeFailed, msg.Target)
	if c.hub.opts.DetailedErrors {
		text += fmt.Sprintf(detailArgCount, len(msg.Arguments), m.args())
	}
	return text
}

// argBindingText is the error text for an invocation with an argument
// that does not fit its parameter.
func (c *conn) argBindingText(msg *protocol.Message) string {
	text := fmt.Sprintf(errInvokeFailed, msg.Target)
	if c.hub.opts.DetailedErrors {
		text += detailArgBinding
	}
	return text
}

// callDirect is bindArgs and call for a method with a direct call: it
// binds msg's arguments and runs m, turning a panic into an error. A
// non-empty text is the error for the client when the arguments do not
// fit.
func (c *conn) callDirect(m *method, msg *protocol.Message) (text string, err error) {
	if len(msg.Arguments) != m.args() {
		return c.argCountText(m, msg), nil
	}
	defer func() {
		if p := recover(); p != nil {
			err = c.panicked(m, p)
		}
	}()
	bound, err := m.direct(&c.hctx, c.proto.bind, msg.Arguments)
	if !bound {
		return c.argBindingText(msg), nil
	}
	return "", err
}

// run calls m with in, through the filters when there are any, and returns
// its result (nil when it has none) and error.
func (c *conn) run(cx *Context, m *method, in []reflect.Value) (any, error) {
	if c.hub.invokeFiltered {
		return c.invokeFilters(cx, m, in)
	}
	out, err := c.call(m, in)
	if err != nil || !m.result {
		return nil, err
	}
	return out[0].Interface(), nil
}

// completeResult sends the Completion of a successful invocation, with res
// encoded when hasResult.
func (c *conn) completeResult(msg *protocol.Message, m *method, res any, hasResult bool) {
	if msg.InvocationID == "" {
		return
	}
	var result []byte
	if hasResult {
		var err error
		result, err = c.proto.marshal(res)
		if err != nil {
			c.hub.log.LogAttrs(c.ctx, slog.LevelError, "hub method result cannot be encoded",
				slog.String("conn_id", c.id), slog.String("method", m.name), slog.Any("err", err))
			c.complete(msg.InvocationID, nil, fmt.Sprintf(errUnexpected, msg.Target))
			return
		}
	}
	c.complete(msg.InvocationID, result, "")
}

// call runs the method, turning a panic into an error.
func (c *conn) call(m *method, in []reflect.Value) (out []reflect.Value, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = c.panicked(m, p)
		}
	}()
	out = m.fn.Call(in)
	if m.errOut {
		if e, _ := out[len(out)-1].Interface().(error); e != nil {
			return nil, e
		}
	}
	return out, nil
}

// panicked logs the panic p of hub method m, from the deferred function
// that recovered it (so that the stack is the panic's), and returns it as
// an error.
func (c *conn) panicked(m *method, p any) error {
	c.hub.log.LogAttrs(c.ctx, slog.LevelError, "hub method panicked",
		slog.String("conn_id", c.id), slog.String("method", m.name),
		slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
	return fmt.Errorf("panic: %v", p)
}

// errorText is the text a client sees for err: prefix, plus a HubError's
// message always and any other error's text only with DetailedErrors.
func (h *Hub) errorText(prefix string, err error) string {
	var he HubError
	if errors.As(err, &he) {
		return prefix + " HubException: " + he.Message
	}
	var hp *HubError
	if errors.As(err, &hp) && hp != nil {
		return prefix + " HubException: " + hp.Message
	}
	if h.opts.DetailedErrors {
		return prefix + " " + err.Error()
	}
	return prefix
}

// callHook runs OnConnected-style hooks with panic recovery.
func (h *Hub) callHook(c *conn, name string, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			h.log.LogAttrs(c.ctx, slog.LevelError, name+" panicked",
				slog.String("conn_id", c.id), slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return fn()
}
