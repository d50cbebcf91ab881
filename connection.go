package signalhub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/signalhub/signalhub/protocol"
)

// wire is the socket under a connection. Only the connection's writer
// goroutine calls write and close (the handshake response, written before
// the writer starts, is the one exception).
type wire interface {
	// write sends records, each a whole record ending in the separator, as
	// one text message.
	write(ctx context.Context, records [][]byte) error
	// close sends a close frame with status and reason and waits (bounded)
	// for the peer's.
	close(status websocket.StatusCode, reason string) error
	// closeNow drops the socket at once. Safe from any goroutine.
	closeNow() error
}

// wsWire is the WebSocket wire.
type wsWire struct{ ws *websocket.Conn }

func (w wsWire) write(ctx context.Context, records [][]byte) error {
	if len(records) == 1 {
		return w.ws.Write(ctx, websocket.MessageText, records[0])
	}
	// Several records share one message. Each Write becomes a frame of a
	// fragmented message, buffered until Close, so records are not copied.
	mw, err := w.ws.Writer(ctx, websocket.MessageText)
	if err != nil {
		return err
	}
	for _, r := range records {
		if _, err := mw.Write(r); err != nil {
			return err
		}
	}
	return mw.Close()
}

func (w wsWire) close(status websocket.StatusCode, reason string) error {
	return w.ws.Close(status, reason)
}

func (w wsWire) closeNow() error { return w.ws.CloseNow() }

// conn is one client connection. It owns its socket: the read loop runs on
// the goroutine that called Hub.ServeHTTP, and one writer goroutine drains
// the bounded outgoing queue. conn never takes the hub lock; the hub calls
// enqueue under its read lock, which is why enqueue never blocks or logs.
type conn struct {
	hub    *Hub
	id     string
	token  string // negotiate token; "" for skipNegotiation connects
	userID string
	claims Claims
	wire   wire
	hctx   Context // the hub-method view of this connection

	ctx    context.Context // ends when the connection ends
	cancel context.CancelCauseFunc

	// qmu guards the outgoing queue and the closing state.
	qmu     sync.Mutex
	queue   [][]byte
	spare   [][]byte // the writer's previous batch, reused as the next queue
	qbytes  int
	closing bool  // no further enqueues; the writer finishes and closes
	cause   error // why the server closed the connection; nil if the client did
	status  websocket.StatusCode
	reason  string
	slow    bool          // closing because the queue overflowed
	wake    chan struct{} // capacity 1: there is work for the writer
	done    chan struct{} // closed when the writer has exited

	stopped atomic.Bool // the writer must exit without writing
	tick    atomic.Bool // the keep-alive timer fired

	lastRecv atomic.Int64 // hub clock (nanoseconds) of the last received data

	started     atomic.Bool   // the handshake succeeded and the writer runs
	connectedOK bool          // OnConnected succeeded; read goroutine only
	hsTimer     *time.Timer   // handshake timeout; read goroutine only
	readFail    *closeRequest // why the read loop gave up; read goroutine only

	// jmu guards jobs and workers: invocations waiting for a worker
	// goroutine, and how many workers run (see dispatch.go).
	jmu         sync.Mutex
	jobs        []*protocol.Message
	workers     int
	invocations sync.WaitGroup // worker goroutines
}

func newConn(h *Hub, id, token string, w wire) *conn {
	c := &conn{
		hub:   h,
		id:    id,
		token: token,
		wire:  w,
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancelCause(h.baseCtx)
	c.hctx.conn = c
	c.lastRecv.Store(h.now())
	return c
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
		clear(c.queue)
		c.queue = c.queue[:0]
		c.qbytes = 0
		c.slow = true
		c.startClosingLocked(ErrSlowConsumer, closeSlowConsumer, false, websocket.StatusPolicyViolation, "slow consumer")
		c.qmu.Unlock()
		c.signal()
		return false
	}
	c.queue = append(c.queue, rec)
	c.qbytes += len(rec)
	c.qmu.Unlock()
	c.signal()
	return true
}

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Close message texts. ASP.NET Core starts every error close with
// "Connection closed with an error."; we always add the reason.
const (
	closeSlowConsumer = "Connection closed with an error. The connection's outgoing queue is full (slow consumer)."
	closeTimeout      = "Connection closed with an error. Server timeout elapsed without receiving a message from the client."
	closeBinary       = "Connection closed with an error. Binary messages are not supported by the 'json' protocol."
	closeInternal     = "Connection closed with an error."
)

// closeWith starts a server-side close: queued records are still written,
// then a Close message with errMsg, then the WebSocket close frame. It is a
// no-op when the connection is already closing. cause is what
// OnDisconnected will see.
func (c *conn) closeWith(cause error, errMsg string, allowReconnect bool, status websocket.StatusCode, reason string) {
	c.qmu.Lock()
	started := c.startClosingLocked(cause, errMsg, allowReconnect, status, reason)
	c.qmu.Unlock()
	if started {
		c.signal()
	}
}

func (c *conn) startClosingLocked(cause error, errMsg string, allowReconnect bool, status websocket.StatusCode, reason string) bool {
	if c.closing {
		return false
	}
	c.closing = true
	c.cause = cause
	c.status = status
	c.reason = reason
	c.queue = append(c.queue, protocol.AppendClose(nil, errMsg, allowReconnect))
	return true
}

// take swaps the queue with the writer's previous batch.
func (c *conn) take() (batch [][]byte, closing bool) {
	c.qmu.Lock()
	if len(c.queue) == 0 { // a spurious wake: keep both buffers
		closing = c.closing
		c.qmu.Unlock()
		return nil, closing
	}
	batch, c.queue = c.queue, c.spare[:0]
	c.spare = nil
	c.qbytes = 0
	closing = c.closing
	c.qmu.Unlock()
	return batch, closing
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

// writeLoop is the connection's only socket writer. It batches whatever is
// queued into one message, sends keep-alive Pings, enforces the client
// timeout, and performs the server side of a close.
func (c *conn) writeLoop() {
	defer close(c.done)
	opts := &c.hub.opts
	lastSend := c.hub.now()
	// The writer waits on wake alone: the keep-alive timer and stopWriter
	// set a flag and signal it, which is cheaper per message than a select.
	timer := time.AfterFunc(c.nextDeadline(lastSend), func() {
		c.tick.Store(true)
		c.signal()
	})
	defer timer.Stop()
	ping := protocol.AppendPing(nil)
	// One context and one watchdog timer serve every write, so a write
	// allocates nothing: the watchdog cancels the context when a write
	// takes longer than WriteTimeout, which makes the wire drop the socket.
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	watchdog := time.AfterFunc(time.Hour, func() {
		// Record the cause first: cancelling drops the socket, and the read
		// loop must not report that as the client's doing.
		c.qmu.Lock()
		if !c.closing {
			c.closing, c.cause = true, errWriteTimeout
		}
		c.qmu.Unlock()
		wcancel()
	})
	watchdog.Stop()
	for {
		<-c.wake
		if c.stopped.Load() {
			return
		}
		if c.tick.Swap(false) {
			now := c.hub.now()
			if time.Duration(now-c.lastRecv.Load()) >= opts.ClientTimeout {
				c.closeWith(ErrClientTimeout, closeTimeout, true, websocket.StatusNormalClosure, "client timeout")
			} else if time.Duration(now-lastSend) >= opts.KeepAliveInterval {
				c.enqueue(ping) // goes out below with anything else queued
			}
			timer.Reset(c.nextDeadline(lastSend))
		}
		batch, closing := c.take()
		if len(batch) > 0 {
			watchdog.Reset(opts.WriteTimeout)
			err := c.wire.write(wctx, batch)
			if !watchdog.Stop() && err == nil {
				err = context.DeadlineExceeded // fired as the write finished
			}
			c.giveBack(batch)
			if err != nil {
				c.logDebug("write failed", slog.Any("err", err))
				c.abort(fmt.Errorf("signalhub: write: %w", err))
				return
			}
			lastSend = c.hub.now()
		}
		if closing {
			c.qmu.Lock()
			status, reason, slow := c.status, c.reason, c.slow
			c.qmu.Unlock()
			if slow {
				c.hub.log.LogAttrs(context.Background(), slog.LevelWarn, "closing slow connection",
					slog.String("conn_id", c.id), slog.String("user_id", c.userID))
			}
			_ = c.wire.close(status, reason)
			return
		}
	}
}

// nextDeadline returns how long the writer may sleep before it has to send
// a Ping or check the client timeout.
func (c *conn) nextDeadline(lastSend int64) time.Duration {
	opts := &c.hub.opts
	now := c.hub.now()
	d := min(time.Duration(lastSend-now)+opts.KeepAliveInterval,
		time.Duration(c.lastRecv.Load()-now)+opts.ClientTimeout)
	return max(d, time.Millisecond)
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

// abort drops the connection at once; cause is what OnDisconnected sees
// unless a close was already under way.
func (c *conn) abort(cause error) {
	c.qmu.Lock()
	if !c.closing {
		c.closing, c.cause, c.status = true, cause, websocket.StatusGoingAway
	}
	c.qmu.Unlock()
	c.stopWriter()
	c.cancel(cause) // running hub methods see Context() end
	_ = c.wire.closeNow()
}

func (c *conn) stopWriter() {
	c.stopped.Store(true)
	c.signal()
}

// errWriteTimeout is OnDisconnected's cause for a write slower than
// Options.WriteTimeout.
var errWriteTimeout = fmt.Errorf("signalhub: write: %w", context.DeadlineExceeded)

// errClientClose ends the read loop when the client sent a Close message.
var errClientClose = errors.New("client sent close")

// serve runs the connection on the ServeHTTP goroutine: handshake, then the
// read loop, then cleanup. It returns when every goroutine it started has
// exited and OnDisconnected has run.
func (c *conn) serve(ws *websocket.Conn) {
	registered, readErr := c.readLoop(ws)
	if f := c.readFail; f != nil {
		if f.abandon {
			c.cancel(f.cause)
		} else if registered {
			c.awaitInvocations()
		}
		c.closeWith(f.cause, f.errMsg, f.allowReconnect, f.status, f.reason)
	}

	c.qmu.Lock()
	serverClose := c.closing
	if !c.closing {
		c.closing = true
	}
	cause := c.cause
	c.qmu.Unlock()

	if !serverClose {
		cause = clientCause(readErr)
	}
	if registered {
		c.hub.unregister(c)
		if serverClose {
			<-c.done // the writer sends the Close message and close frame
		} else {
			c.stopWriter()
			<-c.done
		}
	}
	if !serverClose {
		if readErr == errClientClose {
			_ = ws.Close(websocket.StatusNormalClosure, "")
		} else {
			_ = ws.CloseNow()
		}
	} else if !registered {
		_ = ws.Close(c.status, c.reason)
	}
	c.cancel(disconnectCause(cause))
	c.invocations.Wait()
	c.hub.release(c)
	if c.connectedOK {
		c.hub.disconnected(c, cause)
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

// readLoop reads records until the connection ends. registered reports
// whether the handshake succeeded and the connection joined the hub.
func (c *conn) readLoop(ws *websocket.Conn) (registered bool, err error) {
	opts := &c.hub.opts
	// The handshake timer drops the socket unless the handshake record has
	// arrived by then. It is a timer, not a read deadline, so that a slow
	// OnConnected after the handshake is not cut short.
	var expired atomic.Bool
	hsTimer := time.AfterFunc(opts.HandshakeTimeout, func() {
		expired.Store(true)
		_ = ws.CloseNow()
	})
	c.hsTimer = hsTimer
	defer hsTimer.Stop()

	var buf []byte
	for {
		typ, r, err := ws.Reader(c.ctx)
		if err != nil {
			if !registered && expired.Load() {
				return false, fmt.Errorf("%w: handshake timeout", ErrProtocol)
			}
			return registered, err
		}
		c.lastRecv.Store(c.hub.now())
		if typ != websocket.MessageText {
			return registered, c.failRead(closeRequest{cause: ErrProtocol, errMsg: closeBinary, allowReconnect: true, status: websocket.StatusUnsupportedData, reason: "binary message"})
		}
		for {
			if len(buf) == cap(buf) {
				buf = growReadBuffer(buf, opts.MaxMessageSize)
			}
			n, rerr := r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			var perr error
			buf, perr = c.processRecords(ws, buf, &registered)
			if perr != nil {
				return registered, perr
			}
			if len(buf) > opts.MaxMessageSize {
				return registered, c.failTooLarge()
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				return registered, rerr
			}
		}
		if len(buf) == 0 && cap(buf) > 4096 {
			buf = nil // do not hold a large buffer on an idle connection
		}
	}
}

// growReadBuffer makes room to read more, up to one byte past the largest
// allowed record so that an oversize record is detected.
func growReadBuffer(buf []byte, maxRecord int) []byte {
	n := max(2*cap(buf), 512)
	n = min(n, maxRecord+1+512)
	if n <= cap(buf) {
		n = cap(buf) + 512
	}
	nb := make([]byte, len(buf), n)
	copy(nb, buf)
	return nb
}

func (c *conn) failTooLarge() error {
	msg := fmt.Sprintf("Connection closed with an error. The maximum message size of %dB was exceeded.", c.hub.opts.MaxMessageSize)
	return c.failRead(closeRequest{cause: ErrMessageTooLarge, errMsg: msg, allowReconnect: true, status: websocket.StatusMessageTooBig, reason: "message too large"})
}

// closeRequest describes a server-side close (see closeWith). As in
// ASP.NET Core, errors in what the client sent allow it to reconnect: the
// next connection starts clean.
type closeRequest struct {
	cause          error
	errMsg         string
	allowReconnect bool
	status         websocket.StatusCode
	reason         string
	abandon        bool // cancel running invocations instead of letting them finish
}

// failRead records why the read loop gives up on the connection; serve
// closes it once the invocations already accepted have completed.
func (c *conn) failRead(r closeRequest) error {
	c.readFail = &r
	return r.cause
}

// processRecords handles every complete record in buf and returns the
// partial tail moved to the front of buf.
func (c *conn) processRecords(ws *websocket.Conn, buf []byte, registered *bool) ([]byte, error) {
	rest := buf
	for {
		rec, tail, ok := protocol.NextRecord(rest)
		if !ok {
			break
		}
		rest = tail
		if len(rec) > c.hub.opts.MaxMessageSize {
			return nil, c.failTooLarge()
		}
		var err error
		if !*registered {
			if err = c.handshake(ws, rec); err == nil {
				*registered = true
				if err = c.connected(); err != nil {
					return nil, err
				}
			}
		} else {
			err = c.handleRecord(rec)
		}
		if err != nil {
			return nil, err
		}
	}
	n := copy(buf, rest)
	return buf[:n], nil
}

// handshake checks the handshake record and answers it. On success the
// connection joins the hub and its writer starts.
func (c *conn) handshake(ws *websocket.Conn, rec []byte) error {
	if !c.hsTimer.Stop() {
		return fmt.Errorf("%w: handshake timeout", ErrProtocol)
	}
	req, err := protocol.DecodeHandshakeRequest(rec)
	var msg string
	switch {
	case err != nil:
		msg = "An unexpected error occurred during connection handshake. " + err.Error()
	case req.Protocol != protocol.ProtocolJSON:
		msg = fmt.Sprintf("The protocol '%s' is not supported.", req.Protocol)
	case req.Version < 0 || req.Version > protocol.MaxHandshakeVersion:
		msg = fmt.Sprintf("The server does not support version %d of the '%s' protocol.", req.Version, req.Protocol)
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.hub.opts.WriteTimeout)
	defer cancel()
	if msg != "" {
		_ = ws.Write(ctx, websocket.MessageText, protocol.AppendHandshakeResponse(nil, msg))
		c.qmu.Lock()
		c.closing, c.cause, c.status, c.reason = true, fmt.Errorf("%w: %s", ErrProtocol, msg), websocket.StatusNormalClosure, ""
		c.qmu.Unlock()
		return ErrProtocol
	}
	// Join the hub before answering, so that a send made as soon as the
	// client's start() resolves reaches it. Records queued meanwhile wait for
	// the writer, which starts after the response is written.
	if err := c.hub.register(c); err != nil {
		c.qmu.Lock()
		c.closing, c.cause, c.status, c.reason = true, err, websocket.StatusGoingAway, "hub closed"
		c.qmu.Unlock()
		_ = ws.Write(ctx, websocket.MessageText, protocol.AppendHandshakeResponse(nil, "The server is shutting down."))
		return err
	}
	if err := ws.Write(ctx, websocket.MessageText, protocol.AppendHandshakeResponse(nil, "")); err != nil {
		c.hub.unregister(c)
		return err
	}
	c.started.Store(true)
	go c.writeLoop()
	return nil
}

// handshaken reports whether the connection joined the hub and its writer
// runs.
func (c *conn) handshaken() bool { return c.started.Load() }

// connected runs OnConnected on the read goroutine.
func (c *conn) connected() error {
	fn := c.hub.opts.OnConnected
	if fn == nil {
		c.connectedOK = true
		return nil
	}
	err := c.hub.callHook(c, "OnConnected", func() error { return fn(&c.hctx) })
	if err != nil {
		// As in ASP.NET Core: an error in OnConnected closes the connection
		// without reconnect, and OnDisconnected does not run.
		c.closeWith(err, c.hub.errorText("Connection closed with an error.", err), false, websocket.StatusNormalClosure, "")
		return err
	}
	c.connectedOK = true
	return nil
}

// handleRecord dispatches one hub message.
func (c *conn) handleRecord(rec []byte) error {
	m, err := protocol.DecodeMessage(rec)
	if err != nil {
		return c.failRead(closeRequest{cause: fmt.Errorf("%w: %w", ErrProtocol, err),
			errMsg: "Connection closed with an error. " + err.Error(), allowReconnect: true, status: websocket.StatusPolicyViolation, reason: "invalid message"})
	}
	switch m.Type {
	case protocol.TypeInvocation:
		return c.submit(&m)
	case protocol.TypeStreamInvocation:
		c.complete(m.InvocationID, nil, fmt.Sprintf("Failed to invoke '%s': streaming methods are not supported by this server.", m.Target))
	case protocol.TypeCancelInvocation:
		c.complete(m.InvocationID, nil, "Streaming is not supported by this server.")
	case protocol.TypeClose:
		return errClientClose
	default:
		// Ping only refreshes lastRecv. Completions and stream items for
		// calls this server never made, Ack and Sequence without stateful
		// reconnect, and unknown types are ignored, as ASP.NET Core does.
	}
	return nil
}

// complete sends a Completion when the invocation asked for one.
func (c *conn) complete(invocationID string, result []byte, errMsg string) {
	if invocationID == "" {
		return
	}
	if errMsg != "" {
		c.enqueue(protocol.AppendCompletionError(nil, invocationID, errMsg))
		return
	}
	c.enqueue(protocol.AppendCompletion(nil, invocationID, result))
}

func (c *conn) logDebug(msg string, attrs ...slog.Attr) {
	log := c.hub.log
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	attrs = append(attrs, slog.String("conn_id", c.id))
	log.LogAttrs(context.Background(), slog.LevelDebug, msg, attrs...)
}
