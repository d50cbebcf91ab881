package backplanetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/signalhub/signalhub/backplane"
)

// QueueLength is how many messages each node of a Bus holds for its Handler.
const QueueLength = 4096

var (
	errEmptyChannel = errors.New("backplanetest: empty channel name")
	errNotStarted   = errors.New("backplanetest: node not started")
)

// Bus is an in-memory broker for the nodes of one cluster. Create it with
// NewBus and one node per hub with Node. A Bus needs no closing: its nodes
// own their goroutines, and Close on each node stops them.
//
// Delivery follows the backplane contract. Each node has a delivery
// goroutine that calls its Handler and a queue of QueueLength messages.
// Publish never blocks: if the queue of any node subscribed to the channel
// is full, because its Handler is slow or stuck, Publish reaches no node
// and returns an error wrapping backplane.ErrUnavailable, so a slow
// consumer shows up as errors at its publishers instead of as a hang or a
// silent loss. Messages are copied on Publish, and again for each Handler,
// which owns its copy. Channel names are matched byte for byte; the empty
// name is rejected, as some engines do. Subscribe, Unsubscribe and Publish
// return an error before Start, to catch a caller that gets the order
// wrong.
//
// A Bus is safe for concurrent use.
type Bus struct {
	// mu guards available, subs and the state and channels of every node.
	// Publish enqueues under it, which keeps the messages of one publisher
	// in the same order in every queue.
	mu        sync.Mutex
	available bool
	subs      map[string]map[*node]struct{} // channel -> subscribed nodes
}

// NewBus returns an empty, available Bus.
func NewBus() *Bus {
	return &Bus{available: true, subs: make(map[string]map[*node]struct{})}
}

// Node returns a new node connected to the bus, to be started with
// Backplane.Start and closed with Backplane.Close.
func (b *Bus) Node() backplane.Backplane {
	return &node{
		bus:      b,
		queue:    make(chan delivery, QueueLength),
		done:     make(chan struct{}),
		channels: make(map[string]struct{}),
	}
}

// SetAvailable simulates an outage of the broker (false) and its end
// (true). While the bus is unavailable, Publish and Subscribe of every node
// return an error wrapping backplane.ErrUnavailable; Unsubscribe, Start and
// Close still work, since they need no broker, and messages already queued
// are still delivered. Subscriptions survive the outage, as they do with an
// engine that subscribes again when it reconnects.
func (b *Bus) SetAvailable(available bool) {
	b.mu.Lock()
	b.available = available
	b.mu.Unlock()
}

type nodeState uint8

const (
	created nodeState = iota
	started
	closed
)

// delivery is a message in a node's queue. data is the bus's copy, shared
// by every receiver and never written.
type delivery struct {
	channel string
	data    []byte
}

// node is one member of a Bus.
type node struct {
	bus   *Bus
	queue chan delivery // sent to under bus.mu, received by run
	done  chan struct{} // closed by Close to stop run
	wg    sync.WaitGroup

	// Guarded by bus.mu.
	state    nodeState
	channels map[string]struct{} // subscribed channels
}

func (n *node) Start(ctx context.Context, h backplane.Handler) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("backplanetest: start: %w", err)
	}
	if h == nil {
		return errors.New("backplanetest: start: nil handler")
	}
	n.bus.mu.Lock()
	defer n.bus.mu.Unlock()
	switch n.state {
	case started:
		return errors.New("backplanetest: start: already started")
	case closed:
		return fmt.Errorf("backplanetest: start: %w", backplane.ErrClosed)
	}
	n.state = started
	n.wg.Add(1)
	go n.run(h)
	return nil
}

// run calls the Handler for each queued message until Close.
func (n *node) run(h backplane.Handler) {
	defer n.wg.Done()
	for {
		select {
		case <-n.done:
			return
		case d := <-n.queue:
			select {
			case <-n.done: // Close wins over a ready message
				return
			default:
			}
			h(d.channel, bytes.Clone(d.data))
		}
	}
}

// ready checks, under bus.mu, that n may use the bus for op.
func (n *node) ready(op, channel string, needBroker bool) error {
	switch {
	case n.state == closed:
		return fmt.Errorf("backplanetest: %s %q: %w", op, channel, backplane.ErrClosed)
	case n.state == created:
		return fmt.Errorf("backplanetest: %s %q: %w", op, channel, errNotStarted)
	case needBroker && !n.bus.available:
		return fmt.Errorf("backplanetest: %s %q: %w", op, channel, backplane.ErrUnavailable)
	}
	return nil
}

func checkCall(ctx context.Context, op, channel string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("backplanetest: %s %q: %w", op, channel, err)
	}
	if channel == "" {
		return fmt.Errorf("backplanetest: %s: %w", op, errEmptyChannel)
	}
	return nil
}

func (n *node) Subscribe(ctx context.Context, channel string) error {
	if err := checkCall(ctx, "subscribe", channel); err != nil {
		return err
	}
	b := n.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := n.ready("subscribe", channel, true); err != nil {
		return err
	}
	subs := b.subs[channel]
	if subs == nil {
		subs = make(map[*node]struct{})
		b.subs[channel] = subs
	}
	subs[n] = struct{}{}
	n.channels[channel] = struct{}{}
	return nil
}

func (n *node) Unsubscribe(ctx context.Context, channel string) error {
	if err := checkCall(ctx, "unsubscribe", channel); err != nil {
		return err
	}
	b := n.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := n.ready("unsubscribe", channel, false); err != nil {
		return err
	}
	n.unsubscribeLocked(channel)
	return nil
}

func (n *node) unsubscribeLocked(channel string) {
	delete(n.channels, channel)
	subs := n.bus.subs[channel]
	delete(subs, n)
	if len(subs) == 0 {
		delete(n.bus.subs, channel)
	}
}

func (n *node) Publish(ctx context.Context, channel string, data []byte) error {
	if err := checkCall(ctx, "publish to", channel); err != nil {
		return err
	}
	b := n.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := n.ready("publish to", channel, true); err != nil {
		return err
	}
	subs := b.subs[channel]
	if len(subs) == 0 {
		return nil
	}
	for s := range subs {
		if len(s.queue) == cap(s.queue) {
			return fmt.Errorf("backplanetest: publish to %q: a subscriber's queue is full: %w", channel, backplane.ErrUnavailable)
		}
	}
	d := delivery{channel: channel, data: bytes.Clone(data)}
	for s := range subs {
		s.queue <- d // room checked above; only publishers send, under b.mu
	}
	return nil
}

func (n *node) Close() error {
	b := n.bus
	b.mu.Lock()
	if n.state == closed {
		b.mu.Unlock()
		return fmt.Errorf("backplanetest: close: %w", backplane.ErrClosed)
	}
	wasStarted := n.state == started
	n.state = closed
	for channel := range n.channels {
		n.unsubscribeLocked(channel)
	}
	b.mu.Unlock()
	if wasStarted {
		close(n.done)
		n.wg.Wait()
	}
	return nil
}
