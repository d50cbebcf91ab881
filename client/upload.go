package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
	"strconv"
	"sync"

	"github.com/signalhub/signalhub/protocol"
)

// Streams to the server. An argument of Invoke, Send or Stream that is a
// channel the client can receive from (<-chan T or chan T), an iter.Seq[T]
// or an iter.Seq2[T, error] is not encoded among the arguments: it gets a
// stream ID of its own, named in the invocation's streamIds, and a
// goroutine sends its items as StreamItems once the invocation is out,
// then a Completion, as the official clients do for a Subject or a
// ChannelReader.

// uploadKind is how an argument streams.
type uploadKind uint8

const (
	uploadChan uploadKind = iota + 1 // <-chan T or chan T
	uploadSeq                        // iter.Seq[T]
	uploadSeq2                       // iter.Seq2[T, error]
)

// upload is one stream argument of an invocation.
type upload struct {
	id   string // its stream ID
	arg  int    // its position among the arguments, for errors
	kind uploadKind
	src  reflect.Value
}

var marshalerType = reflect.TypeFor[json.Marshaler]()

// uploadOf returns the stream that argument i is, nil for a plain
// argument, or an error for a channel or func that cannot be streamed
// (nor encoded as JSON).
func uploadOf(i int, a any) (*upload, error) {
	t := reflect.TypeOf(a)
	if t == nil || t.Implements(marshalerType) {
		return nil, nil
	}
	var kind uploadKind
	switch t.Kind() {
	case reflect.Chan:
		if t.ChanDir()&reflect.RecvDir == 0 {
			return nil, fmt.Errorf("encode argument %d: a send-only channel (%s) cannot be streamed", i, t)
		}
		kind = uploadChan
	case reflect.Func:
		if kind = seqKind(t); kind == 0 {
			return nil, fmt.Errorf("encode argument %d: %s is neither a JSON value nor a stream (<-chan T, iter.Seq[T] or iter.Seq2[T, error])", i, t)
		}
	default:
		return nil, nil
	}
	v := reflect.ValueOf(a)
	if v.IsNil() {
		return nil, fmt.Errorf("encode argument %d: nil %s", i, t)
	}
	return &upload{arg: i, kind: kind, src: v}, nil
}

// seqKind tells an iter.Seq[T] from an iter.Seq2[T, error] (or an
// unnamed func of the same shape); 0 for any other func type.
func seqKind(t reflect.Type) uploadKind {
	if t.NumIn() != 1 || t.NumOut() != 0 || t.IsVariadic() {
		return 0
	}
	y := t.In(0)
	if y.Kind() != reflect.Func || y.IsVariadic() || y.NumOut() != 1 || y.Out(0).Kind() != reflect.Bool {
		return 0
	}
	switch {
	case y.NumIn() == 1:
		return uploadSeq
	case y.NumIn() == 2 && y.In(1) == errorType:
		return uploadSeq2
	}
	return 0
}

// outgoing is an encoded invocation and its stream arguments.
type outgoing struct {
	id      string // "" for Send
	rec     []byte
	uploads []*upload
}

// newID returns the next invocation or stream ID.
func (c *Conn) newID() string {
	return strconv.FormatUint(c.nextID.Add(1)-1, 10)
}

// prepare finds the stream arguments, gives them IDs and then, when
// blocking, the invocation its ID (the order of the official clients),
// and encodes the invocation of type typ.
func (c *Conn) prepare(typ protocol.MessageType, blocking bool, target string, args []any) (*outgoing, error) {
	out := &outgoing{}
	for i, a := range args {
		u, err := uploadOf(i, a)
		if err != nil {
			return nil, err
		}
		if u != nil {
			out.uploads = append(out.uploads, u)
		}
	}
	for _, u := range out.uploads {
		u.id = c.newID()
	}
	if blocking {
		out.id = c.newID()
	}
	// The stream arguments are named in streamIds, not among the arguments.
	rest, ids := args, []string(nil)
	if len(out.uploads) > 0 {
		rest = make([]any, 0, len(args)-len(out.uploads))
		next := 0 // the next upload among args
		for i, a := range args {
			if next < len(out.uploads) && out.uploads[next].arg == i {
				ids = append(ids, out.uploads[next].id)
				next++
				continue
			}
			rest = append(rest, a)
		}
	}
	rec, err := protocol.AppendInvocationStreams(make([]byte, 0, protocol.SizeHint(target, rest)), typ, out.id, target, rest, ids)
	if err != nil {
		return nil, err
	}
	out.rec = rec
	return out, nil
}

// uploads are the running streams of one invocation, one goroutine each.
type uploads struct {
	wg      sync.WaitGroup
	over    chan struct{} // closed by finish: the invocation needs no more items
	once    sync.Once
	results []pumpResult // one per stream, set by its goroutine
}

// startUploads starts sending ups on s, which must follow the invocation
// that names them. ctx ending stops them and completes each unfinished one
// with an error. Without streams it returns nil, which finish and wait
// take as streams that all ended well.
func (s *session) startUploads(ctx context.Context, ups []*upload) *uploads {
	if len(ups) == 0 {
		return nil
	}
	u := &uploads{over: make(chan struct{}), results: make([]pumpResult, len(ups))}
	for i, up := range ups {
		u.wg.Go(func() { u.results[i] = s.pump(ctx, u.over, up) })
	}
	return u
}

// uploadsEnd sums up how the streams of an invocation ended.
type uploadsEnd struct {
	failed   error // failures on the client's side: an item that does not encode, a panicking iterator
	lost     error // the first write error of a stream cut short by the lost connection
	canceled bool  // ctx ended before a stream did
}

// wait waits for every stream to end on its own (or with ctx).
func (u *uploads) wait() uploadsEnd {
	if u == nil {
		return uploadsEnd{}
	}
	u.wg.Wait()
	var e uploadsEnd
	var failed []error
	for _, r := range u.results {
		failed = append(failed, r.failed)
		if e.lost == nil {
			e.lost = r.lost
		}
		e.canceled = e.canceled || r.end == pumpCanceled
	}
	e.failed = errors.Join(failed...)
	return e
}

// finish stops the streams that still run, because the invocation is over,
// and waits for them. It may be called again.
func (u *uploads) finish() uploadsEnd {
	if u == nil {
		return uploadsEnd{}
	}
	u.once.Do(func() { close(u.over) })
	return u.wait()
}

// pumpEnd is why a stream to the server stopped sending.
type pumpEnd uint8

const (
	pumpDone     pumpEnd = iota // the source ended: complete the stream
	pumpSrcErr                  // the iter.Seq2 yielded an error: complete with it
	pumpCanceled                // ctx ended: complete with an error
	pumpOver                    // the invocation is over or was cancelled: complete with an error
	pumpFailed                  // a local failure (encoding, panic): complete with it, report it
	pumpLost                    // a write failed: the connection is gone
)

// pumpResult is how one stream to the server ended.
type pumpResult struct {
	end    pumpEnd
	failed error // for pumpFailed
	lost   error // the write error, when the connection was lost
}

// pump sends one stream to the server: its items, then a Completion.
func (s *session) pump(ctx context.Context, over <-chan struct{}, u *upload) pumpResult {
	var (
		end          pumpEnd
		failed, lost error
		srcErr       error  // the iter.Seq2's error
		rec          []byte // the record buffer, reused: write sends it before returning
	)
	send := func(item reflect.Value) bool {
		raw, err := json.Marshal(item.Interface())
		if err != nil {
			end, failed = pumpFailed, fmt.Errorf("stream argument %d: encode item: %w", u.arg, err)
			return false
		}
		rec = protocol.AppendStreamItem(rec[:0], u.id, raw) // written before the next item
		if err := s.write(ctx, rec); err != nil {
			if ctx.Err() != nil {
				end = pumpCanceled
			} else {
				end, lost = pumpLost, fmt.Errorf("stream argument %d: %w", u.arg, err)
			}
			return false
		}
		return true
	}
	// stopped reports whether the pump must stop before the next item.
	// ctx comes first: a caller whose ctx ended stops waiting for the
	// invocation, and so ends it, but the stream still gets its error.
	stopped := func() bool {
		if ctx.Err() != nil {
			end = pumpCanceled
			return true
		}
		select {
		case <-s.stop:
			end, lost = pumpLost, fmt.Errorf("stream argument %d: %w", u.arg, notConnected(s.err()))
			return true
		case <-over:
			end = pumpOver
			return true
		default:
		}
		return false
	}

	switch u.kind {
	case uploadChan:
		cases := []reflect.SelectCase{
			{Dir: reflect.SelectRecv, Chan: u.src},
			{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
			{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(over)},
			{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(s.stop)},
		}
		for {
			chosen, item, ok := reflect.Select(cases)
			if chosen != 0 {
				stopped() // true: ctx, the invocation or the session ended
				break
			}
			if !ok || stopped() || !send(item) {
				break
			}
		}
	default:
		done := false // yield returned false: the iterator must not go on
		yield := reflect.MakeFunc(u.src.Type().In(0), func(args []reflect.Value) []reflect.Value {
			switch {
			case done:
			case stopped():
				done = true
			case u.kind == uploadSeq2 && !args[1].IsNil():
				end, srcErr = pumpSrcErr, args[1].Interface().(error)
				done = true
			case !send(args[0]):
				done = true
			}
			return []reflect.Value{reflect.ValueOf(!done)}
		})
		if p := s.callSeq(u, yield); p != nil {
			end, failed = pumpFailed, p
		} else if !done && ctx.Err() != nil {
			// The iterator returned on its own: the end of the stream,
			// unless it stopped because ctx ended.
			end = pumpCanceled
		}
	}

	switch end {
	case pumpDone:
		rec = protocol.AppendStreamCompletion(rec[:0], u.id)
	case pumpSrcErr:
		text := srcErr.Error()
		if text == "" { // an empty error would read as a plain end
			text = "client: the stream's iterator yielded an error"
		}
		rec = protocol.AppendCompletionError(rec[:0], u.id, text)
	case pumpCanceled:
		rec = protocol.AppendCompletionError(rec[:0], u.id, "client: stream canceled: "+ctx.Err().Error())
	case pumpOver:
		// A hub method that reads its stream without watching its Context
		// would wait for the end for good; after the method returned, the
		// server ignores it.
		rec = protocol.AppendCompletionError(rec[:0], u.id, "client: stream canceled: the invocation ended")
	case pumpFailed:
		rec = protocol.AppendCompletionError(rec[:0], u.id, "client: "+failed.Error())
	default: // pumpLost
		return pumpResult{end: end, lost: lost}
	}
	// ctx may have ended: Close alone bounds the wait for the write lock.
	if err := s.write(s.c.life, rec); err != nil && end != pumpCanceled && end != pumpOver {
		lost = fmt.Errorf("stream argument %d: %w", u.arg, err)
	}
	return pumpResult{end: end, failed: failed, lost: lost}
}

// callSeq runs an iterator, returning its panic as an error.
func (s *session) callSeq(u *upload, yield reflect.Value) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.c.log.LogAttrs(context.Background(), slog.LevelError, "stream argument panicked",
				slog.Int("argument", u.arg), slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("stream argument %d panicked: %v", u.arg, p)
		}
	}()
	u.src.Call([]reflect.Value{yield})
	return nil
}
