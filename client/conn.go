package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// connState is where a Conn is in its life.
type connState uint8

const (
	stateIdle         connState = iota // New, or Start failed: Start may be called
	stateConnecting                    // Start runs
	stateConnected                     // a session runs
	stateReconnecting                  // the session was lost; the supervisor reconnects
	stateEnded                         // ended for good
)

// Conn is a client connection to a SignalR hub. Create it with New (then
// Start) or Dial. Register handlers for server calls with On, call hub
// methods with Invoke, InvokeAs and Send, read their streams with Stream
// and StreamAs, and end it with Close.
//
// A Conn is safe for concurrent use. It runs three goroutines while
// started: a reader for the socket, a supervisor that sends keep-alive
// Pings, watches the server timeout and reconnects, and a dispatcher that
// runs handlers and the On* callbacks one at a time, in order. Close, or
// the connection ending for good, stops all of them. A call with stream
// arguments runs one more goroutine per stream, and waits for it before
// it returns.
type Conn struct {
	opts  Options
	url   *url.URL
	log   *slog.Logger
	epoch time.Time // origin of now(), a monotonic clock

	hmu       sync.RWMutex // guards handlers and observers
	handlers  map[string][]*handler
	observers []func(target string, args []json.RawMessage)

	nextID atomic.Uint64 // invocation IDs, never reset, as in the official clients

	life context.Context // ends when Close is called
	kill context.CancelFunc

	queue        chan *event   // to the dispatcher
	final        chan struct{} // closed by the supervisor when the connection ended for good
	supDone      chan struct{} // closed when the supervisor has exited
	done         chan struct{} // closed when every goroutine has exited (see Done)
	dispatcherID atomic.Uint64 // goroutine ID of the dispatcher, once it runs

	// mu guards state, sess, started and err.
	mu      sync.Mutex
	state   connState
	sess    *session // the live session, when connected
	started bool     // the goroutines were started
	err     error    // why the connection ended, once it has
}

// New returns a Conn for the hub at rawURL (http, https, ws or wss, such as
// "https://example.com/chathub"), configured by opts; nil means defaults.
// It reports an invalid URL or option as an error. New does no I/O and
// starts no goroutine: call Start, or use Dial.
func New(rawURL string, opts *Options) (*Conn, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	u, err := parseHubURL(rawURL)
	if err != nil {
		return nil, err
	}
	c := &Conn{
		opts:     o,
		url:      u,
		log:      o.Logger,
		epoch:    time.Now(),
		handlers: make(map[string][]*handler),
		queue:    make(chan *event, o.QueueLength),
		final:    make(chan struct{}),
		supDone:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	c.life, c.kill = context.WithCancel(context.Background())
	return c, nil
}

// Dial is New followed by Start. On error nothing is left running.
func Dial(ctx context.Context, rawURL string, opts *Options) (*Conn, error) {
	c, err := New(rawURL, opts)
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// now is the Conn's monotonic clock in nanoseconds.
func (c *Conn) now() int64 { return int64(time.Since(c.epoch)) }

// Start negotiates (unless Options.SkipNegotiation), opens the WebSocket
// and completes the hub protocol handshake. It blocks until the connection
// is ready or fails; ctx bounds the whole start, and Close cancels it.
//
// A failed Start leaves the Conn as it was, so Start may be tried again;
// automatic reconnect only applies to connections that started. A Conn
// that has ended cannot start again: create a new one. Start returns
// ErrAlreadyStarted on a Conn that runs (or is starting), ErrClosed after
// Close or once the connection has ended, an *HTTPError for an unexpected
// HTTP status (401 for missing credentials), and errors wrapping
// ErrNegotiate or ErrHandshake when the server refuses.
func (c *Conn) Start(ctx context.Context) error {
	c.mu.Lock()
	switch {
	case c.life.Err() != nil || c.state == stateEnded:
		c.mu.Unlock()
		return ErrClosed
	case c.state != stateIdle:
		c.mu.Unlock()
		return ErrAlreadyStarted
	}
	c.state = stateConnecting
	c.mu.Unlock()

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.life, cancel)
	defer stop()
	s, rest, err := c.connect(sctx)

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.life.Err() != nil { // Close ran meanwhile and ended the Conn
		if s != nil {
			_ = s.ws.CloseNow()
		}
		return ErrClosed
	}
	if err != nil {
		c.state = stateIdle
		return err
	}
	c.state = stateConnected
	c.sess = s
	c.started = true
	go c.dispatch()
	go c.run(s)
	go s.readLoop(rest)
	c.logDebug("connected", s.id, nil)
	return nil
}

// connect runs one whole start: negotiate, WebSocket connect, handshake
// and the first Ping, which the official clients send at once too. It
// returns the session, with its reader not running yet, and the records
// that came with the handshake response.
func (c *Conn) connect(ctx context.Context) (*session, []byte, error) {
	ep := endpoint{url: c.url, token: c.opts.AccessToken}
	if !c.opts.SkipNegotiation {
		var err error
		if ep, err = c.negotiate(ctx); err != nil {
			return nil, nil, err
		}
	}
	ws, err := c.dial(ctx, ep)
	if err != nil {
		return nil, nil, err
	}
	rest, err := c.handshake(ctx, ws)
	if err != nil {
		_ = ws.CloseNow()
		return nil, nil, err
	}
	s := newSession(c, ws, ep.connectionID)
	if err := s.writeLocked(pingRecord, c.opts.HandshakeTimeout); err != nil {
		return nil, nil, s.err()
	}
	return s, rest, nil
}

// ConnectionID returns the ID the server gave the current connection. It
// changes with every reconnect and is "" while not connected and with
// Options.SkipNegotiation.
func (c *Conn) ConnectionID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == nil {
		return ""
	}
	return c.sess.id
}

// Done returns a channel that is closed when the connection has ended for
// good and the client's goroutines have exited, after OnClose returned.
// Waiting for Done inside OnClose or a handler blocks forever.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended: ErrClosed after Close, a
// *CloseError when the server closed it, an error wrapping
// ErrReconnectFailed when reconnecting gave up, or the error that lost the
// connection (ErrServerTimeout, ErrConnectionLost, ErrProtocol). It returns
// nil while the connection has not ended.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateEnded {
		return nil
	}
	return c.err
}

// Close ends the connection: it fails pending Invokes with ErrClosed, sends
// a Close message, closes the socket and stops any reconnect. It returns
// once the client's goroutines have exited and OnClose has run, with one
// exception: called from a handler or callback, it cannot wait for that
// very callback, and returns once the rest has stopped. Close is
// idempotent and always returns nil.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.kill()
	if !c.started && c.state != stateEnded {
		// No goroutine runs; a Start under way sees c.life end and
		// returns ErrClosed.
		c.state = stateEnded
		c.err = ErrClosed
		close(c.done)
	}
	c.mu.Unlock()
	if id := c.dispatcherID.Load(); id != 0 && id == goroutineID() {
		<-c.supDone
		return nil
	}
	<-c.done
	return nil
}

// run is the supervisor: it watches each session and reconnects when one
// is lost, until the connection ends for good.
func (c *Conn) run(s *session) {
	defer close(c.supDone)
	for {
		cause := c.watch(s)
		switch {
		case errors.Is(cause, ErrClosed) || c.life.Err() != nil:
			c.finish(ErrClosed)
			return
		case c.opts.Reconnect == nil || !reconnectable(cause):
			c.finish(cause)
			return
		}
		if s = c.reconnect(cause); s == nil {
			return
		}
	}
}

// reconnectable reports whether a lost connection may be reconnected: not
// when the server closed it without allowing it.
func reconnectable(cause error) bool {
	var ce *CloseError
	return !errors.As(cause, &ce) || ce.AllowReconnect
}

// watch sends keep-alive Pings and enforces the server timeout until the
// session ends or Close is called. It closes the socket and waits for the
// reader, and returns why the session ended.
func (c *Conn) watch(s *session) error {
	timer := time.NewTimer(c.nextCheck(s))
	defer timer.Stop()
	for {
		select {
		case <-s.stop:
			cause := s.err()
			c.closeSocket(s, cause)
			<-s.readerDone
			return cause
		case <-c.life.Done():
			s.end(ErrClosed)
			c.closeSocket(s, ErrClosed)
			<-s.readerDone
			return ErrClosed
		case <-timer.C:
			now := c.now()
			if s.stalled.Load() {
				s.lastRecv.Store(now)
			}
			if time.Duration(now-s.lastRecv.Load()) >= c.opts.ServerTimeout {
				s.abort(ErrServerTimeout)
				continue // s.stop is closed
			}
			if time.Duration(now-s.lastSend.Load()) >= c.opts.KeepAliveInterval {
				s.tryPing()
			}
			timer.Reset(c.nextCheck(s))
		}
	}
}

// nextCheck returns how long the supervisor may sleep before a Ping or the
// server timeout is due.
func (c *Conn) nextCheck(s *session) time.Duration {
	now := c.now()
	d := min(time.Duration(s.lastSend.Load()-now)+c.opts.KeepAliveInterval,
		time.Duration(s.lastRecv.Load()-now)+c.opts.ServerTimeout)
	return max(d, time.Millisecond)
}

// closeSocket closes an ended session's socket as its cause calls for: on
// Close, a Close message and a normal close; after the server's Close, a
// normal close (with a Close message back when the server did not allow a
// reconnect, as the official clients do); otherwise at once.
func (c *Conn) closeSocket(s *session, cause error) {
	var ce *CloseError
	switch {
	case errors.Is(cause, ErrClosed):
		s.sendClose()
		_ = s.ws.Close(websocket.StatusNormalClosure, "")
	case errors.As(cause, &ce):
		if !ce.AllowReconnect {
			s.sendClose()
		}
		_ = s.ws.Close(websocket.StatusNormalClosure, "")
	default:
		_ = s.ws.CloseNow()
	}
}

// reconnect runs the ReconnectPolicy after the session was lost with
// cause. It returns the new session, running, or nil when the connection
// ended for good (the policy gave up or Close was called).
func (c *Conn) reconnect(cause error) *session {
	// A policy that refuses the first attempt ends the connection with the
	// cause, without OnReconnecting, as in the official clients.
	begin := time.Now()
	delay, ok := c.opts.Reconnect(0, 0, cause)
	if !ok {
		c.finish(cause)
		return nil
	}
	c.mu.Lock()
	if c.life.Err() != nil {
		c.mu.Unlock()
		c.finish(ErrClosed)
		return nil
	}
	c.state = stateReconnecting
	c.sess = nil
	c.mu.Unlock()
	c.log.LogAttrs(context.Background(), slog.LevelWarn, "connection lost, reconnecting", slog.Any("err", cause))
	c.emit(&event{kind: evReconnecting, err: cause})

	lastErr := cause
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if delay, ok = c.opts.Reconnect(attempt, time.Since(begin), lastErr); !ok {
				c.finish(fmt.Errorf("%w: gave up after %d attempts: %w", ErrReconnectFailed, attempt, lastErr))
				return nil
			}
		}
		if !c.sleep(delay) {
			c.finish(ErrClosed)
			return nil
		}
		s, rest, err := c.connect(c.life)
		if err != nil {
			if c.life.Err() != nil {
				c.finish(ErrClosed)
				return nil
			}
			lastErr = err
			c.log.LogAttrs(context.Background(), slog.LevelWarn, "reconnect attempt failed",
				slog.Int("attempt", attempt), slog.Any("err", err))
			continue
		}
		c.mu.Lock()
		if c.life.Err() != nil {
			c.mu.Unlock()
			_ = s.ws.CloseNow()
			c.finish(ErrClosed)
			return nil
		}
		c.state = stateConnected
		c.sess = s
		c.mu.Unlock()
		c.logDebug("reconnected", s.id, nil)
		// OnReconnected is queued before the reader starts, so it runs
		// before the handlers of the new connection's messages.
		c.emit(&event{kind: evReconnected, id: s.id})
		go s.readLoop(rest)
		return s
	}
}

// sleep waits for d, or reports false if Close was called first.
func (c *Conn) sleep(d time.Duration) bool {
	if d <= 0 {
		return c.life.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.life.Done():
		return false
	}
}

// emit queues an event for the dispatcher, unless Close is called first.
func (c *Conn) emit(ev *event) {
	select {
	case c.queue <- ev:
	case <-c.life.Done():
	}
}

// finish ends the connection for good with err and lets the dispatcher
// run what is left, then OnClose.
func (c *Conn) finish(err error) {
	c.mu.Lock()
	c.state = stateEnded
	c.sess = nil
	c.err = err
	c.mu.Unlock()
	if errors.Is(err, ErrClosed) {
		c.logDebug("closed", "", nil)
	} else {
		c.logDebug("connection ended", "", err)
	}
	close(c.final)
}

// current returns the live session, or the error for a call made without
// one.
func (c *Conn) current() (*session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.state == stateEnded || c.life.Err() != nil:
		return nil, ErrClosed
	case c.sess == nil:
		return nil, ErrNotConnected
	}
	return c.sess, nil
}

func (c *Conn) logDebug(msg, connID string, err error) {
	ctx := context.Background()
	if !c.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := make([]slog.Attr, 0, 2)
	if connID != "" {
		attrs = append(attrs, slog.String("conn_id", connID))
	}
	if err != nil {
		attrs = append(attrs, slog.Any("err", err))
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, msg, attrs...)
}
