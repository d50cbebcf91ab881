package signalhub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/protocol"
)

// userClaims is the kind of authentication middleware an app puts in front
// of the hub: here it trusts the "user" query parameter and stores claims
// for it in the request context.
func userClaims(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := r.URL.Query().Get("user"); u != "" {
			claims := signalhub.Claims{"sub": u, "name": "User " + u}
			r = r.WithContext(signalhub.ContextWithClaims(r.Context(), claims))
		}
		next.ServeHTTP(w, r)
	})
}

type point struct {
	X int `json:"x"`
	Y int `json:"y"`
}

// testMethods are the hub methods most tests use.
func testMethods() map[string]any {
	return map[string]any{
		"Echo":   func(c *signalhub.Context, s string) string { return s },
		"Add":    func(c *signalhub.Context, a, b int) int { return a + b },
		"Swap":   func(c *signalhub.Context, p point) point { return point{X: p.Y, Y: p.X} },
		"Sum":    func(c *signalhub.Context, xs []int) int { return sumInts(xs) },
		"Concat": func(c *signalhub.Context, s string, n int, ok bool, f float64) string { return fmt.Sprint(s, n, ok, f) },
		"Describe": func(c *signalhub.Context, p *point) string {
			if p == nil {
				return "nil"
			}
			return fmt.Sprintf("%d/%d", p.X, p.Y)
		},
		"Div": func(c *signalhub.Context, a, b int) (int, error) {
			if b == 0 {
				return 0, signalhub.HubError{Message: "division by zero"}
			}
			return a / b, nil
		},
		"Fail":   func(c *signalhub.Context) error { return errors.New("db password is hunter2") },
		"Refuse": func(c *signalhub.Context) error { return signalhub.HubError{Message: "not allowed"} },
		"Wrapped": func(c *signalhub.Context) error {
			return fmt.Errorf("saving: %w", signalhub.HubError{Message: "quota exceeded"})
		},
		"Nothing":     func(c *signalhub.Context) {},
		"NilError":    func(c *signalhub.Context) error { return nil },
		"Panic":       func(c *signalhub.Context) { panic("boom") },
		"Unencodable": func(c *signalhub.Context) any { return make(chan int) },
		"Me":          func(c *signalhub.Context) string { return c.ConnectionID() },
	}
}

func sumInts(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// methodsOpts returns options with testMethods.
func methodsOpts() *signalhub.Options {
	return &signalhub.Options{Methods: testMethods()}
}

// mark sends the client a marker through the hub and requires it to be
// the next message: everything the hub queued for c before has arrived.
func (f *fixture) mark(t testing.TB, c *client, tag string) {
	t.Helper()
	require.NoError(t, f.Hub.SendToConnection(waitCtx(t), c.ID, "Marker", tag))
	c.ExpectMarker(t, tag)
}

// Open negotiates and opens the WebSocket without a handshake.
func (f *fixture) Open(t testing.TB) *client {
	t.Helper()
	ctx := waitCtx(t)
	neg, err := f.negotiate(ctx, dialOptions{})
	require.NoError(t, err)
	ws, _, err := f.DialWS(ctx, neg.ConnectionToken, nil, nil)
	require.NoError(t, err)
	c := newClient(t, ws, true)
	c.ID, c.Token = neg.ConnectionID, neg.ConnectionToken
	return c
}

// wsStatus dials token and returns the HTTP status of the refused upgrade.
func (f *fixture) wsStatus(t testing.TB, token string, query url.Values, header http.Header) int {
	t.Helper()
	ws, resp, err := f.DialWS(waitCtx(t), token, query, header)
	if err == nil {
		_ = ws.CloseNow()
		require.FailNow(t, "the WebSocket upgrade succeeded")
	}
	require.NotNil(t, resp, "no HTTP response: %v", err)
	return resp.StatusCode
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)

func TestNegotiateVersion1(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := waitCtx(t)

	status, body, err := f.Post(ctx, "/negotiate", "negotiateVersion=1", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, "%s", body)

	var fields map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &fields), "%s", body)
	assert.NotContains(t, fields, "error")
	assert.NotContains(t, fields, "useStatefulReconnect", "only sent when the client asks for it")
	assert.JSONEq(t, `[{"transport":"WebSockets","transferFormats":["Text","Binary"]},`+
		`{"transport":"ServerSentEvents","transferFormats":["Text"]},`+
		`{"transport":"LongPolling","transferFormats":["Text","Binary"]}]`, string(fields["availableTransports"]))

	var res negotiateResult
	require.NoError(t, json.Unmarshal(body, &res))
	assert.Equal(t, 1, res.NegotiateVersion)
	assert.Regexp(t, idPattern, res.ConnectionID)
	assert.Regexp(t, idPattern, res.ConnectionToken)
	assert.NotEqual(t, res.ConnectionID, res.ConnectionToken, "the token is a secret, not the public ID")

	_, body2, err := f.Post(ctx, "/negotiate", "negotiateVersion=1", nil)
	require.NoError(t, err)
	var res2 negotiateResult
	require.NoError(t, json.Unmarshal(body2, &res2))
	assert.NotEqual(t, res.ConnectionID, res2.ConnectionID)
	assert.NotEqual(t, res.ConnectionToken, res2.ConnectionToken)

	assert.Zero(t, f.Hub.Stats(), "negotiate alone creates no connection")
}

func TestNegotiateIgnoresStatefulReconnect(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	status, body, err := f.Post(waitCtx(t), "/negotiate", "negotiateVersion=1&useStatefulReconnect=true", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	var fields map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &fields), "%s", body)
	assert.NotContains(t, fields, "useStatefulReconnect", "the hub does not offer stateful reconnect")
	assert.Contains(t, fields, "connectionToken")
}

func TestNegotiateContentType(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	req, err := http.NewRequestWithContext(waitCtx(t), http.MethodPost, f.URL+"/negotiate?negotiateVersion=1", nil)
	require.NoError(t, err)
	resp, err := f.Srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
}

func TestNegotiateVersion0(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		query string
		dial  string
	}{
		{"explicit 0", "negotiateVersion=0", "0"},
		{"missing", "", "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, methodsOpts())
			status, body, err := f.Post(waitCtx(t), "/negotiate", tc.query, nil)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, status)
			var fields map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(body, &fields), "%s", body)
			assert.JSONEq(t, "0", string(fields["negotiateVersion"]))
			assert.NotContains(t, fields, "connectionToken", "version 0 has no token")
			assert.Contains(t, fields, "connectionId")

			// Version 0 clients connect with id=connectionId.
			c := f.Dial(t, dialOptions{NegotiateVersion: tc.dial})
			assert.Equal(t, c.ID, c.Token)
			c.ExpectResult(t, `"v0"`, "Echo", "v0")
			assert.Equal(t, 1, f.Hub.Stats().Connections)
		})
	}
}

func TestNegotiateNewerVersionIsCapped(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	status, body, err := f.Post(waitCtx(t), "/negotiate", "negotiateVersion=7", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	var res negotiateResult
	require.NoError(t, json.Unmarshal(body, &res))
	assert.Equal(t, 1, res.NegotiateVersion)
	assert.NotEmpty(t, res.ConnectionToken)
}

func TestNegotiateBadVersion(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, tc := range []struct {
		query string
		want  string
	}{
		{"negotiateVersion=abc", `{"error":"The client requested a non-integer protocol version."}`},
		{"negotiateVersion=1.5", `{"error":"The client requested a non-integer protocol version."}`},
		{"negotiateVersion=", `{"error":"The client requested a non-integer protocol version."}`},
		{"NEGOTIATEVERSION=abc", `{"error":"The client requested a non-integer protocol version."}`},
		{"negotiateVersion=-1", `{"error":"The client requested version '-1', but the server does not support this version."}`},
	} {
		t.Run(tc.query, func(t *testing.T) {
			t.Parallel()
			status, body, err := f.Post(waitCtx(t), "/negotiate", tc.query, nil)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, status, "the client reads errors from a 200 body")
			assert.JSONEq(t, tc.want, string(body))
		})
	}
	t.Cleanup(func() { assert.Zero(t, f.Hub.Stats()) })
}

func TestNegotiateQueryKeyIsCaseInsensitive(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, q := range []string{"NegotiateVersion=1", "NEGOTIATEVERSION=1", "negotiateversion=1"} {
		t.Run(q, func(t *testing.T) {
			t.Parallel()
			status, body, err := f.Post(waitCtx(t), "/negotiate", q, nil)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, status)
			var res negotiateResult
			require.NoError(t, json.Unmarshal(body, &res))
			assert.Equal(t, 1, res.NegotiateVersion)
			assert.NotEmpty(t, res.ConnectionToken)
		})
	}
}

func TestNegotiateMethodNotAllowed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			status, _, err := f.do(waitCtx(t), method, "/negotiate", "negotiateVersion=1", nil)
			require.NoError(t, err)
			assert.Equal(t, http.StatusMethodNotAllowed, status)
		})
	}
}

// negotiateRecorded negotiates with hub through a recorder (no network,
// so that it runs inside a synctest bubble) and returns the token.
func negotiateRecorded(t *testing.T, hub *signalhub.Hub) string {
	t.Helper()
	rec := httptest.NewRecorder()
	hub.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/hub/negotiate?negotiateVersion=1", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	var res negotiateResult
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &res))
	return res.ConnectionToken
}

func TestNegotiatedTokenExpires(t *testing.T) {
	t.Parallel()
	// The hub serves a recorder here, so the clock can be the bubble's.
	// An expired token is refused before any upgrade; a live one gets as
	// far as the upgrade, which a recorder cannot do.
	synctest.Test(t, func(t *testing.T) {
		hub, err := signalhub.New(&signalhub.Options{NegotiateTimeout: time.Minute, Logger: testLogger(t)})
		require.NoError(t, err)
		defer hub.Close()

		negotiate := func() string { return negotiateRecorded(t, hub) }
		connect := func(token string) int {
			req := httptest.NewRequest(http.MethodGet, "/hub?id="+token, nil)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			rec := httptest.NewRecorder()
			hub.ServeHTTP(rec, req)
			return rec.Code
		}

		fresh := negotiate()
		stale := negotiate()
		time.Sleep(time.Minute + time.Second) // the bubble's fake clock
		assert.Equal(t, http.StatusNotFound, connect(stale), "expired token")
		live := negotiate()
		time.Sleep(30 * time.Second)
		assert.Equal(t, http.StatusNotImplemented, connect(live),
			"a live token gets as far as the upgrade, which a recorder cannot hijack")
		assert.Equal(t, http.StatusNotFound, connect(fresh), "expired token, negotiated first")
	})
}

func TestConnectUnknownToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	assert.Equal(t, http.StatusNotFound, f.wsStatus(t, "no-such-token", nil, nil))
	assert.Zero(t, f.Hub.Stats())
}

func TestConnectWithPublicIDIsRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	neg, err := f.negotiate(waitCtx(t), dialOptions{})
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, f.wsStatus(t, neg.ConnectionID, nil, nil),
		"with negotiate version 1 only the token opens the connection")
}

func TestConnectSameTokenTwice(t *testing.T) {
	t.Parallel()
	f := newFixture(t, methodsOpts())
	c := f.Dial(t, dialOptions{})
	assert.Equal(t, http.StatusConflict, f.wsStatus(t, c.Token, nil, nil))
	c.ExpectResult(t, `"still here"`, "Echo", "still here")

	c.Close()
	require.NoError(t, f.WaitDisconnected(t, c.ID))
	assert.Equal(t, http.StatusNotFound, f.wsStatus(t, c.Token, nil, nil), "a token is good for one connection")
}

func TestConnectIDQueryKeyIsCaseInsensitive(t *testing.T) {
	t.Parallel()
	f := newFixture(t, methodsOpts())
	ctx := waitCtx(t)
	neg, err := f.negotiate(ctx, dialOptions{})
	require.NoError(t, err)
	u := "ws" + strings.TrimPrefix(f.URL, "http") + "?ID=" + neg.ConnectionToken
	ws, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: f.Srv.Client()})
	require.NoError(t, err)
	c := newClient(t, ws, true)
	c.ID = neg.ConnectionID
	require.NoError(t, c.SendRaw(ctx, []byte(handshakeV1)))
	rec, err := c.NextRecord(ctx)
	require.NoError(t, err)
	assert.Equal(t, "{}", string(rec))
	c.ExpectResult(t, `"`+neg.ConnectionID+`"`, "Me")
}

func TestConnectSkipNegotiation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, methodsOpts())
	c := f.Dial(t, dialOptions{SkipNegotiation: true})

	res, errMsg, err := c.Invoke(waitCtx(t), "Me")
	require.NoError(t, err)
	require.Empty(t, errMsg)
	var id string
	require.NoError(t, json.Unmarshal(res, &id))
	assert.Regexp(t, idPattern, id)
	c.ID = id
	f.WaitConnected(t, id)

	assert.Equal(t, signalhub.Stats{Connections: 1}, f.Hub.Stats())
	require.NoError(t, f.Hub.SendToConnection(waitCtx(t), id, "Hello", "skip"))
	c.ExpectInvocation(t, "Hello", "skip")
}

// TestConnectWithoutUpgrade checks the answers of a hub that offers
// WebSockets only to the requests of the other transports, which are those
// of ASP.NET Core's WebSocket-only endpoints.
func TestConnectWithoutUpgrade(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{Transports: signalhub.TransportWebSockets})
	for _, tc := range []struct {
		name, method, query, accept string
		status                      int
		body                        string
	}{
		{"GET without id", http.MethodGet, "", "", http.StatusBadRequest, "Connection ID required"},
		{"long polling", http.MethodGet, "id=abc", "", http.StatusNotFound, "LongPolling transport not supported by this end point type"},
		{"server-sent events", http.MethodGet, "id=abc", "text/event-stream", http.StatusNotFound, "ServerSentEvents transport not supported by this end point type"},
		{"POST send", http.MethodPost, "id=abc", "", http.StatusMethodNotAllowed, "POST requests are not allowed for WebSocket connections."},
		{"DELETE", http.MethodDelete, "id=abc", "", http.StatusBadRequest, "Cannot terminate this connection using the DELETE endpoint."},
		{"PUT", http.MethodPut, "id=abc", "", http.StatusMethodNotAllowed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			if tc.accept != "" {
				h.Set("Accept", tc.accept)
			}
			status, body, err := f.do(waitCtx(t), tc.method, "", tc.query, h)
			require.NoError(t, err)
			assert.Equal(t, tc.status, status)
			if tc.body != "" {
				assert.Equal(t, tc.body, strings.TrimSpace(string(body)))
			}
		})
	}
}

func TestAllowedOrigins(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{Methods: testMethods(), AllowedOrigins: []string{"*.example.com"}})
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true},                        // not a browser
		{"https://app.example.com", true}, // allowed pattern
		{"https://evil.example.net", false},
		{"https://example.com.evil.net", false},
	} {
		t.Run("origin "+tc.origin, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			neg, err := f.negotiate(waitCtx(t), dialOptions{})
			require.NoError(t, err)
			if !tc.ok {
				assert.Equal(t, http.StatusForbidden, f.wsStatus(t, neg.ConnectionToken, nil, h))
				return
			}
			ws, _, err := f.DialWS(waitCtx(t), neg.ConnectionToken, nil, h)
			require.NoError(t, err)
			_ = ws.CloseNow()
		})
	}
}

func TestHandshakeAccepted(t *testing.T) {
	t.Parallel()
	f := newFixture(t, methodsOpts())
	for _, hs := range []string{
		`{"protocol":"json","version":1}`,
		`{"protocol":"json","version":2}`,
		`{ "version" : 1 , "protocol" : "json" , "extra" : {"x":[1]} }`,
	} {
		t.Run(hs, func(t *testing.T) {
			t.Parallel()
			c := f.Open(t)
			ctx := waitCtx(t)
			require.NoError(t, c.SendRecords(ctx, hs))
			rec, err := c.NextRecord(ctx)
			require.NoError(t, err)
			assert.Equal(t, "{}", string(rec))
			f.WaitConnected(t, c.ID)
			c.ExpectResult(t, `"ok"`, "Echo", "ok")
		})
	}
}

func TestHandshakeRejected(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		handshake string
		want      string // the whole error, or a prefix ending in "..."
	}{
		{"messagepack version 3", `{"protocol":"messagepack","version":3}`, "The server does not support version 3 of the 'messagepack' protocol."},
		{"unknown protocol", `{"protocol":"xml","version":1}`, "The protocol 'xml' is not supported."},
		{"version 3", `{"protocol":"json","version":3}`, "The server does not support version 3 of the 'json' protocol."},
		{"negative version", `{"protocol":"json","version":-1}`, "The server does not support version -1 of the 'json' protocol."},
		{"malformed JSON", `{"protocol":"json",`, "An unexpected error occurred during connection handshake...."},
		{"not JSON", `hello`, "An unexpected error occurred during connection handshake...."},
		{"missing protocol", `{"version":1}`, "An unexpected error occurred during connection handshake...."},
		{"missing version", `{"protocol":"json"}`, "An unexpected error occurred during connection handshake...."},
		{"a hub message first", `{"type":6}`, "An unexpected error occurred during connection handshake...."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, methodsOpts())
			c := f.Open(t)
			ctx := waitCtx(t)
			require.NoError(t, c.SendRecords(ctx, tc.handshake))
			rec, err := c.NextRecord(ctx)
			require.NoError(t, err)
			var resp map[string]any
			require.NoError(t, json.Unmarshal(rec, &resp), "%s", rec)
			assert.NotContains(t, resp, "type", "a handshake response has no type")
			got, _ := resp["error"].(string)
			if prefix, ok := strings.CutSuffix(tc.want, "..."); ok {
				assert.True(t, strings.HasPrefix(got, prefix), "error %q, want prefix %q", got, prefix)
			} else {
				assert.Equal(t, tc.want, got)
			}

			readErr := c.ExpectClosed(t)
			assert.Equal(t, websocket.StatusNormalClosure, websocket.CloseStatus(readErr), "%v", readErr)
			assert.Zero(t, f.Hub.Stats())
			attempts, _, _ := f.TotalHooks()
			assert.Zero(t, attempts, "OnConnected runs only after a good handshake")
		})
	}
}

func TestHandshakeTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{HandshakeTimeout: 100 * time.Millisecond})
	c := f.Open(t)
	rec, err := c.NextRecord(waitCtx(t))
	require.NoError(t, err)
	assert.Equal(t, `{"error":"Handshake was canceled."}`, string(rec), "as ASP.NET Core answers")
	readErr := c.ExpectClosed(t)
	assert.Error(t, readErr)
	assert.Zero(t, f.Hub.Stats())
	attempts, _, _ := f.TotalHooks()
	assert.Zero(t, attempts)
}

func TestHandshakeSplitAcrossFrames(t *testing.T) {
	t.Parallel()
	f := newFixture(t, methodsOpts())
	c := f.Open(t)
	ctx := waitCtx(t)
	require.NoError(t, c.SendRaw(ctx, []byte(`{"protocol":"js`)))
	require.NoError(t, c.SendRaw(ctx, []byte(`on","version":1}`)))
	require.NoError(t, c.SendRaw(ctx, []byte(rs)))
	rec, err := c.NextRecord(ctx)
	require.NoError(t, err)
	assert.Equal(t, "{}", string(rec))
	c.ExpectResult(t, `"split"`, "Echo", "split")
}

func TestHandshakeFollowedByRecordsInSameFrame(t *testing.T) {
	t.Parallel()
	f := newFixture(t, methodsOpts())
	c := f.Open(t)
	ctx := waitCtx(t)
	inv1, err := invocationRecord("a", "Echo", "first")
	require.NoError(t, err)
	inv2, err := invocationRecord("b", "Add", 2, 3)
	require.NoError(t, err)
	frame := handshakeV1 + `{"type":6}` + rs + string(inv1) + string(inv2)
	require.NoError(t, c.SendRaw(ctx, []byte(frame)))

	rec, err := c.NextRecord(ctx)
	require.NoError(t, err)
	require.Equal(t, "{}", string(rec))
	m := c.ExpectNext(t)
	assert.Equal(t, protocol.TypeCompletion, m.Type)
	assert.Equal(t, "a", m.InvocationID)
	assert.JSONEq(t, `"first"`, string(m.Result))
	m = c.ExpectNext(t)
	assert.Equal(t, "b", m.InvocationID)
	assert.JSONEq(t, `5`, string(m.Result))
}

// A slow OnConnected must not be cut short by HandshakeTimeout: the
// handshake itself arrived in time. The records after the handshake are
// in the same frame and large enough to need more reads.
func TestHandshakeTimeoutEndsWithHandshake(t *testing.T) {
	t.Parallel()
	const hsTimeout = 100 * time.Millisecond
	f := newFixture(t, &signalhub.Options{
		Methods:          testMethods(),
		HandshakeTimeout: hsTimeout,
		OnConnected: func(c *signalhub.Context) error {
			<-time.After(3 * hsTimeout) // slow work, such as loading the user's state
			return nil
		},
	})
	c := f.Open(t)
	ctx := waitCtx(t)
	big := strings.Repeat("x", 8<<10)
	inv, err := invocationRecord("1", "Echo", big)
	require.NoError(t, err)
	require.NoError(t, c.SendRaw(ctx, append([]byte(handshakeV1), inv...)))

	rec, err := c.NextRecord(ctx)
	require.NoError(t, err)
	require.Equal(t, "{}", string(rec))
	res, errMsg, err := c.Completion(ctx, "1")
	require.NoError(t, err, "the connection must survive a slow OnConnected")
	require.Empty(t, errMsg)
	assert.JSONEq(t, `"`+big+`"`, string(res))
}

func TestInvokeTypedParameters(t *testing.T) {
	t.Parallel()
	f := newFixture(t, methodsOpts())
	c := f.Dial(t, dialOptions{})
	for _, tc := range []struct {
		name   string
		target string
		args   []any
		want   string
	}{
		{"string", "Echo", []any{"héllo \"world\""}, `"héllo \"world\""`},
		{"ints", "Add", []any{40, 2}, `42`},
		{"negative ints", "Add", []any{-40, -2}, `-42`},
		{"struct", "Swap", []any{point{X: 1, Y: 2}}, `{"x":2,"y":1}`},
		{"struct with unknown fields", "Swap", []any{map[string]any{"x": 3, "y": 4, "z": 5}}, `{"x":4,"y":3}`},
		{"slice", "Sum", []any{[]int{1, 2, 3, 4}}, `10`},
		{"empty slice", "Sum", []any{[]int{}}, `0`},
		{"null slice", "Sum", []any{nil}, `0`},
		{"pointer", "Describe", []any{point{X: 5, Y: 6}}, `"5/6"`},
		{"nil pointer", "Describe", []any{nil}, `"nil"`},
		{"several kinds", "Concat", []any{"s", 7, true, 1.5}, `"s7 true 1.5"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.ExpectResult(t, tc.want, tc.target, tc.args...)
		})
	}
}

func TestInvokeResults(t *testing.T) {
	t.Parallel()
	f := newFixture(t, methodsOpts())
	c := f.Dial(t, dialOptions{})

	c.ExpectResult(t, `5`, "Div", 10, 2) // (value, error) with nil error
	c.ExpectError(t, "An unexpected error occurred invoking 'Div' on the server. HubException: division by zero", "Div", 1, 0)

	for _, target := range []string{"Nothing", "NilError"} {
		ctx := waitCtx(t)
		id, err := c.StartInvoke(ctx, target)
		require.NoError(t, err)
		raw, err := c.NextRaw(ctx)
		require.NoError(t, err)
		assert.JSONEq(t, `{"type":3,"invocationId":"`+id+`","result":null}`, string(raw),
			"a method without a result completes with result null, as ASP.NET Core does")
	}
}

func TestInvokeNonBlockingGetsNoCompletion(t *testing.T) {
	t.Parallel()
	var calls sync.WaitGroup
	calls.Add(1)
	methods := testMethods()
	methods["Note"] = func(c *signalhub.Context, s string) string { calls.Done(); return s }
	f := newFixture(t, &signalhub.Options{Methods: methods})
	c := f.Dial(t, dialOptions{})
	ctx := waitCtx(t)

	require.NoError(t, c.Send(ctx, "Note", "x"))       // succeeds
	require.NoError(t, c.Send(ctx, "Fail"))            // fails
	require.NoError(t, c.Send(ctx, "NoSuchMethod"))    // does not exist
	require.NoError(t, c.Send(ctx, "Add", "a", "b"))   // cannot bind
	require.NoError(t, c.Send(ctx, "Panic"))           // panics
	require.NoError(t, c.Send(ctx, "Add", 1, 2, 3, 4)) // wrong count
	id, err := c.StartInvoke(ctx, "Echo", "after")
	require.NoError(t, err)

	m := c.ExpectNext(t)
	assert.Equal(t, protocol.TypeCompletion, m.Type)
	assert.Equal(t, id, m.InvocationID, "no Completion for non-blocking invocations, not even errors")
	calls.Wait() // Note ran
}

func TestInvokeErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		target   string
		args     []any
		want     string // without DetailedErrors
		detailed string // with DetailedErrors
	}{
		{
			"NoSuchMethod", nil,
			"Failed to invoke 'NoSuchMethod' due to an error on the server. HubException: Method does not exist.",
			"Failed to invoke 'NoSuchMethod' due to an error on the server. HubException: Method does not exist.",
		},
		{
			"Add", []any{1},
			"Failed to invoke 'Add' due to an error on the server.",
			"Failed to invoke 'Add' due to an error on the server. InvalidDataException: Invocation provides 1 argument(s) but target expects 2.",
		},
		{
			"Echo", []any{"a", "b"},
			"Failed to invoke 'Echo' due to an error on the server.",
			"Failed to invoke 'Echo' due to an error on the server. InvalidDataException: Invocation provides 2 argument(s) but target expects 1.",
		},
		{
			"Add", []any{"one", 2},
			"Failed to invoke 'Add' due to an error on the server.",
			"Failed to invoke 'Add' due to an error on the server. InvalidDataException: Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked.",
		},
		{
			"Add", []any{1.5, 2},
			"Failed to invoke 'Add' due to an error on the server.",
			"Failed to invoke 'Add' due to an error on the server. InvalidDataException: Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked.",
		},
		{
			"Swap", []any{[]int{1}},
			"Failed to invoke 'Swap' due to an error on the server.",
			"Failed to invoke 'Swap' due to an error on the server. InvalidDataException: Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked.",
		},
		{
			"Refuse", nil,
			"An unexpected error occurred invoking 'Refuse' on the server. HubException: not allowed",
			"An unexpected error occurred invoking 'Refuse' on the server. HubException: not allowed",
		},
		{
			"Wrapped", nil,
			"An unexpected error occurred invoking 'Wrapped' on the server. HubException: quota exceeded",
			"An unexpected error occurred invoking 'Wrapped' on the server. HubException: quota exceeded",
		},
		{
			"Fail", nil,
			"An unexpected error occurred invoking 'Fail' on the server.",
			"An unexpected error occurred invoking 'Fail' on the server. db password is hunter2",
		},
		{
			"Unencodable", nil,
			"An unexpected error occurred invoking 'Unencodable' on the server.",
			"An unexpected error occurred invoking 'Unencodable' on the server.",
		},
	} {
		t.Run(tc.target+fmt.Sprint(tc.args), func(t *testing.T) {
			t.Parallel()
			for _, detailed := range []bool{false, true} {
				f := newFixture(t, &signalhub.Options{Methods: testMethods(), DetailedErrors: detailed})
				c := f.Dial(t, dialOptions{})
				want := tc.want
				if detailed {
					want = tc.detailed
				}
				c.ExpectError(t, want, tc.target, tc.args...)
				c.ExpectResult(t, `"still open"`, "Echo", "still open")
			}
		})
	}
}

func TestInvokePanicKeepsConnection(t *testing.T) {
	t.Parallel()
	f := newFixture(t, methodsOpts())
	c := f.Dial(t, dialOptions{})
	for range 3 {
		c.ExpectError(t, "An unexpected error occurred invoking 'Panic' on the server.", "Panic")
		c.ExpectResult(t, `3`, "Add", 1, 2)
	}
	assert.Equal(t, 1, f.Hub.Stats().Connections)
}

func TestInvokeMethodNamesAreCaseInsensitive(t *testing.T) {
	t.Parallel()
	f := newFixture(t, methodsOpts())
	c := f.Dial(t, dialOptions{})
	for _, name := range []string{"Echo", "echo", "ECHO", "eChO"} {
		c.ExpectResult(t, `"x"`, name, "x")
	}
	c.ExpectError(t, "Failed to invoke 'ech0' due to an error on the server. HubException: Method does not exist.", "ech0", "x")
}

func TestIgnoredMessages(t *testing.T) {
	t.Parallel()
	f := newFixture(t, methodsOpts())
	c := f.Dial(t, dialOptions{})
	ctx := waitCtx(t)
	require.NoError(t, c.SendRecords(ctx,
		`{"type":6}`,
		`{"type":99,"whatever":[1,2]}`,
		`{"type":8,"sequenceId":3}`,
		`{"type":9,"sequenceId":1}`,
		`{"type":3,"invocationId":"nobody","result":1}`,
		`{"type":2,"invocationId":"nobody","item":1}`,
		`{"arguments":["x"],"extra":{"a":[1]},"headers":{"k":"v"},"invocationId":"7","target":"Echo","type":1}`,
	))
	m := c.ExpectNext(t)
	assert.Equal(t, "7", m.InvocationID, "unknown types and fields are ignored; type may come last")
	assert.JSONEq(t, `"x"`, string(m.Result))
	f.mark(t, c, "nothing else")
}

func TestParallelInvocations(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	methods := testMethods()
	methods["Block"] = func(c *signalhub.Context) (string, error) {
		select {
		case <-release:
			return "released", nil
		case <-c.Context().Done():
			return "", c.Context().Err()
		}
	}
	methods["Release"] = func(c *signalhub.Context) { close(release) }
	f := newFixture(t, &signalhub.Options{Methods: methods, MaxParallelInvocations: 2})
	c := f.Dial(t, dialOptions{})
	ctx := waitCtx(t)

	blocked, err := c.StartInvoke(ctx, "Block")
	require.NoError(t, err)
	c.ExpectResult(t, `null`, "Release") // runs while Block waits
	res, errMsg, err := c.Completion(ctx, blocked)
	require.NoError(t, err)
	require.Empty(t, errMsg)
	assert.JSONEq(t, `"released"`, string(res))
}

func TestNewRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts signalhub.Options
	}{
		{"not a func", signalhub.Options{Methods: map[string]any{"X": 42}}},
		{"nil method", signalhub.Options{Methods: map[string]any{"X": nil}}},
		{"nil func", signalhub.Options{Methods: map[string]any{"X": (func(*signalhub.Context))(nil)}}},
		{"no Context", signalhub.Options{Methods: map[string]any{"X": func(s string) {}}}},
		{"Context not first", signalhub.Options{Methods: map[string]any{"X": func(s string, c *signalhub.Context) {}}}},
		{"variadic", signalhub.Options{Methods: map[string]any{"X": func(c *signalhub.Context, xs ...int) {}}}},
		{"three results", signalhub.Options{Methods: map[string]any{"X": func(c *signalhub.Context) (int, int, error) { return 0, 0, nil }}}},
		{"second result not error", signalhub.Options{Methods: map[string]any{"X": func(c *signalhub.Context) (int, int) { return 0, 0 }}}},
		{"names differ in case", signalhub.Options{Methods: map[string]any{"Send": func(*signalhub.Context) {}, "send": func(*signalhub.Context) {}}}},
		{"empty name", signalhub.Options{Methods: map[string]any{"": func(*signalhub.Context) {}}}},
		{"negative KeepAliveInterval", signalhub.Options{KeepAliveInterval: -1}},
		{"negative ClientTimeout", signalhub.Options{ClientTimeout: -time.Second}},
		{"negative MaxMessageSize", signalhub.Options{MaxMessageSize: -1}},
		{"negative SendQueueLength", signalhub.Options{SendQueueLength: -1}},
		{"blank origin pattern", signalhub.Options{AllowedOrigins: []string{" "}}},
		{"malformed origin pattern", signalhub.Options{AllowedOrigins: []string{"[bad"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hub, err := signalhub.New(&tc.opts)
			assert.Error(t, err)
			assert.Nil(t, hub)
		})
	}
	t.Run("nil options", func(t *testing.T) {
		t.Parallel()
		hub, err := signalhub.New(nil)
		require.NoError(t, err)
		require.NoError(t, hub.Close())
	})
}

func TestRecordFormat(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c := f.Dial(t, dialOptions{})
	ctx := waitCtx(t)

	require.NoError(t, f.Hub.SendToConnection(ctx, c.ID, "news", "a", 1, true, nil,
		map[string]int{"x": 1}, []string{"p"}, json.RawMessage(`{"raw":[1,2]}`), point{X: 1, Y: 2}))
	raw, err := c.NextRaw(ctx)
	require.NoError(t, err)
	assert.Equal(t, `{"type":1,"target":"news","arguments":["a",1,true,null,{"x":1},["p"],{"raw":[1,2]},{"x":1,"y":2}]}`, string(raw))

	require.NoError(t, f.Hub.SendToConnection(ctx, c.ID, "tick"))
	raw, err = c.NextRaw(ctx)
	require.NoError(t, err)
	assert.Equal(t, `{"type":1,"target":"tick","arguments":[]}`, string(raw))
}

func TestSendStringEncoding(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c := f.Dial(t, dialOptions{})
	ctx := waitCtx(t)
	s := "quote\" backslash\\ newline\n tab\t nul\x00 <b>&amp; line\u2028para\u2029 bad\xff end"
	require.NoError(t, f.Hub.SendToConnection(ctx, c.ID, "text", s))
	raw, err := c.NextRaw(ctx)
	require.NoError(t, err)
	assert.Contains(t, string(raw), `\u2028`, "U+2028 is escaped so records are valid JavaScript")
	assert.Contains(t, string(raw), `\u2029`)
	m, err := protocol.DecodeMessage(raw)
	require.NoError(t, err)
	require.Len(t, m.Arguments, 1)
	var got string
	require.NoError(t, json.Unmarshal(m.Arguments[0], &got))
	assert.Equal(t, strings.Replace(s, "\xff", "\uFFFD", 1), got)
}

func TestSendAudiences(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, userClaims)
	a1 := f.DialUser(t, "alice") // alice on two devices
	a2 := f.DialUser(t, "alice")
	b := f.DialUser(t, "bob")
	c := f.DialUser(t, "carol")
	anon := f.Dial(t, dialOptions{})
	all := map[string]*client{"a1": a1, "a2": a2, "b": b, "c": c, "anon": anon}
	ctx := waitCtx(t)
	for _, m := range []struct{ conn, group string }{{a1.ID, "g1"}, {b.ID, "g1"}, {b.ID, "g2"}, {c.ID, "g2"}} {
		require.NoError(t, f.Hub.AddToGroup(ctx, m.conn, m.group))
	}
	h := f.Hub

	for _, tc := range []struct {
		name string
		send func(ctx context.Context, target string, args ...any) error
		want []string
	}{
		{"all", h.SendToAll, []string{"a1", "a2", "b", "c", "anon"}},
		{"all except two", func(ctx context.Context, target string, args ...any) error {
			return h.SendToAllExcept(ctx, []string{a1.ID, c.ID}, target, args...)
		}, []string{"a2", "b", "anon"}},
		{"all except nobody", func(ctx context.Context, target string, args ...any) error {
			return h.SendToAllExcept(ctx, nil, target, args...)
		}, []string{"a1", "a2", "b", "c", "anon"}},
		{"connection", func(ctx context.Context, target string, args ...any) error {
			return h.SendToConnection(ctx, b.ID, target, args...)
		}, []string{"b"}},
		{"connections with a duplicate", func(ctx context.Context, target string, args ...any) error {
			return h.SendToConnections(ctx, []string{b.ID, c.ID, b.ID, "unknown"}, target, args...)
		}, []string{"b", "c"}},
		{"user on two devices", func(ctx context.Context, target string, args ...any) error {
			return h.SendToUser(ctx, "alice", target, args...)
		}, []string{"a1", "a2"}},
		{"user IDs are case-sensitive", func(ctx context.Context, target string, args ...any) error {
			return h.SendToUser(ctx, "Alice", target, args...)
		}, nil},
		{"users with a duplicate", func(ctx context.Context, target string, args ...any) error {
			return h.SendToUsers(ctx, []string{"alice", "bob", "alice", "nobody"}, target, args...)
		}, []string{"a1", "a2", "b"}},
		{"group", func(ctx context.Context, target string, args ...any) error {
			return h.SendToGroup(ctx, "g1", target, args...)
		}, []string{"a1", "b"}},
		{"groups sharing a member", func(ctx context.Context, target string, args ...any) error {
			return h.SendToGroups(ctx, []string{"g1", "g2"}, target, args...)
		}, []string{"a1", "b", "c"}},
		{"groups repeated", func(ctx context.Context, target string, args ...any) error {
			return h.SendToGroups(ctx, []string{"g2", "nope", "g2"}, target, args...)
		}, []string{"b", "c"}},
		{"group except", func(ctx context.Context, target string, args ...any) error {
			return h.SendToGroupExcept(ctx, "g2", []string{b.ID}, target, args...)
		}, []string{"c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, tc.send(waitCtx(t), "Msg", tc.name, 42))
			for name, cl := range all {
				t.Run(name, func(t *testing.T) {
					if contains(tc.want, name) {
						cl.ExpectInvocation(t, "Msg", tc.name, 42)
					}
					f.mark(t, cl, tc.name)
				})
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestSendEmptyNames(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c := f.Dial(t, dialOptions{})
	h := f.Hub
	for _, tc := range []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"empty target", func(ctx context.Context) error { return h.SendToAll(ctx, "") }},
		{"connection", func(ctx context.Context) error { return h.SendToConnection(ctx, "", "T") }},
		{"one of connections", func(ctx context.Context) error { return h.SendToConnections(ctx, []string{c.ID, ""}, "T") }},
		{"user", func(ctx context.Context) error { return h.SendToUser(ctx, "", "T") }},
		{"one of users", func(ctx context.Context) error { return h.SendToUsers(ctx, []string{""}, "T") }},
		{"group", func(ctx context.Context) error { return h.SendToGroup(ctx, "", "T") }},
		{"one of groups", func(ctx context.Context) error { return h.SendToGroups(ctx, []string{"g", ""}, "T") }},
		{"group except", func(ctx context.Context) error { return h.SendToGroupExcept(ctx, "", nil, "T") }},
		{"add: connection", func(ctx context.Context) error { return h.AddToGroup(ctx, "", "g") }},
		{"add: group", func(ctx context.Context) error { return h.AddToGroup(ctx, c.ID, "") }},
		{"remove: connection", func(ctx context.Context) error { return h.RemoveFromGroup(ctx, "", "g") }},
		{"remove: group", func(ctx context.Context) error { return h.RemoveFromGroup(ctx, c.ID, "") }},
		{"zero Audience", func(ctx context.Context) error { return signalhub.Audience{}.Send(ctx, "T") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(waitCtx(t))
			assert.ErrorIs(t, err, signalhub.ErrEmptyName)
		})
	}
	f.mark(t, c, "nothing was sent")
	assert.Empty(t, h.ConnectionGroups(c.ID))
}

func TestSendToEmptyAudience(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, userClaims)
	c := f.DialUser(t, "alice")
	h := f.Hub
	ctx := waitCtx(t)
	assert.NoError(t, h.SendToConnection(ctx, "gone", "T"))
	assert.NoError(t, h.SendToConnections(ctx, nil, "T"))
	assert.NoError(t, h.SendToConnections(ctx, []string{"gone"}, "T"))
	assert.NoError(t, h.SendToUser(ctx, "nobody", "T"))
	assert.NoError(t, h.SendToUsers(ctx, nil, "T"))
	assert.NoError(t, h.SendToGroup(ctx, "empty", "T"))
	assert.NoError(t, h.SendToGroups(ctx, nil, "T"))
	assert.NoError(t, h.SendToGroupExcept(ctx, "empty", nil, "T"))
	assert.NoError(t, h.SendToAllExcept(ctx, []string{c.ID}, "T"))
	f.mark(t, c, "nothing arrived")
}

func TestSendToNobodyConnected(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	assert.NoError(t, f.Hub.SendToAll(waitCtx(t), "T", 1))
}

func TestSendErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c := f.Dial(t, dialOptions{})

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, f.Hub.SendToAll(cancelled, "T"), context.Canceled)
	assert.ErrorIs(t, f.Hub.SendToConnection(cancelled, c.ID, "T"), context.Canceled)
	assert.ErrorIs(t, f.Hub.AddToGroup(cancelled, c.ID, "g"), context.Canceled)

	err := f.Hub.SendToAll(waitCtx(t), "T", make(chan int))
	assert.Error(t, err, "arguments that cannot be encoded")
	assert.NotErrorIs(t, err, signalhub.ErrEmptyName)
	err = f.Hub.SendToAll(waitCtx(t), "T", json.RawMessage(`{not json`))
	assert.Error(t, err)

	f.mark(t, c, "nothing was sent")
	assert.Empty(t, f.Hub.ConnectionGroups(c.ID))
}

func TestContextIdentity(t *testing.T) {
	t.Parallel()
	methods := testMethods()
	methods["Who"] = func(c *signalhub.Context) map[string]any {
		return map[string]any{"id": c.ConnectionID(), "user": c.UserID(), "claims": c.Claims(), "sameHub": c.Hub() != nil}
	}
	f := newFixture(t, &signalhub.Options{Methods: methods}, userClaims)

	alice := f.DialUser(t, "alice")
	want := fmt.Sprintf(`{"id":%q,"user":"alice","claims":{"sub":"alice","name":"User alice"},"sameHub":true}`, alice.ID)
	alice.ExpectResult(t, want, "Who")
	hc := f.WaitConnected(t, alice.ID)
	assert.Equal(t, alice.ID, hc.ConnectionID())
	assert.Equal(t, "alice", hc.UserID())
	assert.Equal(t, "User alice", hc.Claims().String("name"))
	assert.Same(t, f.Hub, hc.Hub())

	anon := f.Dial(t, dialOptions{})
	anon.ExpectResult(t, fmt.Sprintf(`{"id":%q,"user":"","claims":null,"sameHub":true}`, anon.ID), "Who")
}

func TestContextItems(t *testing.T) {
	t.Parallel()
	type key struct{ name string }
	methods := testMethods()
	methods["Put"] = func(c *signalhub.Context, k, v string) { c.Set(key{k}, v) }
	methods["Get"] = func(c *signalhub.Context, k string) []any {
		v, ok := c.Get(key{k})
		return []any{v, ok}
	}
	methods["Del"] = func(c *signalhub.Context, k string) { c.Delete(key{k}) }
	f := newFixture(t, &signalhub.Options{
		Methods: methods,
		OnConnected: func(c *signalhub.Context) error {
			c.Set(key{"joined"}, "yes")
			return nil
		},
	})
	c1 := f.Dial(t, dialOptions{})
	c2 := f.Dial(t, dialOptions{})

	c1.ExpectResult(t, `["yes",true]`, "Get", "joined")
	c1.ExpectResult(t, `[null,false]`, "Get", "color")
	c1.ExpectResult(t, `null`, "Put", "color", "blue")
	c1.ExpectResult(t, `["blue",true]`, "Get", "color")
	c2.ExpectResult(t, `[null,false]`, "Get", "color") // items are per connection
	c1.ExpectResult(t, `null`, "Put", "color", "red")
	c1.ExpectResult(t, `["red",true]`, "Get", "color")
	c1.ExpectResult(t, `null`, "Del", "color")
	c1.ExpectResult(t, `[null,false]`, "Get", "color")
	c1.ExpectResult(t, `null`, "Del", "never set")

	hc := f.WaitConnected(t, c1.ID)
	v, ok := hc.Get(key{"joined"})
	assert.True(t, ok)
	assert.Equal(t, "yes", v)
}

func TestContextCancelledAfterDisconnect(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name string
		end  func(*client)
	}{
		{"client close", (*client).Close},
		{"dropped socket", (*client).Drop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := f.Dial(t, dialOptions{})
			ctx := f.WaitConnected(t, c.ID).Context()
			require.NoError(t, ctx.Err(), "alive while connected")
			tc.end(c)
			select {
			case <-ctx.Done():
			case <-time.After(waitTimeout):
				require.FailNow(t, "Context() not cancelled after the disconnect")
			}
			f.WaitDisconnected(t, c.ID)
		})
	}
}

func TestContextAudiences(t *testing.T) {
	t.Parallel()
	methods := testMethods()
	methods["ToCaller"] = func(c *signalhub.Context, s string) error { return c.Caller().Send(c.Context(), "Got", s) }
	methods["ToOthers"] = func(c *signalhub.Context, s string) error { return c.Others().Send(c.Context(), "Got", s) }
	methods["ToGroup"] = func(c *signalhub.Context, g, s string) error {
		return c.OthersInGroup(g).Send(c.Context(), "Got", s)
	}
	methods["Join"] = func(c *signalhub.Context, g string) error {
		return c.Hub().AddToGroup(c.Context(), c.ConnectionID(), g)
	}
	f := newFixture(t, &signalhub.Options{Methods: methods})
	x := f.Dial(t, dialOptions{})
	y := f.Dial(t, dialOptions{})
	z := f.Dial(t, dialOptions{})
	all := map[string]*client{"x": x, "y": y, "z": z}
	x.ExpectResult(t, `null`, "Join", "room")
	y.ExpectResult(t, `null`, "Join", "room")

	for _, tc := range []struct {
		method string
		args   []any
		want   []string
	}{
		{"ToCaller", []any{"caller"}, []string{"x"}},
		{"ToOthers", []any{"others"}, []string{"y", "z"}},
		{"ToGroup", []any{"room", "room"}, []string{"y"}},
		{"ToGroup", []any{"empty", "empty"}, nil},
	} {
		t.Run(fmt.Sprint(tc.method, tc.args), func(t *testing.T) {
			x.ExpectResult(t, `null`, tc.method, tc.args...)
			for name, c := range all {
				if contains(tc.want, name) {
					c.ExpectInvocation(t, "Got", tc.args[len(tc.args)-1])
				}
				f.mark(t, c, name)
			}
		})
	}
}

func TestContextAbort(t *testing.T) {
	t.Parallel()
	methods := testMethods()
	methods["Kick"] = func(c *signalhub.Context) error {
		if err := c.Caller().Send(c.Context(), "Bye", "queued first"); err != nil {
			return err
		}
		c.Abort()
		return nil
	}
	f := newFixture(t, &signalhub.Options{Methods: methods})
	c := f.Dial(t, dialOptions{})
	other := f.Dial(t, dialOptions{})
	require.NoError(t, c.Send(waitCtx(t), "Kick"))

	c.ExpectInvocation(t, "Bye", "queued first")
	m, closeErr := c.ExpectClose(t)
	assert.Empty(t, m.Error)
	assert.False(t, m.AllowReconnect, "an aborted client must not reconnect")
	assert.Equal(t, websocket.StatusNormalClosure, websocket.CloseStatus(closeErr), "%v", closeErr)
	assert.NoError(t, f.WaitDisconnected(t, c.ID))
	other.ExpectResult(t, `"fine"`, "Echo", "fine")
}

func TestGroupErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := waitCtx(t)
	assert.ErrorIs(t, f.Hub.AddToGroup(ctx, "unknown", "g"), signalhub.ErrConnectionNotFound)
	assert.ErrorIs(t, f.Hub.RemoveFromGroup(ctx, "unknown", "g"), signalhub.ErrConnectionNotFound)
	assert.Zero(t, f.Hub.Stats())
	assert.Nil(t, f.Hub.ConnectionGroups("unknown"))
	assert.Empty(t, f.Hub.GroupMembers("g"))
	assert.Empty(t, f.Hub.UserConnections("nobody"))
}

func TestGroupQueries(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, userClaims)
	h := f.Hub
	ctx := waitCtx(t)
	a1 := f.DialUser(t, "alice")
	a2 := f.DialUser(t, "alice")
	b := f.DialUser(t, "bob")
	anon := f.Dial(t, dialOptions{})
	assert.Equal(t, signalhub.Stats{Connections: 4, Users: 2}, h.Stats())
	assert.ElementsMatch(t, []string{a1.ID, a2.ID}, h.UserConnections("alice"))
	assert.ElementsMatch(t, []string{b.ID}, h.UserConnections("bob"))
	assert.Empty(t, h.UserConnections(""), "anonymous connections belong to no user")

	require.NoError(t, h.AddToGroup(ctx, a1.ID, "g1"))
	require.NoError(t, h.AddToGroup(ctx, a1.ID, "g1")) // again: no-op
	require.NoError(t, h.AddToGroup(ctx, a1.ID, "g2"))
	require.NoError(t, h.AddToGroup(ctx, b.ID, "g1"))
	require.NoError(t, h.AddToGroup(ctx, anon.ID, "G1")) // names are case-sensitive
	assert.ElementsMatch(t, []string{a1.ID, b.ID}, h.GroupMembers("g1"))
	assert.ElementsMatch(t, []string{a1.ID}, h.GroupMembers("g2"))
	assert.ElementsMatch(t, []string{anon.ID}, h.GroupMembers("G1"))
	assert.ElementsMatch(t, []string{"g1", "g2"}, h.ConnectionGroups(a1.ID))
	assert.Empty(t, h.ConnectionGroups(a2.ID))
	assert.Equal(t, signalhub.Stats{Connections: 4, Users: 2, Groups: 3}, h.Stats())

	require.NoError(t, h.RemoveFromGroup(ctx, a2.ID, "g1")) // not a member: no-op
	require.NoError(t, h.RemoveFromGroup(ctx, a1.ID, "g2"))
	assert.Empty(t, h.GroupMembers("g2"))
	assert.ElementsMatch(t, []string{"g1"}, h.ConnectionGroups(a1.ID))
	assert.Equal(t, 2, h.Stats().Groups, "an emptied group is freed")

	require.NoError(t, h.SendToGroup(ctx, "g1", "Msg", 1))
	a1.ExpectInvocation(t, "Msg", 1)
	b.ExpectInvocation(t, "Msg", 1)
	for _, c := range []*client{a1, a2, b, anon} {
		f.mark(t, c, "after g1")
	}
}

func TestGroupMembershipEndsWithConnection(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, userClaims)
	h := f.Hub
	ctx := waitCtx(t)
	a := f.DialUser(t, "alice")
	b := f.DialUser(t, "bob")
	for _, g := range []string{"g1", "g2", "g3"} {
		require.NoError(t, h.AddToGroup(ctx, a.ID, g))
	}
	require.NoError(t, h.AddToGroup(ctx, b.ID, "g1"))
	assert.Equal(t, signalhub.Stats{Connections: 2, Users: 2, Groups: 3}, h.Stats())

	a.Close()
	require.NoError(t, f.WaitDisconnected(t, a.ID))
	assert.Equal(t, signalhub.Stats{Connections: 1, Users: 1, Groups: 1}, h.Stats())
	assert.ElementsMatch(t, []string{b.ID}, h.GroupMembers("g1"))
	assert.Empty(t, h.GroupMembers("g2"))
	assert.Nil(t, h.ConnectionGroups(a.ID))
	assert.Empty(t, h.UserConnections("alice"))
	assert.ErrorIs(t, h.AddToGroup(ctx, a.ID, "g1"), signalhub.ErrConnectionNotFound)

	// Reconnecting makes a new connection, outside the old groups.
	a2 := f.DialUser(t, "alice")
	assert.NotEqual(t, a.ID, a2.ID)
	assert.Empty(t, h.ConnectionGroups(a2.ID))
	require.NoError(t, h.SendToGroups(ctx, []string{"g1", "g2", "g3"}, "Msg", "groups"))
	b.ExpectInvocation(t, "Msg", "groups")
	f.mark(t, a2, "not in the old groups")

	b.Drop()
	f.WaitDisconnected(t, b.ID)
	assert.Equal(t, signalhub.Stats{Connections: 1, Users: 1, Groups: 0}, h.Stats())
}

func TestHooksOrderAndHubCalls(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var events []string
	note := func(format string, args ...any) {
		mu.Lock()
		events = append(events, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	f := newFixture(t, &signalhub.Options{
		Methods: testMethods(),
		OnConnected: func(c *signalhub.Context) error {
			h, id := c.Hub(), c.ConnectionID()
			if !contains(h.UserConnections(c.UserID()), id) {
				return errors.New("OnConnected before the connection joined the user index")
			}
			if err := h.AddToGroup(c.Context(), id, "lobby"); err != nil {
				return err
			}
			note("connected %s", id)
			return h.SendToAll(c.Context(), "Joined", id)
		},
		OnDisconnected: func(c *signalhub.Context, err error) {
			h, id := c.Hub(), c.ConnectionID()
			note("disconnected %s groups=%v members=%d", id, h.ConnectionGroups(id), len(h.GroupMembers("lobby")))
			if err := h.SendToGroup(context.Background(), "lobby", "Left", id); err != nil {
				note("send failed: %v", err)
			}
		},
	}, userClaims)

	c1 := f.DialUser(t, "u1")
	c1.ExpectInvocation(t, "Joined", c1.ID)
	c2 := f.DialUser(t, "u2")
	c1.ExpectInvocation(t, "Joined", c2.ID)
	c2.ExpectInvocation(t, "Joined", c2.ID)
	assert.ElementsMatch(t, []string{c1.ID, c2.ID}, f.Hub.GroupMembers("lobby"))

	c2.Close()
	c1.ExpectInvocation(t, "Left", c2.ID)
	require.NoError(t, f.WaitDisconnected(t, c2.ID))

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{
		"connected " + c1.ID,
		"connected " + c2.ID,
		"disconnected " + c2.ID + " groups=[] members=1",
	}, events)
}

func TestOnDisconnectedCause(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name     string
		end      func(*client)
		graceful bool
	}{
		{"Close message", (*client).Close, true},
		{"normal WebSocket close", func(c *client) { _ = c.ws.Close(websocket.StatusNormalClosure, "") }, true},
		{"going away", func(c *client) { _ = c.ws.Close(websocket.StatusGoingAway, "tab closed") }, true},
		{"dropped socket", (*client).Drop, false},
		{"internal error close", func(c *client) { _ = c.ws.Close(websocket.StatusInternalError, "crash") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := f.Dial(t, dialOptions{})
			tc.end(c)
			err := f.WaitDisconnected(t, c.ID)
			if tc.graceful {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}

func TestOnConnectedError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		hook     func(*signalhub.Context) error
		detailed bool
		want     string
	}{
		{"plain error", func(*signalhub.Context) error { return errors.New("no seat for you") }, false,
			"Connection closed with an error."},
		{"plain error, detailed", func(*signalhub.Context) error { return errors.New("no seat for you") }, true,
			"Connection closed with an error. no seat for you"},
		{"HubError", func(*signalhub.Context) error { return signalhub.HubError{Message: "banned"} }, false,
			"Connection closed with an error. HubException: banned"},
		{"HubError pointer", func(*signalhub.Context) error { return &signalhub.HubError{Message: "banned"} }, false,
			"Connection closed with an error. HubException: banned"},
		{"panic", func(*signalhub.Context) error { panic("bad hook") }, false,
			"Connection closed with an error."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, &signalhub.Options{Methods: testMethods(), OnConnected: tc.hook, DetailedErrors: tc.detailed})
			c := f.Open(t)
			ctx := waitCtx(t)
			inv, err := invocationRecord("1", "Echo", "must not run")
			require.NoError(t, err)
			require.NoError(t, c.SendRaw(ctx, append([]byte(handshakeV1), inv...)))
			rec, err := c.NextRecord(ctx)
			require.NoError(t, err)
			require.Equal(t, "{}", string(rec))

			m, _ := c.ExpectClose(t)
			assert.Equal(t, tc.want, m.Error)
			assert.False(t, m.AllowReconnect, "a refused connection must not reconnect")
			attempts, connected, _ := f.Hooks(c.ID)
			assert.Equal(t, 1, attempts)
			assert.Zero(t, connected)
			// The fixture's cleanup checks that OnDisconnected never ran.
		})
	}
}

func TestKeepAlivePing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{KeepAliveInterval: 50 * time.Millisecond})
	c := f.Dial(t, dialOptions{})
	for range 2 {
		rec, err := c.NextRecord(waitCtx(t))
		require.NoError(t, err)
		assert.Equal(t, `{"type":6}`, string(rec))
	}
}

func TestClientTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{
		KeepAliveInterval: 50 * time.Millisecond,
		ClientTimeout:     200 * time.Millisecond,
	})
	c := f.Dial(t, dialOptions{}) // and then says nothing
	m, closeErr := c.ExpectClose(t)
	assert.True(t, strings.HasPrefix(m.Error, "Connection closed with an error."), "%q", m.Error)
	assert.Contains(t, strings.ToLower(m.Error), "timeout")
	assert.True(t, m.AllowReconnect, "a timed-out client may come back")
	assert.Equal(t, websocket.StatusNormalClosure, websocket.CloseStatus(closeErr), "%v", closeErr)
	assert.ErrorIs(t, f.WaitDisconnected(t, c.ID), signalhub.ErrClientTimeout)
}

func TestClientPingsKeepConnectionAlive(t *testing.T) {
	t.Parallel()
	const timeout = 2 * time.Second
	f := newFixture(t, &signalhub.Options{
		Methods:           testMethods(),
		KeepAliveInterval: 50 * time.Millisecond,
		ClientTimeout:     timeout,
	})
	c := f.Dial(t, dialOptions{})
	tick := time.NewTicker(timeout / 40)
	defer tick.Stop()
	end := time.After(3 * timeout / 2)
	for running := true; running; {
		select {
		case <-tick.C:
			require.NoError(t, c.SendRecords(waitCtx(t), `{"type":6}`))
		case <-end:
			running = false
		}
	}
	c.ExpectResult(t, `"alive"`, "Echo", "alive")
}

// A client that keeps pinging while a long hub method runs stays
// connected: the hub reads its pings meanwhile.
func TestPingsDuringLongMethod(t *testing.T) {
	t.Parallel()
	const timeout = time.Second
	methods := testMethods()
	methods["Slow"] = func(c *signalhub.Context) string {
		<-time.After(2 * timeout) // work that outlasts the client timeout
		return "done"
	}
	f := newFixture(t, &signalhub.Options{Methods: methods, KeepAliveInterval: 50 * time.Millisecond, ClientTimeout: timeout})
	c := f.Dial(t, dialOptions{})
	ctx := waitCtx(t)
	id, err := c.StartInvoke(ctx, "Slow")
	require.NoError(t, err)
	completed := make(chan struct{})
	var res []byte
	var errMsg string
	go func() {
		defer close(completed)
		res, errMsg, err = c.Completion(ctx, id)
	}()
	tick := time.NewTicker(timeout / 20)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case <-tick.C:
			require.NoError(t, c.SendRecords(ctx, `{"type":6}`))
		case <-completed:
			waiting = false
		}
	}
	require.NoError(t, err)
	require.Empty(t, errMsg)
	assert.JSONEq(t, `"done"`, string(res))
}

// paddedEcho returns an Echo invocation record of exactly size bytes,
// separator excluded.
func paddedEcho(t testing.TB, id string, size int) []byte {
	t.Helper()
	base, err := invocationRecord(id, "Echo", "")
	require.NoError(t, err)
	n := size - (len(base) - 1)
	require.GreaterOrEqual(t, n, 0)
	rec, err := invocationRecord(id, "Echo", strings.Repeat("a", n))
	require.NoError(t, err)
	require.Len(t, rec, size+1)
	return rec
}

func TestMaxMessageSize(t *testing.T) {
	t.Parallel()
	const limit = 1024
	opts := func() *signalhub.Options {
		return &signalhub.Options{Methods: testMethods(), MaxMessageSize: limit}
	}
	t.Run("at the limit", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, opts())
		c := f.Dial(t, dialOptions{})
		require.NoError(t, c.SendRaw(waitCtx(t), paddedEcho(t, "1", limit)))
		res, errMsg, err := c.Completion(waitCtx(t), "1")
		require.NoError(t, err)
		assert.Empty(t, errMsg)
		assert.Len(t, res, limit-len(`{"type":1,"invocationId":"1","target":"Echo","arguments":[]}`))
	})
	t.Run("many records over the limit together", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, opts())
		c := f.Dial(t, dialOptions{})
		var frame []byte
		for i := range 8 {
			frame = append(frame, paddedEcho(t, fmt.Sprint(i), limit/2)...)
		}
		require.NoError(t, c.SendRaw(waitCtx(t), frame))
		for i := range 8 {
			_, errMsg, err := c.Completion(waitCtx(t), fmt.Sprint(i))
			require.NoError(t, err)
			assert.Empty(t, errMsg)
		}
	})
	for _, tc := range []struct {
		name   string
		frames [][]byte
	}{
		{"one byte over", [][]byte{paddedEcho(t, "1", limit+1)}},
		{"after a good record", [][]byte{append([]byte(`{"type":6}`+rs), paddedEcho(t, "2", limit+1)...)}},
		{"no separator yet", [][]byte{[]byte(`{"type":1,"target":"Echo","arguments":["` + strings.Repeat("a", 2*limit))}},
		{"across frames", [][]byte{[]byte(`{"type":1,"target":"Echo","arguments":["` + strings.Repeat("a", 600)), []byte(strings.Repeat("b", 600) + `"]}` + rs)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, opts())
			c := f.Dial(t, dialOptions{})
			other := f.Dial(t, dialOptions{})
			for _, fr := range tc.frames {
				require.NoError(t, c.SendRaw(waitCtx(t), fr))
			}
			m, closeErr := c.ExpectClose(t)
			assert.Equal(t, fmt.Sprintf("Connection closed with an error. The maximum message size of %dB was exceeded.", limit), m.Error)
			assert.True(t, m.AllowReconnect, "as in ASP.NET Core, the client may reconnect")
			assert.Equal(t, websocket.StatusMessageTooBig, websocket.CloseStatus(closeErr), "%v", closeErr)
			assert.ErrorIs(t, f.WaitDisconnected(t, c.ID), signalhub.ErrMessageTooLarge)
			other.ExpectResult(t, `"unaffected"`, "Echo", "unaffected")
		})
	}
}

func TestRecordsSplitAcrossFrames(t *testing.T) {
	t.Parallel()
	f := newFixture(t, methodsOpts())
	c := f.Dial(t, dialOptions{})
	ctx := waitCtx(t)
	rec, err := invocationRecord("1", "Echo", "héllo wörld")
	require.NoError(t, err)
	cut1 := strings.Index(string(rec), "é") + 1 // inside the two bytes of é
	cut2 := len(rec) - 1                        // just before the separator
	for _, part := range [][]byte{rec[:cut1], rec[cut1:cut2], rec[cut2:]} {
		require.NoError(t, c.SendRaw(ctx, part))
	}
	res, errMsg, err := c.Completion(ctx, "1")
	require.NoError(t, err)
	require.Empty(t, errMsg)
	assert.JSONEq(t, `"héllo wörld"`, string(res))

	// A frame may also end one record and start the next.
	r2, err := invocationRecord("2", "Add", 1, 1)
	require.NoError(t, err)
	r3, err := invocationRecord("3", "Add", 2, 2)
	require.NoError(t, err)
	both := append(r2, r3...)
	require.NoError(t, c.SendRaw(ctx, both[:len(r2)+5]))
	require.NoError(t, c.SendRaw(ctx, both[len(r2)+5:]))
	for id, want := range map[string]string{"2": "2", "3": "4"} {
		res, errMsg, err := c.Completion(ctx, id)
		require.NoError(t, err)
		require.Empty(t, errMsg)
		assert.JSONEq(t, want, string(res))
	}
}

func TestSeveralRecordsInOneFrame(t *testing.T) {
	t.Parallel()
	f := newFixture(t, methodsOpts())
	c := f.Dial(t, dialOptions{})
	var frame []byte
	for i := range 5 {
		rec, err := invocationRecord(fmt.Sprint(i), "Add", i, 100)
		require.NoError(t, err)
		frame = append(frame, rec...)
	}
	nb, err := invocationRecord("", "Echo", "non-blocking")
	require.NoError(t, err)
	frame = append(frame, nb...)
	frame = append(frame, `{"type":6}`+rs...)
	require.NoError(t, c.SendRaw(waitCtx(t), frame))
	for i := range 5 {
		m := c.ExpectNext(t)
		assert.Equal(t, fmt.Sprint(i), m.InvocationID, "completions in order")
		assert.JSONEq(t, fmt.Sprint(i+100), string(m.Result))
	}
	f.mark(t, c, "nothing more")
}

func TestBinaryFrameClosesConnection(t *testing.T) {
	t.Parallel()
	f := newFixture(t, methodsOpts())
	c := f.Dial(t, dialOptions{})
	other := f.Dial(t, dialOptions{})
	rec, err := invocationRecord("1", "Echo", "x")
	require.NoError(t, err)
	require.NoError(t, c.ws.Write(waitCtx(t), websocket.MessageBinary, rec))

	m, closeErr := c.ExpectClose(t)
	assert.Equal(t, "Connection closed with an error. Binary messages are not supported by the 'json' protocol.", m.Error)
	assert.True(t, m.AllowReconnect)
	assert.Equal(t, websocket.StatusUnsupportedData, websocket.CloseStatus(closeErr), "%v", closeErr)
	assert.ErrorIs(t, f.WaitDisconnected(t, c.ID), signalhub.ErrProtocol)
	other.ExpectResult(t, `"unaffected"`, "Echo", "unaffected")
}

// Records are handled in order: an invocation received before a record
// that breaks the protocol still gets its Completion, ahead of the Close
// message, as the hub method ran.
func TestCompletionBeforeProtocolClose(t *testing.T) {
	t.Parallel()
	methods := testMethods()
	methods["Work"] = func(c *signalhub.Context) string {
		<-time.After(50 * time.Millisecond) // some work
		return "done"
	}
	f := newFixture(t, &signalhub.Options{Methods: methods, MaxMessageSize: 1024})
	for _, tc := range []struct{ name, bad string }{
		{"malformed record", `{"type":1,"target":`},
		{"oversize record", `{"type":1,"target":"Echo","arguments":["` + strings.Repeat("a", 2048) + `"]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := f.Dial(t, dialOptions{})
			inv, err := invocationRecord("1", "Work")
			require.NoError(t, err)
			require.NoError(t, c.SendRaw(waitCtx(t), append(inv, tc.bad+rs...)))

			raw, err := c.NextRaw(waitCtx(t))
			require.NoError(t, err)
			assert.JSONEq(t, `{"type":3,"invocationId":"1","result":"done"}`, string(raw), "the Completion comes first")
			m, _ := c.ExpectClose(t)
			assert.NotEmpty(t, m.Error)
			f.WaitDisconnected(t, c.ID)
		})
	}
}

func TestMalformedRecordClosesOnlyThatConnection(t *testing.T) {
	t.Parallel()
	f := newFixture(t, methodsOpts())
	other := f.Dial(t, dialOptions{})
	for _, tc := range []struct{ name, record string }{
		{"broken JSON", `{"type":1,"target":`},
		{"not an object", `[1,2,3]`},
		{"no type", `{"target":"Echo","arguments":["x"]}`},
		{"string type", `{"type":"1","target":"Echo","arguments":["x"]}`},
		{"invocation without target", `{"type":1,"invocationId":"1","arguments":["x"]}`},
		{"invocation with empty target", `{"type":1,"invocationId":"1","target":"","arguments":["x"]}`},
		{"invocation without arguments", `{"type":1,"invocationId":"1","target":"Echo"}`},
		{"arguments not an array", `{"type":1,"invocationId":"1","target":"Echo","arguments":"x"}`},
		{"completion with result and error", `{"type":3,"invocationId":"1","result":1,"error":"e"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := f.Dial(t, dialOptions{})
			require.NoError(t, c.SendRecords(waitCtx(t), tc.record))
			m, _ := c.ExpectClose(t)
			assert.True(t, strings.HasPrefix(m.Error, "Connection closed with an error."), "%q", m.Error)
			assert.ErrorIs(t, f.WaitDisconnected(t, c.ID), signalhub.ErrProtocol)
			other.ExpectResult(t, `"unaffected"`, "Echo", "unaffected")
		})
	}
	f.mark(t, other, "nothing else")
}

func TestSlowConsumer(t *testing.T) {
	t.Parallel()
	// A send that waited for the slow connection would wait for its
	// blocked write to time out, so would take writeTimeout or longer.
	const writeTimeout = 3 * time.Second
	f := newFixture(t, &signalhub.Options{SendQueueLength: 4, WriteTimeout: writeTimeout})
	slow := f.Dial(t, dialOptions{NoReader: true, ReadBuffer: 4 << 10})
	readers := []*client{f.Dial(t, dialOptions{}), f.Dial(t, dialOptions{})}
	slowGone := f.Disconnected(slow.ID)

	// The slow client gets large messages, 24 MiB in all: far more than
	// the socket buffers hold, since it does not read. So its writer
	// blocks and its queue overflows. Everyone gets the small ticks, and
	// the readers keep up: each tick is read before the next is sent.
	const size, count = 256 << 10, 96
	big := strings.Repeat("p", size)
	var slowest time.Duration
	timed := func(send func(context.Context) error) {
		start := time.Now()
		require.NoError(t, send(waitCtx(t)))
		slowest = max(slowest, time.Since(start))
	}
	for i := range count {
		timed(func(ctx context.Context) error { return f.Hub.SendToConnection(ctx, slow.ID, "Data", big) })
		timed(func(ctx context.Context) error { return f.Hub.SendToAll(ctx, "Tick", i) })
		for _, r := range readers {
			r.ExpectInvocation(t, "Tick", i)
		}
	}
	select {
	case <-slowGone:
	case <-time.After(writeTimeout + waitTimeout):
		require.FailNow(t, "the slow connection was not closed")
	}
	assert.Less(t, slowest, writeTimeout, "a send never waits for a slow connection")
	assert.ErrorIs(t, f.WaitDisconnected(t, slow.ID), signalhub.ErrSlowConsumer)
	assert.Equal(t, 2, f.Hub.Stats().Connections)
	for _, r := range readers {
		f.mark(t, r, "readers got every tick and nothing else")
	}
}

// When a write times out, OnDisconnected should get that reason, not the
// read error that closing the socket causes afterwards.
func TestWriteTimeoutCause(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{SendQueueBytes: 64 << 20, WriteTimeout: 200 * time.Millisecond})
	stuck := f.Dial(t, dialOptions{NoReader: true, ReadBuffer: 4 << 10})
	// Far more than the socket buffers hold, well within the queue limits.
	payload := strings.Repeat("p", 512<<10)
	for range 32 {
		require.NoError(t, f.Hub.SendToConnection(waitCtx(t), stuck.ID, "Data", payload))
	}
	cause := f.WaitDisconnected(t, stuck.ID)
	require.Error(t, cause)
	assert.NotErrorIs(t, cause, net.ErrClosed,
		"OnDisconnected should get the failed write, not the read error that closing the socket caused")
}

func TestShutdownRefusesNewWork(t *testing.T) {
	t.Parallel()
	f := newFixture(t, methodsOpts())
	c := f.Dial(t, dialOptions{})
	early, err := f.negotiate(waitCtx(t), dialOptions{})
	require.NoError(t, err)

	require.NoError(t, f.Hub.Shutdown(waitCtx(t)))
	c.ExpectClose(t)

	status, _, err := f.Post(waitCtx(t), "/negotiate", "negotiateVersion=1", nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, status, "negotiate")
	assert.Equal(t, http.StatusServiceUnavailable, f.wsStatus(t, early.ConnectionToken, nil, nil), "connect with a token from before")
	assert.Equal(t, http.StatusServiceUnavailable, f.wsStatus(t, "", nil, nil), "connect without negotiation")

	h := f.Hub
	ctx := waitCtx(t)
	for name, err := range map[string]error{
		"SendToAll":         h.SendToAll(ctx, "T"),
		"SendToAllExcept":   h.SendToAllExcept(ctx, nil, "T"),
		"SendToConnection":  h.SendToConnection(ctx, c.ID, "T"),
		"SendToConnections": h.SendToConnections(ctx, []string{c.ID}, "T"),
		"SendToUser":        h.SendToUser(ctx, "u", "T"),
		"SendToUsers":       h.SendToUsers(ctx, []string{"u"}, "T"),
		"SendToGroup":       h.SendToGroup(ctx, "g", "T"),
		"SendToGroups":      h.SendToGroups(ctx, []string{"g"}, "T"),
		"SendToGroupExcept": h.SendToGroupExcept(ctx, "g", nil, "T"),
		"AddToGroup":        h.AddToGroup(ctx, c.ID, "g"),
		"RemoveFromGroup":   h.RemoveFromGroup(ctx, c.ID, "g"),
	} {
		assert.ErrorIs(t, err, signalhub.ErrHubClosed, name)
	}
	assert.NoError(t, h.Shutdown(waitCtx(t)), "a second Shutdown")
	assert.Zero(t, h.Stats())
}

func TestShutdownClosesClients(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	causes := map[string]error{}
	f := newFixture(t, &signalhub.Options{
		OnDisconnected: func(c *signalhub.Context, err error) {
			mu.Lock()
			causes[c.ConnectionID()] = err
			mu.Unlock()
		},
	})
	clients := []*client{f.Dial(t, dialOptions{}), f.Dial(t, dialOptions{}), f.Dial(t, dialOptions{})}
	for i := range 20 {
		require.NoError(t, f.Hub.SendToAll(waitCtx(t), "Msg", i))
	}
	require.NoError(t, f.Hub.Shutdown(waitCtx(t)))

	mu.Lock()
	assert.Len(t, causes, len(clients), "Shutdown returns after OnDisconnected ran for every connection")
	for id, err := range causes {
		assert.ErrorIs(t, err, signalhub.ErrHubClosed, id)
	}
	mu.Unlock()
	assert.Zero(t, f.Hub.Stats())

	for _, c := range clients {
		for i := range 20 {
			c.ExpectInvocation(t, "Msg", i) // queued before Shutdown: delivered first
		}
		raw, err := c.NextRaw(waitCtx(t))
		require.NoError(t, err)
		assert.Equal(t, `{"type":7,"allowReconnect":true}`, string(raw))
		closeErr := c.ExpectClosed(t)
		assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(closeErr), "%v", closeErr)
	}
}

func TestShutdownWithExpiredContext(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{SendQueueBytes: 64 << 20, WriteTimeout: time.Minute})
	stuck := f.Dial(t, dialOptions{NoReader: true})
	fine := f.Dial(t, dialOptions{})
	// Far more than the socket buffers hold: the writer for stuck blocks
	// until its WriteTimeout, a minute away.
	payload := strings.Repeat("p", 512<<10)
	for range 32 {
		require.NoError(t, f.Hub.SendToConnection(waitCtx(t), stuck.ID, "Data", payload))
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	err := f.Hub.Shutdown(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(start), waitTimeout, "Shutdown drops what it cannot close in time")

	for _, c := range []*client{stuck, fine} {
		_, connected, disconnected := f.Hooks(c.ID)
		assert.Equal(t, 1, connected)
		assert.Equal(t, 1, disconnected, "OnDisconnected ran before Shutdown returned")
	}
	assert.Zero(t, f.Hub.Stats())
	fine.ExpectClosed(t)
}

func TestCloseDropsConnections(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c := f.Dial(t, dialOptions{})
	require.NoError(t, f.Hub.Close())
	_, _, disconnected := f.Hooks(c.ID)
	require.Equal(t, 1, disconnected, "OnDisconnected ran before Close returned")
	c.ExpectClosed(t)
	assert.ErrorIs(t, f.Hub.SendToAll(waitCtx(t), "T"), signalhub.ErrHubClosed)
	status, _, err := f.Post(waitCtx(t), "/negotiate", "negotiateVersion=1", nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.ErrorIs(t, f.WaitDisconnected(t, c.ID), signalhub.ErrHubClosed,
		"OnDisconnected should say the hub closed the connection, as after Shutdown")
}

// TestManyConnectionsConcurrentSends runs 300 connections of 30 users in
// seven groups while eight app goroutines and thirty clients send to
// every kind of audience at once. Each connection must get exactly the
// messages meant for it, each sender's in the order sent.
func TestManyConnectionsConcurrentSends(t *testing.T) {
	t.Parallel()
	const (
		nConns     = 300
		nUsers     = 30
		nGroups    = 6
		nSenders   = 8
		perSender  = 30
		nShouters  = 30
		perShouter = 10
	)
	methods := map[string]any{
		"Shout": func(c *signalhub.Context, group string, seq int) error {
			return c.OthersInGroup(group).Send(c.Context(), "Msg", c.ConnectionID(), seq)
		},
		"Sync": func(c *signalhub.Context) {},
	}
	f := newFixture(t, &signalhub.Options{Methods: methods}, userClaims)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	clients := make([]*client, nConns)
	{
		errs := make(chan error, nConns)
		sem := make(chan struct{}, 16)
		var wg sync.WaitGroup
		for i := range nConns {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				c, err := f.dial(ctx, t, dialOptions{Query: url.Values{"user": {fmt.Sprintf("u%d", i%nUsers)}}})
				if err != nil {
					errs <- fmt.Errorf("dial %d: %w", i, err)
					return
				}
				clients[i] = c
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
	}

	group := func(i int) string { return fmt.Sprintf("g%d", i%nGroups) }
	for i, c := range clients {
		require.NoError(t, f.Hub.AddToGroup(ctx, c.ID, group(i)))
		if i%2 == 1 {
			require.NoError(t, f.Hub.AddToGroup(ctx, c.ID, "odd"))
		}
	}
	require.Equal(t, signalhub.Stats{Connections: nConns, Users: nUsers, Groups: nGroups + 1}, f.Hub.Stats())

	// Who gets what: expected[i][sender] lists the sequence numbers in
	// the order sent.
	expected := make([]map[string][]int, nConns)
	for i := range expected {
		expected[i] = map[string][]int{}
	}
	where := func(pred func(i int) bool) []int {
		var out []int
		for i := range nConns {
			if pred(i) {
				out = append(out, i)
			}
		}
		return out
	}
	appSend := func(s, j int) (func(context.Context) error, []int) {
		sender := fmt.Sprintf("app%d", s)
		switch j % 5 {
		case 0:
			return func(ctx context.Context) error { return f.Hub.SendToAll(ctx, "Msg", sender, j) },
				where(func(int) bool { return true })
		case 1:
			g := (s + j) % nGroups
			return func(ctx context.Context) error { return f.Hub.SendToGroup(ctx, group(g), "Msg", sender, j) },
				where(func(i int) bool { return i%nGroups == g })
		case 2:
			u := (s*7 + j) % nUsers
			return func(ctx context.Context) error { return f.Hub.SendToUser(ctx, fmt.Sprintf("u%d", u), "Msg", sender, j) },
				where(func(i int) bool { return i%nUsers == u })
		case 3:
			k := (s*37 + j*11) % nConns
			return func(ctx context.Context) error { return f.Hub.SendToConnection(ctx, clients[k].ID, "Msg", sender, j) },
				[]int{k}
		default:
			g := (s + j) % nGroups
			return func(ctx context.Context) error {
					return f.Hub.SendToGroups(ctx, []string{group(g), "odd"}, "Msg", sender, j)
				},
				where(func(i int) bool { return i%nGroups == g || i%2 == 1 })
		}
	}
	sends := make([][]func(context.Context) error, nSenders)
	for s := range nSenders {
		for j := range perSender {
			send, to := appSend(s, j)
			sends[s] = append(sends[s], send)
			for _, i := range to {
				expected[i][fmt.Sprintf("app%d", s)] = append(expected[i][fmt.Sprintf("app%d", s)], j)
			}
		}
	}
	for k := range nShouters {
		for _, i := range where(func(i int) bool { return i != k && i%nGroups == k%nGroups }) {
			for seq := range perShouter {
				expected[i][clients[k].ID] = append(expected[i][clients[k].ID], seq)
			}
		}
	}

	// Every connection reads until "Done" and compares.
	type msg struct {
		Sender string
		Seq    int
	}
	verdicts := make(chan error, nConns)
	for i, c := range clients {
		go func() {
			got := map[string][]int{}
			for {
				r, err := c.take(ctx, "a Msg or Done", func(r received) bool {
					return r.err == nil && r.msg.Type == protocol.TypeInvocation
				}, isPing)
				if err != nil {
					verdicts <- fmt.Errorf("connection %d: %w", i, err)
					return
				}
				if r.msg.Target == "Done" {
					break
				}
				var m msg
				if len(r.msg.Arguments) != 2 ||
					json.Unmarshal(r.msg.Arguments[0], &m.Sender) != nil ||
					json.Unmarshal(r.msg.Arguments[1], &m.Seq) != nil {
					verdicts <- fmt.Errorf("connection %d: unexpected %s", i, r)
					return
				}
				got[m.Sender] = append(got[m.Sender], m.Seq)
			}
			verdicts <- compareDeliveries(i, expected[i], got)
		}()
	}

	start := make(chan struct{})
	sendErrs := make(chan error, nSenders+nShouters)
	var senders sync.WaitGroup
	for s := range nSenders {
		senders.Go(func() {
			<-start
			for _, send := range sends[s] {
				if err := send(ctx); err != nil {
					sendErrs <- err
					return
				}
			}
		})
	}
	for k := range nShouters {
		senders.Go(func() {
			<-start
			c := clients[k]
			for seq := range perShouter {
				if err := c.Send(ctx, "Shout", group(k), seq); err != nil {
					sendErrs <- err
					return
				}
			}
			// Invocations run in order: once Sync completes, every Shout ran.
			if _, errMsg, err := c.Invoke(ctx, "Sync"); err != nil || errMsg != "" {
				sendErrs <- fmt.Errorf("sync %d: %v %s", k, err, errMsg)
			}
		})
	}
	close(start)
	senders.Wait()
	close(sendErrs)
	for err := range sendErrs {
		require.NoError(t, err)
	}
	require.NoError(t, f.Hub.SendToAll(ctx, "Done"))

	failures := 0
	for range nConns {
		if err := <-verdicts; err != nil {
			failures++
			if failures <= 5 {
				t.Error(err)
			}
		}
	}
	assert.Zero(t, failures, "connections with wrong deliveries")
}

// compareDeliveries explains how got differs from want, or returns nil.
func compareDeliveries(i int, want, got map[string][]int) error {
	var problems []string
	for sender, seqs := range want {
		if fmt.Sprint(seqs) != fmt.Sprint(got[sender]) {
			problems = append(problems, fmt.Sprintf("from %s want %v got %v", sender, seqs, got[sender]))
		}
	}
	for sender, seqs := range got {
		if _, ok := want[sender]; !ok {
			problems = append(problems, fmt.Sprintf("from %s unexpected %v", sender, seqs))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	if len(problems) > 3 {
		problems = append(problems[:3], fmt.Sprintf("and %d more", len(problems)-3))
	}
	return fmt.Errorf("connection %d: %s", i, strings.Join(problems, "; "))
}

// waitMethods has a hub method that waits until its connection ends (as
// Context documents) or the test lets it go, and reports which happened.
func waitMethods(started chan<- string, ended chan<- error, release <-chan struct{}) map[string]any {
	m := testMethods()
	m["WaitForEnd"] = func(c *signalhub.Context) {
		started <- c.ConnectionID()
		select {
		case <-c.Context().Done():
			ended <- nil
		case <-release:
			ended <- errors.New("Context() was not cancelled; the test released the method")
		}
	}
	return m
}

// stuckTimeout bounds waits that only a bug makes long.
const stuckTimeout = 3 * time.Second

// A running hub method must see its connection end when the client goes
// away, also while more invocations wait behind it (beyond what the queue
// accepts, which closes the connection first).
func TestContextCancelledWhileMethodRuns(t *testing.T) {
	t.Parallel()
	for _, queued := range []int{0, 1000} {
		t.Run(fmt.Sprintf("queued=%d", queued), func(t *testing.T) {
			t.Parallel()
			started, ended, release := make(chan string, 1), make(chan error, 1), make(chan struct{})
			f := newFixture(t, &signalhub.Options{Methods: waitMethods(started, ended, release)})
			c := f.Dial(t, dialOptions{})
			require.NoError(t, c.Send(waitCtx(t), "WaitForEnd"))
			<-started
			var frame []byte
			for range queued {
				rec, err := invocationRecord("", "Echo", "queued")
				require.NoError(t, err)
				frame = append(frame, rec...)
			}
			if len(frame) > 0 {
				require.NoError(t, c.SendRaw(waitCtx(t), frame))
			}
			c.Drop()
			select {
			case err := <-ended:
				assert.NoError(t, err)
			case <-time.After(stuckTimeout):
				close(release)
				assert.NoError(t, <-ended, "the client is gone")
			}
			f.WaitDisconnected(t, c.ID)
		})
	}
}

// Close and Shutdown with an expired context must return even while a
// hub method waits for its connection to end.
func TestHubStopsWhileMethodRuns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		stop func(*signalhub.Hub) error
	}{
		{"Close", (*signalhub.Hub).Close},
		{"Shutdown with expired context", func(h *signalhub.Hub) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_ = h.Shutdown(ctx)
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			started, ended, release := make(chan string, 1), make(chan error, 1), make(chan struct{})
			f := newFixture(t, &signalhub.Options{Methods: waitMethods(started, ended, release)})
			c := f.Dial(t, dialOptions{})
			require.NoError(t, c.Send(waitCtx(t), "WaitForEnd"))
			<-started
			stopped := make(chan error, 1)
			go func() { stopped <- tc.stop(f.Hub) }()
			select {
			case err := <-stopped:
				assert.NoError(t, err)
			case <-time.After(stuckTimeout):
				close(release)
				<-stopped
				assert.Fail(t, tc.name+" did not return while a hub method waited on Context()")
			}
			assert.NoError(t, <-ended)
		})
	}
}

// TestChurn connects and disconnects clients while the app sends and
// changes groups, then checks that the hub forgot everyone.
func TestChurn(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{
		Methods: testMethods(),
		OnConnected: func(c *signalhub.Context) error {
			return c.Hub().AddToGroup(c.Context(), c.ConnectionID(), "room")
		},
	}, userClaims)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The app's work is paced by the clients' (see step), so that fewer
	// messages are sent in all than a connection may have queued: none is
	// closed as a slow consumer.
	pace := make(chan struct{}, 1000)
	step := func() {
		for range 4 {
			select {
			case pace <- struct{}{}:
			default:
			}
		}
	}
	stop := make(chan struct{})
	var background sync.WaitGroup
	backgroundErrs := make(chan error, 4)
	for s := range 4 {
		background.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-pace:
				}
				var err error
				switch i % 4 {
				case 0:
					err = f.Hub.SendToAll(ctx, "Msg", s, i)
				case 1:
					err = f.Hub.SendToGroup(ctx, "room", "Msg", s, i)
				case 2:
					err = f.Hub.SendToUser(ctx, fmt.Sprintf("u%d", i%5), "Msg", s, i)
				default:
					for _, id := range f.Hub.GroupMembers("room") {
						// The connection may be gone by now.
						if err = f.Hub.AddToGroup(ctx, id, fmt.Sprintf("side%d", s)); errors.Is(err, signalhub.ErrConnectionNotFound) {
							err = nil
						}
						if err != nil {
							break
						}
					}
				}
				if err != nil {
					backgroundErrs <- err
					return
				}
			}
		})
	}

	var clients sync.WaitGroup
	errs := make(chan error, 20)
	for w := range 20 {
		clients.Go(func() {
			for i := range 5 {
				c, err := f.dial(ctx, t, dialOptions{Query: url.Values{"user": {fmt.Sprintf("u%d", (w+i)%5)}}})
				if err != nil {
					errs <- err
					return
				}
				step()
				if _, errMsg, err := c.Invoke(ctx, "Echo", "x"); err != nil || errMsg != "" {
					errs <- fmt.Errorf("invoke: %v %s", err, errMsg)
					return
				}
				step()
				if i%2 == 0 {
					c.Close()
				} else {
					c.Drop()
				}
			}
		})
	}
	clients.Wait()
	close(stop)
	background.Wait()
	close(errs)
	close(backgroundErrs)
	for err := range errs {
		require.NoError(t, err)
	}
	for err := range backgroundErrs {
		require.NoError(t, err)
	}

	f.mu.Lock()
	ids := make([]string, 0, len(f.hooks))
	for id := range f.hooks {
		ids = append(ids, id)
	}
	f.mu.Unlock()
	require.Len(t, ids, 100)
	for _, id := range ids {
		f.WaitDisconnected(t, id)
	}
	assert.Zero(t, f.Hub.Stats(), "every connection, user and group is gone")
}

// A client that queues more invocations than MaxPendingInvocations is
// closed with a reason, and its running method sees the connection end.
func TestTooManyPendingInvocations(t *testing.T) {
	t.Parallel()
	started, ended, release := make(chan string, 1), make(chan error, 1), make(chan struct{})
	defer close(release)
	f := newFixture(t, &signalhub.Options{Methods: waitMethods(started, ended, release), MaxPendingInvocations: 4})
	c := f.Dial(t, dialOptions{})
	other := f.Dial(t, dialOptions{})
	require.NoError(t, c.Send(waitCtx(t), "WaitForEnd"))
	<-started

	var frame []byte
	for range 4 { // exactly the limit: accepted
		rec, err := invocationRecord("", "Echo", "queued")
		require.NoError(t, err)
		frame = append(frame, rec...)
	}
	require.NoError(t, c.SendRaw(waitCtx(t), frame))
	other.ExpectResult(t, `"still here"`, "Echo", "still here")
	rec, err := invocationRecord("", "Echo", "one too many")
	require.NoError(t, err)
	require.NoError(t, c.SendRaw(waitCtx(t), rec))

	m, _ := c.ExpectClose(t)
	assert.Contains(t, m.Error, "More than 4 invocations were waiting")
	assert.False(t, m.AllowReconnect)
	assert.NoError(t, <-ended, "the running method's Context ends")
	assert.ErrorIs(t, f.WaitDisconnected(t, c.ID), signalhub.ErrTooManyInvocations)
	other.ExpectResult(t, `"unaffected"`, "Echo", "unaffected")
}

// A panicking Options.UserID gets 500 before the upgrade and leaves no
// state behind.
func TestUserIDPanic(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{
		Methods: testMethods(),
		UserID:  func(signalhub.Claims) string { panic("bad extractor") },
	})
	assert.Equal(t, http.StatusInternalServerError, f.wsStatus(t, "", nil, nil))
	assert.Zero(t, f.Hub.Stats())
	attempts, _, _ := f.TotalHooks()
	assert.Zero(t, attempts, "OnConnected never ran")
}
