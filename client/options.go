package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Options configures a Conn. The zero value is valid: every field documents
// its default. New copies the Options, so changing them afterwards has no
// effect.
type Options struct {
	// AccessToken returns the bearer token for a request. It is called for
	// every negotiate and every WebSocket connect (reconnects included), so
	// it can refresh an expiring token. An empty token sends none. Defaults
	// to nil: no token.
	AccessToken func(ctx context.Context) (string, error)

	// AccessTokenInQuery sends the token of the WebSocket connect as the
	// access_token query parameter instead of an "Authorization: Bearer"
	// header, as browsers must. Negotiate always uses the header, as the
	// official clients do. The query parameter can end up in proxy and
	// server logs; prefer the header when the server accepts it.
	AccessTokenInQuery bool

	// Header holds extra headers for negotiate and the WebSocket connect.
	Header http.Header

	// HTTPClient performs negotiate and the WebSocket upgrade. Its Jar, if
	// any, carries cookies from negotiate to the connect, and its Transport
	// decides how to dial. Defaults to http.DefaultClient.
	HTTPClient *http.Client

	// SkipNegotiation connects the WebSocket straight to the hub URL,
	// without negotiate. The server must allow it (ASP.NET Core and the Go
	// hub do); the connection ID is then unknown and ConnectionID returns "".
	SkipNegotiation bool

	// KeepAliveInterval is how long the client may go without sending
	// before it sends a Ping, so that the server does not time it out.
	// Defaults to 15s; keep it well below the server's client timeout
	// (30s by default).
	KeepAliveInterval time.Duration

	// ServerTimeout fails the connection when nothing has been received for
	// this long, with ErrServerTimeout. It also bounds each write: a server
	// that does not take our bytes for that long is as good as gone.
	// Defaults to 30s; keep it at least twice the server's keep-alive
	// interval (15s by default).
	ServerTimeout time.Duration

	// HandshakeTimeout bounds the hub protocol handshake that follows the
	// WebSocket connect. Defaults to 15s.
	HandshakeTimeout time.Duration

	// Reconnect, when set, makes the client reconnect after the connection
	// was lost: the socket dropped, the server timed out, the server sent
	// bad data, or the server closed it and allowed reconnecting (a hub
	// shutting down does). A reconnect is a new connection with a new ID,
	// so group memberships must be restored by the application. Defaults to
	// nil: no reconnect. See DefaultReconnect.
	Reconnect ReconnectPolicy

	// OnReconnecting is called with the reason when the connection was lost
	// and the client starts reconnecting. Invoke and Send return
	// ErrNotConnected until OnReconnected.
	OnReconnecting func(err error)

	// OnReconnected is called with the new connection ID once a reconnect
	// succeeded.
	OnReconnected func(connectionID string)

	// OnClose is called once when a connection that had started ends for
	// good, with the reason, or nil when Close ended it.
	//
	// Handlers, OnReconnecting, OnReconnected and OnClose all run one at a
	// time, in order, on the client's dispatcher goroutine: OnClose runs
	// after every handler.
	OnClose func(err error)

	// QueueLength bounds the server invocations waiting for the dispatcher.
	// When the queue is full the client stops reading from the socket until
	// a handler returns, which pushes back on the server through TCP; no
	// message is dropped. Defaults to 1024.
	QueueLength int

	// StreamBufferCapacity bounds the items of one stream from the server
	// (Stream, StreamAs) that wait for the loop ranging over it. When the
	// buffer is full the client stops reading the socket until the loop
	// takes an item, which pushes back on the server through TCP rather
	// than holding more in memory, as the hub does for streams from the
	// client. Every other message of the connection waits meanwhile, for
	// at most StreamStallTimeout. An item is at most MaxMessageSize bytes.
	// Defaults to 32.
	StreamBufferCapacity int

	// StreamStallTimeout bounds how long the client stops reading for one
	// full stream buffer: a loop that takes no item for this long fails
	// its stream with ErrStreamStalled (the client cancels it on the
	// server, the items already buffered are still delivered) and reading
	// resumes. It keeps a loop whose body waits for the same connection,
	// such as an Invoke, from blocking the connection for good. A loop
	// that needs longer than this for one item should hand items to its
	// own worker. Defaults to 30s.
	StreamStallTimeout time.Duration

	// MaxMessageSize is the largest WebSocket message accepted from the
	// server, in bytes. A server may put many records in one message. A
	// larger message fails the connection. Defaults to 4 MiB.
	MaxMessageSize int

	// Logger receives the client's logs. Defaults to slog.Default().
	Logger *slog.Logger
}

// ReconnectPolicy decides whether and when to try reconnect attempt number
// attempt (0 for the first), given the time spent reconnecting so far and
// why the connection was lost or the previous attempt failed. It returns
// the delay before the attempt, or ok == false to give up. Refusing
// attempt 0 ends the connection with the original error, without
// OnReconnecting; giving up later ends it with an error wrapping
// ErrReconnectFailed and the last attempt's error. It runs on the client's
// goroutine and must not block.
type ReconnectPolicy func(attempt int, elapsed time.Duration, lastErr error) (delay time.Duration, ok bool)

// DefaultReconnect returns the policy of the official JavaScript client:
// attempts after 0s, 2s, 10s and 30s, then give up.
func DefaultReconnect() ReconnectPolicy {
	return DelaysReconnect(0, 2*time.Second, 10*time.Second, 30*time.Second)
}

// DelaysReconnect returns a policy that makes one attempt after each of the
// delays, in order, then gives up.
func DelaysReconnect(delays ...time.Duration) ReconnectPolicy {
	d := append([]time.Duration(nil), delays...)
	return func(attempt int, _ time.Duration, _ error) (time.Duration, bool) {
		if attempt < 0 || attempt >= len(d) {
			return 0, false
		}
		return d[attempt], true
	}
}

// withDefaults returns a copy of o with every zero field set to its
// default, or an error naming the first invalid field.
func (o *Options) withDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"KeepAliveInterval", &c.KeepAliveInterval, 15 * time.Second},
		{"ServerTimeout", &c.ServerTimeout, 30 * time.Second},
		{"HandshakeTimeout", &c.HandshakeTimeout, 15 * time.Second},
		{"StreamStallTimeout", &c.StreamStallTimeout, 30 * time.Second},
	}
	for _, d := range durations {
		if *d.v < 0 {
			return Options{}, fmt.Errorf("client: Options.%s is negative", d.name)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	ints := []struct {
		name string
		v    *int
		def  int
	}{
		{"QueueLength", &c.QueueLength, 1024},
		{"StreamBufferCapacity", &c.StreamBufferCapacity, 32},
		{"MaxMessageSize", &c.MaxMessageSize, 4 << 20},
	}
	for _, n := range ints {
		if *n.v < 0 {
			return Options{}, fmt.Errorf("client: Options.%s is negative", n.name)
		}
		if *n.v == 0 {
			*n.v = n.def
		}
	}
	if c.MaxMessageSize < 64 {
		return Options{}, errors.New("client: Options.MaxMessageSize is below 64 bytes")
	}
	if c.HTTPClient == nil {
		c.HTTPClient = http.DefaultClient
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Header = c.Header.Clone()
	return c, nil
}
