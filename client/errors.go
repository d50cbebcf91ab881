package client

import (
	"errors"
	"strconv"
)

// Errors returned by the client. Check them with errors.Is: the client
// wraps them with what it was doing.
var (
	// ErrClosed is returned by Start, Invoke, Send and Stream after Close
	// or once the connection has ended for good, and by Err when Close
	// ended it.
	ErrClosed = errors.New("client: connection closed")

	// ErrNotConnected is returned by Invoke, Send and Stream before Start
	// has succeeded and while the client reconnects; a call that meets a
	// connection just being lost gets it wrapped with the reason. The
	// official clients reject such calls too rather than queue them.
	ErrNotConnected = errors.New("client: not connected")

	// ErrAlreadyStarted is returned by Start on a connection that runs (or
	// is starting) already.
	ErrAlreadyStarted = errors.New("client: already started")

	// ErrConnectionLost wraps the socket error when the connection dropped
	// without a Close message from the server.
	ErrConnectionLost = errors.New("client: connection lost")

	// ErrServerTimeout ends a connection on which nothing was received
	// within Options.ServerTimeout.
	ErrServerTimeout = errors.New("client: server timeout elapsed without receiving a message from the server")

	// ErrHandshake wraps every failure of the hub protocol handshake,
	// including the server's refusal.
	ErrHandshake = errors.New("client: handshake failed")

	// ErrNegotiate wraps every failure of negotiate: an {"error": ...}
	// answer, too many redirects, a server that offers no WebSocket
	// transport, a malformed body.
	ErrNegotiate = errors.New("client: negotiate failed")

	// ErrProtocol ends a connection on which the server sent something the
	// hub protocol does not allow: a malformed record, a record split
	// across WebSocket messages, a binary message, an oversize message.
	ErrProtocol = errors.New("client: protocol error")

	// ErrReconnectFailed ends a connection whose ReconnectPolicy gave up.
	// The error also wraps the last attempt's error.
	ErrReconnectFailed = errors.New("client: reconnect failed")

	// ErrEmptyTarget is returned by On, Invoke, Send and Stream for an
	// empty target.
	ErrEmptyTarget = errors.New("client: empty target")

	// ErrStreamStalled ends a stream from the server whose loop took no
	// item for Options.StreamStallTimeout while its buffer was full. The
	// client cancels the stream on the server; the connection goes on.
	ErrStreamStalled = errors.New("client: stream stalled: the loop took no item while its buffer was full")
)

// InvocationError is the error Completion the server sent for an Invoke
// or a Stream: the hub method failed, does not exist, or refused its
// arguments, or its stream failed after some items.
type InvocationError struct {
	Target  string // the invoked hub method
	Message string // the server's error text
}

// Error returns the target and the server's message.
func (e *InvocationError) Error() string {
	return "client: invoke " + strconv.Quote(e.Target) + ": " + e.Message
}

// CloseError is a Close message from the server that ended the
// connection: the server shut down, timed the client out, or refused it.
// Message is empty when the server gave no reason.
type CloseError struct {
	// Message is the server's error text.
	Message string
	// AllowReconnect is the server's permission to reconnect. Without it
	// the client does not reconnect, even with a ReconnectPolicy.
	AllowReconnect bool
}

// Error returns the server's message.
func (e *CloseError) Error() string {
	if e.Message == "" {
		return "client: server closed the connection"
	}
	return "client: server closed the connection: " + e.Message
}

// HTTPError is an HTTP answer the client did not expect from negotiate or
// from the WebSocket connect, such as 401 for missing credentials or 404
// for a connection the server no longer knows.
type HTTPError struct {
	Op         string // "negotiate" or "connect"
	StatusCode int    // the HTTP status code
	Body       string // the start of the response body, if any
}

// Error returns the operation, the status and the body.
func (e *HTTPError) Error() string {
	s := "client: " + e.Op + ": unexpected status " + strconv.Itoa(e.StatusCode)
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}
