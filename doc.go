// Package signalhub is a real-time messaging hub for net/http servers that
// speaks ASP.NET Core SignalR's protocol, so the official SignalR clients
// (such as the npm package @microsoft/signalr) connect to it unchanged.
//
// A [Hub] tracks every connection by connection ID, indexes it by the user
// identifier taken from its claims and by group name, and fans messages out
// to them: [Hub.SendToAll], [Hub.SendToUser], [Hub.SendToGroup] and the rest
// of SignalR's Clients.* surface, plus [Hub.AddToGroup] and
// [Hub.RemoveFromGroup]. Clients call hub methods written as plain Go funcs
// with typed parameters (see [Options].Methods).
//
// Clients speak SignalR's JSON hub protocol or its MessagePack hub protocol
// (@microsoft/signalr-protocol-msgpack), as their handshake asks; one
// audience may mix both, and a send is encoded once per protocol in use.
//
// # Getting started
//
// Build a hub with [New], mount it on a mux with [Hub.Mount], and let
// [Hub.Shutdown] close its WebSockets when the server stops:
//
//	hub, err := signalhub.New(&signalhub.Options{
//		Methods: map[string]any{
//			"SendMessage": func(c *signalhub.Context, message string) error {
//				return c.Hub().SendToAll(c.Context(), "ReceiveMessage", c.UserID(), message)
//			},
//		},
//		Authenticate: auth, // signalhub.NewJWTAuthenticator(...), or claims from your middleware
//	})
//	if err != nil {
//		return err
//	}
//	mux := http.NewServeMux()
//	hub.Mount(mux, "/chathub") // POST /chathub/negotiate and the transports at /chathub
//	srv := &http.Server{Addr: ":5000", Handler: mux}
//	srv.RegisterOnShutdown(func() { _ = hub.Shutdown(context.Background()) })
//
// A Hub is an [http.Handler] ([Hub.ServeHTTP]): it never listens, starts a
// server or owns a mux, so it fits any router and any middleware. Browsers
// and Node.js connect with @microsoft/signalr's HubConnectionBuilder
// pointed at "/chathub"; Go programs with package
// github.com/signalhub/signalhub/client. Every Options field documents its
// default, and nil Options are valid.
//
// Send from anywhere in the application, such as an HTTP handler or a
// background job:
//
//	err := hub.SendToUser(ctx, "alice", "Notify", "Your report is ready")
//
// Arguments are encoded as JSON once per send, whatever the number of
// recipients. Sending to an audience with nobody in it is not an error
// (behind a backplane, "not here" does not mean "nowhere"); empty names are
// ([ErrEmptyName]), and so are names beyond the limits ([ErrInvalidName]).
// After [Hub.Shutdown] or [Hub.Close], sends, group changes, counts and
// client results return [ErrHubClosed].
//
// # Transports
//
// The hub offers WebSockets, Server-Sent Events and Long Polling, in that
// order, as the official clients expect (see [Options].Transports): they
// fall back to the next transport where one cannot start. On the HTTP
// transports the client's messages arrive in POSTs, each request of a
// connection is authenticated again, and the connection's messages go out
// as events of its stream or in the answers to its polls, with the same
// bounded queue, users, groups and limits as on a WebSocket. Between polls
// a Long Polling connection holds no goroutine. Server-Sent Events carry
// text only, so MessagePack clients use WebSockets or Long Polling.
//
// # Users and groups
//
// A connection's user ID comes from its claims when it connects, by
// default the NameIdentifier claim (a JWT's "sub"; see [DefaultUserID] and
// [Options].UserID), and is compared case-sensitively. One user may hold
// many connections (a phone and a laptop), and [Hub.SendToUser] reaches all
// of them. Anonymous connections belong to no user and are never reached by
// a send to a user.
//
// Groups are sets of connections managed by the application with
// [Hub.AddToGroup] and [Hub.RemoveFromGroup]. A connection may be in many
// groups; adding twice or removing a non-member does nothing; empty groups
// are freed; membership ends with the connection. A reconnecting client
// makes a new connection with a new ID, so memberships are not restored:
// re-join groups in [Options].OnConnected from your own records, or from
// the client's onreconnected callback. [Hub.RemoveUserFromGroup] takes
// every connection of a user out of a group.
//
// [Hub.GroupMembers], [Hub.UserConnections], [Hub.ConnectionGroups] and
// [Hub.Stats] report what this hub holds now; [Hub.GroupCount],
// [Hub.UserCount], [Hub.UserOnline] and [Hub.GroupConnections] count across
// a cluster (see Scaling out).
//
// # Hub methods and the Context
//
// Hub methods are funcs whose first parameter is *[Context]; the client's
// arguments (JSON or MessagePack) are decoded straight into the remaining
// parameters. They
// return nothing, an error, a value, or a value and an error; the value
// becomes the result the client's invoke resolves to. Method names match
// case-insensitively, as in ASP.NET Core. Unknown methods, a wrong number
// of arguments and arguments of the wrong type get SignalR's error
// Completions and the connection stays open.
//
// A returned [HubError] reaches the client with its message, as ASP.NET
// Core's HubException does; other errors, and panics, which are recovered
// and logged, reach it as a generic message unless [Options].DetailedErrors
// is set. A client that invokes with Send (a non-blocking invocation) gets
// no Completion at all.
//
// The [Context] is the connection as its methods and hooks see it:
// [Context.ConnectionID], [Context.UserID], [Context.Claims], an item store
// that lives as long as the connection ([Context.Get], [Context.Set],
// [Context.Delete]), [Context.Context] (a context.Context that ends when the
// connection ends or the hub shuts down), [Context.Hub], and audiences
// relative to the caller: [Context.Caller], [Context.Others] and
// [Context.OthersInGroup], each an [Audience] with a Send method.
// [Context.Abort] closes the connection after what was queued for it.
//
// [Options].OnConnected runs once per connection after the handshake and
// before any of its messages is handled; an error from it closes the
// connection without reconnect. [Options].OnDisconnected runs once for each
// connection whose OnConnected succeeded (or that had none to run), after
// the connection has left every index and its hub methods have returned,
// with the reason it ended (nil for the client's own close, otherwise
// [ErrSlowConsumer], [ErrClientTimeout], [ErrAuthExpired],
// [ErrUserDisconnected] and so on).
//
// [Options].Filters wrap every hub method invocation, OnConnected and
// OnDisconnected, like ASP.NET Core's hub filters: a [Filter] sees the
// method name and the decoded arguments ([Invocation]), may refuse the call
// with a HubError, change the arguments or the result, and calls next to go
// on. The first filter is the outermost.
//
// # Streaming
//
// A hub method whose result is a <-chan T, an iter.Seq[T] or an
// iter.Seq2[T, error] streams to the client (connection.stream in the
// JavaScript client): one item per value, then the end of the stream, or an
// error if the iter.Seq2 yields one. When the client disposes the
// subscription, the invocation's [Context.Context] ends and yield returns
// false. A parameter of type <-chan T or iter.Seq2[T, error] is a stream
// from the client (a Subject in the JavaScript client), which the method
// reads until the client completes it. Both ways apply backpressure rather
// than buffer without bound ([Options].StreamBufferCapacity), and
// streaming invocations run beside the others, up to [Options].MaxStreams
// per connection.
//
// # Client results
//
// [Hub.InvokeConnection] invokes a client method on one connection and
// waits for the value the client's handler returns, as
// Clients.Client(id).InvokeAsync does in ASP.NET Core; [InvokeConnectionAs]
// decodes it into a Go type. Bound the call with a deadline: it returns
// ctx's error when ctx ends first, [ErrClientDisconnected] when the
// connection ends first, and a *[ClientError] when the client answered with
// an error (the official clients answer "Client didn't provide a result."
// when they have no handler). In a cluster the connection may be on any
// node: the request and the answer travel over the backplane, with the
// caller's deadline, and a node that leaves ends the wait with
// [ErrClientDisconnected]. A hub method may ask its own caller: the answer is read while the method
// waits, even with one invocation at a time.
//
// # Concurrency
//
// A Hub, a [Context] and an [Audience] are safe for concurrent use.
//
// Each connection has a reading goroutine, a writer goroutine that runs only
// while something is queued for it, and goroutines for its hub methods.
// [Hub.ServeHTTP] upgrades the request, answers the handshake and runs
// OnConnected on the request's goroutine, then returns: reading goes on in
// goroutines of the hub's own, one at a time, which Shutdown and Close wait
// for. Client answers to [Hub.InvokeConnection] are handled on the reading
// goroutine. Hub methods run on worker goroutines: up to
// [Options].MaxParallelInvocations at once per connection (default 1, so
// one at a time, in the order the client sent them). Further invocations
// wait, up to [Options].MaxPendingInvocations, while the connection keeps
// reading, so a client that goes away cancels [Context.Context] of its
// running methods at once. OnDisconnected runs on the reading goroutine
// once reading has ended and the connection's hub methods have returned.
// Filters run on the goroutine of what they wrap.
//
// Sends never wait for a connection's socket. A send checks its arguments,
// encodes them once, takes the hub's read lock and only appends the shared
// bytes to each recipient's bounded queue; the writer batches whatever is
// queued into one WebSocket message. In a cluster, the send then publishes
// to the backplane, which waits for the backplane's server at most as long
// as ctx allows. The hub lock is never held during socket I/O, encoding, backplane
// calls or callbacks. A connection whose queue is full
// ([Options].SendQueueLength, [Options].SendQueueBytes) is closed with a
// Close message saying so and [ErrSlowConsumer], rather than slowing the
// sender or the other recipients down; a socket write that takes longer
// than [Options].WriteTimeout closes the connection too.
//
// Messages to one connection arrive in the order in which they were
// queued: two sends made one after the other from one goroutine reach each
// common recipient in that order, and what a hub method sends to its own
// caller arrives before the method's Completion. Sends from different
// goroutines are not ordered with each other. Across the nodes of a cluster,
// order is kept per channel (see Scaling out).
//
// OnConnected, OnDisconnected, filters and hub methods may call any Hub
// method except [Hub.Shutdown] and [Hub.Close], which wait for them: start
// those in a goroutine of their own.
//
// # Scaling out
//
// With [Options].Backplane set, hubs on several machines form a cluster.
// The engines live in nested modules, so that importing this package never
// brings a Redis or NATS client into a build: backplane/redis (on a
// go-redis client the application builds) and backplane/nats (on a
// *nats.Conn). Package backplane defines the small interface engines
// implement, and backplane/backplanetest has an in-memory bus and the
// conformance suite every engine passes. [Options].NodeID names the node;
// connection IDs start with it, so any node can route to a connection.
// As with ASP.NET Core, a load balancer must send a client's negotiate and
// its WebSocket connect to the same node (sticky sessions), since the
// negotiated token lives on the node that issued it; clients that skip
// negotiation need no affinity.
//
// What is cluster-wide: every Send method reaches the matching connections
// on every node; [Hub.AddToGroup] and [Hub.RemoveFromGroup] work for another
// node's connections and answer within a round trip; [Hub.GroupCount],
// [Hub.UserCount], [Hub.UserOnline] and [Hub.GroupConnections] ask every
// live node; [Hub.DisconnectUser] and [Hub.RemoveUserFromGroup] act on every
// node and return once each has done its part. What is per node:
// [Hub.GroupMembers], [Hub.UserConnections], [Hub.ConnectionGroups],
// [Hub.Stats], [Hub.InvokeConnection], and the connection limits
// ([Options].MaxConnections, [Options].MaxConnectionsPerUser).
//
// A send is delivered locally first, then published once per channel
// tagged with the node's ID; the other nodes deliver to their own
// connections and the origin drops its echo. Delivery across nodes is at
// most once; order is kept per sender and connection for messages that
// travel on the same channel. A node subscribes to the channel of a user or
// a group only while it holds one of its connections. When the backplane
// is unreachable, local connections are still served and the call returns
// an error wrapping [ErrBackplaneUnavailable]. Nodes announce themselves
// every [Options].NodeTimeout/3; a node silent for NodeTimeout is forgotten
// with everything it counted ([Hub.ClusterNodes], [Hub.AwaitNodes]). The
// repository's docs/scaling.md has the details.
//
// # Metrics and tracing
//
// [Options].Metrics takes funcs that the hub calls as things happen: a
// connection joins or leaves (with how long it lasted and why it ended),
// a connection's writer writes a batch of messages, a message comes in, a
// hub method invocation ends (with its registered name, duration and
// error), a backplane publish returns. They run outside the hub's locks,
// and none runs on a send's fan-out; a hub without them reads no clock for
// them. Package github.com/signalhub/signalhub/otelhub, a module of its
// own so that this package depends on no OpenTelemetry package, records
// them with OpenTelemetry under ASP.NET Core SignalR's metric names where
// they exist, and traces invocations with a [Filter] that hands each hub
// method its span through [Context.WithContext]. The repository's
// examples/metrics serves them to Prometheus.
//
// # Shutdown
//
// http.Server.Shutdown does not wait for WebSockets, which are hijacked
// connections. Call [Hub.Shutdown] from http.Server.RegisterOnShutdown (or
// yourself). It drains: new negotiations and connects get 503, sends and
// group changes return [ErrHubClosed], the invocations each connection has
// already received run to their end (event streams and polls end with
// their connections) with their [Context.Context] done (so
// that they wrap up) and send their Completions, invocations that arrive
// meanwhile get an error Completion, and then each client gets what was
// queued for it and a Close message that lets clients with automatic
// reconnect come back, to another server. Shutdown returns once every
// goroutine the hub started has exited and OnDisconnected has run for every
// connection; if ctx ends first, it drops the remaining connections and
// returns ctx.Err(). [Hub.Close] does the same without draining.
//
// # Security
//
// Negotiate and connect requests are authenticated by
// [Options].Authenticate, or by the application's own middleware, which
// stores claims with [ContextWithClaims]. [NewJWTAuthenticator] verifies
// JWTs from the Authorization header or the access_token query parameter
// that browsers must use for WebSockets ([BearerToken] reads them for
// authenticators of your own), with a pinned list of algorithms checked
// against the key's type; it requires "exp" (unless told otherwise) and
// refuses "alg": "none", "crit" headers, over-long tokens and requests
// carrying two different tokens. Invalid credentials get 401 and create
// no hub state. Anonymous connections are allowed unless
// [Options].RequireAuth is set.
//
// Credentials expire: a request whose credentials have expired
// ([Options].AuthExpiry, by default the "exp" claim) gets 401, and an open
// connection is closed when they expire, with a Close message that allows
// reconnecting, so that the official clients with automatic reconnect come
// back with a fresh token from their accessTokenFactory.
// [Options].IgnoreAuthExpiry turns this off (ASP.NET Core's default).
//
// Revocation is the application's call: [Hub.DisconnectUser] closes every
// connection of a user, on every node, with a reason and no reconnect, and
// [Hub.RemoveUserFromGroup] takes them out of a group. Groups are not a
// security feature: claims are checked when a connection is made, group
// membership is whatever the application decided, and neither changes by
// itself when a user's rights change. Check the caller's rights in the hub
// method that adds it to a group, and call these when rights change.
//
// Every resource a client can claim is bounded, each with a clear error:
// connections ([Options].MaxConnections, [Options].MaxConnectionsPerUser),
// groups per connection, the length and characters of group names and user
// IDs, the invocation rate ([Options].InvocationRate), incoming record size
// ([Options].MaxMessageSize), waiting invocations and outgoing queues.
// Browser pages of other origins may open WebSockets only when listed in
// [Options].AllowedOrigins. Logs carry connection IDs, never tokens, claims
// or user IDs. The repository's SECURITY.md lists every default and what
// the application must still do.
//
// # Testing
//
// Package github.com/signalhub/signalhub/hubtest serves a hub to real
// clients over in-memory pipes, as net/http/httptest does for handlers:
// no port, no token, no browser. hubtest.NewServer(t, hubtest.NewHub(t,
// opts)) runs the same negotiate, WebSocket, encoding and framing code as
// real connections; srv.Connect("alice") connects a client as a user, and
// the client records what the hub sends it (Expect, Next, ExpectNothing).
// hubtest.NewNetworkServer does the same over loopback TCP, and
// hubtest.NewCluster joins several hubs through an in-memory backplane.
//
// # Protocol
//
// The hub speaks negotiate versions 0 and 1, WebSockets with the JSON and
// MessagePack hub protocols (handshake versions 1 and 2), skipNegotiation
// clients, blocking and non-blocking invocations, streaming both ways,
// Ping, Close with an error and allowReconnect, client results, and
// stateful reconnect ([Options].StatefulReconnect): a client whose
// WebSocket drops resumes the same connection, with its groups, on a new
// one, and neither side loses or repeats a message.
package signalhub
