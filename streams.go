package signalhub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"

	"github.com/signalhub/signalhub/protocol"
)

// Streaming, both ways, as in ASP.NET Core SignalR.
//
// A hub method whose result is a <-chan T, an iter.Seq[T] or an
// iter.Seq2[T, error] streams to the client: the client calls it with a
// StreamInvocation, every item goes out as a StreamItem and a Completion
// ends the stream. A parameter of type <-chan T or iter.Seq2[T, error] is
// a stream from the client: the client names it in the invocation's
// streamIds and sends its items as StreamItems of that ID, then a
// Completion.
//
// Streaming invocations do not wait for MaxParallelInvocations: each runs
// on a goroutine of its own, at most MaxStreams at once per connection, so
// that a long stream does not hold up the connection's other invocations.

// streamKind is how a value streams.
type streamKind uint8

const (
	streamNone streamKind = iota
	streamChan            // <-chan T (or chan T)
	streamSeq             // iter.Seq[T]
	streamSeq2            // iter.Seq2[T, error]
)

// streamKindOf classifies a hub method's result type.
func streamKindOf(t reflect.Type) streamKind {
	switch t.Kind() {
	case reflect.Chan:
		if t.ChanDir()&reflect.RecvDir != 0 {
			return streamChan
		}
	case reflect.Func:
		if t.NumIn() != 1 || t.NumOut() != 0 || t.IsVariadic() {
			return streamNone
		}
		y := t.In(0)
		if y.Kind() != reflect.Func || y.NumOut() != 1 || y.Out(0).Kind() != reflect.Bool || y.IsVariadic() {
			return streamNone
		}
		switch {
		case y.NumIn() == 1:
			return streamSeq
		case y.NumIn() == 2 && y.In(1) == errorType:
			return streamSeq2
		}
	}
	return streamNone
}

// uploadKindOf classifies a hub method's parameter type: a stream from the
// client is a <-chan T or an iter.Seq2[T, error]. It returns the item type.
func uploadKindOf(t reflect.Type) (streamKind, reflect.Type) {
	switch k := streamKindOf(t); k {
	case streamChan:
		return k, t.Elem()
	case streamSeq2:
		return k, t.In(0).In(0)
	}
	return streamNone, nil
}

// upload is one stream from the client. The read goroutine sends its items
// and closes ch; the hub method's goroutine closes done when it returns.
type upload struct {
	ch   reflect.Value // chan T, capacity Options.StreamBufferCapacity
	elem reflect.Type
	done chan struct{} // closed when the method no longer takes items
	err  error         // why the stream ended, when not by the client's plain Completion; set before ch is closed
}

// startStream starts a streaming invocation, or an invocation with streams
// from the client, on a goroutine of its own. It runs on the read
// goroutine, so that the streams from the client are registered before
// their first items are read.
func (c *conn) startStream(msg *protocol.Message) {
	h := c.hub
	m := h.method(msg.Target)
	if m == nil {
		c.complete(msg.InvocationID, nil, fmt.Sprintf(errInvokeFailed, msg.Target)+detailNoMethod)
		return
	}
	if text := m.mismatch(msg); text != "" {
		c.complete(msg.InvocationID, nil, text)
		return
	}
	c.smu.Lock()
	text := ""
	if _, dup := c.streams[msg.InvocationID]; dup && m.stream != streamNone {
		text = fmt.Sprintf("Invocation ID '%s' is already in use.", msg.InvocationID)
	}
	for i, id := range msg.StreamIDs {
		if _, dup := c.uploads[id]; dup || slices.Contains(msg.StreamIDs[:i], id) {
			text = fmt.Sprintf("Stream ID '%s' is already in use.", id)
		}
	}
	c.smu.Unlock()
	if text != "" {
		c.complete(msg.InvocationID, nil, text)
		return
	}

	c.jmu.Lock()
	switch {
	case c.draining:
		c.jmu.Unlock()
		c.complete(msg.InvocationID, nil, fmt.Sprintf("Failed to invoke '%s': the server is shutting down.", msg.Target))
		return
	case c.openStreams >= h.opts.MaxStreams:
		c.jmu.Unlock()
		c.complete(msg.InvocationID, nil, fmt.Sprintf("Failed to invoke '%s': the connection already has %d streams open, the most allowed.",
			msg.Target, h.opts.MaxStreams))
		return
	}
	c.openStreams++
	c.busy++
	c.jmu.Unlock()

	// Only the read goroutine registers streams, so the checks above hold.
	ctx, cancel := context.WithCancelCause(c.mctx)
	c.smu.Lock()
	if m.stream != streamNone {
		if c.streams == nil {
			c.streams = make(map[string]*openStream)
		}
		c.streams[msg.InvocationID] = &openStream{cancel: cancel, uploads: msg.StreamIDs}
	}
	var ups []*upload
	if len(msg.StreamIDs) > 0 {
		if c.uploads == nil {
			c.uploads = make(map[string]*upload)
		}
		ups = make([]*upload, len(msg.StreamIDs))
		for i, id := range msg.StreamIDs {
			_, elem := uploadKindOf(m.params[m.uploads[i]])
			u := &upload{
				ch:   reflect.MakeChan(reflect.ChanOf(reflect.BothDir, elem), h.opts.StreamBufferCapacity),
				elem: elem,
				done: make(chan struct{}),
			}
			c.uploads[id] = u
			ups[i] = u
		}
	}
	c.smu.Unlock()
	c.invocations.Add(1)
	go c.runStream(ctx, cancel, m, msg, ups)
}

// streamDone ends a streaming invocation started by startStream.
func (c *conn) streamDone() {
	c.jmu.Lock()
	c.openStreams--
	c.jmu.Unlock()
	c.jobDone()
}

// errStreamCanceled is the cause of a stream's context when the client
// cancelled it.
var errStreamCanceled = errors.New("signalhub: stream cancelled by the client")

// errStreamEnded is the cause of a streaming invocation's context once the
// invocation is over.
var errStreamEnded = errors.New("signalhub: stream ended")

// runStream runs a streaming invocation on its own goroutine: the method,
// with the streams from the client bound to its parameters, and then, for
// a method that streams to the client, its result, item by item.
func (c *conn) runStream(ctx context.Context, cancel context.CancelCauseFunc, m *method, msg *protocol.Message, ups []*upload) {
	defer c.invocations.Done()
	defer c.streamDone()
	defer func() {
		c.smu.Lock()
		if m.stream != streamNone {
			delete(c.streams, msg.InvocationID)
		}
		for i, id := range msg.StreamIDs {
			if c.uploads[id] == ups[i] {
				delete(c.uploads, id)
			}
			close(ups[i].done)
		}
		c.smu.Unlock()
		cancel(errStreamEnded)
	}()

	cx := &Context{conn: c, ctx: ctx}
	in, text := c.bindArgs(cx, m, msg)
	if text != "" {
		c.complete(msg.InvocationID, nil, text)
		return
	}
	for i, u := range ups {
		in[m.uploads[i]+1] = u.param(m.params[m.uploads[i]])
	}
	var err error // the invocation's outcome, for Options.Metrics
	defer c.streamInvocationDone(ctx, m, c.invocationStart(), &err)
	res, err := c.run(cx, m, in)
	if err != nil {
		c.logDebug("hub method failed", slog.String("method", m.name), slog.Any("err", err))
		c.complete(msg.InvocationID, nil, c.hub.errorText(fmt.Sprintf(errUnexpected, msg.Target), err))
		return
	}
	if m.stream == streamNone {
		c.completeResult(msg, m, res, m.result || res != nil)
		return
	}
	err = c.sendStream(ctx, m, msg.InvocationID, res)
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errStreamCanceled):
		// The client cancelled: it no longer listens, but a Completion
		// tells it the stream is over, as ASP.NET Core does.
		c.enqueue(c.proto.appendStreamCompletion(nil, msg.InvocationID))
	case err == nil:
		c.enqueue(c.proto.appendStreamCompletion(nil, msg.InvocationID))
	case errors.Is(err, ErrClientDisconnected) || errors.Is(cause, ErrClientDisconnected) || c.ctx.Err() != nil:
		// Nobody is left to tell.
	case errors.Is(cause, ErrHubClosed):
		c.complete(msg.InvocationID, nil, "An error occurred on the server while streaming results. The server is shutting down.")
	default:
		c.logDebug("hub method stream failed", slog.String("method", m.name), slog.Any("err", err))
		c.complete(msg.InvocationID, nil, c.hub.errorText("An error occurred on the server while streaming results.", err))
	}
}

// sendStream sends the items of a method's stream result res until it ends,
// fails or ctx ends, and returns why it stopped early (nil at the end of
// the stream). A nil stream is an empty one.
func (c *conn) sendStream(ctx context.Context, m *method, id string, res any) (err error) {
	v := reflect.ValueOf(res)
	if !v.IsValid() || v.IsNil() {
		return nil
	}
	defer func() {
		if p := recover(); p != nil {
			err = c.panicked(m, p)
		}
	}()
	send := func(item reflect.Value) error {
		raw, err := c.proto.marshal(item.Interface())
		if err != nil {
			return err
		}
		return c.enqueueWait(ctx, c.proto.appendStreamItem(make([]byte, 0, len(raw)+len(id)+32), id, raw))
	}
	switch m.stream {
	case streamChan:
		cases := []reflect.SelectCase{
			{Dir: reflect.SelectRecv, Chan: v},
			{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
		}
		for {
			chosen, item, ok := reflect.Select(cases)
			if chosen == 1 {
				return context.Cause(ctx)
			}
			if !ok {
				return nil
			}
			if err := send(item); err != nil {
				return err
			}
		}
	default:
		var failed error
		yield := reflect.MakeFunc(v.Type().In(0), func(args []reflect.Value) []reflect.Value {
			if failed != nil {
				panic("signalhub: a stream's iterator called yield after it returned false")
			}
			if m.stream == streamSeq2 && !args[1].IsNil() {
				failed = args[1].Interface().(error)
			} else if err := ctx.Err(); err != nil {
				failed = context.Cause(ctx)
			} else if err := send(args[0]); err != nil {
				failed = err
			}
			return []reflect.Value{reflect.ValueOf(failed == nil)}
		})
		v.Call([]reflect.Value{yield})
		if failed == nil && ctx.Err() != nil {
			// The iterator stopped on its own because ctx ended.
			failed = context.Cause(ctx)
		}
		return failed
	}
}

// param is the value of the method parameter of type t that reads u.
func (u *upload) param(t reflect.Type) reflect.Value {
	if t.Kind() == reflect.Chan {
		return u.ch.Convert(t)
	}
	// iter.Seq2[T, error]: the items, then the client's error if it sent
	// one or the connection ended first.
	zero := reflect.Zero(u.elem)
	nilErr := reflect.Zero(errorType)
	return reflect.MakeFunc(t, func(args []reflect.Value) []reflect.Value {
		yield := args[0]
		for {
			item, ok := u.ch.Recv()
			if !ok {
				if u.err != nil {
					yield.Call([]reflect.Value{zero, reflect.ValueOf(&u.err).Elem()})
				}
				return nil
			}
			if !yield.Call([]reflect.Value{item, nilErr})[0].Bool() {
				return nil
			}
		}
	})
}

// streamItem hands an item from the client to its stream. It runs on the
// read goroutine and blocks while the stream's buffer is full, which
// pushes back on the client, until the method takes an item, returns, or
// the connection ends. Items of unknown streams are ignored.
func (c *conn) streamItem(m *protocol.Message) {
	c.smu.Lock()
	u := c.uploads[m.InvocationID]
	c.smu.Unlock()
	if u == nil {
		return
	}
	p := reflect.New(u.elem)
	if err := c.proto.bind(m.Item, p.Interface()); err != nil {
		c.endUpload(m.InvocationID, u, ErrBadStreamItem)
		return
	}
	item := p.Elem()
	if u.ch.TrySend(item) {
		return
	}
	reflect.Select([]reflect.SelectCase{
		{Dir: reflect.SelectSend, Chan: u.ch, Send: item},
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(u.done)},
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c.done)},
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c.ctx.Done())},
	})
}

// streamCompletion ends a stream from the client, with the client's error
// if it sent one. It reports false when no such stream is open (the
// Completion may answer InvokeConnection). Read goroutine only.
func (c *conn) streamCompletion(m *protocol.Message) bool {
	c.smu.Lock()
	u := c.uploads[m.InvocationID]
	c.smu.Unlock()
	if u == nil {
		return false
	}
	var err error
	if m.Error != "" {
		err = &ClientError{Message: m.Error}
	}
	c.endUpload(m.InvocationID, u, err)
	return true
}

// endUpload closes a stream from the client with err (nil: it completed).
// Read goroutine only: it is the one that sends on the stream.
func (c *conn) endUpload(id string, u *upload, err error) {
	c.smu.Lock()
	if c.uploads[id] != u {
		c.smu.Unlock()
		return
	}
	delete(c.uploads, id)
	c.smu.Unlock()
	u.err = err
	u.ch.Close()
}

// endUploads closes every stream from the client when the connection ends,
// so that methods reading them return. Read goroutine only, once reading
// has stopped.
func (c *conn) endUploads() {
	c.smu.Lock()
	ups := c.uploads
	c.uploads = nil
	c.smu.Unlock()
	for _, u := range ups {
		u.err = ErrClientDisconnected
		u.ch.Close()
	}
}

// openStream is a stream to the client, by its invocation ID.
type openStream struct {
	cancel  context.CancelCauseFunc
	uploads []string // the IDs of the invocation's streams from the client
}

// cancelStream cancels a stream to the client at the client's request,
// and ends the invocation's streams from the client, so that a producer
// reading one of them stops too. Unknown IDs are ignored. Read goroutine
// only (see endUpload).
func (c *conn) cancelStream(id string) {
	c.smu.Lock()
	s := c.streams[id]
	c.smu.Unlock()
	if s == nil {
		return
	}
	s.cancel(errStreamCanceled)
	for _, uid := range s.uploads {
		c.smu.Lock()
		u := c.uploads[uid]
		c.smu.Unlock()
		if u != nil {
			c.endUpload(uid, u, errStreamCanceled)
		}
	}
}
