package signalhub

import (
	"context"
	"errors"
	"time"

	"github.com/signalhub/signalhub/backplane"
	"github.com/signalhub/signalhub/protocol"
)

// Metrics receives a hub's measurements as they happen, for a metrics
// library to aggregate and export: package
// github.com/signalhub/signalhub/otelhub records them with OpenTelemetry
// instruments. Set it in Options.Metrics; every field is optional. A hub
// without Metrics reads no clock and calls nothing for them.
//
// The hub calls these funcs from its own goroutines, concurrently, never
// while it holds a lock, and some of them on a connection's reading and
// writing paths: they must return quickly and must not block. Add to an
// atomic counter or record into a non-blocking instrument; do not log or
// do I/O. A send's fan-out calls none of them: messages are counted by
// each connection's writer, once per batch it writes. Like the rest of
// Options, Metrics is copied by New.
//
// A connection counts from the moment it joins the hub, during its
// handshake, before the client hears that it is connected (so that a
// client that has connected is counted): ConnectionOpened and
// ConnectionClosed come in pairs, for every connection that joined,
// ConnectionClosed before OnDisconnected runs.
type Metrics struct {
	// ConnectionOpened is called when a connection joins the hub, as its
	// handshake succeeds, before the handshake response and OnConnected.
	ConnectionOpened func(c ConnectionInfo)

	// ConnectionClosed is called when a connection opened has left the
	// hub and its writer is done, with how long it was open and why it
	// ended: the error OnDisconnected gets (nil for a close by the
	// client; ErrSlowConsumer, ErrClientTimeout, ErrHubClosed, ...), or
	// the error of the handshake response's write when that failed. A
	// stateful-reconnect connection whose transport dropped stays open
	// while it waits to be resumed. Invocations still running then are
	// reported when they end, after it.
	ConnectionClosed func(c ConnectionInfo, d time.Duration, cause error)

	// MessagesSent is called after the connection's writer has written a
	// batch of messages (hub protocol records: invocations, completions,
	// stream items, pings, the Close message) to the transport (a
	// WebSocket message, a Server-Sent Event, a Long Polling poll's
	// answer), with how many records and bytes it held; the handshake
	// response is not counted. bytes counts the records as the
	// hub protocol frames them (with the JSON record separator or the
	// MessagePack length prefix), not the transport's own framing.
	MessagesSent func(c ConnectionInfo, messages, bytes int)

	// MessageReceived is called for every record the connection received
	// after its handshake, before it is handled, with its size counted as
	// for MessagesSent.
	MessageReceived func(c ConnectionInfo, bytes int)

	// InvocationDone is called when a hub method invocation of the
	// connection ends, for the invocations of registered methods whose
	// arguments bound (those that Filters see), with method's name as
	// registered in Options.Methods, so that a client cannot make up
	// names. d runs from the call to its end: for a method that streams
	// its result, the end of the stream. err is what the method (or a
	// filter) returned, or what ended its stream early; it is nil when
	// the client cancelled the stream or went away while it streamed.
	InvocationDone func(c ConnectionInfo, method string, d time.Duration, err error)

	// BackplanePublished is called after every publish to the backplane
	// (see Options.Backplane), with the kind of message, how long the
	// engine's Publish took and the error it returned.
	BackplanePublished func(kind backplane.Kind, d time.Duration, err error)
}

// ConnectionInfo describes a connection to Metrics.
type ConnectionInfo struct {
	// ID is the connection's ID.
	ID string
	// Transport is the transport the connection uses, named as in
	// negotiate: protocol.TransportWebSockets ("WebSockets"),
	// protocol.TransportServerSentEvents or protocol.TransportLongPolling.
	Transport string
	// Protocol is the hub protocol its handshake chose:
	// protocol.ProtocolJSON ("json") or protocol.ProtocolMessagePack
	// ("messagepack").
	Protocol string
}

// connMetrics is what Metrics hears of a connection, set by metricsOpened
// on the read goroutine as the connection joins the hub, before any
// other hook about it can run, and read-only from then on.
type connMetrics struct {
	openedAt  int64  // hub clock
	transport string // for ConnectionInfo: c.wire changes when a stateful connection resumes
}

// info describes c to Metrics.
func (c *conn) info() ConnectionInfo {
	return ConnectionInfo{ID: c.id, Transport: c.metrics.transport, Protocol: c.proto.name}
}

// metricsOpened starts the clock of a connection that joined the hub and
// reports it to Options.Metrics. Read goroutine only.
func (c *conn) metricsOpened() {
	m := c.hub.opts.Metrics
	if m == nil {
		return
	}
	c.metrics.openedAt = c.hub.now()
	c.metrics.transport = protocol.TransportWebSockets
	switch c.wire.(type) {
	case *sseWire:
		c.metrics.transport = protocol.TransportServerSentEvents
	case *pollWire:
		c.metrics.transport = protocol.TransportLongPolling
	}
	if m.ConnectionOpened != nil {
		m.ConnectionOpened(c.info())
	}
}

// metricsClosed reports the end of a connection that metricsOpened
// reported.
func (c *conn) metricsClosed(cause error) {
	if m := c.hub.opts.Metrics; m != nil && m.ConnectionClosed != nil {
		m.ConnectionClosed(c.info(), time.Duration(c.hub.now()-c.metrics.openedAt), cause)
	}
}

// The hooks on the hot paths are split in two, so that the check for
// Options.Metrics is inlined where they are called.

// metricsSent reports a batch the writer (or a Long Polling poll) has
// written.
func (c *conn) metricsSent(batch [][]byte) {
	if c.hub.opts.Metrics != nil && len(batch) > 0 {
		c.reportSent(batch)
	}
}

func (c *conn) reportSent(batch [][]byte) {
	if m := c.hub.opts.Metrics; m.MessagesSent != nil {
		n := 0
		for _, r := range batch {
			n += len(r)
		}
		m.MessagesSent(c.info(), len(batch), n)
	}
}

// metricsReceived reports a received record, which came without its
// framing.
func (c *conn) metricsReceived(rec []byte) {
	if c.hub.opts.Metrics != nil {
		c.reportReceived(rec)
	}
}

func (c *conn) reportReceived(rec []byte) {
	if m := c.hub.opts.Metrics; m.MessageReceived != nil {
		n := len(rec)
		if c.proto.binary {
			for v := n; ; v >>= 7 { // the length prefix: 7 bits a byte
				n++
				if v < 0x80 {
					break
				}
			}
		} else {
			n++ // the record separator
		}
		m.MessageReceived(c.info(), n)
	}
}

// invocationStart returns the hub clock for an invocation that starts,
// when Options.Metrics wants invocations (0 otherwise).
func (c *conn) invocationStart() int64 {
	if m := c.hub.opts.Metrics; m != nil && m.InvocationDone != nil {
		return c.hub.now()
	}
	return 0
}

// invocationDone reports an invocation of m, started at start, that ended
// with err.
func (c *conn) invocationDone(m *method, start int64, err error) {
	if c.hub.opts.Metrics != nil {
		c.reportInvocation(m, start, err)
	}
}

func (c *conn) reportInvocation(m *method, start int64, err error) {
	if mm := c.hub.opts.Metrics; mm.InvocationDone != nil {
		mm.InvocationDone(c.info(), m.name, time.Duration(c.hub.now()-start), err)
	}
}

// streamInvocationDone is invocationDone for a streaming invocation,
// whose ctx is given and whose outcome is *errp: an error that came
// because the client cancelled the stream or went away is none.
func (c *conn) streamInvocationDone(ctx context.Context, m *method, start int64, errp *error) {
	if mm := c.hub.opts.Metrics; mm == nil || mm.InvocationDone == nil {
		return
	}
	err := *errp
	if err != nil && (errors.Is(context.Cause(ctx), errStreamCanceled) || errors.Is(err, ErrClientDisconnected) || c.ctx.Err() != nil) {
		err = nil
	}
	c.reportInvocation(m, start, err)
}

// publishStart returns the hub clock for a backplane publish that starts,
// when Options.Metrics wants publishes (0 otherwise).
func (h *Hub) publishStart() int64 {
	if m := h.opts.Metrics; m != nil && m.BackplanePublished != nil {
		return h.now()
	}
	return 0
}

// published reports a backplane publish of a message of kind, started at
// start, that returned err.
func (h *Hub) published(kind backplane.Kind, start int64, err error) {
	if h.opts.Metrics != nil {
		h.reportPublished(kind, start, err)
	}
}

func (h *Hub) reportPublished(kind backplane.Kind, start int64, err error) {
	if m := h.opts.Metrics; m.BackplanePublished != nil {
		m.BackplanePublished(kind, time.Duration(h.now()-start), err)
	}
}
