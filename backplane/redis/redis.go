package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"

	"github.com/signalhub/signalhub/backplane"
)

// DefaultPrefix is the channel prefix used when Options.Prefix is empty.
const DefaultPrefix = "signalhub"

var (
	errNoClient     = errors.New("redis backplane: Options.Client is nil")
	errNilHandler   = errors.New("redis backplane: start: nil handler")
	errStarted      = errors.New("redis backplane: start: already started")
	errNotStarted   = errors.New("redis backplane: not started")
	errDisconnected = errors.New("no connection to redis, reconnecting")
)

// Options configures a Backplane. Only Client is required.
type Options struct {
	// Client reaches the Redis server. It is built and closed by the
	// caller, who chooses its address, TLS, credentials, pool size and
	// timeouts; its dial settings also govern the reconnections of the
	// pub/sub connection. Close does not close it. Several Backplanes may
	// share one client.
	Client *goredis.Client

	// Prefix is put in front of every channel name, with a colon:
	// channel "all" is the Redis channel "signalhub:all" by default. Hubs
	// that share a Redis server form separate clusters when their
	// prefixes differ. Defaults to DefaultPrefix.
	Prefix string

	// Logger receives connection losses and recoveries, and dropped
	// messages, at Warn. Defaults to slog.Default().
	Logger *slog.Logger
}

// state is the lifecycle of a Backplane.
type state uint32

const (
	created state = iota
	started
	closed
)

// Backplane is one hub node's connection to a Redis pub/sub backplane. It
// implements backplane.Backplane; create it with New. It is safe for
// concurrent use, but Subscribe and Unsubscribe calls for one channel
// should not overlap (a hub serialises them): the outcome of overlapping
// calls is not defined.
//
// A Backplane runs two goroutines between Start and Close: one reads the
// pub/sub connection, the other calls the Handler. See the package
// documentation for the queue between them and for reconnection.
type Backplane struct {
	client *goredis.Client
	ps     *goredis.PubSub // every subscription of the node; closed by Close
	prefix string          // Options.Prefix + ":"
	log    *slog.Logger

	state atomic.Uint32 // a state; changed under mu
	down  atomic.Bool   // the pub/sub connection is broken; set by the reader
	done  chan struct{} // closed by Close
	wg    sync.WaitGroup

	// ctx is the reader's, for its reconnection attempts; Close cancels
	// it so that a dial in progress does not hold Close up.
	ctx    context.Context
	cancel context.CancelFunc

	// order is held while a subscription is asked for and by the reader
	// while it drops one that nobody wants any more, so that the reader's
	// UNSUBSCRIBE cannot overtake a SUBSCRIBE of the same channel.
	order chan struct{}

	// mu guards the queue, wanted and waiters; notEmpty and notFull wait
	// on it. It is never held during I/O or while the Handler runs.
	mu       sync.Mutex
	notEmpty sync.Cond // the Handler's goroutine waits for a message
	notFull  sync.Cond // the reader waits for room in the queue
	queue    queue
	dropped  int                   // messages dropped since the last one queued
	wanted   map[string]struct{}   // Redis channels Subscribe has asked for and not given up
	waiters  map[confirm][]*waiter // Subscribe and Unsubscribe calls awaiting Redis
	nwaiters int
}

// confirm identifies a confirmation from Redis: the reply to SUBSCRIBE or
// UNSUBSCRIBE of one Redis channel.
type confirm struct {
	unsubscribe bool
	channel     string
}

// waiter is a call waiting for a confirmation; ok is closed when it comes.
type waiter struct {
	key confirm
	ok  chan struct{}
}

// New returns a Backplane that publishes and subscribes through
// opts.Client, to be started by the hub. It does no I/O: the pub/sub
// connection is opened by Start, so a server that is down shows up as
// errors of Subscribe and Publish, not of New. It returns an error if
// opts.Client is nil.
func New(opts Options) (*Backplane, error) {
	if opts.Client == nil {
		return nil, errNoClient
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	b := &Backplane{
		client:  opts.Client,
		ps:      opts.Client.Subscribe(context.Background()), // no channels: no I/O yet
		prefix:  opts.Prefix + ":",
		log:     opts.Logger,
		done:    make(chan struct{}),
		order:   make(chan struct{}, 1),
		wanted:  make(map[string]struct{}),
		waiters: make(map[confirm][]*waiter),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.notEmpty.L = &b.mu
	b.notFull.L = &b.mu
	return b, nil
}

// Start opens the pub/sub connection in the background and starts
// delivering the messages of subscribed channels to h, one at a time,
// until Close. It does not wait for Redis. It returns an error if ctx is
// done, if h is nil, if it was called before, and ErrClosed after Close.
func (b *Backplane) Start(ctx context.Context, h backplane.Handler) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis backplane: start: %w", err)
	}
	if h == nil {
		return errNilHandler
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch state(b.state.Load()) {
	case started:
		return errStarted
	case closed:
		return fmt.Errorf("redis backplane: start: %w", backplane.ErrClosed)
	}
	b.state.Store(uint32(started))
	b.wg.Add(2)
	go b.receive()
	go b.deliver(h)
	return nil
}

// ready checks that op may run now.
func (b *Backplane) ready(ctx context.Context, op, channel string) error {
	switch state(b.state.Load()) {
	case closed:
		return fmt.Errorf("redis backplane: %s %q: %w", op, channel, backplane.ErrClosed)
	case created:
		return fmt.Errorf("redis backplane: %s %q: %w", op, channel, errNotStarted)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis backplane: %s %q: %w", op, channel, err)
	}
	return nil
}

// failed wraps the error of op on channel: ErrClosed once the Backplane is
// closed, ErrUnavailable otherwise.
func (b *Backplane) failed(op, channel string, err error) error {
	if state(b.state.Load()) == closed {
		return fmt.Errorf("redis backplane: %s %q: %w", op, channel, backplane.ErrClosed)
	}
	return fmt.Errorf("redis backplane: %s %q: %w: %w", op, channel, backplane.ErrUnavailable, err)
}

// Subscribe subscribes the node to channel and returns once Redis has
// confirmed it, so that a message published afterwards reaches the
// Handler. It may be called from the Handler. It blocks until then, or
// until ctx is done, and returns an error wrapping
// backplane.ErrUnavailable if Redis cannot be reached or ctx ends first
// (the subscription is then withdrawn), ErrClosed after Close, and an
// error before Start. Subscribing again to a channel is harmless.
func (b *Backplane) Subscribe(ctx context.Context, channel string) error {
	const op = "subscribe"
	if err := b.ready(ctx, op, channel); err != nil {
		return err
	}
	if b.down.Load() {
		return b.failed(op, channel, errDisconnected)
	}
	name := b.prefix + channel
	select {
	case b.order <- struct{}{}:
	case <-ctx.Done():
		return b.failed(op, channel, ctx.Err())
	case <-b.done:
		return b.failed(op, channel, backplane.ErrClosed)
	}
	b.mu.Lock()
	_, had := b.wanted[name]
	b.wanted[name] = struct{}{}
	w := b.awaitLocked(confirm{channel: name})
	b.mu.Unlock()
	err := b.ps.Subscribe(ctx, name)
	<-b.order
	if err == nil {
		err = b.wait(ctx, w)
	}
	if err != nil {
		// A SUBSCRIBE that went out, or that go-redis will send again when
		// it reconnects, still takes effect; the reader drops it when its
		// confirmation comes and the channel is not wanted.
		b.mu.Lock()
		b.abandonLocked(w)
		if !had {
			delete(b.wanted, name)
		}
		b.mu.Unlock()
		return b.failed(op, channel, err)
	}
	return nil
}

// Unsubscribe unsubscribes the node from channel and returns once Redis
// has confirmed it, so that a message published afterwards does not reach
// the Handler (messages already read may still be delivered). It may be
// called from the Handler. If the pub/sub connection is broken, the
// channel is simply left out of the next one. It blocks until Redis
// confirms or ctx is done, returning an error wrapping
// backplane.ErrUnavailable in the latter case, ErrClosed after Close, and
// an error before Start.
func (b *Backplane) Unsubscribe(ctx context.Context, channel string) error {
	const op = "unsubscribe"
	if err := b.ready(ctx, op, channel); err != nil {
		return err
	}
	name := b.prefix + channel
	b.mu.Lock()
	delete(b.wanted, name)
	w := b.awaitLocked(confirm{unsubscribe: true, channel: name})
	b.mu.Unlock()
	err := b.ps.Unsubscribe(ctx, name)
	if err != nil {
		// go-redis forgot the channel before writing, and a failed write
		// closes the connection, so no later connection subscribes to it.
		b.mu.Lock()
		b.abandonLocked(w)
		b.mu.Unlock()
		if state(b.state.Load()) == closed {
			return b.failed(op, channel, err)
		}
		return nil
	}
	if err := b.wait(ctx, w); err != nil {
		b.mu.Lock()
		b.abandonLocked(w)
		b.mu.Unlock()
		return b.failed(op, channel, err)
	}
	return nil
}

// Publish sends data to the nodes subscribed to channel with one PUBLISH,
// which it does not retry, and returns when Redis has answered. It blocks
// no longer than ctx, and no longer than the client's own timeouts, and
// returns an error wrapping backplane.ErrUnavailable if the PUBLISH
// failed, ErrClosed after Close, and an error before Start. The caller may
// reuse data when it returns.
func (b *Backplane) Publish(ctx context.Context, channel string, data []byte) error {
	const op = "publish to"
	if err := b.ready(ctx, op, channel); err != nil {
		return err
	}
	cmd := publishCmd{goredis.NewIntCmd(ctx, "publish", b.prefix+channel, data)}
	if err := b.client.Process(ctx, cmd); err != nil {
		return b.failed(op, channel, err)
	}
	return nil
}

// publishCmd is a PUBLISH that go-redis never retries: a retry after a
// lost reply would deliver the message twice.
type publishCmd struct{ *goredis.IntCmd }

// NoRetry implements goredis.Cmder.
func (publishCmd) NoRetry() bool { return true }

// Close stops delivery, closes the pub/sub connection, waits for the
// Backplane's goroutines, the running Handler included, and makes every
// later call return an error wrapping backplane.ErrClosed. It does not
// close Options.Client. A Handler must not call it. Close may be called
// without Start; a second Close returns ErrClosed.
func (b *Backplane) Close() error {
	b.mu.Lock()
	if state(b.state.Load()) == closed {
		b.mu.Unlock()
		return fmt.Errorf("redis backplane: close: %w", backplane.ErrClosed)
	}
	b.state.Store(uint32(closed))
	b.notEmpty.Broadcast()
	b.notFull.Broadcast()
	b.mu.Unlock()
	close(b.done)
	b.cancel()
	err := b.ps.Close()
	b.wg.Wait()
	if err != nil && !errors.Is(err, goredis.ErrClosed) {
		return fmt.Errorf("redis backplane: close: %w", err)
	}
	return nil
}
