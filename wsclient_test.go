package signalhub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/protocol"
)

// waitTimeout bounds every wait in these tests. It is generous because the
// tests also run under -race on small machines; a passing test never waits
// for it.
const waitTimeout = 10 * time.Second

// rs is the record separator as a string, for building frames.
const rs = string(rune(protocol.RecordSeparator))

// handshakeV1 is the handshake request of the official clients.
const handshakeV1 = `{"protocol":"json","version":1}` + rs

// waitCtx returns a context bounded by waitTimeout and ended with the test.
func waitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// testLogger sends the hub's warnings and errors to the test's output, so
// they show up only for failing tests or with -v.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// hookRecord is what the fixture saw of one connection's hooks.
type hookRecord struct {
	attempts     int // OnConnected calls
	connectedOK  int // OnConnected calls that returned nil
	disconnects  int // OnDisconnected calls
	cause        error
	ctx          *signalhub.Context
	connected    chan struct{} // closed when OnConnected succeeded
	disconnected chan struct{} // closed when OnDisconnected ran
}

// fixture is a hub mounted at /hub on an httptest server on 127.0.0.1. It
// wraps the hooks of the options it is given to record, per connection ID,
// when they ran, and checks at cleanup that OnConnected and OnDisconnected
// ran at most once each, as a pair.
type fixture struct {
	Hub *signalhub.Hub
	Srv *httptest.Server
	URL string // http://127.0.0.1:port/hub

	mu    sync.Mutex
	hooks map[string]*hookRecord
	order []string // connection IDs in OnConnected order
}

// newFixture starts a hub with opts (nil means defaults) behind the given
// middlewares, outermost first. Cleanup closes the hub and the server.
func newFixture(t testing.TB, opts *signalhub.Options, middlewares ...func(http.Handler) http.Handler) *fixture {
	t.Helper()
	f := &fixture{hooks: make(map[string]*hookRecord)}
	var o signalhub.Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	userConnected, userDisconnected := o.OnConnected, o.OnDisconnected
	o.OnConnected = func(c *signalhub.Context) (err error) {
		defer func() {
			if p := recover(); p != nil {
				f.recordConnected(c, fmt.Errorf("panic: %v", p))
				panic(p) // the hub's to handle
			}
		}()
		if userConnected != nil {
			err = userConnected(c)
		}
		f.recordConnected(c, err)
		return err
	}
	o.OnDisconnected = func(c *signalhub.Context, err error) {
		if userDisconnected != nil {
			userDisconnected(c, err)
		}
		f.recordDisconnected(c, err)
	}
	hub, err := signalhub.New(&o)
	require.NoError(t, err)
	f.Hub = hub

	mux := http.NewServeMux()
	hub.Mount(mux, "/hub")
	var handler http.Handler = mux
	for i := len(middlewares) - 1; i >= 0; i-- {
		handler = middlewares[i](handler)
	}
	f.Srv = httptest.NewServer(handler)
	f.URL = f.Srv.URL + "/hub"
	t.Cleanup(func() {
		assert.NoError(t, hub.Close())
		f.Srv.Close()
		f.checkHooks(t)
	})
	return f
}

func (f *fixture) record(id string) *hookRecord {
	r := f.hooks[id]
	if r == nil {
		r = &hookRecord{connected: make(chan struct{}), disconnected: make(chan struct{})}
		f.hooks[id] = r
	}
	return r
}

func (f *fixture) recordConnected(c *signalhub.Context, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.record(c.ConnectionID())
	r.attempts++
	if err == nil {
		r.connectedOK++
		if r.connectedOK == 1 {
			r.ctx = c
			f.order = append(f.order, c.ConnectionID())
			close(r.connected)
		}
	}
}

func (f *fixture) recordDisconnected(c *signalhub.Context, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.record(c.ConnectionID())
	r.disconnects++
	if r.disconnects == 1 {
		r.cause = err
		close(r.disconnected)
	}
}

// checkHooks runs after the hub closed: every connection whose OnConnected
// succeeded got exactly one OnDisconnected, and no other did.
func (f *fixture) checkHooks(t testing.TB) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, r := range f.hooks {
		assert.LessOrEqual(t, r.attempts, 1, "OnConnected calls for %s", id)
		assert.Equal(t, r.connectedOK, r.disconnects, "OnDisconnected calls for %s (OnConnected succeeded %d times)", id, r.connectedOK)
	}
}

// Hooks returns how often OnConnected ran for id, how often it succeeded
// and how often OnDisconnected ran, so far.
func (f *fixture) Hooks(id string) (attempts, connected, disconnected int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.hooks[id]
	if r == nil {
		return 0, 0, 0
	}
	return r.attempts, r.connectedOK, r.disconnects
}

// TotalHooks sums Hooks over every connection.
func (f *fixture) TotalHooks() (attempts, connected, disconnected int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.hooks {
		attempts += r.attempts
		connected += r.connectedOK
		disconnected += r.disconnects
	}
	return attempts, connected, disconnected
}

// waitConnected waits until OnConnected succeeded for id and returns the
// connection's Context.
func (f *fixture) waitConnected(ctx context.Context, id string) (*signalhub.Context, error) {
	f.mu.Lock()
	r := f.record(id)
	f.mu.Unlock()
	select {
	case <-r.connected:
		f.mu.Lock()
		defer f.mu.Unlock()
		return r.ctx, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("connection %s: OnConnected did not succeed: %w", id, ctx.Err())
	}
}

// WaitConnected is waitConnected for the test goroutine.
func (f *fixture) WaitConnected(t testing.TB, id string) *signalhub.Context {
	t.Helper()
	hc, err := f.waitConnected(waitCtx(t), id)
	require.NoError(t, err)
	return hc
}

// Disconnected returns a channel closed when OnDisconnected ran for id.
func (f *fixture) Disconnected(id string) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.record(id).disconnected
}

// WaitDisconnected waits until OnDisconnected ran for id and returns the
// error it was given.
func (f *fixture) WaitDisconnected(t testing.TB, id string) error {
	t.Helper()
	f.mu.Lock()
	r := f.record(id)
	f.mu.Unlock()
	select {
	case <-r.disconnected:
		f.mu.Lock()
		defer f.mu.Unlock()
		return r.cause
	case <-time.After(waitTimeout):
		require.FailNow(t, "OnDisconnected did not run", "connection %s", id)
		return nil
	}
}

// dialOptions describes how a test client connects.
type dialOptions struct {
	// Query is added to the negotiate and connect URLs, as the official
	// clients keep the hub URL's query (access_token, or the test
	// middleware's "user").
	Query url.Values
	// Header is sent with negotiate and with the WebSocket upgrade.
	Header http.Header
	// SkipNegotiation connects without negotiating and without an id.
	SkipNegotiation bool
	// NegotiateVersion is the negotiateVersion query value; "" means "1"
	// and "-" leaves the parameter out.
	NegotiateVersion string
	// Handshake replaces the handshake request (without its separator).
	Handshake string
	// NoReader reads the handshake response and then never reads again,
	// like a client whose network stalled.
	NoReader bool
	// ReadBuffer, when set, is the client socket's receive buffer size, so
	// that a client that stops reading stalls the server sooner.
	ReadBuffer int
	// NoWait returns right after the handshake response instead of waiting
	// until OnConnected succeeded.
	NoWait bool
}

// negotiateResult is a decoded negotiate response, error or not.
type negotiateResult struct {
	NegotiateVersion int    `json:"negotiateVersion"`
	ConnectionID     string `json:"connectionId"`
	ConnectionToken  string `json:"connectionToken"`
	Error            string `json:"error"`
	// UseStatefulReconnect is absent unless the client asked for stateful
	// reconnect and the hub allows it.
	UseStatefulReconnect *bool `json:"useStatefulReconnect"`
	AvailableTransports  []struct {
		Transport       string   `json:"transport"`
		TransferFormats []string `json:"transferFormats"`
	} `json:"availableTransports"`
}

// Post sends a POST to the hub URL with the given suffix and raw query and
// returns the status and body.
func (f *fixture) Post(ctx context.Context, suffix, rawQuery string, header http.Header) (int, []byte, error) {
	return f.do(ctx, http.MethodPost, suffix, rawQuery, header)
}

func (f *fixture) do(ctx context.Context, method, suffix, rawQuery string, header http.Header) (int, []byte, error) {
	u := f.URL + suffix
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := f.Srv.Client().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// negotiate runs POST /hub/negotiate with the options' query and header.
func (f *fixture) negotiate(ctx context.Context, o dialOptions) (negotiateResult, error) {
	q := cloneQuery(o.Query)
	v := o.NegotiateVersion
	if v == "" {
		v = "1"
	}
	if v != "-" {
		q.Set("negotiateVersion", v)
	}
	status, body, err := f.Post(ctx, "/negotiate", q.Encode(), o.Header)
	if err != nil {
		return negotiateResult{}, err
	}
	if status != http.StatusOK {
		return negotiateResult{}, fmt.Errorf("negotiate: status %d: %s", status, body)
	}
	var res negotiateResult
	if err := json.Unmarshal(body, &res); err != nil {
		return negotiateResult{}, fmt.Errorf("negotiate: %w: %s", err, body)
	}
	if res.Error != "" {
		return negotiateResult{}, fmt.Errorf("negotiate: error %q", res.Error)
	}
	return res, nil
}

func cloneQuery(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// ConnectURL is the WebSocket URL for token (none when empty) plus query.
func (f *fixture) ConnectURL(token string, query url.Values) string {
	q := cloneQuery(query)
	if token != "" {
		q.Set("id", token)
	}
	u := "ws" + strings.TrimPrefix(f.URL, "http")
	if enc := q.Encode(); enc != "" {
		u += "?" + enc
	}
	return u
}

// DialWS opens the WebSocket for token without a handshake. On a refused
// upgrade the response tells the status.
func (f *fixture) DialWS(ctx context.Context, token string, query url.Values, header http.Header) (*websocket.Conn, *http.Response, error) {
	return f.dialWS(ctx, token, query, header, 0)
}

func (f *fixture) dialWS(ctx context.Context, token string, query url.Values, header http.Header, readBuffer int) (*websocket.Conn, *http.Response, error) {
	httpClient := f.Srv.Client()
	if readBuffer > 0 {
		// A transport of its own, used for this upgrade only.
		tr := &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				if tcp, ok := conn.(*net.TCPConn); ok {
					if err := tcp.SetReadBuffer(readBuffer); err != nil {
						_ = conn.Close()
						return nil, err
					}
				}
				return conn, nil
			},
		}
		defer tr.CloseIdleConnections()
		httpClient = &http.Client{Transport: tr}
	}
	ws, resp, err := websocket.Dial(ctx, f.ConnectURL(token, query), &websocket.DialOptions{
		HTTPClient: httpClient,
		HTTPHeader: header,
	})
	if err != nil {
		return nil, resp, err
	}
	ws.SetReadLimit(-1)
	return ws, resp, nil
}

// dial negotiates (unless skipped), connects, handshakes and, unless told
// otherwise, waits until OnConnected succeeded. It is safe to call from
// any goroutine; Dial is the test-goroutine form.
func (f *fixture) dial(ctx context.Context, t testing.TB, o dialOptions) (*client, error) {
	var neg negotiateResult
	token := ""
	if !o.SkipNegotiation {
		var err error
		if neg, err = f.negotiate(ctx, o); err != nil {
			return nil, err
		}
		token = neg.ConnectionToken
		if neg.NegotiateVersion == 0 {
			token = neg.ConnectionID
		}
	}
	ws, _, err := f.dialWS(ctx, token, o.Query, o.Header, o.ReadBuffer)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	c := newClient(t, ws, !o.NoReader)
	c.ID, c.Token = neg.ConnectionID, token
	hs := o.Handshake
	if hs == "" {
		hs = strings.TrimSuffix(handshakeV1, rs)
	}
	if err := c.SendRaw(ctx, []byte(hs+rs)); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	var resp []byte
	if o.NoReader {
		// Read the response directly; nothing reads after it.
		_, data, err := ws.Read(ctx)
		if err != nil {
			return nil, fmt.Errorf("handshake response: %w", err)
		}
		resp = bytes.TrimSuffix(data, []byte(rs))
	} else if resp, err = c.NextRecord(ctx); err != nil {
		return nil, fmt.Errorf("handshake response: %w", err)
	}
	if string(resp) != "{}" {
		return nil, fmt.Errorf("handshake response %s", resp)
	}
	if !o.NoWait && c.ID != "" {
		if _, err := f.waitConnected(ctx, c.ID); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Dial is dial for the test goroutine, with a bounded wait.
func (f *fixture) Dial(t testing.TB, o dialOptions) *client {
	t.Helper()
	c, err := f.dial(waitCtx(t), t, o)
	require.NoError(t, err)
	return c
}

// DialUser dials as user through the test middleware that turns the
// "user" query parameter into claims (see userClaims).
func (f *fixture) DialUser(t testing.TB, user string) *client {
	t.Helper()
	return f.Dial(t, dialOptions{Query: url.Values{"user": {user}}})
}

// received is one record the client got, decoded when it is a hub message.
type received struct {
	raw []byte
	msg protocol.Message
	err error // decoding error (the handshake response has no type)
}

func (r received) String() string { return strconv.Quote(string(r.raw)) }

// client is a minimal SignalR JSON client over a coder/websocket
// connection. A reader goroutine splits incoming frames into records
// (records may span frames) and queues them in the client's inbox; the
// wait methods take them from it, bounded by their context, and time out
// without touching the socket.
type client struct {
	expect // ExpectInvocation, ExpectResult, ... (expect_test.go)

	ID    string // connectionId from negotiate; "" with skipNegotiation
	Token string

	ws     *websocket.Conn
	nextID atomic.Int64
	done   chan struct{} // closed when the reader has exited

	inbox[received]
}

// newClient wraps an open WebSocket. Unless read is false, a goroutine
// reads from it until it closes. Cleanup drops the socket and then checks
// that every message from the server held whole records: the official
// clients fail on a record split across messages.
func newClient(t testing.TB, ws *websocket.Conn, read bool) *client {
	c := &client{ws: ws, done: make(chan struct{}), inbox: inbox[received]{ended: "connection closed"}}
	c.expect = expect{c}
	if read {
		go c.readLoop()
	} else {
		close(c.done)
	}
	c.checkProblems(t, "WebSocket messages from the server must end with a whole record")
	t.Cleanup(c.Drop)
	return c
}

func (c *client) readLoop() {
	defer close(c.done)
	var partial []byte
	for {
		typ, data, err := c.ws.Read(context.Background())
		if err == nil && typ != websocket.MessageText {
			err = fmt.Errorf("unexpected %v message: %q", typ, data)
			_ = c.ws.CloseNow()
		}
		if err != nil {
			if len(partial) > 0 {
				err = fmt.Errorf("%w (with %d bytes of a partial record)", err, len(partial))
			}
			c.closeWith(err)
			return
		}
		partial = append(partial, data...)
		var recs []received
		for {
			rec, rest, ok := protocol.NextRecord(partial)
			if !ok {
				break
			}
			raw := bytes.Clone(rec)
			r := received{raw: raw}
			r.msg, r.err = protocol.DecodeMessage(raw)
			recs = append(recs, r)
			partial = rest
		}
		partial = append([]byte(nil), partial...)
		if len(partial) > 0 {
			c.refuse(fmt.Sprintf("%.80q", data))
		}
		c.push(recs...)
	}
}

func anyRecord(received) bool { return true }

func isPing(r received) bool { return r.err == nil && r.msg.Type == protocol.TypePing }

// NextRecord returns the next record, Pings and the handshake response
// included, without its separator.
func (c *client) NextRecord(ctx context.Context) ([]byte, error) {
	r, err := c.take(ctx, "a record", anyRecord, nil)
	return r.raw, err
}

// Next returns the next message that is not a Ping; Pings before it are
// dropped.
func (c *client) Next(ctx context.Context) (protocol.Message, error) {
	r, err := c.take(ctx, "a message", func(r received) bool { return !isPing(r) }, isPing)
	if err != nil {
		return protocol.Message{}, err
	}
	if r.err != nil {
		return protocol.Message{}, fmt.Errorf("record %s: %w", r, r.err)
	}
	return r.msg, nil
}

// NextRaw is Next returning the record's bytes.
func (c *client) NextRaw(ctx context.Context) ([]byte, error) {
	r, err := c.take(ctx, "a message", func(r received) bool { return !isPing(r) }, isPing)
	return r.raw, err
}

// SendRaw writes frame as one text message, as it is.
func (c *client) SendRaw(ctx context.Context, frame []byte) error {
	return c.ws.Write(ctx, websocket.MessageText, frame)
}

// SendRecords writes the records, each given without its separator, in
// one text message.
func (c *client) SendRecords(ctx context.Context, records ...string) error {
	var b strings.Builder
	for _, r := range records {
		b.WriteString(r)
		b.WriteString(rs)
	}
	return c.SendRaw(ctx, []byte(b.String()))
}

// invocationRecord encodes an Invocation; an empty id makes it
// non-blocking.
func invocationRecord(id, target string, args ...any) ([]byte, error) {
	m := protocol.Message{Type: protocol.TypeInvocation, InvocationID: id, Target: target, Arguments: []json.RawMessage{}}
	for _, a := range args {
		b, err := json.Marshal(a)
		if err != nil {
			return nil, err
		}
		m.Arguments = append(m.Arguments, b)
	}
	return protocol.AppendMessage(nil, &m), nil
}

// Send invokes target without waiting (no invocationId, no Completion).
func (c *client) Send(ctx context.Context, target string, args ...any) error {
	rec, err := invocationRecord("", target, args...)
	if err != nil {
		return err
	}
	return c.SendRaw(ctx, rec)
}

// StartInvoke sends a blocking Invocation and returns its invocationId.
func (c *client) StartInvoke(ctx context.Context, target string, args ...any) (string, error) {
	id := strconv.FormatInt(c.nextID.Add(1), 10)
	rec, err := invocationRecord(id, target, args...)
	if err != nil {
		return "", err
	}
	return id, c.SendRaw(ctx, rec)
}

// Completion waits for the Completion of invocation id; other messages stay
// queued for Next.
func (c *client) Completion(ctx context.Context, id string) (result json.RawMessage, errMsg string, err error) {
	r, err := c.take(ctx, "the completion of invocation "+id, func(r received) bool {
		return r.err == nil && r.msg.Type == protocol.TypeCompletion && r.msg.InvocationID == id
	}, nil)
	if err != nil {
		return nil, "", err
	}
	return r.msg.Result, r.msg.Error, nil
}

// Invoke calls target and waits for its Completion: the result, or the
// error message the server sent, or err when none came.
func (c *client) Invoke(ctx context.Context, target string, args ...any) (result json.RawMessage, errMsg string, err error) {
	id, err := c.StartInvoke(ctx, target, args...)
	if err != nil {
		return nil, "", err
	}
	return c.Completion(ctx, id)
}

// Close ends the connection as the official clients do: a Close message,
// then a normal WebSocket close. It waits for the reader to exit.
func (c *client) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_ = c.SendRecords(ctx, `{"type":7}`)
	_ = c.ws.Close(websocket.StatusNormalClosure, "")
	select {
	case <-c.done:
	case <-ctx.Done():
	}
}

// Drop closes the socket without any handshake and waits for the reader.
func (c *client) Drop() {
	_ = c.ws.CloseNow()
	<-c.done
}

// WaitClosed waits until the connection is closed and returns the error
// that ended the reader (a websocket.CloseError for a clean close); err
// says the connection is still open when ctx ends.
func (c *client) WaitClosed(ctx context.Context) (readErr, err error) {
	select {
	case <-c.done:
		return c.readError(), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("connection still open: %w; %s", ctx.Err(), c.describe())
	}
}

// Expectations for the test goroutine. Each waits at most waitTimeout and
// reports what arrived instead.

// ExpectNext returns the next non-Ping message.
func (c *client) ExpectNext(t testing.TB) protocol.Message {
	t.Helper()
	m, err := c.Next(waitCtx(t))
	require.NoError(t, err)
	return m
}
