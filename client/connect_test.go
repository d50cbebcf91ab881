package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/client"
)

// tokenAuth takes the bearer token (header or access_token query) as the
// user ID, and records where each request carried it.
type tokenAuth struct {
	mu   sync.Mutex
	seen []string // "negotiate:header", "connect:query", ...
}

func (a *tokenAuth) Authenticate(r *http.Request) (signalhub.Claims, error) {
	tok, src := "", ""
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		tok, src = strings.TrimPrefix(h, "Bearer "), "header"
	} else if q := r.URL.Query().Get("access_token"); q != "" {
		tok, src = q, "query"
	}
	if tok == "" {
		return nil, nil
	}
	kind := "connect"
	if strings.HasSuffix(r.URL.Path, "/negotiate") {
		kind = "negotiate"
	}
	a.mu.Lock()
	a.seen = append(a.seen, kind+":"+src)
	a.mu.Unlock()
	return signalhub.Claims{"sub": tok}, nil
}

func (a *tokenAuth) Seen() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.seen...)
}

func startTokenHub(t *testing.T) (*hubServer, *tokenAuth) {
	auth := &tokenAuth{}
	s := startHub(t, &signalhub.Options{
		Authenticate: auth.Authenticate,
		RequireAuth:  true,
		Methods:      testMethods(),
	})
	return s, auth
}

func TestAccessToken(t *testing.T) {
	tests := []struct {
		name    string
		inQuery bool
		want    []string
	}{
		{"header", false, []string{"negotiate:header", "connect:header"}},
		// Negotiate keeps the header, as browsers do.
		{"query", true, []string{"negotiate:header", "connect:query"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, auth := startTokenHub(t)
			var calls atomic.Int32
			c := dial(t, s.Srv, s.URL, &client.Options{
				AccessTokenInQuery: tc.inQuery,
				AccessToken: func(ctx context.Context) (string, error) {
					calls.Add(1)
					return "alice", nil
				},
			})
			who, err := client.InvokeAs[string](waitCtx(t), c, "WhoAmI")
			require.NoError(t, err)
			assert.Equal(t, "alice", who)
			assert.Equal(t, int32(2), calls.Load(), "one call for negotiate, one for connect")
			assert.Equal(t, tc.want, auth.Seen())
		})
	}
}

func TestStartErrors(t *testing.T) {
	s, _ := startTokenHub(t)
	tokenErr := errors.New("no token today")
	tests := []struct {
		name  string
		opts  client.Options
		check func(t *testing.T, err error)
	}{
		{"no token", client.Options{}, func(t *testing.T, err error) {
			var he *client.HTTPError
			require.ErrorAs(t, err, &he)
			assert.Equal(t, "negotiate", he.Op)
			assert.Equal(t, http.StatusUnauthorized, he.StatusCode)
			assert.Equal(t, "Unauthorized", he.Body)
		}},
		{"no token, skip negotiation", client.Options{SkipNegotiation: true}, func(t *testing.T, err error) {
			var he *client.HTTPError
			require.ErrorAs(t, err, &he)
			assert.Equal(t, "connect", he.Op)
			assert.Equal(t, http.StatusUnauthorized, he.StatusCode)
		}},
		{"token provider fails", client.Options{AccessToken: func(context.Context) (string, error) { return "", tokenErr }}, func(t *testing.T, err error) {
			assert.ErrorIs(t, err, tokenErr)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.Dial(waitCtx(t), s.URL, clientOptions(t, s.Srv, &tc.opts))
			assert.Nil(t, c)
			tc.check(t, err)
		})
	}
}

func TestSkipNegotiation(t *testing.T) {
	var negotiations atomic.Int32
	s := startHub(t, &signalhub.Options{Methods: testMethods()}, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/negotiate") {
				negotiations.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	})
	c := dial(t, s.Srv, s.URL, &client.Options{SkipNegotiation: true})
	assert.Empty(t, c.ConnectionID())
	n, err := client.InvokeAs[int](waitCtx(t), c, "Add", 2, 3)
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	assert.Zero(t, negotiations.Load())
	assert.Equal(t, 1, s.Hub.Stats().Connections)
}

func TestNegotiateRedirect(t *testing.T) {
	s, auth := startTokenHub(t)
	var redirects atomic.Int32
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirects.Add(1)
		assert.Equal(t, http.MethodPost, r.Method)
		assert.Equal(t, "/front/negotiate", r.URL.Path)
		assert.Equal(t, "tenant=7&negotiateVersion=1", r.URL.RawQuery)
		assert.Equal(t, "Bearer from-provider", r.Header.Get("Authorization"))
		_ = json.NewEncoder(w).Encode(map[string]string{"url": s.URL + "?tenant=7", "accessToken": "alice"})
	}))
	t.Cleanup(front.Close)
	var calls atomic.Int32
	c := dial(t, s.Srv, front.URL+"/front?tenant=7", &client.Options{
		AccessToken: func(context.Context) (string, error) {
			calls.Add(1)
			return "from-provider", nil
		},
	})
	// The redirect's token replaced the provider for negotiate and connect.
	who, err := client.InvokeAs[string](waitCtx(t), c, "WhoAmI")
	require.NoError(t, err)
	assert.Equal(t, "alice", who)
	assert.Equal(t, int32(1), redirects.Load())
	assert.Equal(t, int32(1), calls.Load())
	assert.Equal(t, []string{"negotiate:header", "connect:header"}, auth.Seen())
}

func TestNegotiateFailures(t *testing.T) {
	var loops atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch strings.TrimSuffix(r.URL.Path, "/negotiate") {
		case "/error":
			_, _ = w.Write([]byte(`{"error":"The client requested version '1', but the server does not support this version."}`))
		case "/loop":
			loops.Add(1)
			_, _ = w.Write([]byte(`{"url":"` + srv.URL + `/loop"}`))
		case "/status":
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		case "/accepted":
			w.WriteHeader(http.StatusAccepted)
		case "/longpolling":
			_, _ = w.Write([]byte(`{"negotiateVersion":1,"connectionId":"a","connectionToken":"b","availableTransports":[{"transport":"LongPolling","transferFormats":["Text","Binary"]}]}`))
		case "/stateful":
			_, _ = w.Write([]byte(`{"negotiateVersion":1,"connectionId":"a","connectionToken":"b","useStatefulReconnect":true,"availableTransports":[{"transport":"WebSockets","transferFormats":["Text"]}]}`))
		case "/old":
			_, _ = w.Write([]byte(`{"ProtocolVersion":"1.5","ConnectionId":"a"}`))
		default:
			_, _ = w.Write([]byte(`not json`))
		}
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		path    string
		is      error
		message string
	}{
		{"/error", client.ErrNegotiate, "client: negotiate failed: The client requested version '1', but the server does not support this version."},
		{"/loop", client.ErrNegotiate, "negotiate redirection limit exceeded"},
		{"/status", nil, "client: negotiate: unexpected status 503: down for maintenance"},
		{"/accepted", nil, "client: negotiate: unexpected status 202"},
		{"/longpolling", client.ErrNegotiate, "does not offer WebSockets"},
		{"/stateful", client.ErrNegotiate, "stateful reconnect"},
		{"/old", client.ErrNegotiate, "ASP.NET SignalR"},
		{"/garbage", client.ErrNegotiate, "malformed answer"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			c, err := client.Dial(waitCtx(t), srv.URL+tc.path, clientOptions(t, srv, nil))
			assert.Nil(t, c)
			require.Error(t, err)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
			assert.Contains(t, err.Error(), tc.message)
		})
	}
	assert.Equal(t, int32(100), loops.Load(), "negotiate requests before giving up on redirects")
}

func TestHandshakeFailures(t *testing.T) {
	tests := []struct {
		name     string
		response string
		message  string
	}{
		{"refused", `{"error":"The protocol 'json' is not supported."}` + rs, "server returned handshake error: The protocol 'json' is not supported."},
		{"incomplete", `{}`, "incomplete handshake response"},
		{"not a handshake", `{"type":1,"target":"x","arguments":[]}` + rs, "expected a handshake response"},
		{"malformed", `{]` + rs, "malformed handshake response"},
		{"silent", "", "no response within HandshakeTimeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := startRawServerHandshake(t, tc.response, drain)
			c, err := client.Dial(waitCtx(t), srv.URL, clientOptions(t, srv.Srv, &client.Options{
				SkipNegotiation:  true,
				HandshakeTimeout: 100 * time.Millisecond,
			}))
			assert.Nil(t, c)
			assert.ErrorIs(t, err, client.ErrHandshake)
			assert.ErrorContains(t, err, tc.message)
		})
	}
}

func TestRecordsAfterHandshakeResponse(t *testing.T) {
	srv := startRawServerHandshake(t, "{}"+rs+`{"type":1,"target":"Note","arguments":["early"]}`+rs, func(ctx context.Context, ws *websocket.Conn) {
		// Things a client ignores, then one more message for it.
		for _, m := range []string{
			`{"type":6}` + rs + `{"type":99,"whatever":[1]}` + rs,
			`{"type":3,"invocationId":"unknown","result":1}` + rs + `{"type":8,"sequenceId":1}` + rs,
			`{"type":1,"target":"Note","arguments":["late"],"headers":{"a":"b"},"extra":true}` + rs,
		} {
			if ws.Write(ctx, websocket.MessageText, []byte(m)) != nil {
				return
			}
		}
		drain(ctx, ws)
	})
	c, err := client.New(srv.URL, clientOptions(t, srv.Srv, &client.Options{SkipNegotiation: true}))
	require.NoError(t, err)
	defer c.Close()
	got := make(chan string, 2)
	require.NoError(t, c.On("Note", func(s string) { got <- s }))
	require.NoError(t, c.Start(waitCtx(t)))
	assert.Equal(t, "early", recv(t, got))
	assert.Equal(t, "late", recv(t, got))
	assert.Nil(t, c.Err())
}

func TestMalformedServerInput(t *testing.T) {
	tests := []struct {
		name    string
		typ     websocket.MessageType
		data    string
		message string
	}{
		{"not json", websocket.MessageText, "not json" + rs, "invalid message"},
		{"incomplete record", websocket.MessageText, `{"type":1,"target":"Note","arguments":[]}`, "incomplete record"},
		{"record after a complete one", websocket.MessageText, `{"type":6}` + rs + `{"type":6}`, "incomplete record"},
		{"binary", websocket.MessageBinary, `{"type":6}` + rs, "binary message"},
		{"no target", websocket.MessageText, `{"type":1,"arguments":[]}` + rs, "missing 'target'"},
		{"string type", websocket.MessageText, `{"type":"1"}` + rs, "invalid message"},
		{"result and error", websocket.MessageText, `{"type":3,"invocationId":"0","result":1,"error":"x"}` + rs, "both 'result' and 'error'"},
		{"too large", websocket.MessageText, `{"type":1,"target":"Note","arguments":["` + strings.Repeat("x", 2048) + `"]}` + rs, "exceeded MaxMessageSize"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := startRawServer(t, func(ctx context.Context, ws *websocket.Conn) {
				if ws.Write(ctx, tc.typ, []byte(tc.data)) == nil {
					drain(ctx, ws)
				}
			})
			closed := make(chan error, 1)
			c := dial(t, srv.Srv, srv.URL, &client.Options{
				SkipNegotiation: true,
				MaxMessageSize:  1024,
				OnClose:         func(err error) { closed <- err },
			})
			require.NoError(t, c.On("Note", func(string) {}))
			err := recv(t, closed)
			assert.ErrorIs(t, err, client.ErrProtocol)
			assert.ErrorContains(t, err, tc.message)
			waitDone(t, c)
			assert.Equal(t, err, c.Err())
		})
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	for _, u := range []string{"", "ftp://example.com/hub", "http:///hub", "://x", "example.com/hub"} {
		_, err := client.New(u, nil)
		assert.Error(t, err, u)
	}
	for name, o := range map[string]client.Options{
		"KeepAliveInterval": {KeepAliveInterval: -1},
		"ServerTimeout":     {ServerTimeout: -1},
		"HandshakeTimeout":  {HandshakeTimeout: -1},
		"QueueLength":       {QueueLength: -1},
		"MaxMessageSize":    {MaxMessageSize: 10},
	} {
		_, err := client.New("http://example.com/hub", &o)
		assert.ErrorContains(t, err, name)
	}
	for _, u := range []string{"http://example.com/hub", "https://example.com/hub?x=1", "ws://example.com", "WSS://example.com/a/b/"} {
		c, err := client.New(u, nil)
		if assert.NoError(t, err, u) {
			assert.NoError(t, c.Close())
		}
	}
}
