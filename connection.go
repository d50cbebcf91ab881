package signalhub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/signalhub/signalhub/protocol"
)

// wire is the transport under a connection: a WebSocket, or the stream
// or polls of an HTTP transport. Until the handshake is answered the
// reading side owns it; from then on only the writer calls write and
// close. closeNow is safe from any goroutine, and so is the handshake
// error's write (see writeHandshakeError).
type wire interface {
	// write sends records, each a whole record of the connection's
	// protocol, as one message: a WebSocket text message, an SSE event, a
	// poll's body (see binaryWire for MessagePack's binary messages).
	write(ctx context.Context, records [][]byte) error
	// close ends the transport after what was written: a close frame with
	// status and reason, waiting (bounded) for the peer's.
	close(status websocket.StatusCode, reason string) error
	// closeNow drops the transport at once.
	closeNow() error
}

// wsWire is the WebSocket wire.
type wsWire struct {
	ws *websocket.Conn
	bw *batchWriter // the socket under ws: one system call per batch
}

func (w wsWire) write(ctx context.Context, records [][]byte) error {
	return w.writeAs(ctx, websocket.MessageText, records)
}

// writeAs sends records as one message of type typ.
func (w wsWire) writeAs(ctx context.Context, typ websocket.MessageType, records [][]byte) error {
	w.bw.begin()
	err := w.writeMessage(ctx, typ, records)
	if endErr := w.bw.end(); err == nil {
		err = endErr
	}
	return err
}

func (w wsWire) writeMessage(ctx context.Context, typ websocket.MessageType, records [][]byte) error {
	if len(records) == 1 {
		return w.ws.Write(ctx, typ, records[0])
	}
	// Several records share one message, as one frame: clients read a
	// frame of known length at once, where a fragmented message makes
	// them grow a buffer. Copying a batch costs less than those reads.
	n := 0
	for _, r := range records {
		n += len(r)
	}
	bp := messageBufs.Get().(*[]byte)
	msg := (*bp)[:0]
	if cap(msg) < n {
		msg = make([]byte, 0, n)
	}
	for _, r := range records {
		msg = append(msg, r...)
	}
	err := w.ws.Write(ctx, typ, msg)
	if cap(msg) <= maxPooledMessage {
		*bp = msg[:0]
	}
	messageBufs.Put(bp)
	return err
}

// maxPooledMessage is the largest batch buffer kept for reuse.
const maxPooledMessage = 256 << 10

var messageBufs = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

func (w wsWire) close(status websocket.StatusCode, reason string) error {
	return w.ws.Close(status, reason)
}

func (w wsWire) closeNow() error { return w.ws.CloseNow() }

// conn is one client connection. It owns its socket: one goroutine at a
// time reads it (reader.go: the ServeHTTP goroutine until the handshake is
// done, then goroutines of the hub's), and one writer goroutine at a time,
// started when there is work, drains the bounded outgoing queue
// (writer.go). conn never takes
// the hub lock; the hub calls enqueue under its read lock, which is why
// enqueue never blocks, encodes or logs.
type conn struct {
	hub    *Hub
	id     string
	token  string // negotiate token; "" for skipNegotiation connects
	userID string
	claims Claims
	wire   wire
	// proto is the hub protocol: JSON until the handshake sets it, before
	// the connection joins the hub; never changed after.
	proto *hubProtocol

	expires  time.Time   // when the credentials expire; zero: never
	expTimer *time.Timer // closes the connection at expires; read goroutine only

	// The invocation token bucket (Options.InvocationRate); read goroutine
	// only.
	tokens  float64
	tokenAt int64   // hub clock of the last refill
	refused int     // invocations refused since the last one accepted
	hctx    Context // the hub-method view of this connection

	imu   sync.Mutex  // guards items
	items map[any]any // Context.Get and Set

	ctx    context.Context // ends when the connection ends
	cancel context.CancelCauseFunc
	// mctx is the hub methods' and hooks' view of ctx (Context.Context),
	// which also ends when the hub starts shutting down.
	mctx    context.Context
	mcancel context.CancelCauseFunc

	// qmu guards the outgoing queue and the closing state.
	qmu      sync.Mutex
	queue    [][]byte
	spare    [][]byte // the writer's previous batch, reused as the next queue
	qbytes   int
	closing  bool         // no further enqueues; the writer finishes and closes
	closeReq closeRequest // why, when closing was started by the server

	// The writer goroutine runs only while there is something to write, so
	// that an idle connection holds none; qmu guards these flags.
	started  bool          // startWriter ran: writes may begin
	writing  bool          // a writer goroutine is running
	finished bool          // the writer is done for good; done is closed
	done     chan struct{} // closed when the writer is done for good
	stopped  atomic.Bool   // the writer must exit without writing
	tick     atomic.Bool   // the keep-alive timer fired

	// Writer state, handed from one writer goroutine to the next under qmu.
	writeFn   func()      // c.writeLoop, made once: go c.writeFn() allocates nothing
	keepAlive *time.Timer // sends a Ping, checks the client timeout
	watchdog  *time.Timer // drops the socket when a write takes too long
	lastSend  int64       // hub clock of the last write

	lastRecv atomic.Int64 // hub clock (nanoseconds) of the last received data
	metrics  connMetrics  // what Options.Metrics hears of it (metrics.go)

	// st is the stateful-reconnect state (stateful.go), nil unless the
	// client asked for it and negotiate granted it (statefulOK).
	st         *statefulState
	statefulOK bool

	connectedOK bool          // OnConnected succeeded; read goroutine only
	hsAnswered  atomic.Bool   // a handshake error was written
	hsTimer     *time.Timer   // handshake timeout; read goroutine only
	readFail    *closeRequest // why the read loop gave up; read goroutine only

	// smu guards the open streams (streams.go): cancel functions of
	// streams to the client by invocation ID, and streams from the client
	// by stream ID.
	smu     sync.Mutex
	streams map[string]*openStream
	uploads map[string]*upload

	// space, when not nil, is closed when the writer takes the queue or
	// the connection starts closing: stream producers wait on it for room
	// in the queue. qmu guards it.
	space chan struct{}

	// rmu guards replies: the server's invocations waiting for the client's
	// answer (InvokeConnection).
	rmu       sync.Mutex
	replies   map[string]chan clientReply
	nextReply uint64

	// jmu guards jobs and workers: invocations waiting for a worker
	// goroutine, and how many workers run (see dispatch.go).
	jmu         sync.Mutex
	jobs        []*protocol.Message
	workers     int
	busy        int            // workers running an invocation, and open streams
	openStreams int            // streaming invocations running (streams.go)
	draining    bool           // Shutdown: run what was accepted, refuse the rest, then close
	jobWake     chan struct{}  // capacity 1: a job arrived for an idle worker
	invocations sync.WaitGroup // worker goroutines
}

func newConn(h *Hub, id, token string, w wire) *conn {
	c := &conn{
		hub:     h,
		id:      id,
		token:   token,
		wire:    w,
		proto:   jsonHub,
		done:    make(chan struct{}),
		jobWake: make(chan struct{}, 1),
	}
	c.ctx, c.cancel = context.WithCancelCause(h.baseCtx)
	c.mctx, c.mcancel = context.WithCancelCause(c.ctx)
	c.hctx.conn = c
	c.writeFn = c.writeLoop
	c.lastRecv.Store(h.now())
	c.tokens, c.tokenAt = float64(h.opts.InvocationBurst), h.now()
	return c
}

// closeRequest describes a server-side close: what OnDisconnected will see
// (cause), the Close message for the client (errMsg, allowReconnect) and the
// WebSocket close frame (status, reason).
type closeRequest struct {
	cause          error
	errMsg         string
	allowReconnect bool
	status         websocket.StatusCode
	reason         string
	// abandon cancels running invocations at once instead of letting them
	// finish first (read-side closes only; see serve).
	abandon bool
}

// Close messages. ASP.NET Core starts every error close with "Connection
// closed with an error."; we add the reason. As in ASP.NET Core, a client
// closed for what it sent may reconnect: the next connection starts clean.
var (
	closeSlow = closeRequest{
		cause:  ErrSlowConsumer,
		errMsg: "Connection closed with an error. The connection's outgoing queue is full (slow consumer).",
		status: websocket.StatusPolicyViolation, reason: "slow consumer",
	}
	closeTimeout = closeRequest{
		cause:          ErrClientTimeout,
		errMsg:         "Connection closed with an error. Server timeout elapsed without receiving a message from the client.",
		allowReconnect: true, status: websocket.StatusNormalClosure, reason: "client timeout",
	}
	closeBinary = closeRequest{
		cause:          fmt.Errorf("%w: binary message on the 'json' protocol", ErrProtocol),
		errMsg:         "Connection closed with an error. Binary messages are not supported by the 'json' protocol.",
		allowReconnect: true, status: websocket.StatusUnsupportedData, reason: "binary message",
	}
	closeExpired = closeRequest{
		cause:          ErrAuthExpired,
		errMsg:         "Connection closed with an error. The connection's authentication expired; reconnect with a new access token.",
		allowReconnect: true, status: websocket.StatusPolicyViolation, reason: "authentication expired",
	}
	closeShutdown = closeRequest{
		cause: ErrHubClosed, allowReconnect: true, status: websocket.StatusGoingAway, reason: "server shutting down",
	}
)

// isClosing reports whether the connection is on its way out: a closing
// connection joins no group.
func (c *conn) isClosing() bool {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return c.closing
}

// markClosingLocked stops further enqueues and records why. It reports
// false when the connection was already closing. The caller holds qmu.
func (c *conn) markClosingLocked(r closeRequest) bool {
	if c.closing {
		return false
	}
	c.closing, c.closeReq = true, r
	c.wakeProducersLocked()
	if c.st != nil && c.st.detached {
		// No socket to send the Close message to: end it now.
		go c.endDetached()
	}
	return true
}

// wakeProducersLocked wakes the stream producers waiting for room in the
// queue (enqueueWait). The caller holds qmu.
func (c *conn) wakeProducersLocked() {
	if c.space != nil {
		close(c.space)
		c.space = nil
	}
}

// enqueueWait hands a stream's record to the writer, waiting while the
// queue is more than half full, so that a stream that produces faster than
// the client reads slows down instead of closing the connection as a slow
// consumer; the other half stays for everything else sent to it. It
// returns ErrClientDisconnected when the connection closes first, and
// ctx's cause when ctx ends first.
func (c *conn) enqueueWait(ctx context.Context, rec []byte) error {
	opts := &c.hub.opts
	for {
		c.qmu.Lock()
		if c.closing {
			c.qmu.Unlock()
			return ErrClientDisconnected
		}
		if len(c.queue) == 0 || (len(c.queue) < opts.SendQueueLength/2 && c.qbytes+len(rec) <= opts.SendQueueBytes/2) {
			c.queue = append(c.queue, rec)
			c.qbytes += len(rec)
			c.kickLocked()
			c.qmu.Unlock()
			return nil
		}
		if c.space == nil {
			c.space = make(chan struct{})
		}
		space := c.space
		c.qmu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// enqueue hands a record to the writer without blocking. It reports false
// when the connection is closing. A record that would overflow the queue
// closes the connection as a slow consumer instead. The record is shared
// with other recipients and must not be modified.
func (c *conn) enqueue(rec []byte) bool {
	c.qmu.Lock()
	if c.closing {
		c.qmu.Unlock()
		return false
	}
	if len(c.queue) > 0 && (len(c.queue) >= c.hub.opts.SendQueueLength ||
		c.qbytes+len(rec) > c.hub.opts.SendQueueBytes) {
		// What is queued will not reach a client this slow: drop it, so
		// that only the Close message is written.
		clear(c.queue)
		c.queue = c.queue[:0]
		c.qbytes = 0
		c.markClosingLocked(closeSlow)
		c.kickLocked()
		c.qmu.Unlock()
		return false
	}
	c.queue = append(c.queue, rec)
	c.qbytes += len(rec)
	c.kickLocked()
	c.qmu.Unlock()
	return true
}

// kick makes sure a writer runs to handle what was queued, a close, a stop
// or a keep-alive tick.
func (c *conn) kick() {
	c.qmu.Lock()
	c.kickLocked()
	c.qmu.Unlock()
}

// kickLocked is kick with qmu held. It never blocks: it starts a writer
// goroutine when none runs (the running one looks again before it exits).
func (c *conn) kickLocked() {
	if !c.started || c.writing || c.finished {
		return
	}
	if c.stopped.Load() {
		c.finishLocked()
		return
	}
	if c.st != nil && c.st.detached {
		return // the writer of the next socket will send what waits
	}
	if p, ok := c.wire.(*pollWire); ok {
		p.wakeLocked() // the waiting poll writes; between polls, the queue waits
		return
	}
	c.writing = true
	go c.writeFn()
}

// finishLocked ends the writer for good. The caller holds qmu.
func (c *conn) finishLocked() {
	c.finished = true
	if c.keepAlive != nil {
		c.keepAlive.Stop()
	}
	close(c.done)
}

// closeWith starts a server-side close: queued records are still written,
// then the Close message, then the WebSocket close frame. It is a no-op when
// the connection is already closing.
func (c *conn) closeWith(r closeRequest) {
	c.qmu.Lock()
	if c.markClosingLocked(r) {
		c.kickLocked()
	}
	c.qmu.Unlock()
}

// take swaps the queue with the writer's previous batch.
func (c *conn) take() (batch [][]byte, closing bool, r closeRequest) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return c.takeLocked()
}

// takeLocked is take with qmu held.
func (c *conn) takeLocked() (batch [][]byte, closing bool, r closeRequest) {
	if len(c.queue) > 0 {
		batch, c.queue = c.queue, c.spare[:0]
		c.spare = nil
		c.qbytes = 0
		c.wakeProducersLocked()
	}
	return batch, c.closing, c.closeReq
}

// giveBack returns a written batch for reuse as a future queue.
func (c *conn) giveBack(batch [][]byte) {
	clear(batch)
	c.qmu.Lock()
	if c.spare == nil {
		c.spare = batch[:0]
	}
	c.qmu.Unlock()
}

// abort drops the connection at once; cause is what OnDisconnected sees
// unless a close was already under way.
func (c *conn) abort(cause error) {
	c.qmu.Lock()
	c.markClosingLocked(closeRequest{cause: cause, status: websocket.StatusGoingAway})
	c.qmu.Unlock()
	c.stopWriter()
	c.cancel(cause) // running hub methods see Context() end
	_ = c.wire.closeNow()
}

// startWriter starts the writer goroutine; the read goroutine calls it once,
// after OnConnected, so that time spent there does not count as the
// client's silence.
func (c *conn) startWriter() {
	now := c.hub.now()
	c.lastRecv.Store(now)
	c.qmu.Lock()
	c.started = true
	c.lastSend = now
	if _, inherent := c.wire.(interface{ inherentKeepAlive() }); !inherent {
		c.keepAlive = time.AfterFunc(c.nextDeadline(now), func() {
			c.tick.Store(true)
			c.kick()
		})
	}
	if len(c.queue) > 0 || c.closing || c.stopped.Load() {
		c.kickLocked()
	}
	c.qmu.Unlock()
}

// stopWriter makes the writer exit without writing more; done is closed
// once it has (at once when none runs). Before startWriter it only flags.
func (c *conn) stopWriter() {
	c.stopped.Store(true)
	c.kick()
}

// errClientClose ends the read loop when the client sent a Close message.
var errClientClose = errors.New("client sent close")

// serve runs the connection on the ServeHTTP goroutine: the handshake and
// the records that came with it, then reading moves on to goroutines of
// the hub's (see readLoop) and serve returns. A connection that ends
// before is cleaned up here (finish).
func (c *conn) serve(ws *websocket.Conn) {
	registered, readErr, handedOff := c.readLoop(ws, false)
	if !handedOff {
		c.finish(registered, readErr)
	}
}

// continueReading is a fresh goroutine's turn at reading a handshaken
// connection (see readLoop).
func (c *conn) continueReading(ws *websocket.Conn) {
	_, readErr, handedOff := c.readLoop(ws, true)
	if !handedOff {
		c.finish(true, readErr)
	}
}

// finish closes the connection once reading has ended, runs
// OnDisconnected and tells the hub the connection's goroutines are done.
func (c *conn) finish(registered bool, readErr error) {
	if c.st != nil && registered && c.readFail == nil && transportLost(readErr) && c.detach(readErr) {
		return // it may be resumed (stateful.go)
	}
	defer c.hub.wg.Done()
	if c.expTimer != nil {
		c.expTimer.Stop()
	}
	// No more stream items will come: methods reading them see the end.
	c.endUploads()
	if f := c.readFail; f != nil {
		if f.abandon {
			c.cancel(f.cause)
		} else if registered {
			c.awaitInvocations()
		}
		c.closeWith(*f)
	}

	c.qmu.Lock()
	serverClose := !c.markClosingLocked(closeRequest{cause: clientCause(readErr)})
	r := c.closeReq
	c.qmu.Unlock()
	if wf := (writeFailure{}); serverClose && errors.As(r.cause, &wf) && readErr != nil && clientCause(readErr) == nil {
		// The write failed because the client closed: its close it is.
		r.cause = nil
	}

	if registered {
		c.hub.unregister(c)
		if !serverClose {
			c.stopWriter()
		}
		<-c.done // on a server close, the writer sends the Close message and frame
		c.metricsClosed(r.cause)
	}
	switch {
	case !serverClose && readErr == errClientClose:
		_ = c.wire.close(websocket.StatusNormalClosure, "")
	case !serverClose:
		_ = c.wire.closeNow()
	case !registered:
		if f := c.readFail; f != nil {
			// A record broke the limits before the handshake: answer it.
			c.writeHandshakeError("An unexpected error occurred during connection handshake. " +
				strings.TrimPrefix(f.errMsg, "Connection closed with an error. "))
		}
		_ = c.wire.close(r.status, r.reason)
	}
	if l, ok := c.wire.(interface{ linger(context.Context) }); ok {
		l.linger(c.ctx) // its client may still come for what the transport holds
	}
	c.cancel(disconnectCause(r.cause))
	c.invocations.Wait()
	c.hub.release(c)
	if c.connectedOK {
		c.hub.disconnected(c, r.cause)
	}
}

// invocationGrace bounds how long a connection that broke the protocol
// waits for its accepted invocations before their contexts are cancelled.
const invocationGrace = 5 * time.Second

// awaitInvocations lets accepted invocations finish, so that their
// completions go out before the Close message, and cancels the
// connection's context if they take longer than invocationGrace.
func (c *conn) awaitInvocations() {
	done := make(chan struct{})
	go func() {
		c.invocations.Wait()
		close(done)
	}()
	t := time.NewTimer(invocationGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		c.cancel(fmt.Errorf("%w: invocations outlived the close", ErrProtocol))
		<-done
	}
}

// clientCause turns the read loop's error into OnDisconnected's cause: nil
// for a Close message or a normal WebSocket close.
func clientCause(err error) error {
	if err == nil || err == errClientClose {
		return nil
	}
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway, websocket.StatusNoStatusRcvd:
		return nil
	}
	return err
}

func disconnectCause(cause error) error {
	if cause == nil {
		return context.Canceled
	}
	return cause
}

// complete sends a Completion when the invocation asked for one.
func (c *conn) complete(invocationID string, result []byte, errMsg string) {
	if invocationID == "" {
		return
	}
	if errMsg != "" {
		c.enqueue(c.proto.appendCompletionError(nil, invocationID, errMsg))
		return
	}
	c.enqueue(c.proto.appendCompletion(nil, invocationID, result))
}

func (c *conn) logDebug(msg string, attrs ...slog.Attr) {
	log := c.hub.log
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	attrs = append(attrs, slog.String("conn_id", c.id))
	log.LogAttrs(context.Background(), slog.LevelDebug, msg, attrs...)
}
