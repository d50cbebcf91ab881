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
//	hub, err := signalhub.New(&signalhub.Options{
//		Methods: map[string]any{
//			"SendMessage": func(c *signalhub.Context, message string) error {
//				return c.Hub().SendToAll(c.Context(), "ReceiveMessage", c.UserID(), message)
//			},
//		},
//	})
//	...
//	hub.Mount(mux, "/chathub") // POST /chathub/negotiate and the transports at /chathub
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
// a Long Polling connection holds no goroutine.
//
// # Users and groups
//
// A connection's user ID comes from its claims, by default the
// NameIdentifier claim (a JWT's "sub"; see [DefaultUserID]). One user may
// hold many connections, and a send to the user reaches all of them.
// Anonymous connections belong to no user.
//
// Groups are sets of connections managed by the application. A connection
// may be in many groups; membership ends with the connection and is not
// restored when a client reconnects, because a reconnect is a new connection
// with a new ID: re-join groups in [Options].OnConnected or from the client.
//
// Groups are not a security feature. Claims expire and get revoked; group
// membership does not. Check the caller's claims in the hub method that
// adds it to a group, and remove it when its rights change.
//
// # Authentication
//
// Negotiate and connect requests are authenticated by [Options].Authenticate
// (see [NewJWTAuthenticator], which reads the Authorization header or the
// access_token query parameter browsers must use), or by the application's
// own middleware, which stores claims with [ContextWithClaims]. Invalid
// credentials get 401 and create no hub state. Anonymous connections are
// allowed unless [Options].RequireAuth is set.
//
// # Concurrency
//
// A Hub and a [Context] are safe for concurrent use. Each connection has a
// bounded outgoing queue, drained by a writer goroutine that runs only
// while something is queued, and a reading goroutine of the hub's own
// (ServeHTTP returns after the handshake). A send encodes its arguments once and only
// queues the shared bytes, so it never waits for a socket, and the hub lock
// is never held during socket I/O, encoding or callbacks. Messages to one
// connection keep the order in which they were sent. A connection whose
// queue is full is closed with a Close message saying so (see
// [Options].SendQueueLength and [ErrSlowConsumer]) rather than slowing the
// sender or other recipients down.
//
// Hub methods of one connection run one at a time, in order, by default
// ([Options].MaxParallelInvocations); the connection keeps reading while
// they run, so [Context.Context] ends as soon as the client goes away.
// [Options].OnConnected and [Options].OnDisconnected run once each per
// connection, outside locks, and may call any Hub method except
// [Hub.Shutdown] and [Hub.Close], which wait for them.
//
// # Scaling out
//
// With [Options].Backplane set, hubs on several machines form a cluster:
// every send reaches the matching connections on every node, and
// AddToGroup and RemoveFromGroup work for connections held by another node.
// The package backplane defines the small interface engines implement;
// backplanetest has an in-memory bus and the conformance suite. A send is
// delivered locally first, then published once per channel tagged with the
// node's ID; the other nodes deliver to their own connections and the
// origin drops its echo. Delivery across nodes is at most once; order is
// kept per sender and connection for messages that travel on the same
// channel (see docs/scaling.md).
//
// A node subscribes to the channel of a user or a group only while it holds
// one of its connections, so no node receives the traffic of groups it has
// no member of. Connection IDs name their node ("node1.xxxx"), so a group
// change for another node's connection goes straight to that node, which
// answers within a round trip; if no node answers, the caller's context
// bounds the wait (5 s when it has none) and the error wraps
// [ErrConnectionNotFound]. When the backplane is unreachable, local
// connections are still served and the call returns an error wrapping
// [ErrBackplaneUnavailable].
//
// # Shutdown
//
// http.Server.Shutdown does not wait for WebSockets, which are hijacked
// connections, and waits for event streams and polls, which only end with
// their connections. Call [Hub.Shutdown] from
// http.Server.RegisterOnShutdown (or yourself): it sends every client what was queued and a Close message that
// lets clients with automatic reconnect come back, waits for every goroutine
// the hub started, and makes later calls return [ErrHubClosed] and later
// connects get 503.
package signalhub
