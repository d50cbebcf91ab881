package backplane

import "context"

// Backplane carries messages between the hub nodes of a cluster over named
// channels. Each node has its own Backplane value, connected to a server
// (or an in-memory bus) shared by the cluster. See the package
// documentation for channel names and the delivery rule.
//
// A Backplane is safe for concurrent use. Its methods take a context that
// bounds the call only: the subscriptions and the delivery goroutine live
// until Close.
type Backplane interface {
	// Start begins delivering messages of subscribed channels to h until
	// Close. It is called once, before Subscribe and Publish; it does not
	// wait for messages.
	Start(ctx context.Context, h Handler) error

	// Subscribe makes messages published on channel from now on reach this
	// node's Handler: a message published after Subscribe returns is
	// delivered. The hub calls it once per channel (it reference-counts its
	// subscriptions); engines may treat a repeat as a no-op. It returns an
	// error wrapping ErrUnavailable when the engine cannot reach its
	// server, and ErrClosed after Close.
	Subscribe(ctx context.Context, channel string) error

	// Unsubscribe stops delivery of channel: a message published after
	// Unsubscribe returns does not reach this node. Messages already on
	// their way may still be delivered. It returns ErrClosed after Close.
	Unsubscribe(ctx context.Context, channel string) error

	// Publish sends data to every node subscribed to channel, the
	// publisher itself included if it is subscribed, at most once each.
	// It does not wait for the messages to be handled, and the caller may
	// reuse data when it returns. Publishing on a channel nobody
	// subscribes to is not an error. It returns an error wrapping
	// ErrUnavailable when the engine cannot reach its server, without
	// blocking longer than ctx allows, and ErrClosed after Close.
	Publish(ctx context.Context, channel string, data []byte) error

	// Close stops delivery, waits for the goroutines the engine started
	// (a running Handler included) and makes later calls, Close included,
	// return ErrClosed. It may be called without Start. A Handler must
	// not call Close, which would wait for itself. Closing a Backplane
	// does not close a client the user passed to the engine.
	Close() error
}

// Handler receives the messages of a node's subscribed channels. The engine
// calls it from one goroutine at a time, in publish order for the messages
// of one publisher on one channel. data is owned by the handler: no one
// else reads or writes it afterwards. A Handler may call Publish, Subscribe
// and Unsubscribe of its Backplane, but not Close. While it runs, the
// node's later messages wait, so it should return quickly.
type Handler func(channel string, data []byte)
