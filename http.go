package signalhub

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/signalhub/signalhub/protocol"
)

// ServeHTTP serves SignalR's HTTP endpoints: POST .../negotiate, and on any
// other path the transports of Options.Transports: the WebSocket connect,
// and the requests of Server-Sent Events and Long Polling (the event
// stream, polls, POSTs of the client's messages, DELETE). Mount it with
// Hub.Mount, or route both the hub path and path+"/negotiate" to it
// yourself.
//
// After a WebSocket upgrade, ServeHTTP returns once the handshake is done:
// the connection goes on in goroutines of the hub's own, which Shutdown and
// Close wait for, so that the HTTP server's request state and goroutine are
// not held for the connection's lifetime. A Server-Sent Events stream
// holds its request until the connection ends; a poll, until it is
// answered.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/negotiate") {
		h.serveNegotiate(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet:
		h.serveConnect(w, r)
	case http.MethodPost:
		h.serveSend(w, r) // Server-Sent Events and Long Polling
	case http.MethodDelete:
		h.serveDelete(w, r) // Long Polling
	default:
		w.Header().Set("Allow", h.allowedMethods())
		http.Error(w, "Method not allowed.", http.StatusMethodNotAllowed)
	}
}

// queryValue reads a query parameter with a case-insensitive key, as
// ASP.NET Core does. An exact match wins; among other spellings the first
// in sorted order does, so the answer never depends on map order.
func queryValue(r *http.Request, key string) (string, bool) {
	q := r.URL.Query()
	if v, ok := q[key]; ok && len(v) > 0 {
		return v[0], true
	}
	best, found := "", false
	for k, v := range q {
		if strings.EqualFold(k, key) && len(v) > 0 && (!found || k < best) {
			best, found = k, true
		}
	}
	if !found {
		return "", false
	}
	return q[best][0], true
}

// authenticate returns the request's claims (nil when anonymous) and when
// they expire (zero: never, or Options.IgnoreAuthExpiry), or an error
// wrapping ErrUnauthorized.
func (h *Hub) authenticate(r *http.Request) (Claims, time.Time, error) {
	var claims Claims
	if h.opts.Authenticate != nil {
		c, err := h.opts.Authenticate(r)
		if err != nil {
			if !errors.Is(err, ErrUnauthorized) {
				err = errors.Join(ErrUnauthorized, err)
			}
			return nil, time.Time{}, err
		}
		claims = c
	}
	if claims == nil {
		claims, _ = ClaimsFromContext(r.Context())
	}
	if claims == nil {
		if h.opts.RequireAuth {
			return nil, time.Time{}, errors.New("signalhub: unauthorized: no credentials")
		}
		return nil, time.Time{}, nil
	}
	if h.opts.IgnoreAuthExpiry {
		return claims, time.Time{}, nil
	}
	exp, err := h.authExpiry(claims)
	if err != nil {
		return nil, time.Time{}, errors.Join(ErrUnauthorized, err)
	}
	if !exp.IsZero() {
		exp = exp.Add(h.opts.AuthExpiryLeeway)
	}
	if !exp.IsZero() && !time.Now().Before(exp) {
		return nil, time.Time{}, fmt.Errorf("%w: credentials expired", ErrUnauthorized)
	}
	return claims, exp, nil
}

// authExpiry runs Options.AuthExpiry, turning a panic into an error.
func (h *Hub) authExpiry(claims Claims) (exp time.Time, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("signalhub: Options.AuthExpiry panicked: %v", p)
		}
	}()
	return h.opts.AuthExpiry(claims), nil
}

// identify authenticates a negotiate or connect request and picks its user
// ID. It answers the request itself and returns ok=false when it refuses
// it: 401 for bad or expired credentials, 403 for a user ID the hub does not
// accept (see Options.MaxUserIDLength), 500 when Options.UserID fails.
func (h *Hub) identify(w http.ResponseWriter, r *http.Request) (claims Claims, userID string, exp time.Time, ok bool) {
	claims, exp, err := h.authenticate(r)
	if err != nil {
		h.refuseUnauthorized(w, r, err)
		return nil, "", time.Time{}, false
	}
	userID, err = h.userID(claims)
	if err != nil {
		h.log.LogAttrs(r.Context(), slog.LevelError, "Options.UserID failed", slog.Any("err", err))
		http.Error(w, "Internal server error.", http.StatusInternalServerError)
		return nil, "", time.Time{}, false
	}
	if userID != "" {
		if err := checkName("user ID", userID, h.opts.MaxUserIDLength); err != nil {
			h.log.LogAttrs(r.Context(), slog.LevelWarn, "connection refused: user ID not accepted", slog.Any("err", err))
			http.Error(w, "The user ID is too long, is not valid UTF-8 or contains control characters.", http.StatusForbidden)
			return nil, "", time.Time{}, false
		}
	}
	return claims, userID, exp, true
}

// admitLocked checks the connection limits for a new connection of userID
// ("" for anonymous). It answers the request and returns false when a limit
// is reached. The caller holds h.mu.
func (h *Hub) admitLocked(w http.ResponseWriter, userID string) bool {
	if max := h.opts.MaxConnections; max > 0 && len(h.serving)+h.accepting >= max {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "The server has reached its connection limit; try again later.", http.StatusServiceUnavailable)
		return false
	}
	if max := h.opts.MaxConnectionsPerUser; max > 0 && userID != "" && len(h.users.conns(userID)) >= max {
		http.Error(w, fmt.Sprintf("The user already has %d connections, the most allowed.", max), http.StatusTooManyRequests)
		return false
	}
	return true
}

func (h *Hub) refuseUnauthorized(w http.ResponseWriter, r *http.Request, err error) {
	if h.log.Enabled(r.Context(), slog.LevelDebug) {
		h.log.LogAttrs(r.Context(), slog.LevelDebug, "request refused", slog.String("path", r.URL.Path), slog.Any("err", err))
	}
	w.Header().Set("WWW-Authenticate", "Bearer")
	http.Error(w, "Unauthorized", http.StatusUnauthorized)
}

func refuseClosed(w http.ResponseWriter) {
	http.Error(w, "The hub is shutting down.", http.StatusServiceUnavailable)
}

// newID returns 16 random bytes, base64url: URL-safe, as the JavaScript
// client does not escape the token it puts in the connect URL.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// serveNegotiate answers POST {hub}/negotiate with a connection ID and a
// secret connection token for the WebSocket connect that follows.
func (h *Hub) serveNegotiate(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "Method not allowed.", http.StatusMethodNotAllowed)
		return
	}
	version := 0
	if v, ok := queryValue(r, "negotiateVersion"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeJSON(w, protocol.NegotiateError{Error: "The client requested a non-integer protocol version."})
			return
		}
		if n < 0 {
			writeJSON(w, protocol.NegotiateError{Error: "The client requested version '" + v + "', but the server does not support this version."})
			return
		}
		version = min(n, protocol.MaxNegotiateVersion)
	}
	_, userID, _, ok := h.identify(w, r)
	if !ok {
		return
	}
	id := h.newConnID()
	token := id // version 0 clients use the connection ID as the token
	if version >= 1 {
		token = newID()
	}
	now := time.Now()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		refuseClosed(w)
		return
	}
	if !h.admitLocked(w, userID) {
		h.mu.Unlock()
		return
	}
	h.expireTokensLocked(now)
	if len(h.tokenFIFO)-h.tokenHead >= maxPendingNegotiations {
		h.mu.Unlock()
		http.Error(w, "Too many connections are being negotiated; try again later.", http.StatusServiceUnavailable)
		return
	}
	// Stateful reconnect when the client asks for it and the hub allows
	// it; it resumes WebSockets only.
	askedStateful := false
	if v, ok := queryValue(r, "useStatefulReconnect"); ok && v == "true" {
		askedStateful = h.opts.StatefulReconnect && h.opts.Transports&TransportWebSockets != 0
	}
	h.tokens[token] = &tokenEntry{id: id, expires: now.Add(h.opts.NegotiateTimeout), stateful: askedStateful}
	h.tokenFIFO = append(h.tokenFIFO, token)
	h.mu.Unlock()

	resp := protocol.NegotiateResponse{
		NegotiateVersion:    version,
		ConnectionID:        id,
		AvailableTransports: h.opts.Transports.available(),
	}
	if version >= 1 {
		resp.ConnectionToken = token
	}
	resp.UseStatefulReconnect = askedStateful
	writeJSON(w, resp)
}

// maxPendingNegotiations bounds the tokens negotiated within the last
// NegotiateTimeout, so that a negotiate flood cannot grow the hub's memory
// without limit; beyond it negotiate answers 503.
const maxPendingNegotiations = 100_000

// expireTokensLocked forgets negotiated tokens whose connect never came.
// Tokens expire in negotiate order, so this is amortised O(1): the FIFO
// is consumed from tokenHead and compacted only when half of it is spent.
func (h *Hub) expireTokensLocked(now time.Time) {
	for h.tokenHead < len(h.tokenFIFO) {
		token := h.tokenFIFO[h.tokenHead]
		e := h.tokens[token]
		if e != nil && now.Before(e.expires) {
			break
		}
		if e != nil && !e.attached {
			delete(h.tokens, token)
		}
		h.tokenFIFO[h.tokenHead] = ""
		h.tokenHead++
	}
	if h.tokenHead > len(h.tokenFIFO)/2 {
		n := copy(h.tokenFIFO, h.tokenFIFO[h.tokenHead:])
		clear(h.tokenFIFO[n:])
		h.tokenFIFO = h.tokenFIFO[:n]
		h.tokenHead = 0
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

func isWebSocketUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// serveConnect upgrades GET {hub}?id=<token> to a WebSocket and runs the
// connection. Without an id (skipNegotiation) it creates the connection on
// the spot. A GET that is no upgrade is an HTTP transport's.
func (h *Hub) serveConnect(w http.ResponseWriter, r *http.Request) {
	if !isWebSocketUpgrade(r) {
		h.serveHTTPTransport(w, r)
		return
	}
	if h.opts.Transports&TransportWebSockets == 0 {
		http.Error(w, protocol.TransportWebSockets+" transport not supported by this end point type", http.StatusNotFound)
		return
	}
	token, _ := queryValue(r, "id")
	claims, userID, exp, ok := h.identify(w, r)
	if !ok {
		return
	}

	id := ""
	stateful := false
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		refuseClosed(w)
		return
	}
	if e := h.tokens[token]; token != "" && e != nil && e.attached && e.conn != nil {
		// A stateful-reconnect connection's client comes back (stateful.go).
		h.mu.Unlock()
		h.serveResume(w, r, tokenRequest{token: token, claims: claims, userID: userID, state: tokenWebSocket, c: e.conn})
		return
	}
	if !h.admitLocked(w, userID) {
		h.mu.Unlock()
		return
	}
	if token == "" {
		id = h.newConnID()
	} else {
		e := h.tokens[token]
		switch {
		case e == nil || e.expiredAt(time.Now()):
			h.mu.Unlock()
			http.Error(w, "No Connection with that ID", http.StatusNotFound)
			return
		case h.httpConns[token] != nil:
			h.mu.Unlock()
			cannotChangeTransports(w)
			return
		case e.attached:
			h.mu.Unlock()
			w.WriteHeader(http.StatusConflict)
			return
		}
		e.attached = true
		id = e.id
		stateful = e.stateful
	}
	h.accepting++ // a place among MaxConnections, until serving has it
	h.mu.Unlock()

	lw := &lightHijacker{ResponseWriter: w}
	var aw http.ResponseWriter = lw
	if !canHijack(w) {
		aw = w // the WebSocket library answers 501
	}
	ws, err := websocket.Accept(aw, r, &websocket.AcceptOptions{
		OriginPatterns: h.opts.AllowedOrigins,
	})
	if err != nil {
		// Accept has answered the request (403 for a foreign origin).
		h.mu.Lock()
		h.accepting--
		h.mu.Unlock()
		h.forgetToken(token)
		return
	}
	ws.SetReadLimit(-1) // records are limited one by one, see Options.MaxMessageSize

	c := newConn(h, id, token, wsWire{ws: ws, bw: lw.bw})
	c.statefulOK = stateful
	c.claims = claims
	c.userID = userID
	c.expires = exp
	h.mu.Lock()
	h.accepting--
	if h.closed {
		h.mu.Unlock()
		_ = ws.Close(websocket.StatusGoingAway, "server shutting down")
		c.cancel(ErrHubClosed)
		h.forgetToken(token)
		return
	}
	h.serving[c] = struct{}{}
	h.wg.Add(1)
	h.mu.Unlock()
	c.serve(ws) // returns once reading has moved to a goroutine of the hub's
}

func (h *Hub) forgetToken(token string) {
	if token == "" {
		return
	}
	h.mu.Lock()
	delete(h.tokens, token)
	h.mu.Unlock()
}

// userID runs Options.UserID, turning a panic into an error so that a
// faulty extractor cannot leak a hijacked socket.
func (h *Hub) userID(claims Claims) (id string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("signalhub: Options.UserID panicked: %v", p)
		}
	}()
	return h.opts.UserID(claims), nil
}
