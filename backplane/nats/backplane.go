package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/signalhub/signalhub/backplane"
)

// queueLength is how many received messages wait for the Handler before
// the NATS client drops new ones (see the package documentation).
const queueLength = 4096

// confirmTimeout bounds one round trip that confirms a batch of
// publishes and subscriptions (see confirm), as nats.Conn.Flush does.
const confirmTimeout = 10 * time.Second

var errNotStarted = errors.New("backplane/nats: not started")

// Options configures a Backplane.
type Options struct {
	// Conn is the connection to the NATS server, built by the application
	// with its URLs, TLS, credentials and reconnect options. Required.
	// Close does not close it. Set nats.ReconnectBufSize(-1) on it so that
	// publishes made while it reconnects fail instead of waiting in the
	// client's buffer (see the package documentation).
	Conn *natsgo.Conn

	// Prefix is the first token or tokens of every subject the Backplane
	// uses. Hubs of one cluster must use the same prefix, and unrelated
	// clusters sharing a server different ones. Defaults to "signalhub".
	// It must be a valid literal subject: dot-separated non-empty tokens
	// of printable ASCII without spaces, '*' or '>'.
	Prefix string

	// Logger receives the Backplane's warnings: lost and regained server
	// connections and dropped messages. Defaults to slog.Default().
	Logger *slog.Logger
}

// Backplane is a backplane.Backplane on core NATS. Create it with New.
// It is safe for concurrent use.
type Backplane struct {
	nc     *natsgo.Conn
	prefix string
	log    *slog.Logger

	queue chan *natsgo.Msg // fed by the NATS client, drained by run
	kick  chan struct{}    // wakes confirmLoop; one pending kick is enough
	done  chan struct{}    // closed by Close to stop run and confirmLoop
	stop  context.CancelFunc
	wg    sync.WaitGroup // run and confirmLoop

	// mu guards state, the two subscription maps, every subscription's
	// fields, next and status.
	mu     sync.Mutex
	state  state
	byName map[string]*subscription
	bySub  map[*natsgo.Subscription]*subscription
	next   *batch             // the calls that the next round trip confirms
	status chan natsgo.Status // the connection's status changes, for run
}

type state uint8

const (
	created state = iota
	started
	closed
)

// subscription is one subscribed channel.
type subscription struct {
	channel string
	sub     *natsgo.Subscription

	pending   int  // Subscribe calls waiting for the server
	confirmed bool // a Subscribe call for it has succeeded
	dropped   int  // the client's drop count when last reported
}

// New returns a Backplane that publishes and subscribes through
// opts.Conn. It starts nothing: the Backplane's two goroutines, one that
// calls the Handler and one that waits for the server's confirmations,
// start with Start and end with Close. New returns an error if opts.Conn
// is nil or opts.Prefix is not a valid subject; it does not check that the
// connection is up, so that an application may start while the server is
// still unreachable.
//
// The decisions that matter for operation are in the package
// documentation: Publish waits for one round trip to the server; a
// Handler that falls more than 4096 messages behind loses messages rather
// than stalling the connection; and the connection should be built with
// nats.ReconnectBufSize(-1) and nats.MaxReconnects(-1).
func New(opts Options) (*Backplane, error) {
	if opts.Conn == nil {
		return nil, errors.New("backplane/nats: Options.Conn is nil")
	}
	if opts.Prefix == "" {
		opts.Prefix = "signalhub"
	}
	if err := checkPrefix(opts.Prefix); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Backplane{
		nc:     opts.Conn,
		prefix: opts.Prefix,
		log:    opts.Logger,
		queue:  make(chan *natsgo.Msg, queueLength),
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		byName: make(map[string]*subscription),
		bySub:  make(map[*natsgo.Subscription]*subscription),
		next:   newBatch(),
	}, nil
}

var _ backplane.Backplane = (*Backplane)(nil)

// Start starts the goroutine that calls h for every message of the
// subscribed channels and the one that waits for the server's
// confirmations, until Close. It does not wait for the server. It returns
// ErrClosed after Close and an error if called twice or with a nil h.
func (b *Backplane) Start(ctx context.Context, h backplane.Handler) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("backplane/nats: start: %w", err)
	}
	if h == nil {
		return errors.New("backplane/nats: start: nil Handler")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case started:
		return errors.New("backplane/nats: start: already started")
	case closed:
		return fmt.Errorf("backplane/nats: start: %w", backplane.ErrClosed)
	}
	b.state = started
	b.status = b.nc.StatusChanged(natsgo.CONNECTED, natsgo.RECONNECTING, natsgo.DISCONNECTED, natsgo.CLOSED)
	stopCtx, stop := context.WithCancel(context.Background())
	b.stop = stop
	b.wg.Add(2)
	go b.run(h, b.status)
	go b.confirmLoop(stopCtx)
	return nil
}

// ready checks, under b.mu, that the Backplane may serve op.
func (b *Backplane) ready(op, channel string) error {
	switch b.state {
	case closed:
		return fmt.Errorf("backplane/nats: %s %q: %w", op, channel, backplane.ErrClosed)
	case created:
		return fmt.Errorf("backplane/nats: %s %q: %w", op, channel, errNotStarted)
	}
	return nil
}

// connected reports an error wrapping backplane.ErrUnavailable unless the
// connection is up.
func (b *Backplane) connected(op, channel string) error {
	if s := b.nc.Status(); s != natsgo.CONNECTED {
		return fmt.Errorf("backplane/nats: %s %q: connection %s: %w", op, channel, s, backplane.ErrUnavailable)
	}
	return nil
}

func checkCall(ctx context.Context, op, channel string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("backplane/nats: %s %q: %w", op, channel, err)
	}
	if channel == "" {
		return fmt.Errorf("backplane/nats: %s: empty channel name", op)
	}
	return nil
}

// Subscribe subscribes to channel and waits until the server has
// confirmed it, so that a message published after Subscribe returns
// reaches the Handler. The wait is bounded by ctx, and by 10 seconds.
// Subscribing to a subscribed channel waits for the server again and
// changes nothing else.
//
// It returns an error wrapping backplane.ErrUnavailable at once if the
// connection is not up, and after ctx ends if the server does not answer;
// the channel is then left unsubscribed, unless another Subscribe call for
// it succeeds. It returns ErrClosed after Close.
func (b *Backplane) Subscribe(ctx context.Context, channel string) error {
	const op = "subscribe"
	if err := checkCall(ctx, op, channel); err != nil {
		return err
	}
	b.mu.Lock()
	if err := b.ready(op, channel); err != nil {
		b.mu.Unlock()
		return err
	}
	if err := b.connected(op, channel); err != nil {
		b.mu.Unlock()
		return err
	}
	s := b.byName[channel]
	if s == nil {
		sub, err := b.nc.ChanSubscribe(b.subject(channel), b.queue)
		if err != nil {
			b.mu.Unlock()
			return fmt.Errorf("backplane/nats: %s %q: %w", op, channel, unavailable(err))
		}
		s = &subscription{channel: channel, sub: sub}
		b.byName[channel] = s
		b.bySub[sub] = s
	}
	s.pending++
	b.mu.Unlock()

	err := b.confirm(ctx)

	b.mu.Lock()
	defer b.mu.Unlock()
	s.pending--
	if err != nil {
		if !s.confirmed && s.pending == 0 && b.byName[channel] == s {
			b.drop(s)
		}
		return fmt.Errorf("backplane/nats: %s %q: %w", op, channel, err)
	}
	if b.state == closed {
		return fmt.Errorf("backplane/nats: %s %q: %w", op, channel, backplane.ErrClosed)
	}
	s.confirmed = true
	return nil
}

// drop forgets s and ends its NATS subscription. b.mu must be held. The
// client removes the subscription before Unsubscribe returns, so no
// message of it is queued afterwards; run skips those queued before.
func (b *Backplane) drop(s *subscription) {
	delete(b.byName, s.channel)
	delete(b.bySub, s.sub)
	// An error means the connection is closed, which ended the
	// subscription already.
	_ = s.sub.Unsubscribe()
}

// Unsubscribe ends the subscription to channel: no message published
// after it returns reaches the Handler, nor any still queued for it. It
// does not wait for the server, and works while the connection is down
// (the client will not subscribe again when it reconnects). Unsubscribing
// from a channel that is not subscribed does nothing. It returns ErrClosed
// after Close.
func (b *Backplane) Unsubscribe(ctx context.Context, channel string) error {
	const op = "unsubscribe"
	if err := checkCall(ctx, op, channel); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.ready(op, channel); err != nil {
		return err
	}
	if s := b.byName[channel]; s != nil {
		b.drop(s)
	}
	return nil
}

// Publish sends data on channel and waits until the server has it, not
// for the subscribers: a node that subscribes after Publish returns does
// not get the message, and a nil error means the server took it. The
// NATS client copies data, which the caller may reuse at once. Concurrent
// calls share one round trip to the server (see the package
// documentation).
//
// It returns an error wrapping backplane.ErrUnavailable if the connection
// is not up, if the client refuses the message while reconnecting, or if
// the server does not confirm it within ctx (and 10 seconds), an error
// wrapping nats.ErrMaxPayload for data larger than the server accepts,
// and ErrClosed after Close. When the client's write buffer is full, it
// writes to the socket before Publish can watch ctx; the connection's
// nats.FlusherTimeout bounds that write.
func (b *Backplane) Publish(ctx context.Context, channel string, data []byte) error {
	const op = "publish to"
	if err := checkCall(ctx, op, channel); err != nil {
		return err
	}
	b.mu.Lock()
	err := b.ready(op, channel)
	b.mu.Unlock()
	if err != nil {
		return err
	}
	if err := b.connected(op, channel); err != nil {
		return err
	}
	if err := b.nc.Publish(b.subject(channel), data); err != nil {
		return fmt.Errorf("backplane/nats: %s %q: %w", op, channel, unavailable(err))
	}
	if err := b.confirm(ctx); err != nil {
		return fmt.Errorf("backplane/nats: %s %q: %w", op, channel, err)
	}
	return nil
}

// unavailable wraps backplane.ErrUnavailable around the NATS client's
// errors that mean it cannot reach the server now.
func unavailable(err error) error {
	switch {
	case errors.Is(err, natsgo.ErrConnectionClosed),
		errors.Is(err, natsgo.ErrConnectionReconnecting),
		errors.Is(err, natsgo.ErrConnectionDraining),
		errors.Is(err, natsgo.ErrReconnectBufExceeded),
		errors.Is(err, natsgo.ErrDisconnected),
		errors.Is(err, natsgo.ErrStaleConnection):
		return fmt.Errorf("%w: %w", backplane.ErrUnavailable, err)
	}
	return err
}

// Close ends every subscription, stops delivery and waits for the
// Handler to return. Calls waiting for the server return ErrClosed. Later calls of every method return ErrClosed. It may
// be called without Start, and must not be called from the Handler. It
// does not close the connection, which stays the application's.
func (b *Backplane) Close() error {
	b.mu.Lock()
	if b.state == closed {
		b.mu.Unlock()
		return fmt.Errorf("backplane/nats: close: %w", backplane.ErrClosed)
	}
	wasStarted := b.state == started
	b.state = closed
	for _, s := range b.byName {
		b.drop(s)
	}
	b.mu.Unlock()
	if !wasStarted {
		return nil
	}
	close(b.done)
	b.stop()
	b.wg.Wait()
	b.nc.RemoveStatusListener(b.status)
	return nil
}
