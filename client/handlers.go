package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/signalhub/signalhub/protocol"
)

// noResult is the error Completion for a server invocation that expects a
// result no handler gave, worded as the official clients word it.
const noResult = "Client didn't provide a result."

// handler is a func registered with On, analysed once by reflection.
type handler struct {
	target string // as registered, for logs and errors
	fn     reflect.Value
	params []reflect.Type
	result bool // returns a value (first result)
	errOut bool // returns an error (last result)
}

var errorType = reflect.TypeFor[error]()

func newHandler(target string, fn any) (*handler, error) {
	if fn == nil {
		return nil, fmt.Errorf("client: handler for %q is nil", target)
	}
	v := reflect.ValueOf(fn)
	t := v.Type()
	if t.Kind() != reflect.Func {
		return nil, fmt.Errorf("client: handler for %q: want a func, got %T", target, fn)
	}
	if v.IsNil() {
		return nil, fmt.Errorf("client: handler for %q is a nil func", target)
	}
	if t.IsVariadic() {
		return nil, fmt.Errorf("client: handler for %q: variadic funcs are not supported", target)
	}
	h := &handler{target: target, fn: v}
	for i := range t.NumIn() {
		h.params = append(h.params, t.In(i))
	}
	switch t.NumOut() {
	case 0:
	case 1:
		if t.Out(0) == errorType {
			h.errOut = true
		} else {
			h.result = true
		}
	case 2:
		if t.Out(1) != errorType {
			return nil, fmt.Errorf("client: handler for %q: second result must be error", target)
		}
		h.result, h.errOut = true, true
	default:
		return nil, fmt.Errorf("client: handler for %q: at most two results (value, error)", target)
	}
	return h, nil
}

// On registers handler for the server's invocations of target, which is
// matched case-insensitively as the official clients do. handler is a func
// whose parameters receive the invocation's arguments, each decoded from
// JSON into its parameter type:
//
//	c.On("ReceiveMessage", func(user, message string) { ... })
//
// A target may have several handlers; they run in registration order. An
// invocation whose arguments do not fit a handler (count or types) skips
// that handler with a warning in the log.
//
// A handler may return nothing, (T), (T, error) or (error). When the server
// waits for a result (a client result: an invocation with an ID), the
// first handler that returns a T answers it, with its value encoded as
// JSON or with its error's text; without such a handler, the first error
// of another handler answers, and otherwise the answer is the error
// "Client didn't provide a result.", as the official clients send. Results
// of invocations that wait for none are dropped.
//
// Handlers run on the dispatcher goroutine, one at a time, in the order the
// messages arrived, never on the reader: a handler may call Invoke. While a
// handler runs, up to Options.QueueLength further server messages wait;
// beyond that the client stops reading (see Options.QueueLength), so a
// handler that blocks in Invoke while the server floods the client waits
// for its ctx. A handler's panic is recovered and logged.
//
// On may be called before or after Start. It returns ErrEmptyTarget for an
// empty target and an error for a handler that is not a func of that form.
func (c *Conn) On(target string, handler any) error {
	if target == "" {
		return ErrEmptyTarget
	}
	h, err := newHandler(target, handler)
	if err != nil {
		return err
	}
	key := strings.ToLower(target)
	c.hmu.Lock()
	c.handlers[key] = append(c.handlers[key], h)
	c.hmu.Unlock()
	return nil
}

// OnAny registers fn to see every invocation the server sends, whatever
// its target and whether or not a handler exists for it, with the raw JSON
// arguments. It runs on the dispatcher goroutine, before the target's
// handlers, and never answers a client result. Test tools and loggers use
// it; it may be called before or after Start.
func (c *Conn) OnAny(fn func(target string, args []json.RawMessage)) error {
	if fn == nil {
		return errors.New("client: OnAny: nil func")
	}
	c.hmu.Lock()
	c.observers = append(c.observers, fn)
	c.hmu.Unlock()
	return nil
}

// eventKind says what a dispatcher event is.
type eventKind uint8

const (
	evInvocation eventKind = iota
	evReconnecting
	evReconnected
)

// event is one piece of work for the dispatcher.
type event struct {
	kind eventKind
	sess *session          // evInvocation: the session it came on
	msg  *protocol.Message // evInvocation
	err  error             // evReconnecting
	id   string            // evReconnected
}

// dispatch is the dispatcher goroutine: it runs handlers and callbacks in
// order until the connection has ended, then OnClose.
func (c *Conn) dispatch() {
	c.dispatcherID.Store(goroutineID())
	defer close(c.done)
	for {
		select {
		case ev := <-c.queue:
			c.handle(ev)
			continue
		case <-c.final:
		}
		// Nothing is queued after final: the supervisor waited for the
		// last reader before closing it.
		for drained := false; !drained; {
			select {
			case ev := <-c.queue:
				c.handle(ev)
			default:
				drained = true
			}
		}
		<-c.supDone
		if fn := c.opts.OnClose; fn != nil {
			err := c.Err()
			if errors.Is(err, ErrClosed) {
				err = nil
			}
			c.callback("OnClose", func() { fn(err) })
		}
		return
	}
}

// handle runs one event. After Close, events still queued are dropped.
func (c *Conn) handle(ev *event) {
	if c.life.Err() != nil {
		return
	}
	switch ev.kind {
	case evInvocation:
		c.invokeHandlers(ev.sess, ev.msg)
	case evReconnecting:
		if fn := c.opts.OnReconnecting; fn != nil {
			c.callback("OnReconnecting", func() { fn(ev.err) })
		}
	case evReconnected:
		if fn := c.opts.OnReconnected; fn != nil {
			c.callback("OnReconnected", func() { fn(ev.id) })
		}
	}
}

// callback runs an Options callback, recovering a panic.
func (c *Conn) callback(name string, fn func()) {
	defer func() {
		if p := recover(); p != nil {
			c.log.LogAttrs(context.Background(), slog.LevelError, name+" panicked",
				slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
		}
	}()
	fn()
}

// invokeHandlers runs the handlers of a server invocation and, when the
// server waits for a result, sends the Completion on the session the
// invocation came on.
func (c *Conn) invokeHandlers(s *session, m *protocol.Message) {
	c.hmu.RLock()
	hs := c.handlers[strings.ToLower(m.Target)]
	observers := c.observers
	c.hmu.RUnlock()
	for _, fn := range observers {
		c.callback("OnAny", func() { fn(m.Target, m.Arguments) })
	}
	if len(hs) == 0 && len(observers) > 0 {
		if m.InvocationID != "" {
			c.complete(s, m.InvocationID, nil, noResult)
		}
		return
	}
	if len(hs) == 0 {
		c.log.LogAttrs(context.Background(), slog.LevelWarn, "no handler for server invocation",
			slog.String("target", m.Target))
		if m.InvocationID != "" {
			c.complete(s, m.InvocationID, nil, noResult)
		}
		return
	}
	var (
		answered  bool // a value-returning handler ran
		value     any
		answerErr error
		otherErr  error // the first error of a handler without a value
	)
	for _, h := range hs {
		v, err := c.callHandler(h, m)
		answers := h.result && !answered
		if answers {
			answered, value, answerErr = true, v, err
		} else if err != nil && otherErr == nil {
			otherErr = err
		}
		var p *panicError
		switch {
		case errors.As(err, &p):
			c.log.LogAttrs(context.Background(), slog.LevelError, "handler panicked",
				slog.String("target", m.Target), slog.Any("panic", p.value), slog.String("stack", string(p.stack)))
		case err != nil && !(answers && m.InvocationID != ""):
			// The answering handler's error goes to the server instead.
			c.log.LogAttrs(context.Background(), slog.LevelWarn, "handler failed",
				slog.String("target", m.Target), slog.Any("err", err))
		}
	}
	if m.InvocationID == "" {
		return
	}
	switch {
	case answered && answerErr != nil:
		c.complete(s, m.InvocationID, nil, answerErr.Error())
	case answered:
		b, err := json.Marshal(value)
		if err != nil {
			c.complete(s, m.InvocationID, nil, "client: encode result: "+err.Error())
			return
		}
		c.complete(s, m.InvocationID, b, "")
	case otherErr != nil:
		c.complete(s, m.InvocationID, nil, otherErr.Error())
	default:
		c.complete(s, m.InvocationID, nil, noResult)
	}
}

// callHandler decodes the arguments into h's parameters and calls it. It
// returns h's value (nil without one) and its error, a decoding error, or
// its panic as a *panicError.
func (c *Conn) callHandler(h *handler, m *protocol.Message) (value any, err error) {
	if len(m.Arguments) != len(h.params) {
		return nil, fmt.Errorf("client: handler for %q takes %d arguments, the server sent %d", h.target, len(h.params), len(m.Arguments))
	}
	in := make([]reflect.Value, len(h.params))
	for i, t := range h.params {
		p := reflect.New(t)
		if err := json.Unmarshal(m.Arguments[i], p.Interface()); err != nil {
			return nil, fmt.Errorf("client: handler for %q: argument %d: %w", h.target, i, err)
		}
		in[i] = p.Elem()
	}
	defer func() {
		if p := recover(); p != nil {
			value, err = nil, &panicError{target: h.target, value: p, stack: debug.Stack()}
		}
	}()
	out := h.fn.Call(in)
	if h.errOut {
		if e, _ := out[len(out)-1].Interface().(error); e != nil {
			return nil, e
		}
	}
	if h.result {
		return out[0].Interface(), nil
	}
	return nil, nil
}

// panicError is a handler's recovered panic.
type panicError struct {
	target string
	value  any
	stack  []byte
}

func (e *panicError) Error() string {
	return fmt.Sprintf("client: handler for %q panicked: %v", e.target, e.value)
}

// complete answers a server invocation. A session that has ended since
// drops the answer: the server has failed the call already.
func (c *Conn) complete(s *session, id string, result []byte, errMsg string) {
	var rec []byte
	if errMsg != "" {
		rec = protocol.AppendCompletionError(nil, id, errMsg)
	} else {
		rec = protocol.AppendCompletion(nil, id, result)
	}
	if err := s.write(c.life, rec); err != nil && c.log.Enabled(context.Background(), slog.LevelDebug) {
		c.log.LogAttrs(context.Background(), slog.LevelDebug, "client result not sent",
			slog.String("conn_id", s.id), slog.Any("err", err))
	}
}

// goroutineID returns the ID of the calling goroutine, from the first line
// of its stack trace ("goroutine 42 [running]:"). Close uses it to tell
// whether a handler called it: then it must not wait for the dispatcher,
// which is busy running that handler. Go offers no other way to ask.
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b, ok := bytes.CutPrefix(b, []byte("goroutine "))
	if !ok {
		return 0
	}
	if i := bytes.IndexByte(b, ' '); i >= 0 {
		b = b[:i]
	}
	id, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0
	}
	return id
}
