// Package nats is a backplane.Backplane engine on core NATS (no JetStream):
// it joins the hubs of a cluster through a NATS server or cluster that they
// share.
//
// The engine takes a *nats.Conn the application built, so server URLs,
// TLS, credentials and reconnect behaviour stay the application's choice,
// and the application closes it after the Backplane:
//
//	nc, err := natsgo.Connect(url, natsgo.ReconnectBufSize(-1), natsgo.MaxReconnects(-1))
//	...
//	defer nc.Close()
//	bp, err := nats.New(nats.Options{Conn: nc})
//	...
//	hub, err := signalhub.New(&signalhub.Options{Backplane: bp})
//
// # Subjects
//
// Each channel is one subject under [Options.Prefix]: "<prefix>.c.<name>"
// where <name> is the channel name in unpadded base64url, so that any name
// (spaces, dots, NATS wildcards, invalid UTF-8) becomes one literal token
// and no channel can match another's subscription. A name longer than 256
// bytes becomes "<prefix>.h.<hash>", its SHA-256 in base64url, which keeps
// every protocol line far below the server's 4 KiB control-line limit: a
// longer line would make the server close the connection, and group names
// may come from clients. Hubs that share a server keep apart by using
// different prefixes.
//
// # Publishing
//
// Publish returns once the server has the message, not when the NATS
// client has buffered it: it waits for the answer to a PING sent after
// the message, which one round trip of the connection shares among all
// the Publish and Subscribe calls waiting at that moment. So a nil error
// means the server has processed the message, and a node that subscribes
// after Publish returned does not get it, as the backplane contract
// requires. A single caller thus publishes at most once per round trip to
// the server, as with a Redis PUBLISH; concurrent callers share round
// trips and go faster together. Subscribe waits in the same way, until
// the server has the subscription.
//
// Both confirmations come from the server the node is connected to. In a
// cluster of NATS servers, a subscription spreads to the other servers
// asynchronously, usually within milliseconds, so a message published
// through another server just after Subscribe returned may miss it. The
// contract holds exactly when the hubs share one server.
//
// # Delivery
//
// Each subscribed channel is one core NATS subscription. Every
// subscription of a Backplane feeds one bounded queue of 4096 messages,
// which one goroutine drains, calling the Handler for each message in the
// order the connection received it: one call at a time, in publish order
// for one publisher on one channel. The NATS client's reading goroutine
// only enqueues, so a Handler may call Publish, Subscribe and Unsubscribe.
//
// When the queue is full, because the Handler is slower than the traffic,
// the NATS client drops the new messages of this node (a slow consumer in
// NATS terms) and reports nats.ErrSlowConsumer to the connection's error
// handler; the Backplane logs how many it lost at Warn level once the
// queue has room again. It does not block instead: the reading goroutine
// is the connection's, shared with the application's other subscriptions
// and with the server's pings, and a client that stops reading is cut off
// by the server as a slow consumer, losing more. Dropping matches the
// backplane guarantee, which is at most once. The queue holds pointers,
// so its memory is bounded by 4096 times the largest message the server
// accepts (1 MiB by default), and in practice by the hub's message sizes.
//
// # Faults
//
// Publish and Subscribe check the connection's status first: while the
// client is not connected (reconnecting, connecting, draining or closed)
// they fail at once with an error wrapping backplane.ErrUnavailable. The
// client subscribes again on its own when it reconnects, so the node's
// channels come back without the hub's help; messages published in the
// meantime are lost.
//
// Between the server going away and the client noticing, a publish may
// still be accepted. With its default options the NATS client keeps such
// messages in an 8 MiB reconnect buffer and sends them after reconnecting,
// minutes later perhaps, although Publish has reported them as failed when
// its context ran out; set nats.ReconnectBufSize(-1) so that the client
// refuses them at once instead, which this engine reports as
// backplane.ErrUnavailable.
// Lower nats.PingInterval and nats.MaxPingsOutstanding to notice a silent
// server sooner, and keep nats.MaxReconnects(-1) so that the client never
// gives up: once the connection is closed the Backplane stays unavailable.
package nats
