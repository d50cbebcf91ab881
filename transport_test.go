package signalhub_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/protocol"
)

// transportMethods add methods that reach users and groups to testMethods.
func transportMethods() map[string]any {
	m := testMethods()
	m["Join"] = func(c *signalhub.Context, group string) error {
		return c.Hub().AddToGroup(c.Context(), c.ConnectionID(), group)
	}
	m["ToGroup"] = func(c *signalhub.Context, group, msg string) error {
		return c.Hub().SendToGroup(c.Context(), group, "Group", c.UserID(), msg)
	}
	m["ToUser"] = func(c *signalhub.Context, user, msg string) error {
		return c.Hub().SendToUser(c.Context(), user, "Private", c.UserID(), msg)
	}
	return m
}

// httpTransports names the two HTTP transports for subtests.
var httpTransports = []struct {
	name string
	sse  bool
}{{"server-sent events", true}, {"long polling", false}}

func TestNegotiateOffersTransports(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		transports signalhub.Transports
		want       string
	}{
		{0, `[{"transport":"WebSockets","transferFormats":["Text","Binary"]},` +
			`{"transport":"ServerSentEvents","transferFormats":["Text"]},` +
			`{"transport":"LongPolling","transferFormats":["Text","Binary"]}]`},
		{signalhub.TransportWebSockets, `[{"transport":"WebSockets","transferFormats":["Text","Binary"]}]`},
		{signalhub.TransportLongPolling | signalhub.TransportServerSentEvents,
			`[{"transport":"ServerSentEvents","transferFormats":["Text"]},{"transport":"LongPolling","transferFormats":["Text","Binary"]}]`},
		{signalhub.TransportLongPolling, `[{"transport":"LongPolling","transferFormats":["Text","Binary"]}]`},
	} {
		t.Run(tc.transports.String(), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, &signalhub.Options{Transports: tc.transports})
			status, body, err := f.Post(waitCtx(t), "/negotiate", "negotiateVersion=1", nil)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, status, "%s", body)
			var fields map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(body, &fields))
			assert.JSONEq(t, tc.want, string(fields["availableTransports"]))
		})
	}
}

func TestTransportsOption(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "WebSockets|ServerSentEvents|LongPolling", signalhub.AllTransports.String())
	assert.Equal(t, "WebSockets|LongPolling", (signalhub.TransportWebSockets | signalhub.TransportLongPolling).String())
	_, err := signalhub.New(&signalhub.Options{Transports: 8})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Options.Transports")
}

// TestTransportsTurnedOff checks the answers of hubs that leave a
// transport out to its requests.
func TestTransportsTurnedOff(t *testing.T) {
	t.Parallel()
	t.Run("without WebSockets", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, &signalhub.Options{Transports: signalhub.TransportLongPolling, Methods: testMethods()})
		neg, err := f.negotiate(waitCtx(t), dialOptions{})
		require.NoError(t, err)
		_, resp, err := f.DialWS(waitCtx(t), neg.ConnectionToken, nil, nil)
		require.Error(t, err)
		require.NotNil(t, resp)
		body, _ := io.ReadAll(resp.Body)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode)
		assert.Equal(t, "WebSockets transport not supported by this end point type", strings.TrimSpace(string(body)))

		status, text, err := f.do(waitCtx(t), http.MethodGet, "", "id="+neg.ConnectionToken, http.Header{"Accept": {"text/event-stream"}})
		require.NoError(t, err)
		assert.Equal(t, http.StatusNotFound, status)
		assert.Equal(t, "ServerSentEvents transport not supported by this end point type", strings.TrimSpace(string(text)))

		// The token was spent on none of these: Long Polling still starts.
		c := f.newHTTPClient(t, httpDialOptions{})
		c.Token = neg.ConnectionToken
		c.ID = neg.ConnectionID
		c.Start(t)
		require.NoError(t, c.SendRaw(waitCtx(t), []byte(handshakeV1)))
		rec, err := c.NextRecord(waitCtx(t))
		require.NoError(t, err)
		assert.Equal(t, "{}", string(rec))
		c.ExpectResult(t, `"lp"`, "Echo", "lp")
	})
	t.Run("without Long Polling", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, &signalhub.Options{Transports: signalhub.TransportWebSockets | signalhub.TransportServerSentEvents})
		status, text, err := f.do(waitCtx(t), http.MethodGet, "", "id=abc", nil)
		require.NoError(t, err)
		assert.Equal(t, http.StatusNotFound, status)
		assert.Equal(t, "LongPolling transport not supported by this end point type", strings.TrimSpace(string(text)))
		status, text, err = f.do(waitCtx(t), http.MethodDelete, "", "id=abc", nil)
		require.NoError(t, err)
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "Cannot terminate this connection using the DELETE endpoint.", strings.TrimSpace(string(text)))
	})
}

// sseEvent reads the next event from an event stream: its bytes, up to and
// including the blank line that ends it.
func sseEvent(t testing.TB, br *bufio.Reader) string {
	t.Helper()
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		require.NoError(t, err, "reading an event (so far %q)", b.String())
		b.WriteString(line)
		if line == "\r\n" {
			return b.String()
		}
	}
}

// TestServerSentEventsStream reads an event stream byte by byte: the
// headers, the preamble, the handshake's answer, and each batch as one
// event of whole records, with keep-alive Pings as on WebSockets.
func TestServerSentEventsStream(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{Methods: testMethods(), KeepAliveInterval: 100 * time.Millisecond})
	c := f.newHTTPClient(t, httpDialOptions{SSE: true})
	ctx := waitCtx(t)
	resp, err := c.do(ctx, http.MethodGet, nil, http.Header{"Accept": {"text/event-stream"}}, nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	assert.Equal(t, "no-cache, no-store", resp.Header.Get("Cache-Control"))
	assert.Equal(t, "no-cache", resp.Header.Get("Pragma"))
	br := bufio.NewReader(resp.Body)
	preamble := make([]byte, 3)
	_, err = io.ReadFull(br, preamble)
	require.NoError(t, err)
	assert.Equal(t, ":\r\n", string(preamble), "the stream opens with a comment, flushed at once")

	status, body, err := c.Post(ctx, handshakeV1)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, "data: {}"+rs+"\r\n\r\n", sseEvent(t, br))
	f.WaitConnected(t, c.ID)

	rec, err := invocationRecord("1", "Add", 40, 2)
	require.NoError(t, err)
	status, body, err = c.Post(ctx, string(rec))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, body)
	ping := `{"type":6}` + rs
	for {
		ev := sseEvent(t, br)
		if ev == "data: "+ping+"\r\n\r\n" {
			continue // a keep-alive Ping
		}
		// A Ping may share the Completion's batch, before or after it.
		ev = strings.Replace(ev, ping, "", 1)
		assert.Equal(t, "data: "+`{"type":3,"invocationId":"1","result":42}`+rs+"\r\n\r\n", ev)
		break
	}

	// Sent while nothing else is under way, a burst goes out in batches:
	// every event holds whole records, in order.
	for i := range 20 {
		require.NoError(t, f.Hub.SendToConnection(ctx, c.ID, "N", i))
	}
	next := 0
	for next < 20 {
		ev := sseEvent(t, br)
		require.True(t, strings.HasPrefix(ev, "data: ") && strings.HasSuffix(ev, rs+"\r\n\r\n"), "event %q", ev)
		payload := strings.TrimSuffix(strings.TrimPrefix(ev, "data: "), "\r\n\r\n")
		require.NotContains(t, payload, "\n", "one data line per event")
		for _, r := range strings.Split(strings.TrimSuffix(payload, rs), rs) {
			if r == `{"type":6}` {
				continue
			}
			want, err := invocationRecord("", "N", next)
			require.NoError(t, err)
			assert.Equal(t, string(want), r+rs)
			next++
		}
	}

	// With nothing to send, the hub pings, as on WebSockets.
	assert.Equal(t, "data: "+`{"type":6}`+rs+"\r\n\r\n", sseEvent(t, br))
}

// TestServerSentEventsEnd checks the three ways an event stream ends.
func TestServerSentEventsEnd(t *testing.T) {
	t.Parallel()
	t.Run("the server closes: Close message, then the stream ends", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, methodsOpts(), userClaims)
		c := f.DialHTTP(t, httpDialOptions{SSE: true, Query: url.Values{"user": {"alice"}}})
		require.NoError(t, f.Hub.DisconnectUser(waitCtx(t), "alice", "revoked"))
		m, readErr := c.ExpectClose(t)
		assert.Equal(t, "revoked", m.Error)
		assert.False(t, m.AllowReconnect)
		assert.ErrorIs(t, readErr, io.EOF, "the stream ends after the Close message")
		assert.ErrorIs(t, f.WaitDisconnected(t, c.ID), signalhub.ErrUserDisconnected)
	})
	t.Run("the client sends Close", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, methodsOpts())
		c := f.DialHTTP(t, httpDialOptions{SSE: true})
		require.NoError(t, c.SendRaw(waitCtx(t), []byte(`{"type":7}`+rs)))
		assert.ErrorIs(t, c.ExpectClosed(t), io.EOF, "the hub ends the stream")
		assert.NoError(t, f.WaitDisconnected(t, c.ID), "a graceful close")
	})
	t.Run("the client goes away", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, methodsOpts())
		c := f.DialHTTP(t, httpDialOptions{SSE: true})
		c.Drop()
		assert.NoError(t, f.WaitDisconnected(t, c.ID), "closing the EventSource is how a client stops")
		status, body, err := c.Post(waitCtx(t), `{"type":6}`+rs)
		require.NoError(t, err)
		assert.Equal(t, http.StatusNotFound, status)
		assert.Equal(t, "No Connection with that ID", strings.TrimSpace(body))
		assert.Zero(t, f.Hub.Stats())
	})
}

// lpOptions are the options of the HTTP transports' tests. Their Long
// Polling timeouts are long, so that a slow machine does not end a poll or
// a connection a test is still using; tests of the timeouts shorten them.
func lpOptions() *signalhub.Options {
	return &signalhub.Options{
		Methods:           transportMethods(),
		PollTimeout:       waitTimeout,
		DisconnectTimeout: waitTimeout,
	}
}

// pollAsync sends a poll in a goroutine; the answer arrives on the
// channel.
func pollAsync(ctx context.Context, c *httpClient) <-chan pollAnswer {
	ch := make(chan pollAnswer, 1)
	go func() {
		resp, err := c.do(ctx, http.MethodGet, url.Values{"_": {"async"}}, nil, nil)
		a := pollAnswer{err: err}
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			a.status, a.body, a.header, a.err = resp.StatusCode, string(b), resp.Header, rerr
		}
		ch <- a
	}()
	return ch
}

type pollAnswer struct {
	status int
	body   string
	header http.Header
	err    error
}

func receive(t testing.TB, ch <-chan pollAnswer) pollAnswer {
	t.Helper()
	select {
	case a := <-ch:
		require.NoError(t, a.err)
		return a
	case <-time.After(waitTimeout):
		require.FailNow(t, "the poll was not answered")
		return pollAnswer{}
	}
}

// awaitPollWaiting waits until the hub holds a waiting poll of the
// connection.
func awaitPollWaiting(t testing.TB, f *fixture, id string) {
	t.Helper()
	require.Eventually(t, func() bool { return signalhub.PollWaiting(f.Hub, id) }, waitTimeout, time.Millisecond,
		"no poll of %s waits", id)
}

// TestLongPollingPolls walks a connection through the poll state machine
// with plain requests.
func TestLongPollingPolls(t *testing.T) {
	t.Parallel()
	opts := lpOptions()
	f := newFixture(t, opts)
	c := f.newHTTPClient(t, httpDialOptions{})
	ctx := waitCtx(t)

	// The first poll starts the connection and is answered at once.
	first := receive(t, pollAsync(ctx, c))
	assert.Equal(t, http.StatusOK, first.status)
	assert.Empty(t, first.body)
	assert.Equal(t, "0", first.header.Get("Content-Length"))
	assert.Equal(t, "no-cache, no-store", first.header.Get("Cache-Control"))
	assert.Equal(t, "no-cache", first.header.Get("Pragma"))
	assert.Equal(t, "Thu, 01 Jan 1970 00:00:00 GMT", first.header.Get("Expires"))

	// The handshake's answer waits for the next poll.
	status, body, err := c.Post(ctx, handshakeV1)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, body)
	hs := receive(t, pollAsync(ctx, c))
	assert.Equal(t, http.StatusOK, hs.status)
	assert.Equal(t, "{}"+rs, hs.body)
	assert.Equal(t, "application/octet-stream", hs.header.Get("Content-Type"))
	f.WaitConnected(t, c.ID)

	// What was sent between polls comes in the next poll, every record,
	// whole and in order.
	for i := range 3 {
		require.NoError(t, f.Hub.SendToConnection(ctx, c.ID, "N", i))
	}
	batch := receive(t, pollAsync(ctx, c))
	assert.Equal(t, http.StatusOK, batch.status)
	var want strings.Builder
	for i := range 3 {
		rec, err := invocationRecord("", "N", i)
		require.NoError(t, err)
		want.Write(rec)
	}
	assert.Equal(t, want.String(), batch.body)

	// A waiting poll is answered as soon as something is sent.
	waiting := pollAsync(ctx, c)
	awaitPollWaiting(t, f, c.ID)
	require.NoError(t, f.Hub.SendToConnection(ctx, c.ID, "Now"))
	now := receive(t, waiting)
	rec, err := invocationRecord("", "Now")
	require.NoError(t, err)
	assert.Equal(t, string(rec), now.body)

	// A newer poll replaces the waiting one, which gets 204.
	older := pollAsync(ctx, c)
	awaitPollWaiting(t, f, c.ID)
	newer := pollAsync(ctx, c)
	assert.Equal(t, http.StatusNoContent, receive(t, older).status, "the replaced poll")
	require.NoError(t, f.Hub.SendToConnection(ctx, c.ID, "Later"))
	rec, err = invocationRecord("", "Later")
	require.NoError(t, err)
	assert.Equal(t, string(rec), receive(t, newer).body, "the newer poll goes on")

	// DELETE: 202, the waiting poll gets 204, and the connection is gone.
	pending := pollAsync(ctx, c)
	awaitPollWaiting(t, f, c.ID)
	status, _, err = c.Delete(ctx)
	require.NoError(t, err)
	assert.Equal(t, http.StatusAccepted, status)
	assert.Equal(t, http.StatusNoContent, receive(t, pending).status)
	assert.NoError(t, f.WaitDisconnected(t, c.ID), "DELETE is the client's own close")
	status, _, err = c.Poll(ctx)
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, status, "a poll after the end")
	status, _, err = c.Delete(ctx)
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, status, "a second DELETE")
}

// TestLongPollingClose checks how a Long Polling connection's end reaches
// its client.
func TestLongPollingClose(t *testing.T) {
	t.Parallel()
	t.Run("the client sends Close: the waiting poll gets 204", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, lpOptions())
		c := f.DialHTTP(t, httpDialOptions{})
		awaitPollWaiting(t, f, c.ID)
		require.NoError(t, c.SendRaw(waitCtx(t), []byte(`{"type":7}`+rs)))
		assert.ErrorIs(t, c.ExpectClosed(t), errPolledOut)
		assert.NoError(t, f.WaitDisconnected(t, c.ID))
	})
	t.Run("the server closes: the Close message in a poll, then the end", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, lpOptions(), userClaims)
		c := f.DialHTTP(t, httpDialOptions{Query: url.Values{"user": {"bob"}}})
		require.NoError(t, f.Hub.DisconnectUser(waitCtx(t), "bob", "bye"))
		m, readErr := c.ExpectClose(t)
		assert.Equal(t, "bye", m.Error)
		assert.True(t, transportEnded(readErr), "the polls end: %v", readErr)
		assert.ErrorIs(t, f.WaitDisconnected(t, c.ID), signalhub.ErrUserDisconnected)
	})
	t.Run("no poll for DisconnectTimeout drops the connection", func(t *testing.T) {
		t.Parallel()
		opts := lpOptions()
		opts.DisconnectTimeout = time.Second
		f := newFixture(t, opts)
		c := f.DialHTTP(t, httpDialOptions{})
		c.Drop() // no more polls
		err := f.WaitDisconnected(t, c.ID)
		assert.ErrorIs(t, err, signalhub.ErrClientTimeout)
		assert.Zero(t, f.Hub.Stats())
		status, _, perr := c.Poll(waitCtx(t))
		require.NoError(t, perr)
		assert.Equal(t, http.StatusNotFound, status)
	})
	t.Run("a poll waiting longer than DisconnectTimeout keeps the connection", func(t *testing.T) {
		t.Parallel()
		opts := lpOptions()
		opts.DisconnectTimeout = time.Second
		opts.PollTimeout = 2500 * time.Millisecond
		// Nor do Pings or the client timeout apply.
		opts.KeepAliveInterval = 50 * time.Millisecond
		opts.ClientTimeout = 100 * time.Millisecond
		f := newFixture(t, opts)
		c := f.newHTTPClient(t, httpDialOptions{})
		ctx := waitCtx(t)
		assert.Equal(t, http.StatusOK, receive(t, pollAsync(ctx, c)).status)
		hs := pollAsync(ctx, c)
		status, body, err := c.Post(ctx, handshakeV1)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status, body)
		assert.Equal(t, "{}"+rs, receive(t, hs).body)
		start := time.Now()
		long := receive(t, pollAsync(ctx, c))
		assert.Equal(t, http.StatusOK, long.status)
		assert.Empty(t, long.body, "nothing to send, and no Ping on Long Polling")
		assert.GreaterOrEqual(t, time.Since(start), opts.PollTimeout, "answered before PollTimeout")
		_, _, disconnected := f.Hooks(c.ID)
		assert.Zero(t, disconnected, "the connection is still there")
		waiting := pollAsync(ctx, c)
		rec, err := invocationRecord("1", "Echo", "alive")
		require.NoError(t, err)
		status, body, err = c.Post(ctx, string(rec))
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status, body)
		assert.Equal(t, `{"type":3,"invocationId":"1","result":"alive"}`+rs, receive(t, waiting).body)
	})
}

// TestLongPollingSlowConsumer shows that what waits for a poll is bounded
// as a WebSocket's queue is: the overflow closes the connection as a slow
// consumer, and its next poll gets the Close message only.
func TestLongPollingSlowConsumer(t *testing.T) {
	t.Parallel()
	opts := lpOptions()
	opts.SendQueueLength = 4
	f := newFixture(t, opts)
	c := f.newHTTPClient(t, httpDialOptions{})
	ctx := waitCtx(t)
	assert.Equal(t, http.StatusOK, receive(t, pollAsync(ctx, c)).status)
	status, body, err := c.Post(ctx, handshakeV1)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, "{}"+rs, receive(t, pollAsync(ctx, c)).body)
	f.WaitConnected(t, c.ID)

	for i := range 5 {
		require.NoError(t, f.Hub.SendToConnection(ctx, c.ID, "N", i))
	}
	closing := receive(t, pollAsync(ctx, c))
	assert.Equal(t, http.StatusOK, closing.status)
	m, err := protocol.DecodeMessage([]byte(strings.TrimSuffix(closing.body, rs)))
	require.NoError(t, err, "%q", closing.body)
	assert.Equal(t, protocol.TypeClose, m.Type, "only the Close message: %q", closing.body)
	assert.Equal(t, "Connection closed with an error. The connection's outgoing queue is full (slow consumer).", m.Error)
	assert.ErrorIs(t, f.WaitDisconnected(t, c.ID), signalhub.ErrSlowConsumer)
}

// TestOverlappingPostIsRefused sends a POST while another of the same
// connection is still being read: 409, and the first one's records are
// all accepted.
// TestLongPollingMessagePackClose shows that a MessagePack connection's
// Close message, which a poll carries, is MessagePack too.
func TestLongPollingMessagePackClose(t *testing.T) {
	t.Parallel()
	f := newFixture(t, lpOptions(), userClaims)
	c := f.newHTTPClient(t, httpDialOptions{Query: url.Values{"user": {"bob"}}})
	ctx := waitCtx(t)
	assert.Equal(t, http.StatusOK, receive(t, pollAsync(ctx, c)).status)
	status, body, err := c.Post(ctx, msgpackHandshake)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, "{}"+rs, receive(t, pollAsync(ctx, c)).body)
	f.WaitConnected(t, c.ID)

	require.NoError(t, f.Hub.DisconnectUser(ctx, "bob", "bye"))
	closing := receive(t, pollAsync(ctx, c))
	assert.Equal(t, http.StatusOK, closing.status)
	rec, rest, ok, err := protocol.NextMsgPackRecord([]byte(closing.body))
	require.NoError(t, err, "%q", closing.body)
	require.True(t, ok, "a whole MessagePack record: %q", closing.body)
	assert.Empty(t, rest, "only the Close message")
	m, err := protocol.DecodeMsgPackMessage(rec)
	require.NoError(t, err, "%q", closing.body)
	assert.Equal(t, protocol.TypeClose, m.Type)
	assert.Equal(t, "bye", m.Error)
	assert.ErrorIs(t, f.WaitDisconnected(t, c.ID), signalhub.ErrUserDisconnected)
}

func TestOverlappingPostIsRefused(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	var once sync.Once
	opts := lpOptions()
	opts.Methods["Entered"] = func(c *signalhub.Context) { once.Do(func() { close(entered) }) }
	f := newFixture(t, opts)
	c := f.DialHTTP(t, httpDialOptions{})
	ctx := waitCtx(t)

	pr, pw := io.Pipe()
	first := make(chan pollAnswer, 1)
	go func() {
		status, body, err := c.roundTrip(ctx, http.MethodPost, nil, nil, pr)
		first <- pollAnswer{status: status, body: body, err: err}
	}()
	rec, err := invocationRecord("", "Entered")
	require.NoError(t, err)
	_, err = pw.Write(rec)
	require.NoError(t, err)
	select {
	case <-entered: // the hub is reading the first POST, whose body goes on
	case <-ctx.Done():
		require.FailNow(t, "the first POST's invocation did not run")
	}

	status, body, err := c.Post(ctx, `{"type":6}`+rs)
	require.NoError(t, err)
	assert.Equal(t, http.StatusConflict, status, body)

	rec, err = invocationRecord("7", "Echo", "first")
	require.NoError(t, err)
	_, err = pw.Write(rec)
	require.NoError(t, err)
	require.NoError(t, pw.Close())
	a := receive(t, first)
	assert.Equal(t, http.StatusOK, a.status, a.body)
	r, err := c.take(ctx, "the first POST's completion", func(r received) bool {
		return r.msg.Type == protocol.TypeCompletion && r.msg.InvocationID == "7"
	}, nil)
	require.NoError(t, err)
	assert.JSONEq(t, `"first"`, string(r.msg.Result))
	c.ExpectResult(t, `"again"`, "Echo", "again")
}

// TestUsersAndGroupsOnEveryTransport mixes WebSocket, Server-Sent Events
// and Long Polling connections of the same users in the same groups.
func TestUsersAndGroupsOnEveryTransport(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{Methods: transportMethods()}, userClaims)
	user := func(name string) url.Values { return url.Values{"user": {name}} }
	alice := f.DialUser(t, "alice")
	bobSSE := f.DialHTTP(t, httpDialOptions{SSE: true, Query: user("bob")})
	bobLP := f.DialHTTP(t, httpDialOptions{Query: user("bob")})
	carol := f.DialHTTP(t, httpDialOptions{Query: user("carol")})
	assert.ElementsMatch(t, []string{bobSSE.ID, bobLP.ID}, f.Hub.UserConnections("bob"))

	// A user's message from a WebSocket reaches every transport of the user.
	alice.ExpectResult(t, `null`, "ToUser", "bob", "hi bob")
	bobSSE.ExpectInvocation(t, "Private", "alice", "hi bob")
	bobLP.ExpectInvocation(t, "Private", "alice", "hi bob")
	f.markHTTP(t, carol, "not for carol")
	// And back from Long Polling to the WebSocket.
	carol.ExpectResult(t, `null`, "ToUser", "alice", "hi alice")
	alice.ExpectInvocation(t, "Private", "carol", "hi alice")
	require.NoError(t, f.Hub.SendToUser(waitCtx(t), "bob", "Direct", 1))
	bobSSE.ExpectInvocation(t, "Direct", 1)
	bobLP.ExpectInvocation(t, "Direct", 1)

	// Groups joined over the HTTP transports.
	bobSSE.ExpectResult(t, `null`, "Join", "room")
	carol.ExpectResult(t, `null`, "Join", "room")
	assert.ElementsMatch(t, []string{bobSSE.ID, carol.ID}, f.Hub.GroupMembers("room"))
	alice.ExpectResult(t, `null`, "ToGroup", "room", "hello room")
	bobSSE.ExpectInvocation(t, "Group", "alice", "hello room")
	carol.ExpectInvocation(t, "Group", "alice", "hello room")
	f.markHTTP(t, bobLP, "not a member")
	f.mark(t, alice, "not a member either")

	// Membership ends with the connection, on every transport.
	carol.Close()
	assert.NoError(t, f.WaitDisconnected(t, carol.ID))
	bobSSE.Close()
	assert.NoError(t, f.WaitDisconnected(t, bobSSE.ID))
	assert.Empty(t, f.Hub.GroupMembers("room"))
	assert.Equal(t, []string{bobLP.ID}, f.Hub.UserConnections("bob"))
}

// TestClientResultsOnHTTPTransports asks an HTTP transport's client for a
// result: the invocation arrives on the stream or in a poll, the answer
// in a POST.
func TestClientResultsOnHTTPTransports(t *testing.T) {
	t.Parallel()
	for _, tr := range httpTransports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, lpOptions())
			c := f.DialHTTP(t, httpDialOptions{SSE: tr.sse})
			type answer struct {
				v   int
				err error
			}
			got := make(chan answer, 1)
			go func() {
				v, err := signalhub.InvokeConnectionAs[int](waitCtx(t), f.Hub, c.ID, "GetNumber", 41)
				got <- answer{v, err}
			}()
			r, err := c.take(waitCtx(t), "the server's invocation", func(r received) bool {
				return r.msg.Type == protocol.TypeInvocation && r.msg.Target == "GetNumber"
			}, isPing)
			require.NoError(t, err)
			require.NotEmpty(t, r.msg.InvocationID)
			require.NoError(t, c.SendRaw(waitCtx(t), []byte(`{"type":3,"invocationId":"`+r.msg.InvocationID+`","result":42}`+rs)))
			select {
			case a := <-got:
				require.NoError(t, a.err)
				assert.Equal(t, 42, a.v)
			case <-time.After(waitTimeout):
				require.FailNow(t, "no answer")
			}
		})
	}
}

// TestShutdownClosesHTTPTransports: Shutdown sends each connection a Close
// message that invites it back, ends the streams and polls, and returns.
func TestShutdownClosesHTTPTransports(t *testing.T) {
	t.Parallel()
	f := newFixture(t, lpOptions())
	sse := f.DialHTTP(t, httpDialOptions{SSE: true})
	lp := f.DialHTTP(t, httpDialOptions{})
	done := make(chan error, 1)
	go func() { done <- f.Hub.Shutdown(waitCtx(t)) }()
	for _, c := range []*httpClient{sse, lp} {
		m, readErr := c.ExpectClose(t)
		assert.True(t, m.AllowReconnect)
		assert.Empty(t, m.Error)
		assert.True(t, transportEnded(readErr), "%v", readErr)
		assert.ErrorIs(t, f.WaitDisconnected(t, c.ID), signalhub.ErrHubClosed)
	}
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(waitTimeout):
		require.FailNow(t, "Shutdown did not return")
	}
}

// TestHTTPTransportGoroutines counts goroutines: a Long Polling connection
// holds none between polls, and none is left once Long Polling and
// Server-Sent Events connections close. (While open, an event stream holds
// its request's goroutine; the process's count cannot tell it from the
// test client's own, so that is not checked here.)
func TestHTTPTransportGoroutines(t *testing.T) {
	// Not parallel: it counts the process's goroutines.
	opts := lpOptions()
	opts.DisconnectTimeout = time.Minute
	f := newFixture(t, opts)
	tr := &http.Transport{DisableKeepAlives: true} // no idle connection holds a server goroutine
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	// settle waits until at most limit goroutines run. Exits cannot be
	// awaited, so it polls; in the test goroutine, as a poll in another
	// goroutine would count itself.
	settle := func(limit int, what string) {
		t.Helper()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(waitTimeout)
		for {
			// Negotiate's keep-alive connection is not the hub's.
			f.Srv.Client().CloseIdleConnections()
			n := runtime.NumGoroutine()
			if n <= limit {
				return
			}
			select {
			case <-tick.C:
			case <-deadline:
				buf := make([]byte, 1<<20)
				require.FailNow(t, what, "%d goroutines, not %d:\n%s", n, limit, buf[:runtime.Stack(buf, true)])
			}
		}
	}
	base := runtime.NumGoroutine()

	const n = 20
	lps := make([]*httpClient, n)
	for i := range lps {
		c := f.newHTTPClient(t, httpDialOptions{Client: hc})
		ctx := waitCtx(t)
		status, body, err := c.Poll(ctx)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status, body)
		status, body, err = c.Post(ctx, handshakeV1)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status, body)
		_, body, err = c.Poll(ctx)
		require.NoError(t, err)
		require.Equal(t, "{}"+rs, body)
		f.WaitConnected(t, c.ID)
		lps[i] = c
	}
	assert.Equal(t, n, f.Hub.Stats().Connections)
	settle(base, "Long Polling connections between polls hold goroutines")

	sses := make([]*httpClient, 5)
	for i := range sses {
		sses[i] = f.DialHTTP(t, httpDialOptions{SSE: true, Client: hc})
	}
	for _, c := range lps {
		status, _, err := c.Post(waitCtx(t), `{"type":7}`+rs)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
	}
	for _, c := range sses {
		c.Close()
	}
	for _, c := range append(lps, sses...) {
		assert.NoError(t, f.WaitDisconnected(t, c.ID))
	}
	assert.Zero(t, f.Hub.Stats())
	settle(base, "goroutines are left after the connections closed")
}

// TestHTTPTransportRequestsAuthenticated authenticates every request of a
// connection: none on a connection made with credentials is 401, another
// user's 403, and neither harms the connection.
func TestHTTPTransportRequestsAuthenticated(t *testing.T) {
	t.Parallel()
	k := keys()
	auth := newAuthenticator(t, signalhub.JWTOptions{Key: k.secret})
	bearer := func(user string, exp time.Time) http.Header {
		return http.Header{"Authorization": {"Bearer " + sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": user, "exp": exp.Unix()})}}
	}
	hour := time.Now().Add(time.Hour)
	for _, tr := range httpTransports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			opts := lpOptions()
			opts.Authenticate = auth
			f := newFixture(t, opts)
			alice := bearer("alice", hour)
			c := f.DialHTTP(t, httpDialOptions{SSE: tr.sse, Header: alice})
			ctx := waitCtx(t)
			send := func(h http.Header) (int, string) {
				status, body, err := c.roundTrip(ctx, http.MethodPost, nil, h, strings.NewReader(`{"type":6}`+rs))
				require.NoError(t, err)
				return status, strings.TrimSpace(body)
			}

			status, body := send(bearer("bob", hour))
			assert.Equal(t, http.StatusForbidden, status, body)
			assert.Equal(t, "The request's credentials are not those of the connection's user.", body)
			noAuth, _, err := f.do(ctx, http.MethodPost, "", "id="+c.Token, nil)
			require.NoError(t, err)
			assert.Equal(t, http.StatusUnauthorized, noAuth, "a POST without credentials")
			status, _ = send(http.Header{"Authorization": {"Bearer " + sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Minute).Unix()})}})
			assert.Equal(t, http.StatusUnauthorized, status, "expired credentials")
			status, _ = send(nil)
			assert.Equal(t, http.StatusOK, status, "alice's own credentials")

			accept := http.Header{}
			if tr.sse {
				accept.Set("Accept", "text/event-stream")
			}
			withAccept := func(h http.Header) http.Header {
				for k, v := range accept {
					h[k] = v
				}
				return h
			}
			status, _, err = c.roundTrip(ctx, http.MethodGet, nil, withAccept(bearer("bob", hour)), nil)
			require.NoError(t, err)
			assert.Equal(t, http.StatusForbidden, status, "bob's GET")
			status, _, err = f.do(ctx, http.MethodGet, "", "id="+c.Token, withAccept(http.Header{}))
			require.NoError(t, err)
			assert.Equal(t, http.StatusUnauthorized, status, "a GET without credentials")
			if !tr.sse {
				status, _, err := c.roundTrip(ctx, http.MethodDelete, nil, bearer("bob", hour), nil)
				require.NoError(t, err)
				assert.Equal(t, http.StatusForbidden, status, "bob's DELETE")
				status, _, err = f.do(ctx, http.MethodDelete, "", "id="+c.Token, nil)
				require.NoError(t, err)
				assert.Equal(t, http.StatusUnauthorized, status, "a DELETE without credentials")
			}
			c.ExpectResult(t, `"still alice's"`, "Echo", "still alice's")
			_, _, disconnected := f.Hooks(c.ID)
			assert.Zero(t, disconnected)
		})
	}
	t.Run("an anonymous connection", func(t *testing.T) {
		t.Parallel()
		opts := lpOptions()
		opts.Authenticate = auth
		f := newFixture(t, opts)
		c := f.DialHTTP(t, httpDialOptions{})
		status, _, err := c.roundTrip(waitCtx(t), http.MethodPost, nil, bearer("mallory", hour), strings.NewReader(`{"type":6}`+rs))
		require.NoError(t, err)
		assert.Equal(t, http.StatusForbidden, status, "credentials of a user on a connection of none")
		c.ExpectResult(t, `1`, "Add", 1, 0)
	})
	t.Run("Server-Sent Events with the token in the query", func(t *testing.T) {
		t.Parallel()
		opts := lpOptions()
		opts.Authenticate = auth
		f := newFixture(t, opts)
		tok := sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "dave", "exp": hour.Unix()})
		// As the official clients do: the stream's token in the query (an
		// EventSource cannot set headers), the POSTs' in the header.
		c := f.newHTTPClient(t, httpDialOptions{SSE: true})
		c.query = url.Values{"access_token": {tok}}
		c.Start(t)
		c.query, c.header = nil, http.Header{"Authorization": {"Bearer " + tok}}
		require.NoError(t, c.SendRaw(waitCtx(t), []byte(handshakeV1)))
		rec, err := c.NextRecord(waitCtx(t))
		require.NoError(t, err)
		require.Equal(t, "{}", string(rec))
		f.WaitConnected(t, c.ID)
		assert.Equal(t, []string{c.ID}, f.Hub.UserConnections("dave"))
		c.ExpectResult(t, `"dave's"`, "Echo", "dave's")
	})
}

// TestHTTPTransportErrorsLeaveOthersAlone ends a connection of each HTTP
// transport with bad input, and checks the answer and a WebSocket
// bystander.
func TestHTTPTransportErrorsLeaveOthersAlone(t *testing.T) {
	t.Parallel()
	type outcome struct {
		status  int
		body    string
		closeOK bool // the stream or polls got a Close message with text
		text    string
	}
	for _, tc := range []struct {
		name    string
		sse     bool
		options func(*signalhub.Options)
		post    string
		want    outcome
	}{
		{
			name: "an invalid record",
			post: `{"type":1,"target":` + rs,
			want: outcome{status: http.StatusBadRequest, body: "protocol: invalid message: unexpected end of JSON input",
				closeOK: true, text: "Connection closed with an error. protocol: invalid message: unexpected end of JSON input"},
		},
		{
			name:    "a record over MaxMessageSize",
			sse:     true,
			options: func(o *signalhub.Options) { o.MaxMessageSize = 100 },
			post:    `{"type":1,"target":"Echo","arguments":["` + strings.Repeat("x", 200) + `"]}` + rs,
			want: outcome{status: http.StatusBadRequest, body: "The maximum message size of 100B was exceeded.",
				closeOK: true, text: "Connection closed with an error. The maximum message size of 100B was exceeded."},
		},
		{
			name:    "a POST body over 32 times MaxMessageSize",
			options: func(o *signalhub.Options) { o.MaxMessageSize = 100 },
			post:    strings.Repeat(`{"type":6}`+rs, 400),
			want: outcome{status: http.StatusRequestEntityTooLarge, body: "The request body is larger than 3200 bytes.",
				closeOK: true, text: "Connection closed with an error. A POST body was larger than 3200 bytes."},
		},
		{
			name:    "invocations over the rate limit",
			sse:     true,
			options: func(o *signalhub.Options) { o.InvocationRate, o.InvocationBurst = 1, 2 },
			post:    strings.Repeat(`{"type":1,"target":"Nothing","arguments":[]}`+rs, 6),
			want: outcome{status: http.StatusBadRequest, body: "The client went on invoking hub methods faster than 1 per second.",
				closeOK: true, text: "Connection closed with an error. The client went on invoking hub methods faster than 1 per second."},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := lpOptions()
			if tc.options != nil {
				tc.options(opts)
			}
			f := newFixture(t, opts)
			by := f.Dial(t, dialOptions{})
			c := f.DialHTTP(t, httpDialOptions{SSE: tc.sse})
			status, body, err := c.Post(waitCtx(t), tc.post)
			require.NoError(t, err)
			got := outcome{status: status, body: strings.TrimSpace(body)}
			if tc.want.closeOK {
				m, readErr := c.ExpectClose(t)
				got.closeOK, got.text = true, m.Error
				assert.True(t, transportEnded(readErr), "%v", readErr)
				assert.Error(t, f.WaitDisconnected(t, c.ID))
			}
			assert.Equal(t, tc.want, got)
			checkBystander(t, f, by, "after "+tc.name)
		})
	}
}

// TestHTTPTransportRequestMistakes sends requests that do not fit the
// connection they name.
func TestHTTPTransportRequestMistakes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, lpOptions())
	by := f.Dial(t, dialOptions{})
	lp := f.DialHTTP(t, httpDialOptions{})
	sse := f.DialHTTP(t, httpDialOptions{SSE: true})
	fresh, err := f.negotiate(waitCtx(t), dialOptions{})
	require.NoError(t, err)
	eventStream := http.Header{"Accept": {"text/event-stream"}}
	for _, tc := range []struct {
		name, method, token string
		header              http.Header
		status              int
		body                string
	}{
		{"POST before the transport started", http.MethodPost, fresh.ConnectionToken, nil,
			http.StatusBadRequest, "The connection has not started: open its transport (GET) before sending."},
		{"POST with a WebSocket connection's token", http.MethodPost, by.Token, nil,
			http.StatusMethodNotAllowed, "POST requests are not allowed for WebSocket connections."},
		{"a second event stream", http.MethodGet, sse.Token, eventStream, http.StatusConflict, ""},
		{"an event stream for a Long Polling connection", http.MethodGet, lp.Token, eventStream,
			http.StatusBadRequest, "Cannot change transports mid-connection"},
		{"a poll of a Server-Sent Events connection", http.MethodGet, sse.Token, nil,
			http.StatusBadRequest, "Cannot change transports mid-connection"},
		{"DELETE of a Server-Sent Events connection", http.MethodDelete, sse.Token, nil,
			http.StatusBadRequest, "Cannot terminate this connection using the DELETE endpoint."},
		{"DELETE of a WebSocket connection", http.MethodDelete, by.Token, nil,
			http.StatusBadRequest, "Cannot terminate this connection using the DELETE endpoint."},
		{"DELETE before the transport started", http.MethodDelete, fresh.ConnectionToken, nil,
			http.StatusBadRequest, "Cannot terminate this connection using the DELETE endpoint."},
		{"PUT", http.MethodPut, lp.Token, nil, http.StatusMethodNotAllowed, "Method not allowed."},
	} {
		status, body, err := f.do(waitCtx(t), tc.method, "", "id="+tc.token, tc.header)
		require.NoError(t, err)
		assert.Equal(t, tc.status, status, tc.name)
		assert.Equal(t, tc.body, strings.TrimSpace(string(body)), tc.name)
	}
	ws, resp, err := f.DialWS(waitCtx(t), lp.Token, nil, nil)
	if err == nil {
		_ = ws.CloseNow()
	}
	require.Error(t, err, "a WebSocket for a Long Polling connection")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	lp.ExpectResult(t, `"lp"`, "Echo", "lp")
	sse.ExpectResult(t, `"sse"`, "Echo", "sse")
	checkBystander(t, f, by, "after the mistakes")

	// The fresh token was spent on none of them.
	c := f.newHTTPClient(t, httpDialOptions{})
	c.ID, c.Token = fresh.ConnectionID, fresh.ConnectionToken
	c.Start(t)
	require.NoError(t, c.SendRaw(waitCtx(t), []byte(handshakeV1)))
	rec, err := c.NextRecord(waitCtx(t))
	require.NoError(t, err)
	assert.Equal(t, "{}", string(rec))
}

// TestHTTPTransportHandshakeErrors: a refused handshake's answer reaches
// the client on its transport, and the transport ends.
func TestHTTPTransportHandshakeErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		sse       bool
		handshake string // "" sends none, for the timeout
		want      string
	}{
		{"MessagePack on Server-Sent Events", true, `{"protocol":"messagepack","version":1}`,
			"Cannot use the 'messagepack' protocol on the current transport. The transport does not support 'Binary' transfer format."},
		{"an unknown protocol on Long Polling", false, `{"protocol":"xml","version":1}`, "The protocol 'xml' is not supported."},
		{"a handshake that never comes, on Long Polling", false, "", "Handshake was canceled."},
		{"a handshake that never comes, on Server-Sent Events", true, "", "Handshake was canceled."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := lpOptions()
			opts.HandshakeTimeout = 300 * time.Millisecond
			f := newFixture(t, opts)
			c := f.newHTTPClient(t, httpDialOptions{SSE: tc.sse})
			c.Start(t)
			if tc.handshake != "" {
				status, body, err := c.Post(waitCtx(t), tc.handshake+rs)
				require.NoError(t, err)
				assert.Equal(t, http.StatusOK, status, "the handshake's answer is read on the transport: %s", body)
			}
			rec, err := c.NextRecord(waitCtx(t))
			require.NoError(t, err)
			var resp struct {
				Error string `json:"error"`
			}
			require.NoError(t, json.Unmarshal(rec, &resp), "%s", rec)
			assert.Equal(t, tc.want, resp.Error)
			assert.True(t, transportEnded(c.ExpectClosed(t)))
			attempts, _, _ := f.Hooks(c.ID)
			assert.Zero(t, attempts, "OnConnected never ran")
			assert.Zero(t, f.Hub.Stats())
		})
	}
}

// TestHTTPTransportExpiredToken: a negotiated token whose transport did
// not start within NegotiateTimeout starts none, as for WebSockets (see
// TestNegotiatedTokenExpires: a recorder, so that the clock is the
// bubble's).
func TestHTTPTransportExpiredToken(t *testing.T) {
	t.Parallel()
	for _, tr := range httpTransports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				opts := lpOptions()
				opts.NegotiateTimeout = time.Minute
				opts.Logger = testLogger(t)
				hub, err := signalhub.New(opts)
				require.NoError(t, err)
				defer hub.Close()
				token := negotiateRecorded(t, hub)
				time.Sleep(time.Minute + time.Second) // the bubble's fake clock
				req := httptest.NewRequest(http.MethodGet, "/hub?id="+token, nil)
				if tr.sse {
					req.Header.Set("Accept", "text/event-stream")
				}
				rec := httptest.NewRecorder()
				hub.ServeHTTP(rec, req)
				assert.Equal(t, http.StatusNotFound, rec.Code)
				assert.Equal(t, "No Connection with that ID", strings.TrimSpace(rec.Body.String()))
				assert.Zero(t, hub.Stats())
			})
		})
	}
}
