package signalhub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/signalhub/signalhub/protocol"
)

// readLoop reads records until the connection ends, or until it hands the
// reading over to a fresh goroutine (handedOff). registered reports whether
// the handshake succeeded and the connection joined the hub (and so
// whether the writer runs); a call with registered set continues the
// reading of a handshaken connection.
//
// Decoding records and running the handshake grow a goroutine's stack to
// 8 KiB, which a goroutine blocked in a read (using 2 to 4 KiB) keeps for
// good. So once it has handled records that came after a quiet spell
// (handoffGap), or the handshake, the goroutine leaves the next blocking
// read to a fresh one, which waits on a 4 KiB stack: an idle connection
// costs half as much stack. A busy connection keeps its goroutine, which
// saves starting one and growing its stack for every message.
func (c *conn) readLoop(ws *websocket.Conn, registered bool) (_ bool, err error, handedOff bool) {
	var expired atomic.Bool
	if !registered {
		c.armHandshakeTimer(&expired)
		defer c.hsTimer.Stop()
	}
	// handOff: records were handled on this goroutine, after the handshake
	// or after a quiet spell.
	handOff := false

	// What was read and not yet processed.
	var rb recordBuf
	defer rb.release()
	for {
		if handOff && registered && len(rb.b) == 0 {
			go c.continueReading(ws)
			return registered, nil, true
		}
		// No context: one would make the WebSocket library arm and disarm
		// a callback on every message. Every path that ends the connection
		// while it is read closes the socket, which ends the read.
		typ, r, err := ws.Reader(context.Background())
		if err != nil {
			if !registered && expired.Load() {
				return false, fmt.Errorf("%w: handshake timeout", ErrProtocol), false
			}
			return registered, err, false
		}
		now := c.hub.now()
		quiet := time.Duration(now-c.lastRecv.Swap(now)) >= handoffGap || !registered
		// Before the handshake either type may carry it (see handshake).
		if registered && typ != c.proto.frameType() {
			return registered, c.failRead(c.proto.wrongFrame), false
		}
		read, perr, rerr := rb.readFrom(c, r, typ, &registered)
		handOff = handOff || (read && quiet)
		if perr != nil {
			return registered, perr, false
		}
		if rerr != nil {
			return registered, rerr, false
		}
	}
}

// recordBuf holds what a connection's reading side has read and not yet
// processed: a partial record at most, between reads. Its buffer comes
// from a pool and goes back whenever it empties, so that an idle
// connection holds none.
type recordBuf struct {
	b      []byte
	pooled *[]byte // b's pool entry; nil when there is none
}

// readFrom reads r to its end (io.EOF), handling every record as it
// completes, with the record size bound of c's protocol. It reports
// whether it read anything, the error of a record that broke the
// protocol or the bound (perr: the connection is failing), and r's own
// error (rerr).
func (rb *recordBuf) readFrom(c *conn, r io.Reader, typ websocket.MessageType, registered *bool) (read bool, perr, rerr error) {
	max := c.hub.opts.MaxMessageSize
	for {
		if cap(rb.b) == 0 {
			rb.pooled = readBufs.Get().(*[]byte)
			rb.b = (*rb.pooled)[:0]
		} else if len(rb.b) == cap(rb.b) {
			rb.b = growReadBuffer(rb.b, max)
		}
		n, err := r.Read(rb.b[len(rb.b):cap(rb.b)])
		read = read || n > 0
		if rb.b, perr = c.processRecords(rb.b[:len(rb.b)+n], typ, registered); perr != nil {
			return read, perr, nil
		}
		if len(rb.b) > max+c.proto.framing {
			return read, c.failTooLarge(), nil
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return read, nil, err
		}
	}
	if len(rb.b) == 0 {
		rb.release()
	}
	return read, nil, nil
}

// release gives the buffer back to the pool, whatever it holds.
func (rb *recordBuf) release() {
	if rb.pooled != nil {
		if n := cap(rb.b); n > 0 && n <= maxPooledReadBuffer {
			*rb.pooled = rb.b[:0]
		}
		readBufs.Put(rb.pooled)
	}
	rb.b, rb.pooled = nil, nil
}

// handoffGap is how long a connection must have been quiet for the
// records that end the silence to move reading to a fresh goroutine (see
// readLoop). Idle clients ping every 15 s; busy ones send more often.
const handoffGap = time.Second

// handshakeWriteTimeout bounds the write of a handshake error: the client
// is misbehaving and may not read.
const handshakeWriteTimeout = time.Second

// armHandshakeTimer starts the handshake timeout, which drops the wire
// unless the handshake record has arrived by then. It is a timer, not a
// read deadline, so that a slow OnConnected after the handshake is not cut
// short. expired records that it fired.
func (c *conn) armHandshakeTimer(expired *atomic.Bool) {
	c.hsTimer = time.AfterFunc(c.hub.opts.HandshakeTimeout, func() {
		expired.Store(true)
		// Say why, as ASP.NET Core does, without waiting long for a
		// client that does not read either.
		c.writeHandshakeError("Handshake was canceled.")
		_ = c.wire.closeNow()
	})
}

// writeHandshakeError answers the handshake with an error, bounded by
// handshakeWriteTimeout. Only the first answer goes out: the handshake
// timer and the reading side may both try.
func (c *conn) writeHandshakeError(msg string) {
	if !c.hsAnswered.CompareAndSwap(false, true) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), handshakeWriteTimeout)
	defer cancel()
	_ = c.wire.write(ctx, [][]byte{protocol.AppendHandshakeResponse(nil, msg)})
}

// maxPooledReadBuffer is the largest read buffer kept for reuse; a larger
// one, grown for a large record, is left to the garbage collector.
const maxPooledReadBuffer = 16 << 10

var readBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

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

// failRead records why the read loop gives up on the connection and
// returns the cause; serve closes the connection once the invocations
// already accepted have completed.
func (c *conn) failRead(r closeRequest) error {
	c.readFail = &r
	return r.cause
}

func (c *conn) failTooLarge() error {
	return c.failRead(closeRequest{
		cause:          ErrMessageTooLarge,
		errMsg:         fmt.Sprintf("Connection closed with an error. The maximum message size of %dB was exceeded.", c.hub.opts.MaxMessageSize),
		allowReconnect: true, status: websocket.StatusMessageTooBig, reason: "message too large",
	})
}

// anyFrame stands for the message type of records that came without one:
// in the POSTs of the HTTP transports, which carry text or binary alike.
const anyFrame websocket.MessageType = 0

// processRecords handles every complete record in buf and returns the
// partial tail moved to the front of buf. Every transport's reading side
// feeds it: the WebSocket read loop with the type of the message the
// records came in, and the POSTs of the HTTP transports with anyFrame.
func (c *conn) processRecords(buf []byte, typ websocket.MessageType, registered *bool) ([]byte, error) {
	rest := buf
	for {
		rec, tail, ok, err := c.proto.next(rest, c.hub.opts.MaxMessageSize)
		if errors.Is(err, errRecordTooLarge) {
			return nil, c.failTooLarge()
		} else if err != nil {
			return nil, c.failInvalid(err)
		}
		if !ok {
			break
		}
		rest = tail
		if *registered {
			if typ != anyFrame && typ != c.proto.frameType() {
				// Records after the handshake, in its message.
				return nil, c.failRead(c.proto.wrongFrame)
			}
			err = c.handleRecord(rec)
		} else if err = c.handshake(rec, typ); err == nil {
			*registered = true
			err = c.connected()
			c.startWriter() // also after a failed OnConnected: it sends the Close
		}
		if err != nil {
			return nil, err
		}
	}
	n := copy(buf, rest)
	return buf[:n], nil
}

// handshake checks the handshake record, which came in a message of type
// typ, picks the connection's protocol, joins the hub and answers through
// the wire.
func (c *conn) handshake(rec []byte, typ websocket.MessageType) error {
	if !c.hsTimer.Stop() {
		return fmt.Errorf("%w: handshake timeout", ErrProtocol)
	}
	req, err := protocol.DecodeHandshakeRequest(rec)
	p := hubProtocolNamed(req.Protocol)
	_, binaryOK := c.wire.(binaryWire)
	var msg string
	switch {
	case err != nil:
		msg = "An unexpected error occurred during connection handshake. " + err.Error()
	case p == nil:
		msg = fmt.Sprintf("The protocol '%s' is not supported.", req.Protocol)
	case req.Version < 0 || req.Version > protocol.MaxHandshakeVersion:
		msg = fmt.Sprintf("The server does not support version %d of the '%s' protocol.", req.Version, req.Protocol)
	case p.binary && !binaryOK:
		msg = fmt.Sprintf("Cannot use the '%s' protocol on the current transport. The transport does not support 'Binary' transfer format.", p.name)
	case !p.binary && typ != websocket.MessageText && typ != anyFrame:
		return c.failRead(closeBinary)
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.hub.opts.WriteTimeout)
	defer cancel()
	refuse := func(cause error, msg string) error {
		c.qmu.Lock()
		c.markClosingLocked(closeRequest{cause: cause, status: websocket.StatusNormalClosure})
		c.qmu.Unlock()
		_ = c.wire.write(ctx, [][]byte{protocol.AppendHandshakeResponse(nil, msg)})
		return cause
	}
	if msg != "" {
		return refuse(fmt.Errorf("%w: %s", ErrProtocol, msg), msg)
	}
	c.proto = p
	if _, ws := c.wire.(wsWire); ws && c.statefulOK && req.Version >= 2 {
		c.enableStateful() // negotiate granted it, and the client asks for it
	}
	// Join the hub before answering, so that a send made as soon as the
	// client's start() resolves reaches it. Records queued meanwhile wait for
	// the writer, which starts after the response is written.
	if err := c.hub.register(c); err != nil {
		if errors.Is(err, ErrTooManyConnections) {
			return refuse(err, fmt.Sprintf("The user already has %d connections, the most allowed.", c.hub.opts.MaxConnectionsPerUser))
		}
		return refuse(err, "The server is shutting down.")
	}
	c.metricsOpened()
	if !c.expires.IsZero() {
		c.expTimer = time.AfterFunc(time.Until(c.expires), func() { c.closeWith(closeExpired) })
	}
	c.hub.subscribeUser(ctx, c)
	if c.st != nil {
		c.hub.setResumable(c)
	}
	if err := c.wire.write(ctx, [][]byte{protocol.AppendHandshakeResponse(nil, "")}); err != nil {
		c.hub.unregister(c)
		c.metricsClosed(err)
		return err
	}
	return nil
}

// connected runs OnConnected on the read goroutine, before any other record
// of the connection is handled.
func (c *conn) connected() error {
	fn := c.hub.onConnected
	if fn == nil {
		c.connectedOK = true
		return nil
	}
	err := c.hub.callHook(c, "OnConnected", func() error { return fn(&c.hctx) })
	if err != nil {
		// As in ASP.NET Core: an error in OnConnected closes the connection
		// without reconnect, and OnDisconnected does not run.
		c.closeWith(closeRequest{cause: err, errMsg: c.hub.errorText("Connection closed with an error.", err),
			status: websocket.StatusNormalClosure})
		return err
	}
	c.connectedOK = true
	return nil
}

// allowInvocation takes a token from the connection's invocation bucket
// (Options.InvocationRate). When there is none it reports ok=false, and
// abuse=true once InvocationBurst invocations in a row were refused.
func (c *conn) allowInvocation() (ok, abuse bool) {
	return c.allowInvocationAt(c.hub.now())
}

// allowInvocationAt is allowInvocation at the hub clock's now.
func (c *conn) allowInvocationAt(now int64) (ok, abuse bool) {
	rate := c.hub.opts.InvocationRate
	if rate <= 0 {
		return true, false
	}
	burst := float64(c.hub.opts.InvocationBurst)
	c.tokens = min(burst, c.tokens+float64(now-c.tokenAt)*rate/float64(time.Second))
	c.tokenAt = now
	if c.tokens >= 1 {
		c.tokens--
		c.refused = 0
		return true, false
	}
	c.refused++
	return false, c.refused >= c.hub.opts.InvocationBurst
}

// failInvalid closes the connection for a record that breaks the protocol.
func (c *conn) failInvalid(err error) error {
	return c.failRead(closeRequest{
		cause:          fmt.Errorf("%w: %w", ErrProtocol, err),
		errMsg:         "Connection closed with an error. " + err.Error(),
		allowReconnect: true, status: websocket.StatusPolicyViolation, reason: "invalid message",
	})
}

// handleRecord dispatches one hub message.
func (c *conn) handleRecord(rec []byte) error {
	c.metricsReceived(rec)
	m, err := c.proto.decode(rec)
	if err != nil {
		return c.failInvalid(err)
	}
	if c.st != nil {
		if handle, err := c.receivedStateful(&m); !handle || err != nil {
			return err
		}
	}
	if m.Type == protocol.TypeInvocation || m.Type == protocol.TypeStreamInvocation {
		if ok, abuse := c.allowInvocation(); !ok {
			if abuse {
				return c.failRead(closeRequest{
					cause: ErrRateLimited,
					errMsg: fmt.Sprintf("Connection closed with an error. The client went on invoking hub methods faster than %g per second.",
						c.hub.opts.InvocationRate),
					status: websocket.StatusPolicyViolation, reason: "invocation rate limit exceeded", abandon: true,
				})
			}
			c.complete(m.InvocationID, nil, fmt.Sprintf("Failed to invoke '%s': the rate limit of %g invocations per second was exceeded.",
				m.Target, c.hub.opts.InvocationRate))
			return nil
		}
	}
	switch m.Type {
	case protocol.TypeInvocation:
		if len(m.StreamIDs) > 0 {
			c.startStream(&m)
			return nil
		}
		return c.submit(&m)
	case protocol.TypeStreamInvocation:
		c.startStream(&m)
	case protocol.TypeStreamItem:
		c.streamItem(&m)
	case protocol.TypeCompletion:
		// Handled here, so that a waiting hub method gets it: the end of
		// a stream from the client, or a client result.
		if !c.streamCompletion(&m) {
			c.deliverReply(&m)
		}
	case protocol.TypeCancelInvocation:
		c.cancelStream(m.InvocationID)
	case protocol.TypeClose:
		return errClientClose
	default:
		// Ping only refreshes lastRecv. Ack and Sequence without stateful
		// reconnect, and unknown types, are ignored, as ASP.NET Core does.
	}
	return nil
}
