package client_test

import (
	"context"
	"log/slog"
	"net"
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
	"github.com/signalhub/signalhub/protocol"
)

// waitTimeout bounds every wait in these tests. It is generous for -race
// on small machines; a passing test never waits for it.
const waitTimeout = 10 * time.Second

const rs = string(rune(protocol.RecordSeparator))

// waitCtx returns a context bounded by waitTimeout and ended with the test.
func waitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// testLogger sends warnings and errors to the test's output, so they show
// up only for failing tests or with -v.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// recv waits for a value on ch, failing the test after waitTimeout.
func recv[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		require.FailNow(t, "timed out waiting for a value")
		var zero T
		return zero
	}
}

// waitDone waits until c has ended for good.
func waitDone(t testing.TB, c *client.Conn) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(waitTimeout):
		require.FailNow(t, "connection did not end")
	}
}

// userAuth identifies users by the X-User header.
func userAuth(r *http.Request) (signalhub.Claims, error) {
	if u := r.Header.Get("X-User"); u != "" {
		return signalhub.Claims{"sub": u}, nil
	}
	return nil, nil
}

// userHeader returns the header that userAuth reads.
func userHeader(user string) http.Header {
	return http.Header{"X-User": []string{user}}
}

// hubServer is a Go hub mounted at /hub on an httptest server on
// 127.0.0.1.
type hubServer struct {
	Hub *signalhub.Hub
	Srv *httptest.Server
	URL string // http://127.0.0.1:port/hub
}

// startHub starts a hub with opts behind the middlewares, outermost first.
// Cleanup closes the hub and the server.
func startHub(t testing.TB, opts *signalhub.Options, middlewares ...func(http.Handler) http.Handler) *hubServer {
	t.Helper()
	hub, handler := newHub(t, opts)
	for i := len(middlewares) - 1; i >= 0; i-- {
		handler = middlewares[i](handler)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(func() {
		assert.NoError(t, hub.Close())
		srv.Close()
	})
	return &hubServer{Hub: hub, Srv: srv, URL: srv.URL + "/hub"}
}

// newHub returns a hub and a mux with the hub mounted at /hub.
func newHub(t testing.TB, opts *signalhub.Options) (*signalhub.Hub, http.Handler) {
	t.Helper()
	var o signalhub.Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	hub, err := signalhub.New(&o)
	require.NoError(t, err)
	mux := http.NewServeMux()
	hub.Mount(mux, "/hub")
	return hub, mux
}

// dial connects a client to url through srv's HTTP client. Cleanup closes
// it.
func dial(t testing.TB, srv *httptest.Server, url string, opts *client.Options) *client.Conn {
	t.Helper()
	c, err := client.Dial(waitCtx(t), url, clientOptions(t, srv, opts))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, c.Close()) })
	return c
}

// clientOptions fills in the test's logger and srv's HTTP client.
func clientOptions(t testing.TB, srv *httptest.Server, opts *client.Options) *client.Options {
	var o client.Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	if o.HTTPClient == nil && srv != nil {
		o.HTTPClient = srv.Client()
	}
	return &o
}

// switchServer is an httptest server whose handler can be replaced, so
// that a reconnect reaches another hub at the same URL.
type switchServer struct {
	Srv     *httptest.Server
	handler atomic.Pointer[http.Handler]
}

func startSwitchServer(t testing.TB, h http.Handler) *switchServer {
	s := &switchServer{}
	s.Set(h)
	s.Srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*s.handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(s.Srv.Close)
	return s
}

// Set makes h serve every later request.
func (s *switchServer) Set(h http.Handler) { s.handler.Store(&h) }

// rawServer is a hand-written SignalR server on an httptest server: it
// accepts a WebSocket at any path, answers the handshake, and hands the
// socket to a test function. Clients reach it with SkipNegotiation.
type rawServer struct {
	Srv *httptest.Server
	URL string
}

// startRawServer serves fn on every connection, after answering the
// handshake with {}.
func startRawServer(t testing.TB, fn func(ctx context.Context, ws *websocket.Conn)) *rawServer {
	return startRawServerHandshake(t, "{}"+rs, fn)
}

// startRawServerHandshake is startRawServer answering the handshake with
// response (nothing when empty).
func startRawServerHandshake(t testing.TB, response string, fn func(ctx context.Context, ws *websocket.Conn)) *rawServer {
	srv := httptest.NewServer(rawHandler(t, response, fn))
	t.Cleanup(srv.Close) // runs before rawHandler's cleanup
	return &rawServer{Srv: srv, URL: srv.URL + "/hub"}
}

// rawHandler is the handler of a raw server. fn's return closes the
// socket. Cleanup, to be run after the server stopped accepting, ends the
// context of every fn and waits for them to return.
func rawHandler(t testing.TB, response string, fn func(ctx context.Context, ws *websocket.Conn)) http.Handler {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1) // before the hijack, while the server's Close waits for us
		defer wg.Done()
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		_, hs, err := ws.Read(ctx)
		if err != nil || !strings.HasPrefix(string(hs), `{"protocol":"json","version":1}`) {
			return
		}
		if response != "" {
			if err := ws.Write(ctx, websocket.MessageText, []byte(response)); err != nil {
				return
			}
		}
		fn(ctx, ws)
	})
}

// memNet is an in-memory network for tests in a synctest bubble, where
// real sockets would keep time from being faked: DialContext returns one
// end of a net.Pipe and Accept the other.
type memNet struct {
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

func newMemNet() *memNet {
	return &memNet{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (m *memNet) Accept() (net.Conn, error) {
	select {
	case c := <-m.conns:
		return c, nil
	case <-m.closed:
		return nil, net.ErrClosed
	}
}

func (m *memNet) Close() error {
	m.closeOnce.Do(func() { close(m.closed) })
	return nil
}

func (m *memNet) Addr() net.Addr { return memAddr{} }

func (m *memNet) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	c, s := net.Pipe()
	select {
	case m.conns <- s:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-m.closed:
		return nil, net.ErrClosed
	}
}

type memAddr struct{}

func (memAddr) Network() string { return "mem" }
func (memAddr) String() string  { return "mem" }

// memURL is the hub URL of servers started by memServe.
const memURL = "http://hub.test/hub"

// memServe serves h over a memNet and returns the HTTP client that
// reaches it at memURL. Cleanup stops the server and the client's idle
// connections, before the cleanups registered earlier.
func memServe(t testing.TB, h http.Handler) *http.Client {
	ln := newMemNet()
	srv := &http.Server{Handler: h}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	transport := &http.Transport{DialContext: ln.DialContext}
	t.Cleanup(func() {
		_ = srv.Close()
		<-served
		transport.CloseIdleConnections()
	})
	return &http.Client{Transport: transport}
}

// recordReader reads hub messages from a raw server's socket.
type recordReader struct {
	ws      *websocket.Conn
	pending []protocol.Message
}

// Next returns the next message the client sent.
func (r *recordReader) Next(ctx context.Context) (protocol.Message, error) {
	for len(r.pending) == 0 {
		_, data, err := r.ws.Read(ctx)
		if err != nil {
			return protocol.Message{}, err
		}
		for {
			rec, rest, ok := protocol.NextRecord(data)
			if !ok {
				break
			}
			data = rest
			m, err := protocol.DecodeMessage(rec)
			if err != nil {
				return protocol.Message{}, err
			}
			r.pending = append(r.pending, m)
		}
	}
	m := r.pending[0]
	r.pending = r.pending[1:]
	return m, nil
}

// drain reads until the client closes the socket, so that the client's
// writes never block.
func drain(ctx context.Context, ws *websocket.Conn) {
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			return
		}
	}
}

// testHub starts a hub with a few methods and userAuth.
func testHub(t testing.TB) *hubServer {
	return startHub(t, &signalhub.Options{Authenticate: userAuth, Methods: testMethods()})
}

type point struct{ X, Y int }

func testMethods() map[string]any {
	return map[string]any{
		"Add":     func(c *signalhub.Context, a, b int) int { return a + b },
		"Echo":    func(c *signalhub.Context, s string) string { return s },
		"Mirror":  func(c *signalhub.Context, p point) point { return point{X: p.Y, Y: p.X} },
		"Nothing": func(c *signalhub.Context) {},
		"Fail":    func(c *signalhub.Context) error { return signalhub.HubError{Message: "nope"} },
		"WhoAmI":  func(c *signalhub.Context) string { return c.UserID() },
		"ConnectionID": func(c *signalhub.Context) string {
			return c.ConnectionID()
		},
		"Join": func(c *signalhub.Context, group string) error {
			return c.Hub().AddToGroup(c.Context(), c.ConnectionID(), group)
		},
		"Ping": func(c *signalhub.Context, text string) error {
			return c.Caller().Send(c.Context(), "Pong", text)
		},
	}
}
