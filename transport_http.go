package signalhub

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/signalhub/signalhub/protocol"
)

// The HTTP transports, Server-Sent Events and Long Polling, carry the
// client's records in POSTs and the server's in an event stream
// (transport_sse.go) or in the answers to polls (transport_longpoll.go).
// This file holds what they share: routing, authentication of every
// request, the connection's creation, and its reading side.

// errTransportClosed ends the reading side of a connection whose HTTP
// transport the server closed, as a dropped socket ends a WebSocket's read
// loop.
var errTransportClosed = errors.New("signalhub: transport closed")

// postBodyFactor bounds a POST body at this many times MaxMessageSize. A
// POST holds what the client queued while its previous one was on its
// way, so it may carry several records; the bound keeps one request from
// holding the connection's reading side for good.
const postBodyFactor = 32

// httpInput is the reading side of a connection on an HTTP transport. The
// client's records arrive in POSTs, one POST at a time, and go through
// processRecords as a WebSocket's messages do; the connection ends
// through end, as it does when a WebSocket's read loop ends.
type httpInput struct {
	c *conn

	// mu is held by the POST whose records are processed, so that the
	// reading side's state (these fields, and the fields of conn that only
	// the reading side uses) has one owner at a time. A POST that finds it
	// held is answered 409: the official clients never overlap their POSTs.
	mu         sync.Mutex
	registered bool      // the handshake succeeded
	ended      bool      // the connection is ending: POSTs get 404
	rb         recordBuf // a partial record left by the previous POST

	expired atomic.Bool // the handshake timer fired
	endOnce sync.Once
	endErr  error // why reading ended; set once, by end
}

// end ends the connection's reading side, once. The cleanup (conn.finish)
// runs in a goroutine of its own, as it would at the end of a WebSocket's
// read loop, so that the request that ended the connection is answered
// without waiting for it. err is the reading side's error: errClientClose
// for the client's own close.
func (in *httpInput) end(err error) {
	in.endOnce.Do(func() {
		in.endErr = err
		go in.finish()
	})
}

// endLocked is end for the POST that holds mu: no later POST is
// processed.
func (in *httpInput) endLocked(err error) {
	in.ended = true
	in.end(err)
}

// finish waits for a POST being processed, then closes the connection
// (conn.finish). The hub's WaitGroup counts it since the connection was
// created.
func (in *httpInput) finish() {
	in.mu.Lock()
	in.ended = true
	registered := in.registered
	in.rb.release()
	in.mu.Unlock()
	c := in.c
	err := in.endErr
	if !registered {
		c.hsTimer.Stop()
		if in.expired.Load() {
			err = fmt.Errorf("%w: handshake timeout", ErrProtocol)
		}
	}
	c.finish(registered, err)
}

// bodyError is a failure to read a POST body, told apart from the
// failures of the records it held.
type bodyError struct{ err error }

func (e bodyError) Error() string { return "signalhub: reading the POST body: " + e.err.Error() }
func (e bodyError) Unwrap() error { return e.err }

// receive processes the records of a POST body, as the WebSocket read loop
// processes a message's: a record may end in a later POST. It returns nil
// when the whole body was accepted, and otherwise the error that ends the
// connection. The caller holds mu.
func (in *httpInput) receive(body io.Reader) error {
	in.c.lastRecv.Store(in.c.hub.now())
	_, perr, rerr := in.rb.readFrom(in.c, body, anyFrame, &in.registered)
	if rerr != nil {
		return bodyError{rerr}
	}
	return perr
}

// inputOf returns the reading side of a connection on an HTTP transport.
func inputOf(c *conn) *httpInput {
	switch w := c.wire.(type) {
	case *sseWire:
		return w.in
	case *pollWire:
		return w.in
	}
	return nil
}

// tokenState is what a connection token stands for.
type tokenState uint8

const (
	tokenUnknown   tokenState = iota // never negotiated, expired or ended
	tokenFresh                       // negotiated; no transport has started
	tokenWebSocket                   // a WebSocket connection's
	tokenHTTP                        // a Server-Sent Events or Long Polling connection's
)

// lookupToken tells what token stands for, and returns the connection ID
// of a fresh token and the connection of an HTTP transport's token.
func (h *Hub) lookupToken(token string) (state tokenState, id string, c *conn) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	e := h.tokens[token]
	switch {
	case e == nil, e.expiredAt(time.Now()):
		return tokenUnknown, "", nil
	case !e.attached:
		return tokenFresh, e.id, nil
	}
	if c := h.httpConns[token]; c != nil {
		return tokenHTTP, "", c
	}
	return tokenWebSocket, "", nil
}

// tokenRequest is an authenticated request for a known connection token.
type tokenRequest struct {
	token  string
	claims Claims
	userID string
	exp    time.Time
	state  tokenState // never tokenUnknown
	id     string     // the connection ID, for tokenFresh
	c      *conn      // the connection, for tokenHTTP
}

// resolveToken authenticates a request for token and looks the token up.
// It answers the request and returns ok=false when it refuses it: as
// identify does, or 404 for an unknown token.
func (h *Hub) resolveToken(w http.ResponseWriter, r *http.Request, token string) (tokenRequest, bool) {
	claims, userID, exp, ok := h.identify(w, r)
	if !ok {
		return tokenRequest{}, false
	}
	state, id, c := h.lookupToken(token)
	if state == tokenUnknown {
		noConnection(w)
		return tokenRequest{}, false
	}
	return tokenRequest{token: token, claims: claims, userID: userID, exp: exp, state: state, id: id, c: c}, true
}

// connectionToken returns the request's connection token, or answers 400.
func connectionToken(w http.ResponseWriter, r *http.Request) (string, bool) {
	token, _ := queryValue(r, "id")
	if token == "" {
		http.Error(w, "Connection ID required", http.StatusBadRequest)
		return "", false
	}
	return token, true
}

func noConnection(w http.ResponseWriter) {
	http.Error(w, "No Connection with that ID", http.StatusNotFound)
}

func cannotChangeTransports(w http.ResponseWriter) {
	http.Error(w, "Cannot change transports mid-connection", http.StatusBadRequest)
}

// checkOwner refuses a request for an existing connection whose
// credentials are not the connection's. A request without credentials for
// a connection made with some gets 401: the official clients then fetch a
// token and try once more. A request with another user's credentials (or
// with credentials, for an anonymous connection with a user ID of "")
// gets 403: the credentials are valid, and asking again for them would not
// help; the connection token alone must not let one user act as another.
// It answers the request and returns false when it refuses it.
func (h *Hub) checkOwner(w http.ResponseWriter, r *http.Request, req tokenRequest) bool {
	c := req.c
	switch {
	case req.claims == nil && c.claims != nil:
		h.refuseUnauthorized(w, r, errors.New("signalhub: unauthorized: no credentials for a connection made with some"))
		return false
	case req.userID != c.userID:
		if h.log.Enabled(r.Context(), slog.LevelDebug) {
			h.log.LogAttrs(r.Context(), slog.LevelDebug, "request refused: another user's connection", slog.String("conn_id", c.id))
		}
		http.Error(w, "The request's credentials are not those of the connection's user.", http.StatusForbidden)
		return false
	}
	return true
}

// serveHTTPTransport serves a GET that is not a WebSocket upgrade: the
// event stream of Server-Sent Events, which asks for text/event-stream
// (ASP.NET Core tells them apart the same way), or else a Long Polling
// poll. The first such GET of a negotiated token creates its connection.
func (h *Hub) serveHTTPTransport(w http.ResponseWriter, r *http.Request) {
	token, ok := connectionToken(w, r)
	if !ok {
		return
	}
	sse := strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	t, name := TransportLongPolling, protocol.TransportLongPolling
	if sse {
		t, name = TransportServerSentEvents, protocol.TransportServerSentEvents
	}
	if h.opts.Transports&t == 0 {
		http.Error(w, name+" transport not supported by this end point type", http.StatusNotFound)
		return
	}
	req, ok := h.resolveToken(w, r, token)
	if !ok {
		return
	}
	switch req.state {
	case tokenWebSocket:
		cannotChangeTransports(w)
		return
	case tokenFresh:
		if sse {
			h.openSSE(w, r, req)
		} else {
			h.openPoll(w, req)
		}
		return
	}
	if !h.checkOwner(w, r, req) {
		return
	}
	switch wire := req.c.wire.(type) {
	case *pollWire:
		if sse {
			cannotChangeTransports(w)
			return
		}
		wire.serve(w, r)
	case *sseWire:
		if !sse {
			cannotChangeTransports(w)
			return
		}
		// The connection's event stream is open already.
		w.WriteHeader(http.StatusConflict)
	}
}

// openHTTPConn creates the connection of a fresh token (req) on an HTTP
// transport, as a WebSocket connect does: the same limits, the token
// attached, the handshake timer armed. newWire makes its wire. It answers
// the request and returns nil when it refuses it.
func (h *Hub) openHTTPConn(w http.ResponseWriter, req tokenRequest, in *httpInput, newWire func(*conn) wire) *conn {
	token, id, userID := req.token, req.id, req.userID
	c := newConn(h, id, token, nil)
	c.wire = newWire(c)
	c.claims, c.userID, c.expires = req.claims, userID, req.exp
	in.c = c

	h.mu.Lock()
	var refuse func(http.ResponseWriter) // answers once the lock is released
	switch e := h.tokens[token]; {
	case h.closed:
		refuse = refuseClosed
	case e == nil || e.id != id || e.expiredAt(time.Now()):
		refuse = noConnection
	case e.attached:
		// Another request started the connection first.
		refuse = func(w http.ResponseWriter) { w.WriteHeader(http.StatusConflict) }
	case !h.admitLocked(w, userID): // it has answered
		refuse = func(http.ResponseWriter) {}
	default:
		e.attached = true
	}
	if refuse != nil {
		h.mu.Unlock()
		refuse(w)
		c.cancel(errTransportClosed)
		return nil
	}
	// Armed before any POST can find the connection, which the handshake
	// needs; and only for a connection the hub keeps, whose cleanup it waits
	// for.
	c.armHandshakeTimer(&in.expired)
	h.serving[c] = struct{}{}
	h.httpConns[token] = c
	h.wg.Add(1)
	h.mu.Unlock()
	return c
}

// serveSend serves POST {hub}?id=<token>: the client's records on an HTTP
// transport. It answers 200 once the whole body was accepted, as ASP.NET
// Core does; 400, 404, 405 (a WebSocket connection's token) and 409 (a
// POST of the connection still running) as ASP.NET Core does too; 413 for
// a body over the bound (see Options.MaxMessageSize) and 400 with the
// reason for records that broke the protocol, both of which also close the
// connection with a Close message saying why.
func (h *Hub) serveSend(w http.ResponseWriter, r *http.Request) {
	if !h.opts.Transports.httpTransports() {
		http.Error(w, "POST requests are not allowed for WebSocket connections.", http.StatusMethodNotAllowed)
		return
	}
	token, ok := connectionToken(w, r)
	if !ok {
		return
	}
	req, ok := h.resolveToken(w, r, token)
	if !ok {
		return
	}
	switch req.state {
	case tokenWebSocket:
		http.Error(w, "POST requests are not allowed for WebSocket connections.", http.StatusMethodNotAllowed)
		return
	case tokenFresh:
		http.Error(w, "The connection has not started: open its transport (GET) before sending.", http.StatusBadRequest)
		return
	}
	if !h.checkOwner(w, r, req) {
		return
	}
	c := req.c
	in := inputOf(c)
	if !in.mu.TryLock() {
		w.WriteHeader(http.StatusConflict)
		return
	}
	defer in.mu.Unlock()
	if in.ended {
		noConnection(w)
		return
	}
	limit := int64(postBodyFactor) * int64(h.opts.MaxMessageSize)
	err := in.receive(http.MaxBytesReader(w, r.Body, limit))
	if err == nil {
		return // 200
	}
	var tooLarge *http.MaxBytesError
	switch {
	case err == errClientClose:
		in.endLocked(err)
	case errors.As(err, &tooLarge):
		err = c.failRead(closeRequest{
			cause:          fmt.Errorf("%w: POST body over %d bytes", ErrMessageTooLarge, limit),
			errMsg:         fmt.Sprintf("Connection closed with an error. A POST body was larger than %d bytes.", limit),
			allowReconnect: true, status: websocket.StatusMessageTooBig, reason: "message too large",
		})
		in.endLocked(err)
		http.Error(w, fmt.Sprintf("The request body is larger than %d bytes.", limit), http.StatusRequestEntityTooLarge)
	case c.readFail != nil:
		in.endLocked(err)
		http.Error(w, strings.TrimPrefix(c.readFail.errMsg, "Connection closed with an error. "), http.StatusBadRequest)
	case errors.As(err, new(bodyError)):
		// The request broke off: what the body held is lost partway.
		in.endLocked(err)
		http.Error(w, "The request body could not be read.", http.StatusBadRequest)
	default:
		// The handshake was refused, or OnConnected failed: the client
		// reads why on the transport, as on a WebSocket.
		in.endLocked(err)
	}
}

// serveDelete serves DELETE {hub}?id=<token>, with which a Long Polling
// client ends its connection: 202, and the waiting poll is answered 204.
func (h *Hub) serveDelete(w http.ResponseWriter, r *http.Request) {
	if h.opts.Transports&TransportLongPolling == 0 {
		http.Error(w, "Cannot terminate this connection using the DELETE endpoint.", http.StatusBadRequest)
		return
	}
	token, ok := connectionToken(w, r)
	if !ok {
		return
	}
	req, ok := h.resolveToken(w, r, token)
	if !ok {
		return
	}
	pw, ok := req.c.wireOrNil().(*pollWire)
	if !ok {
		http.Error(w, "Cannot terminate this connection using the DELETE endpoint.", http.StatusBadRequest)
		return
	}
	if !h.checkOwner(w, r, req) {
		return
	}
	pw.in.end(errClientClose)
	w.WriteHeader(http.StatusAccepted)
}

// wireOrNil returns c's wire, or nil for a nil c.
func (c *conn) wireOrNil() wire {
	if c == nil {
		return nil
	}
	return c.wire
}

// allowedMethods is the Allow header for methods the hub does not serve.
func (h *Hub) allowedMethods() string {
	if h.opts.Transports.httpTransports() {
		return "GET, POST, DELETE"
	}
	return "GET"
}
