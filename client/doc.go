// Package client is a Go client for SignalR hubs: ASP.NET Core SignalR
// servers and the Go hub of package signalhub. It speaks the JSON hub
// protocol over WebSockets.
//
//	c, err := client.Dial(ctx, "https://example.com/chathub", &client.Options{
//		AccessToken: func(ctx context.Context) (string, error) { return token, nil },
//		Reconnect:   client.DefaultReconnect(),
//	})
//	if err != nil { ... }
//	defer c.Close()
//	c.On("ReceiveMessage", func(user, message string) { ... })
//	sum, err := client.InvokeAs[int](ctx, c, "Add", 40, 2)
//
// # Connecting
//
// [Conn.Start] (or [Dial]) negotiates with POST {hub}/negotiate (following
// redirects), opens the WebSocket, completes the handshake and sends a
// Ping, as the official clients do. [Options].AccessToken is called for
// every negotiate and every connect. [Options].SkipNegotiation connects the
// WebSocket directly.
//
// # Calls in both directions
//
// [Conn.Invoke] and [InvokeAs] call a hub method and wait for its result;
// [Conn.Send] does not wait. The server's invocations reach the handlers
// registered with [Conn.On], typed Go funcs whose parameters are decoded
// from the JSON arguments. A handler that returns a value answers a server
// invocation that waits for one (client results).
//
// # Streaming
//
// [Conn.Stream] and [StreamAs] call a hub method that streams (a
// <-chan T or an iter.Seq in the Go hub, an IAsyncEnumerable or a
// ChannelReader in ASP.NET Core) and return its items as an iter.Seq2 to
// range over; breaking out of the loop or ending ctx cancels the stream on
// the server. An error Completion ends the loop with an
// [*InvocationError]:
//
//	for n, err := range client.StreamAs[int](ctx, c, "Counter", 10) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(n)
//	}
//
// Items wait in a buffer of [Options].StreamBufferCapacity. A loop that
// falls behind makes the client stop reading, which slows the server down
// through TCP, for at most [Options].StreamStallTimeout; then the stream
// fails with [ErrStreamStalled] and the rest of the connection goes on.
//
// Streams go the other way as arguments: a <-chan T, an iter.Seq[T] or an
// iter.Seq2[T, error] passed to Invoke, Send or Stream is sent item by
// item while the call runs, for a hub method parameter that takes a
// stream. An error from an iter.Seq2 or ctx ending completes the stream
// with an error the hub method sees.
//
// A stream, either way, belongs to one connection: when the connection is
// lost it ends with the connection's error, and a reconnect does not
// resume it.
//
// # Concurrency
//
// A [Conn] is safe for concurrent use. One reader goroutine reads the
// socket, completes Invokes and fills stream buffers; writes are
// serialised. Handlers and the
// OnReconnecting, OnReconnected and OnClose callbacks run one at a time, in
// order, on a dispatcher goroutine, so a handler may call Invoke. Messages
// for the dispatcher wait in a queue of [Options].QueueLength; when it is
// full the reader stops reading until a handler returns, which slows the
// server down through TCP instead of dropping messages or growing memory.
//
// # Keep-alive, close and reconnect
//
// The client sends a Ping when it has sent nothing for
// [Options].KeepAliveInterval and fails the connection with
// [ErrServerTimeout] when it has received nothing for
// [Options].ServerTimeout. A Close message from the server ends the
// connection with a [*CloseError]. With [Options].Reconnect set, a lost
// connection (dropped socket, server timeout, or a server Close that allows
// reconnecting, as a hub shutting down sends) is replaced by a new one:
// negotiate again, new connection ID, OnReconnecting before and
// OnReconnected after. Pending Invokes and streams (both ways) fail with
// the error that lost the connection, and calls made while reconnecting
// fail with [ErrNotConnected] rather than wait, as in the official
// clients. Group memberships belong to the old connection and must be
// restored by the application, for instance in OnReconnected.
//
// [Conn.Close] ends the connection for good and waits for the client's
// goroutines; [Conn.Done] and [Conn.Err] report when and why a connection
// ended.
package client
