package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/coder/websocket"

	"github.com/signalhub/signalhub/protocol"
)

// maxRedirects bounds negotiate redirects, as in the official clients.
const maxRedirects = 100

// maxNegotiateBody bounds how much of a negotiate answer is read.
const maxNegotiateBody = 1 << 20

// userAgent identifies the client on negotiate and connect requests.
const userAgent = "signalhub-go-client/1"

// handshakeRequest asks for the JSON hub protocol, version 1 (no stateful
// reconnect).
var handshakeRequest = []byte(`{"protocol":"json","version":1}` + string(rune(protocol.RecordSeparator)))

// tokenFunc returns the bearer token of a request ("" for none).
type tokenFunc func(ctx context.Context) (string, error)

// endpoint is what one start connects to: the WebSocket URL without its
// id, the connection token and ID, and where the connect's bearer token
// comes from.
type endpoint struct {
	url          *url.URL
	connToken    string // "" with SkipNegotiation
	connectionID string
	token        tokenFunc
}

// parseHubURL accepts http, https, ws and wss URLs and returns the
// http(s) form, which both negotiate and the WebSocket dial use.
func parseHubURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("client: hub URL: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "ws":
		u.Scheme = "http"
	case "https", "wss":
		u.Scheme = "https"
	default:
		return nil, fmt.Errorf("client: hub URL %q: scheme must be http, https, ws or wss", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("client: hub URL %q has no host", raw)
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// negotiateURL appends /negotiate to the hub path and negotiateVersion=1 to
// its query, keeping the query the hub URL already has.
func negotiateURL(hub *url.URL) *url.URL {
	u := *hub
	suffix := "/negotiate"
	if strings.HasSuffix(u.Path, "/") {
		suffix = "negotiate"
	}
	u.Path += suffix
	if u.RawPath != "" {
		u.RawPath += suffix
	}
	if !hasQueryKey(u.RawQuery, "negotiateVersion") {
		u.RawQuery = appendQuery(u.RawQuery, "negotiateVersion", "1")
	}
	return &u
}

// hasQueryKey reports whether the raw query has key, compared
// case-insensitively as ASP.NET Core does.
func hasQueryKey(rawQuery, key string) bool {
	q, _ := url.ParseQuery(rawQuery)
	for k := range q {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}

// appendQuery adds key=value to a raw query without re-encoding (and so
// reordering) what is already there.
func appendQuery(rawQuery, key, value string) string {
	kv := url.QueryEscape(key) + "=" + url.QueryEscape(value)
	if rawQuery == "" {
		return kv
	}
	return rawQuery + "&" + kv
}

// negotiateAnswer is every shape of a negotiate answer: a connection, a
// redirect (url and accessToken) or an error.
type negotiateAnswer struct {
	protocol.NegotiateResponse
	URL         string  `json:"url"`
	AccessToken string  `json:"accessToken"`
	Error       *string `json:"error"`
	// ProtocolVersion is only sent by ASP.NET SignalR 2 servers, which
	// speak another protocol.
	ProtocolVersion json.RawMessage `json:"ProtocolVersion"`
}

// negotiate runs negotiate, following redirects, and returns where to
// connect.
func (c *Conn) negotiate(ctx context.Context) (endpoint, error) {
	hub := c.url
	token := tokenFunc(c.opts.AccessToken)
	for n := 1; ; n++ {
		a, err := c.negotiateOnce(ctx, hub, token)
		if err != nil {
			return endpoint{}, err
		}
		if a.Error != nil {
			return endpoint{}, fmt.Errorf("%w: %s", ErrNegotiate, *a.Error)
		}
		if len(a.ProtocolVersion) > 0 {
			return endpoint{}, fmt.Errorf("%w: the server speaks ASP.NET SignalR, not ASP.NET Core SignalR", ErrNegotiate)
		}
		if a.URL == "" {
			return c.endpointOf(hub, token, &a.NegotiateResponse)
		}
		if n == maxRedirects {
			return endpoint{}, fmt.Errorf("%w: negotiate redirection limit exceeded", ErrNegotiate)
		}
		if hub, err = parseHubURL(a.URL); err != nil {
			return endpoint{}, fmt.Errorf("%w: redirect: %w", ErrNegotiate, err)
		}
		if a.AccessToken != "" {
			// As in the official clients, the redirect's token replaces
			// the provider for the rest of this start.
			tok := a.AccessToken
			token = func(context.Context) (string, error) { return tok, nil }
		}
	}
}

// endpointOf checks a negotiate response and turns it into an endpoint.
func (c *Conn) endpointOf(hub *url.URL, token tokenFunc, r *protocol.NegotiateResponse) (endpoint, error) {
	if r.UseStatefulReconnect {
		return endpoint{}, fmt.Errorf("%w: the server negotiated stateful reconnect, which the client did not ask for", ErrNegotiate)
	}
	ws := false
	for _, t := range r.AvailableTransports {
		if t.Transport != protocol.TransportWebSockets {
			continue
		}
		for _, f := range t.TransferFormats {
			if f == "Text" {
				ws = true
			}
		}
	}
	if !ws {
		return endpoint{}, fmt.Errorf("%w: the server does not offer WebSockets with text frames", ErrNegotiate)
	}
	connToken := r.ConnectionToken
	if r.NegotiateVersion == 0 {
		connToken = r.ConnectionID // version 0 has no separate token
	}
	if connToken == "" {
		return endpoint{}, fmt.Errorf("%w: the answer has no connection token", ErrNegotiate)
	}
	return endpoint{url: hub, connToken: connToken, connectionID: r.ConnectionID, token: token}, nil
}

// negotiateOnce posts one negotiate request.
func (c *Conn) negotiateOnce(ctx context.Context, hub *url.URL, token tokenFunc) (*negotiateAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, negotiateURL(hub).String(), nil)
	if err != nil {
		return nil, fmt.Errorf("client: negotiate: %w", err)
	}
	header, err := c.requestHeader(ctx, token, true)
	if err != nil {
		return nil, err
	}
	req.Header = header
	req.Header.Set("X-Requested-With", "XMLHttpRequest")
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: negotiate: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxNegotiateBody))
	if resp.StatusCode != http.StatusOK {
		return nil, &HTTPError{Op: "negotiate", StatusCode: resp.StatusCode, Body: bodySnippet(body)}
	}
	if err != nil {
		return nil, fmt.Errorf("client: negotiate: read answer: %w", err)
	}
	var a negotiateAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("%w: malformed answer: %w", ErrNegotiate, err)
	}
	return &a, nil
}

// bodySnippet returns the start of an error body as one trimmed line.
func bodySnippet(b []byte) string {
	const limit = 256
	if len(b) > limit {
		b = b[:limit]
	}
	return strings.Join(strings.Fields(string(bytes.ToValidUTF8(b, nil))), " ")
}

// requestHeader returns the headers of a negotiate or connect request:
// Options.Header, the user agent and, unless it goes in the query, the
// bearer token.
func (c *Conn) requestHeader(ctx context.Context, token tokenFunc, bearer bool) (http.Header, error) {
	h := c.opts.Header.Clone()
	if h == nil {
		h = make(http.Header)
	}
	if h.Get("User-Agent") == "" {
		h.Set("User-Agent", userAgent)
	}
	if bearer && token != nil {
		tok, err := token(ctx)
		if err != nil {
			return nil, fmt.Errorf("client: access token: %w", err)
		}
		if tok != "" {
			h.Set("Authorization", "Bearer "+tok)
		}
	}
	return h, nil
}

// dial opens the WebSocket of ep.
func (c *Conn) dial(ctx context.Context, ep endpoint) (*websocket.Conn, error) {
	u := *ep.url
	if ep.connToken != "" {
		u.RawQuery = appendQuery(u.RawQuery, "id", ep.connToken)
	}
	header, err := c.requestHeader(ctx, ep.token, !c.opts.AccessTokenInQuery)
	if err != nil {
		return nil, err
	}
	if c.opts.AccessTokenInQuery && ep.token != nil {
		tok, err := ep.token(ctx)
		if err != nil {
			return nil, fmt.Errorf("client: access token: %w", err)
		}
		if tok != "" {
			u.RawQuery = appendQuery(u.RawQuery, "access_token", tok)
		}
	}
	ws, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPClient: c.opts.HTTPClient,
		HTTPHeader: header,
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			var body []byte
			if resp.Body != nil {
				body, _ = io.ReadAll(io.LimitReader(resp.Body, 512))
			}
			return nil, &HTTPError{Op: "connect", StatusCode: resp.StatusCode, Body: bodySnippet(body)}
		}
		return nil, fmt.Errorf("client: connect: %w", err)
	}
	ws.SetReadLimit(int64(c.opts.MaxMessageSize))
	return ws, nil
}

// handshake runs the hub protocol handshake on a new socket. It returns
// the records that followed the handshake response in the same message.
func (c *Conn) handshake(ctx context.Context, ws *websocket.Conn) ([]byte, error) {
	hctx, cancel := context.WithTimeout(ctx, c.opts.HandshakeTimeout)
	defer cancel()
	if err := ws.Write(hctx, websocket.MessageText, handshakeRequest); err != nil {
		return nil, fmt.Errorf("%w: send request: %w", ErrHandshake, handshakeCause(ctx, hctx, err))
	}
	_, data, err := ws.Read(hctx)
	if err != nil {
		return nil, fmt.Errorf("%w: read response: %w", ErrHandshake, handshakeCause(ctx, hctx, err))
	}
	rec, rest, ok := protocol.NextRecord(data)
	if !ok {
		return nil, fmt.Errorf("%w: incomplete handshake response", ErrHandshake)
	}
	var r struct {
		Error *string         `json:"error"`
		Type  json.RawMessage `json:"type"`
	}
	if err := json.Unmarshal(rec, &r); err != nil {
		return nil, fmt.Errorf("%w: malformed handshake response: %w", ErrHandshake, err)
	}
	if r.Error != nil {
		return nil, fmt.Errorf("%w: server returned handshake error: %s", ErrHandshake, *r.Error)
	}
	if truthy(r.Type) {
		return nil, fmt.Errorf("%w: expected a handshake response from the server", ErrHandshake)
	}
	return rest, nil
}

// handshakeCause names the handshake timeout when it, rather than the
// caller's context, ended the exchange.
func handshakeCause(ctx, hctx context.Context, err error) error {
	if ctx.Err() == nil && errors.Is(hctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no response within HandshakeTimeout: %w", context.DeadlineExceeded)
	}
	return err
}

// truthy reports whether a JSON value is truthy in JavaScript's sense, as
// the official client tests the handshake response's "type".
func truthy(v json.RawMessage) bool {
	switch s := string(bytes.TrimSpace(v)); s {
	case "", "null", "false", "0", `""`:
		return false
	}
	return true
}
