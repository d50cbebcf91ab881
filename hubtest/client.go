package hubtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/client"
)

// ConnectOptions says who a test client is.
type ConnectOptions struct {
	// User is the user ID the hub sees: with no Claims, the client gets
	// Claims{"sub": User}. Empty with no Claims means anonymous.
	User string
	// Claims are the connection's claims, as the app's authentication
	// would have produced them; no token or signature is needed.
	Claims signalhub.Claims
	// Options are further client options (an AccessToken for hubs that
	// verify JWTs, say). HTTPClient and Header are set by hubtest.
	Options client.Options
}

// Client is a test client: a client.Conn that records every invocation the
// hub sends it, in order.
type Client struct {
	// Conn is the underlying client, for anything the helpers lack.
	Conn *client.Conn

	srv  *Server
	opts ConnectOptions

	mu       sync.Mutex // guards received, next and changed
	received []Message
	next     int           // index of the next message Next returns
	changed  chan struct{} // closed and replaced when a message arrives
}

// Message is an invocation the hub sent to a client.
type Message struct {
	// Target is the client method the hub invoked.
	Target string
	// Args are its arguments, as JSON.
	Args []json.RawMessage
}

// String formats the message as Target(arg, ...) with JSON arguments.
func (m Message) String() string {
	var b strings.Builder
	b.WriteString(m.Target)
	b.WriteByte('(')
	for i, a := range m.Args {
		if i > 0 {
			b.WriteString(", ")
		}
		b.Write(a)
	}
	b.WriteByte(')')
	return b.String()
}

// Decode decodes the message's arguments into dst, one pointer per
// argument.
func (m Message) Decode(dst ...any) error {
	if len(dst) != len(m.Args) {
		return fmt.Errorf("hubtest: %s has %d arguments, not %d", m, len(m.Args), len(dst))
	}
	for i, d := range dst {
		if err := json.Unmarshal(m.Args[i], d); err != nil {
			return fmt.Errorf("hubtest: argument %d of %s: %w", i, m, err)
		}
	}
	return nil
}

// Connect connects a client as user ("" for anonymous). It fails the test
// if the hub refuses it.
func (s *Server) Connect(user string) *Client {
	s.tb.Helper()
	return s.ConnectWith(ConnectOptions{User: user})
}

// ConnectWith connects a client as opts says.
func (s *Server) ConnectWith(opts ConnectOptions) *Client {
	s.tb.Helper()
	c, err := s.TryConnect(opts)
	if err != nil {
		s.tb.Fatalf("hubtest: connect %q: %v", opts.User, err)
	}
	return c
}

// TryConnect is ConnectWith returning the error instead of failing the
// test, for tests of refused connections.
func (s *Server) TryConnect(opts ConnectOptions) (*Client, error) {
	claims := opts.Claims
	if claims == nil && opts.User != "" {
		claims = signalhub.Claims{"sub": opts.User}
	}
	co := opts.Options
	co.HTTPClient = s.HTTPClient
	co.Header = co.Header.Clone()
	if claims != nil {
		enc, err := encodeClaims(claims)
		if err != nil {
			return nil, err
		}
		if co.Header == nil {
			co.Header = make(map[string][]string)
		}
		co.Header.Set(claimsHeader, enc)
	}
	conn, err := client.New(s.URL, &co)
	if err != nil {
		return nil, err
	}
	c := &Client{Conn: conn, srv: s, opts: opts, changed: make(chan struct{})}
	if err := conn.OnAny(c.record); err != nil {
		return nil, err
	}
	ctx, cancel := waitCtx()
	defer cancel()
	if err := conn.Start(ctx); err != nil {
		return nil, err
	}
	s.tb.Cleanup(func() { _ = conn.Close() })
	return c, nil
}

func (c *Client) record(target string, args []json.RawMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.received = append(c.received, Message{Target: target, Args: args})
	close(c.changed)
	c.changed = make(chan struct{})
}

// ID returns the client's connection ID.
func (c *Client) ID() string { return c.Conn.ConnectionID() }

// Invoke calls a hub method and returns its result; an error Completion is
// a *client.InvocationError.
func (c *Client) Invoke(target string, args ...any) (json.RawMessage, error) {
	ctx, cancel := waitCtx()
	defer cancel()
	return c.Conn.Invoke(ctx, target, args...)
}

// MustInvoke calls a hub method and fails the test if it returns an error.
func (c *Client) MustInvoke(target string, args ...any) json.RawMessage {
	c.srv.tb.Helper()
	res, err := c.Invoke(target, args...)
	if err != nil {
		c.srv.tb.Fatalf("hubtest: %s invoking %s: %v", c.name(), target, err)
	}
	return res
}

// Send calls a hub method without waiting for it (a non-blocking
// invocation) and fails the test if it cannot be sent.
func (c *Client) Send(target string, args ...any) {
	c.srv.tb.Helper()
	ctx, cancel := waitCtx()
	defer cancel()
	if err := c.Conn.Send(ctx, target, args...); err != nil {
		c.srv.tb.Fatalf("hubtest: %s sending %s: %v", c.name(), target, err)
	}
}

// Next returns the next message the hub sent this client, waiting up to
// Timeout, and fails the test if none comes.
func (c *Client) Next() Message {
	c.srv.tb.Helper()
	deadline := time.NewTimer(Timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		if c.next < len(c.received) {
			m := c.received[c.next]
			c.next++
			c.mu.Unlock()
			return m
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-c.Conn.Done():
			c.srv.tb.Fatalf("hubtest: %s waited for a message but the connection ended: %v; received so far: %s",
				c.name(), c.Conn.Err(), c.history())
		case <-deadline.C:
			c.srv.tb.Fatalf("hubtest: %s got no message within %v; received so far: %s", c.name(), Timeout, c.history())
		}
	}
}

// Expect requires the next message to be target with args, compared as
// JSON values.
func (c *Client) Expect(target string, args ...any) {
	c.srv.tb.Helper()
	want, err := jsonArgs(args)
	if err != nil {
		c.srv.tb.Fatalf("hubtest: %v", err)
	}
	got := c.Next()
	if got.Target != target || !sameJSON(got.Args, want) {
		c.srv.tb.Fatalf("hubtest: %s: want %s, got %s; received so far: %s",
			c.name(), Message{Target: target, Args: want}, got, c.history())
	}
}

// ExpectNothing requires that no message arrives within QuietPeriod.
func (c *Client) ExpectNothing() {
	c.srv.tb.Helper()
	t := time.NewTimer(QuietPeriod)
	defer t.Stop()
	<-t.C
	c.mu.Lock()
	unread := formatAll(c.received[c.next:])
	c.mu.Unlock()
	if len(unread) > 0 {
		c.srv.tb.Fatalf("hubtest: %s: want no message, got %s", c.name(), strings.Join(unread, ", "))
	}
}

// Received returns every message received so far, read or not.
func (c *Client) Received() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.received...)
}

// Close closes the connection gracefully and waits until it has ended.
func (c *Client) Close() {
	_ = c.Conn.Close()
}

// WaitClosed waits up to Timeout for the server to end the connection and
// returns why (a *client.CloseError when the server sent a Close message).
// It fails the test if the connection stays open.
func (c *Client) WaitClosed() error {
	c.srv.tb.Helper()
	t := time.NewTimer(Timeout)
	defer t.Stop()
	select {
	case <-c.Conn.Done():
		return c.Conn.Err()
	case <-t.C:
		c.srv.tb.Fatalf("hubtest: %s is still open after %v", c.name(), Timeout)
		return nil
	}
}

// Reconnect closes the connection and connects again as the same user,
// like a client whose automatic reconnect made a new connection: it has a
// new ID and is in no group.
func (c *Client) Reconnect() *Client {
	c.srv.tb.Helper()
	c.Close()
	return c.srv.ConnectWith(c.opts)
}

func (c *Client) name() string {
	who := c.opts.User
	if who == "" {
		who = "anonymous"
	}
	return fmt.Sprintf("client %s (%s)", who, c.ID())
}

func (c *Client) history() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.received) == 0 {
		return "nothing"
	}
	return strings.Join(formatAll(c.received), ", ")
}

func formatAll(ms []Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.String()
	}
	return out
}

func jsonArgs(args []any) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, len(args))
	for i, a := range args {
		b, err := json.Marshal(a)
		if err != nil {
			return nil, fmt.Errorf("encode expected argument %d: %w", i, err)
		}
		out[i] = b
	}
	return out, nil
}

// sameJSON compares argument lists as JSON values, so that spacing and
// object key order do not matter.
func sameJSON(a, b []json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if bytes.Equal(a[i], b[i]) {
			continue
		}
		var x, y any
		if json.Unmarshal(a[i], &x) != nil || json.Unmarshal(b[i], &y) != nil || !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}
