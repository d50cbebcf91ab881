// Package backplane is the contract between a hub and the engines that
// connect hub nodes into a cluster: the [Backplane] interface, which an
// engine implements once per node, and [Message], the record a hub puts in
// every publish, with its binary form.
//
// The package knows nothing about hubs or connections and imports only the
// standard library, so an engine depends on it and on its own client
// library, never on the hub. backplane/backplanetest holds an in-memory
// engine and the conformance suite every engine must pass.
//
// # Channels
//
// A hub publishes on named channels of its choosing: one for every node,
// such as "all", and one per audience, such as "user:alice", "group:room 1"
// or "node:n1". Channel names are opaque to engines and may hold any bytes,
// spaces, colons, wildcard characters of the engine's server and invalid
// UTF-8 included. An engine maps each name to one of its own (under a
// prefix the user configures, so that several hubs can share a server) and
// must not let one channel's messages reach another's subscribers, as a
// pattern subscription would. An engine may reject the empty name.
//
// # Delivery
//
// A hub delivers a send to its own connections first, then publishes a
// Message whose Origin is its node ID on the audience's channel. Every node
// subscribed to that channel gets the message, the publisher included;
// peers deliver it to their connections and the origin drops its own echo.
// A local send therefore never waits for the network, and each connection
// gets the message once, from the node that holds it.
//
// The guarantee is at most once. Engines keep no history and send no
// acknowledgements: a message published while a node is cut off from the
// server, or dropped by a server protecting itself from a slow subscriber,
// is lost, not retried. A Publish that returns an error wrapping
// [ErrUnavailable] may have reached some nodes, none, or all; the local
// delivery has happened either way. Messages of one publisher on one
// channel arrive in the order of the Publish calls that returned; nothing
// is promised across channels or across publishers.
//
// Requests to another node, such as adding one of its connections to a
// group, travel as control messages on that node's channel with an ID; the
// node answers with a [Reply] of the same ID on the requester's channel,
// and the requester's wait for it is bounded by its context.
//
// # Writing an engine
//
// An engine's methods are safe for concurrent use. It calls the Handler
// from one goroutine at a time and lets the Handler call Publish, Subscribe
// and Unsubscribe of the same Backplane (a hub answers requests and joins
// channels from its Handler), so the goroutine that reads from the server
// must not be the one that runs the Handler. It accepts a client the user
// built, so that dialing, TLS and pooling stay in the user's hands, and
// wraps [ErrUnavailable] in the errors it returns when that client cannot
// reach its server.
//
// New capabilities arrive as optional interfaces that a hub discovers with
// a type assertion, never as new methods of [Backplane].
package backplane
