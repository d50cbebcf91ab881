package signalhub_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub/protocol"
)

// errPolledOut ends a Long Polling client's reader when a poll is
// answered 204: the server ended the connection. A poll that comes once
// the hub has forgotten the connection gets 404 (errPollGone) instead, as
// from ASP.NET Core: after a Close message it is either.
var (
	errPolledOut = errors.New("poll answered 204")
	errPollGone  = errors.New("poll answered 404")
)

// transportEnded reports whether err is how a transport ends once the
// server closed the connection: the event stream's end, or a poll
// answered 204 or 404.
func transportEnded(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, errPolledOut) || errors.Is(err, errPollGone)
}

// httpClient is a minimal SignalR JSON client on Server-Sent Events or
// Long Polling, made of plain net/http requests, as the official clients
// make them. A reader goroutine holds the event stream open, or keeps a
// poll waiting, and queues the records it gets in the client's inbox; the
// wait methods take them from it. Sends are POSTs.
type httpClient struct {
	expect // ExpectInvocation, ExpectResult, ... (expect_test.go)

	f      *fixture
	sse    bool
	ID     string
	Token  string
	query  url.Values  // added to every request's query
	header http.Header // sent with every request
	hc     *http.Client

	nextID atomic.Int64
	polls  atomic.Int64  // polls sent, for the cache buster
	done   chan struct{} // closed when the reader has exited
	stop   context.CancelFunc

	// inbox's readErr is errPolledOut, errPollGone, io.EOF for an ended
	// stream, or another error.
	inbox[received]
}

// httpDialOptions describes how an httpClient connects.
type httpDialOptions struct {
	// SSE picks Server-Sent Events; else Long Polling.
	SSE bool
	// Query is added to every request, as the official clients keep the
	// hub URL's query (the test middleware's "user").
	Query url.Values
	// Header is sent with every request (Authorization).
	Header http.Header
	// Handshake replaces the handshake request (without its separator);
	// "-" sends none.
	Handshake string
	// NoWait returns right after the handshake response instead of waiting
	// until OnConnected succeeded.
	NoWait bool
	// Client makes the requests; nil means the test server's client.
	Client *http.Client
}

// url is the hub URL with the connection's id, the client's query and
// extra.
func (c *httpClient) url(extra url.Values) string {
	q := cloneQuery(c.query)
	q.Set("id", c.Token)
	for k, v := range extra {
		q[k] = v
	}
	return c.f.URL + "?" + q.Encode()
}

// do sends a request of the connection and returns the response, whose
// body the caller closes.
func (c *httpClient) do(ctx context.Context, method string, extra url.Values, header http.Header, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url(extra), body)
	if err != nil {
		return nil, err
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return c.hc.Do(req)
}

// roundTrip sends a request and reads the whole answer.
func (c *httpClient) roundTrip(ctx context.Context, method string, extra url.Values, header http.Header, body io.Reader) (int, string, error) {
	resp, err := c.do(ctx, method, extra, header, body)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// Post sends body in a POST and returns the answer.
func (c *httpClient) Post(ctx context.Context, body string) (int, string, error) {
	return c.roundTrip(ctx, http.MethodPost, nil, http.Header{"Content-Type": {"text/plain;charset=UTF-8"}}, strings.NewReader(body))
}

// Poll sends one poll and returns the answer.
func (c *httpClient) Poll(ctx context.Context) (int, string, error) {
	return c.roundTrip(ctx, http.MethodGet, url.Values{"_": {strconv.FormatInt(c.polls.Add(1), 10)}}, nil, nil)
}

// Delete sends the DELETE that ends a Long Polling connection.
func (c *httpClient) Delete(ctx context.Context) (int, string, error) {
	return c.roundTrip(ctx, http.MethodDelete, nil, nil, nil)
}

// newHTTPClient negotiates a connection without opening its transport.
func (f *fixture) newHTTPClient(t testing.TB, o httpDialOptions) *httpClient {
	t.Helper()
	neg, err := f.negotiate(waitCtx(t), dialOptions{Query: o.Query, Header: o.Header})
	require.NoError(t, err)
	c := &httpClient{
		f: f, sse: o.SSE, ID: neg.ConnectionID, Token: neg.ConnectionToken,
		query: o.Query, header: o.Header, hc: o.Client,
		done: make(chan struct{}), inbox: inbox[received]{ended: "transport ended"},
	}
	c.expect = expect{c}
	if c.hc == nil {
		c.hc = f.Srv.Client()
	}
	c.checkProblems(t, "every event and poll answer must end with a whole record")
	return c
}

// DialHTTP negotiates, opens the transport, shakes hands and, unless told
// otherwise, waits until OnConnected succeeded.
func (f *fixture) DialHTTP(t testing.TB, o httpDialOptions) *httpClient {
	t.Helper()
	c := f.newHTTPClient(t, o)
	c.Start(t)
	ctx := waitCtx(t)
	hs := o.Handshake
	if hs == "" {
		hs = strings.TrimSuffix(handshakeV1, rs)
	}
	if hs != "-" {
		status, body, err := c.Post(ctx, hs+rs)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status, "the handshake's POST: %s", body)
		resp, err := c.NextRecord(ctx)
		require.NoError(t, err, "the handshake response")
		require.Equal(t, "{}", string(resp), "the handshake response")
		if !o.NoWait {
			f.WaitConnected(t, c.ID)
		}
	}
	return c
}

// Start opens the transport: the event stream, or the first poll (which
// must be answered 200 with an empty body at once); then the reader runs
// until the connection ends or the test does.
func (c *httpClient) Start(t testing.TB) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	c.stop = stop
	t.Cleanup(c.Drop)
	if c.sse {
		resp, err := c.do(ctx, http.MethodGet, nil, http.Header{"Accept": {"text/event-stream"}}, nil)
		require.NoError(t, err)
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.FailNow(t, "the event stream was refused", "%d %s", resp.StatusCode, body)
		}
		go c.readEvents(resp.Body)
		return
	}
	status, body, err := c.Poll(waitCtx(t))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, "the first poll: %s", body)
	require.Empty(t, body, "the first poll")
	go c.pollLoop(ctx)
}

// readEvents reads the event stream, queueing the records of each event.
func (c *httpClient) readEvents(body io.ReadCloser) {
	defer body.Close()
	br := bufio.NewReader(body)
	var data []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			c.end(err)
			return
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		switch {
		case line == "":
			if data != nil {
				c.deliver([]byte(strings.Join(data, "\n")))
				data = nil
			}
		case strings.HasPrefix(line, ":"): // a comment
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		default:
			c.end(fmt.Errorf("unexpected event stream line %q", line))
			return
		}
	}
}

// pollLoop polls until a poll is answered 204 or otherwise fails.
func (c *httpClient) pollLoop(ctx context.Context) {
	for {
		status, body, err := c.Poll(ctx)
		switch {
		case err != nil:
			c.end(err)
			return
		case status == http.StatusNoContent:
			c.end(errPolledOut)
			return
		case status == http.StatusNotFound:
			c.end(errPollGone)
			return
		case status != http.StatusOK:
			c.end(fmt.Errorf("poll answered %d: %s", status, body))
			return
		case body != "":
			c.deliver([]byte(body))
		}
	}
}

// deliver queues the records of one event or poll answer, which must end
// with a whole record.
func (c *httpClient) deliver(data []byte) {
	var recs []received
	rest := data
	for {
		rec, tail, ok := protocol.NextRecord(rest)
		if !ok {
			break
		}
		r := received{raw: bytes.Clone(rec)}
		r.msg, r.err = protocol.DecodeMessage(r.raw)
		recs = append(recs, r)
		rest = tail
	}
	if len(rest) > 0 {
		c.refuse(fmt.Sprintf("%.80q", data))
	}
	c.push(recs...)
}

// end closes the inbox with err as the reader exits.
func (c *httpClient) end(err error) {
	c.closeWith(err)
	close(c.done)
}

// Drop stops the reader: the event stream is closed, or the polls stop,
// as when the client goes away.
func (c *httpClient) Drop() {
	if c.stop != nil {
		c.stop()
		<-c.done
	}
}

// Close ends the connection as the official clients do: a Close message,
// then the event stream is closed, or the polls stop and a DELETE follows.
// It waits for the reader to exit.
func (c *httpClient) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, _, _ = c.Post(ctx, `{"type":7}`+rs)
	c.Drop()
	if !c.sse {
		_, _, _ = c.Delete(ctx)
	}
}

// NextRecord returns the next record, Pings included.
func (c *httpClient) NextRecord(ctx context.Context) ([]byte, error) {
	r, err := c.take(ctx, "a record", anyRecord, nil)
	return r.raw, err
}

// NextRaw returns the next record that is not a Ping.
func (c *httpClient) NextRaw(ctx context.Context) ([]byte, error) {
	r, err := c.take(ctx, "a message", func(r received) bool { return !isPing(r) }, isPing)
	return r.raw, err
}

// SendRaw POSTs frame and requires a 200.
func (c *httpClient) SendRaw(ctx context.Context, frame []byte) error {
	status, body, err := c.Post(ctx, string(frame))
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("POST answered %d: %s", status, body)
	}
	return err
}

// Send invokes target without waiting (no invocationId, no Completion).
func (c *httpClient) Send(ctx context.Context, target string, args ...any) error {
	rec, err := invocationRecord("", target, args...)
	if err != nil {
		return err
	}
	return c.SendRaw(ctx, rec)
}

// Invoke calls target and waits for its Completion.
func (c *httpClient) Invoke(ctx context.Context, target string, args ...any) (result json.RawMessage, errMsg string, err error) {
	id := strconv.FormatInt(c.nextID.Add(1), 10)
	rec, err := invocationRecord(id, target, args...)
	if err != nil {
		return nil, "", err
	}
	if err := c.SendRaw(ctx, rec); err != nil {
		return nil, "", err
	}
	r, err := c.take(ctx, "the completion of invocation "+id, func(r received) bool {
		return r.err == nil && r.msg.Type == protocol.TypeCompletion && r.msg.InvocationID == id
	}, nil)
	if err != nil {
		return nil, "", err
	}
	return r.msg.Result, r.msg.Error, nil
}

// WaitClosed waits until the reader has exited and returns why.
func (c *httpClient) WaitClosed(ctx context.Context) (readErr, err error) {
	select {
	case <-c.done:
		return c.readError(), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("transport still open: %w; %s", ctx.Err(), c.describe())
	}
}

// markHTTP sends the client a marker through the hub and requires it to be
// the next message.
func (f *fixture) markHTTP(t testing.TB, c *httpClient, tag string) {
	t.Helper()
	require.NoError(t, f.Hub.SendToConnection(waitCtx(t), c.ID, "Marker", tag))
	c.ExpectMarker(t, tag)
}
