package signalhub

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path"
	"strings"
	"time"

	"github.com/signalhub/signalhub/backplane"
)

// Options configures a Hub. The zero value is valid: every field documents
// its default. New copies the Options, so changing them afterwards has no
// effect.
type Options struct {
	// Methods are the hub methods clients invoke, by name. Names are matched
	// case-insensitively, as ASP.NET Core does, so two names that differ only
	// in case are an error.
	//
	// Each value is a func whose first parameter is *Context, followed by the
	// method's arguments in order; each argument is decoded from the
	// connection's protocol, JSON or MessagePack (see
	// protocol.UnmarshalMsgPack), straight into its parameter type. It returns nothing, an error, a
	// result, or a result and an error. The result becomes the Completion's
	// result; an error becomes an error Completion (see HubError).
	//
	//	"SendMessage": func(c *signalhub.Context, user, message string) error
	//	"Add":         func(c *signalhub.Context, a, b int) int
	//
	// A method whose result is a <-chan T, an iter.Seq[T] or an
	// iter.Seq2[T, error] streams: the client calls it with stream() and
	// gets one item per value, until the channel is closed or the iterator
	// returns; an error from an iter.Seq2 ends the stream with an error.
	// The producer stops when Context().Context() ends, which a streaming
	// invocation's does when the client cancels (disposes) the stream.
	// A parameter of type <-chan T or iter.Seq2[T, error] is a stream from
	// the client (a Subject in the JavaScript client): it is not among the
	// arguments, and yields the client's items until the client completes
	// the stream (an iter.Seq2 then yields the client's error, a
	// *ClientError, if it ended it with one). Streaming invocations run
	// beside the others (see MaxStreams).
	//
	//	"Ticks":  func(c *signalhub.Context, n int) iter.Seq[int]
	//	"Upload": func(c *signalhub.Context, name string, chunks <-chan []byte) error
	Methods map[string]any

	// OnConnected runs once per connection, after the handshake and after
	// the connection has joined the user index, before any of its messages
	// is processed. An error closes the connection with that error and no
	// reconnect.
	OnConnected func(c *Context) error

	// OnDisconnected runs once for every connection whose OnConnected
	// succeeded (or would have been called, if it is nil), after the
	// connection has left every index and its hub methods have returned.
	// err is nil for a graceful close by the client and otherwise says why
	// the connection ended (see ErrSlowConsumer, ErrClientTimeout, ...).
	// The connection's Context is already done: use a context of your own
	// to send from here.
	OnDisconnected func(c *Context, err error)

	// Filters wrap hub method invocations, OnConnected and OnDisconnected
	// (logging, metrics, authorization per method); they run in order,
	// the first one outermost. See Filter.
	Filters []Filter

	// Authenticate reads the credentials of negotiate and connect requests
	// (see NewJWTAuthenticator). When it is nil, or returns nil claims, the
	// claims come from the request context (ContextWithClaims), which is how
	// an app's own authentication middleware plugs in.
	Authenticate Authenticator

	// RequireAuth refuses anonymous connections with 401. Defaults to false:
	// anonymous connections get an empty user ID.
	RequireAuth bool

	// UserID picks the user identifier from a connection's claims. Defaults
	// to DefaultUserID (the NameIdentifier claim, a JWT's "sub"). An empty
	// result means the connection belongs to no user.
	UserID func(Claims) string

	// AuthExpiry returns when a connection's credentials expire; the zero
	// time means never. Defaults to DefaultAuthExpiry (a JWT's "exp" claim).
	// A request whose credentials have already expired is refused with 401,
	// and a connection is closed when they expire, with a Close message
	// that allows reconnecting (the official clients with automatic
	// reconnect then fetch a new token from accessTokenFactory) and
	// ErrAuthExpired in OnDisconnected. Group memberships do not survive
	// the reconnect, as with any reconnect.
	AuthExpiry func(Claims) time.Time

	// AuthExpiryLeeway is the clock skew allowed when enforcing AuthExpiry:
	// credentials count as expired this long after their expiry time. Set
	// it to the Leeway of your JWTOptions. Defaults to 0.
	AuthExpiryLeeway time.Duration

	// IgnoreAuthExpiry keeps connections open after their credentials
	// expire, as ASP.NET Core SignalR does by default. Defaults to false:
	// expired connections are closed (see AuthExpiry).
	IgnoreAuthExpiry bool

	// AllowedOrigins lists the host patterns (path.Match syntax, e.g.
	// "example.com" or "*.example.com") whose browser pages may open
	// WebSockets to the hub. Same-origin requests and requests without an
	// Origin header (non-browser clients) are always allowed. Defaults to
	// none. The hub does not answer CORS preflights: a page on another
	// origin also needs the app's CORS middleware in front of negotiate.
	AllowedOrigins []string

	// KeepAliveInterval is how long a connection may go without the server
	// sending anything before it sends a Ping. Defaults to 15s. Keep it at
	// most half the clients' server timeout (30s in the official clients).
	// Long Polling gets no Pings: its polls keep it alive.
	KeepAliveInterval time.Duration

	// ClientTimeout closes a connection that has sent nothing (not even a
	// Ping) for this long. Defaults to 30s. The official clients ping every
	// 15s, also while they wait for a long-running hub method. Long Polling
	// clients send no Pings; DisconnectTimeout applies to them instead.
	ClientTimeout time.Duration

	// HandshakeTimeout closes a connection that has not completed the
	// handshake this long after its transport opened. Defaults to 15s.
	HandshakeTimeout time.Duration

	// NegotiateTimeout is how long a negotiated connection token stays valid
	// for the transport's start (the WebSocket connect, the event stream or
	// the first poll) that should follow. Defaults to 15s.
	NegotiateTimeout time.Duration

	// MaxMessageSize is the largest incoming record in bytes. A larger one
	// closes the connection with an error. Defaults to 32 KiB. On
	// Server-Sent Events and Long Polling, where the client sends its
	// records in POSTs, a POST body may hold up to 32 times this much; a
	// larger one is answered 413 and closes the connection.
	MaxMessageSize int

	// MaxParallelInvocations is how many hub method invocations of one
	// connection may run at once. Defaults to 1: invocations run one at a
	// time, in order. Further invocations wait (see MaxPendingInvocations);
	// meanwhile the connection keeps reading, so a client that goes away
	// cancels the Context of its running methods at once.
	MaxParallelInvocations int

	// MaxPendingInvocations is how many invocations of one connection may
	// wait for a running one. A client that sends more is closed with a
	// Close message saying so (ErrTooManyInvocations), which protects the
	// server from clients that send faster than their methods complete.
	// Defaults to 256.
	MaxPendingInvocations int

	// MaxStreams is how many streaming invocations of one connection may
	// be open at once: methods that stream results to the client and
	// methods that take streams from it. They run beside the invocations
	// counted by MaxParallelInvocations. One more is refused with an error
	// Completion. Defaults to 32.
	MaxStreams int

	// StreamBufferCapacity is how many items of one client-to-server
	// stream wait for the hub method to take them. When it is full the
	// connection stops reading until the method catches up, which pushes
	// back on the client. Defaults to 10, as in ASP.NET Core.
	StreamBufferCapacity int

	// MaxConnections bounds how many connections the hub holds at once,
	// counting those still in their handshake. Beyond it negotiate and
	// connect are answered 503. Defaults to no
	// limit (0 or negative); size it to the machine.
	MaxConnections int

	// MaxConnectionsPerUser bounds how many connections one user may hold
	// on this hub. Beyond it negotiate and connect are answered 429, and a
	// handshake that would exceed it is refused with an error the client
	// sees. Anonymous connections count against MaxConnections only.
	// Defaults to 100; negative means no limit.
	MaxConnectionsPerUser int

	// MaxGroupsPerConnection bounds how many groups one connection may be
	// in; AddToGroup beyond it returns ErrTooManyGroups. Defaults to 128;
	// negative means no limit.
	MaxGroupsPerConnection int

	// MaxGroupNameLength bounds group names, in bytes. Longer names, names
	// that are not valid UTF-8 and names with control characters,
	// bidirectional formatting characters or line and paragraph separators
	// are refused with ErrInvalidName by every method that takes a group.
	// Defaults to 256.
	MaxGroupNameLength int

	// MaxUserIDLength bounds user IDs, in bytes. A connection whose user ID
	// is longer, is not valid UTF-8 or contains the characters group names
	// may not is refused with 403. Defaults to 256.
	MaxUserIDLength int

	// InvocationRate is how many hub method invocations per second one
	// connection may make on average, with bursts of up to InvocationBurst
	// (a token bucket). An invocation beyond it is not run: it gets an
	// error Completion (or is dropped, when the client expects no answer).
	// A client that goes on sending through InvocationBurst refusals in a
	// row is closed with ErrRateLimited. Defaults to 100 per second;
	// negative (or +Inf) means no limit.
	InvocationRate float64

	// InvocationBurst is the token bucket's size for InvocationRate, and
	// how many refusals in a row close the connection. Defaults to twice
	// InvocationRate, at least 1: with a rate below one per second, the
	// first refusal closes the connection unless you set a larger burst.
	InvocationBurst int

	// SendQueueLength bounds how many outgoing messages a connection may
	// have waiting for its writer. A send that would exceed it (or
	// SendQueueBytes) never blocks: the slow connection is closed with a
	// Close message saying so, and OnDisconnected gets ErrSlowConsumer.
	// What was queued is dropped at once; when the connection's socket
	// write is blocked at that moment (the client stopped reading), the
	// Close waits for that write, so the connection leaves the hub at the
	// latest WriteTimeout later. Defaults to 1024.
	SendQueueLength int

	// SendQueueBytes bounds the total size of a connection's waiting
	// messages, as SendQueueLength bounds their number. A single message
	// larger than this is still queued when nothing else waits. Defaults to
	// 1 MiB.
	SendQueueBytes int

	// WriteTimeout bounds each socket write. A connection whose write takes
	// longer is closed. Defaults to 10s.
	WriteTimeout time.Duration

	// Transports are the transports the hub offers. The official clients
	// try them in the order WebSockets, Server-Sent Events, Long Polling,
	// and fall back to the next one, with a new negotiate, when one cannot
	// start (a proxy that refuses WebSockets, a runtime without them).
	// Defaults to AllTransports (the zero value); set it to leave some out,
	// such as TransportWebSockets alone.
	//
	// On Server-Sent Events and Long Polling every request of a connection
	// (its POSTs, polls, event stream and DELETE) is authenticated as
	// negotiate is: a request without the connection's credentials is
	// answered 401, one with another user's 403.
	Transports Transports

	// PollTimeout is how long a Long Polling request waits for something
	// to send before it is answered empty and the client polls again.
	// Defaults to 90s. Keep it below the clients' request timeout (100s in
	// the official clients) and below the idle timeout of any proxy on
	// the way.
	PollTimeout time.Duration

	// DisconnectTimeout closes a Long Polling connection whose client has
	// not polled for this long; OnDisconnected gets ErrClientTimeout.
	// Long Polling clients send no Pings: their polls show they are there.
	// It is also how long a stateful-reconnect connection whose WebSocket
	// dropped waits for its client to resume it (see StatefulReconnect).
	// Defaults to 15s.
	DisconnectTimeout time.Duration

	// StatefulReconnect lets clients that ask for it (withStatefulReconnect
	// in the JavaScript client) resume a connection whose WebSocket
	// dropped: for DisconnectTimeout the connection stays in the hub with
	// its ID, user, groups and item store while messages to it wait, and a
	// new WebSocket of the client takes it over, each side sending again
	// what the other had not acknowledged, so that nothing is lost or
	// repeated in either direction. OnDisconnected runs only when the
	// connection ends for good. Off by default, as in ASP.NET Core
	// (AllowStatefulReconnects). WebSockets only.
	StatefulReconnect bool

	// StatefulReconnectBufferSize bounds, in bytes, the messages a
	// stateful-reconnect connection keeps until its client acknowledges
	// them (every second or so). When it is full, messages wait in the
	// outgoing queue (SendQueueLength, SendQueueBytes) until an
	// acknowledgement makes room. Defaults to 100,000, as in ASP.NET Core.
	StatefulReconnectBufferSize int

	// DetailedErrors adds the error text to the Completion sent for a hub
	// method that failed. Defaults to false, as in ASP.NET Core: only
	// HubError messages are shown to clients.
	DetailedErrors bool

	// Logger receives the hub's logs. Defaults to slog.Default().
	Logger *slog.Logger

	// Metrics receives the hub's measurements as they happen:
	// connections, messages, invocations and backplane publishes (see
	// Metrics; package github.com/signalhub/signalhub/otelhub records them
	// with OpenTelemetry). Defaults to none, which costs nothing.
	Metrics *Metrics

	// Backplane connects the hub to the other nodes of a cluster, so that
	// sends and group changes reach connections held by any node. The hub
	// starts it in New and closes it in Shutdown and Close. Defaults to
	// none: a single node.
	Backplane backplane.Backplane

	// NodeID names the hub in a cluster; it prefixes the IDs of the
	// connections the node holds, so that any node can route to them.
	// Defaults to 8 random characters; letters, digits, '-' and '_' only.
	NodeID string

	// NodeTimeout is how long a node of the cluster may stay silent before
	// the others forget it and what it counted (see GroupCount). Nodes send
	// a heartbeat every NodeTimeout/3. Defaults to 15s.
	NodeTimeout time.Duration
}

// withDefaults returns a copy of o with every zero field set to its default,
// or an error naming the first invalid field.
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
		{"ClientTimeout", &c.ClientTimeout, 30 * time.Second},
		{"HandshakeTimeout", &c.HandshakeTimeout, 15 * time.Second},
		{"NegotiateTimeout", &c.NegotiateTimeout, 15 * time.Second},
		{"WriteTimeout", &c.WriteTimeout, 10 * time.Second},
		{"NodeTimeout", &c.NodeTimeout, 15 * time.Second},
		{"PollTimeout", &c.PollTimeout, 90 * time.Second},
		{"DisconnectTimeout", &c.DisconnectTimeout, 15 * time.Second},
		{"AuthExpiryLeeway", &c.AuthExpiryLeeway, 0},
	}
	for _, d := range durations {
		if *d.v < 0 {
			return Options{}, fmt.Errorf("signalhub: Options.%s is negative", d.name)
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
		{"MaxMessageSize", &c.MaxMessageSize, 32 << 10},
		{"MaxParallelInvocations", &c.MaxParallelInvocations, 1},
		{"MaxPendingInvocations", &c.MaxPendingInvocations, 256},
		{"MaxStreams", &c.MaxStreams, 32},
		{"StreamBufferCapacity", &c.StreamBufferCapacity, 10},
		{"StatefulReconnectBufferSize", &c.StatefulReconnectBufferSize, 100_000},
		{"SendQueueLength", &c.SendQueueLength, 1024},
		{"SendQueueBytes", &c.SendQueueBytes, 1 << 20},
		{"MaxGroupNameLength", &c.MaxGroupNameLength, 256},
		{"MaxUserIDLength", &c.MaxUserIDLength, 256},
		{"InvocationBurst", &c.InvocationBurst, 0},
	}
	for _, n := range ints {
		if *n.v < 0 {
			return Options{}, fmt.Errorf("signalhub: Options.%s is negative", n.name)
		}
		if *n.v == 0 {
			*n.v = n.def
		}
	}
	// Limits where a negative value means "no limit".
	if c.MaxConnections < 0 {
		c.MaxConnections = 0
	}
	switch {
	case c.MaxConnectionsPerUser == 0:
		c.MaxConnectionsPerUser = 100
	case c.MaxConnectionsPerUser < 0:
		c.MaxConnectionsPerUser = 0
	}
	switch {
	case c.MaxGroupsPerConnection == 0:
		c.MaxGroupsPerConnection = 128
	case c.MaxGroupsPerConnection < 0:
		c.MaxGroupsPerConnection = 0
	}
	switch {
	case c.InvocationRate != c.InvocationRate: // NaN
		return Options{}, errors.New("signalhub: Options.InvocationRate is NaN")
	case c.InvocationRate == 0:
		c.InvocationRate = 100
	case c.InvocationRate < 0, math.IsInf(c.InvocationRate, 1):
		c.InvocationRate = 0
	}
	if c.InvocationBurst == 0 && c.InvocationRate > 0 {
		c.InvocationBurst = max(1, int(min(2*c.InvocationRate, 1<<30)))
	}
	switch {
	case c.Transports == 0:
		c.Transports = AllTransports
	case c.Transports&^AllTransports != 0:
		return Options{}, fmt.Errorf("signalhub: Options.Transports has unknown bits: %v", c.Transports)
	}
	if c.AuthExpiry == nil {
		c.AuthExpiry = DefaultAuthExpiry
	}
	if c.UserID == nil {
		c.UserID = DefaultUserID
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics != nil {
		m := *c.Metrics
		c.Metrics = &m
	}
	for _, p := range c.AllowedOrigins {
		if strings.TrimSpace(p) == "" {
			return Options{}, errors.New("signalhub: empty pattern in Options.AllowedOrigins")
		}
		if _, err := path.Match(p, ""); err != nil {
			return Options{}, fmt.Errorf("signalhub: Options.AllowedOrigins pattern %q: %w", p, err)
		}
	}
	return c, nil
}
