package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/signalhub/signalhub/protocol"
)

// closeTimeout bounds the Close message the client sends when it ends a
// connection itself.
const closeTimeout = 5 * time.Second

// maxIdleReadBuffer is the largest read buffer kept between messages.
const maxIdleReadBuffer = 64 << 10

var (
	pingRecord  = protocol.AppendPing(nil)
	closeRecord = protocol.AppendClose(nil, "", false)
)

// session is one WebSocket connection of a Conn, from the handshake to the
// socket's end. A reconnect makes a new session. Its reader goroutine is
// the only reader; writes are serialised by wmu. The Conn's supervisor
// goroutine closes the socket once the session has ended (see
// Conn.closeSocket), except that abort drops it at once.
type session struct {
	c  *Conn
	ws *websocket.Conn
	id string // connection ID; "" with SkipNegotiation

	wmu chan struct{} // write lock: holds a token while a write runs

	lastSend atomic.Int64 // Conn.now() after the last write
	lastRecv atomic.Int64 // Conn.now() after the last message read
	stalled  atomic.Bool  // the reader waits for room in the dispatcher queue

	// mu guards pending, streams and cause, and the fields of each
	// stream in streams that its doc says it guards.
	mu      sync.Mutex
	pending map[string]*call
	streams map[string]*stream // streams from the server, by invocation ID
	cause   error              // why the session ended; set once
	stop    chan struct{}      // closed when cause is set

	readerDone chan struct{}
}

// call is an Invoke waiting for its Completion.
type call struct {
	target string
	done   chan result // capacity 1
}

type result struct {
	raw json.RawMessage
	err error
}

func newSession(c *Conn, ws *websocket.Conn, id string) *session {
	s := &session{
		c:          c,
		ws:         ws,
		id:         id,
		wmu:        make(chan struct{}, 1),
		pending:    make(map[string]*call),
		streams:    make(map[string]*stream),
		stop:       make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	now := c.now()
	s.lastSend.Store(now)
	s.lastRecv.Store(now)
	return s
}

// end records why the session ended and fails every pending Invoke and
// every stream with it. Only the first call has an effect; it reports
// whether it was first.
func (s *session) end(cause error) bool {
	s.mu.Lock()
	if s.cause != nil {
		s.mu.Unlock()
		return false
	}
	s.cause = cause
	pending := s.pending
	s.pending = nil
	for _, st := range s.streams {
		st.endLocked(cause, false)
	}
	s.streams = nil
	close(s.stop)
	s.mu.Unlock()
	for _, p := range pending {
		p.done <- result{err: cause}
	}
	return true
}

// abort ends the session and drops the socket at once.
func (s *session) abort(cause error) {
	s.end(cause)
	_ = s.ws.CloseNow()
}

// err returns why the session ended, or nil while it runs.
func (s *session) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cause
}

// notConnected is the error for a call made on an ended session.
func notConnected(cause error) error {
	if errors.Is(cause, ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("%w: %w", ErrNotConnected, cause)
}

// register records an Invoke waiting for the Completion of id.
func (s *session) register(id, target string) (<-chan result, error) {
	ch := make(chan result, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cause != nil {
		return nil, notConnected(s.cause)
	}
	s.pending[id] = &call{target: target, done: ch}
	return ch, nil
}

// forget drops the pending Invoke id, whose caller stopped waiting.
func (s *session) forget(id string) {
	s.mu.Lock()
	delete(s.pending, id)
	s.mu.Unlock()
}

// resolve hands a Completion (or a failure) to its pending Invoke. An
// unknown ID is ignored: its caller gave up, as the official clients do.
func (s *session) resolve(id string, r func(target string) result) {
	s.mu.Lock()
	p := s.pending[id]
	delete(s.pending, id)
	s.mu.Unlock()
	if p != nil {
		p.done <- r(p.target)
	}
}

// write sends rec, one or more whole records, as one text message. ctx
// bounds the wait for the write lock only: a write that has begun is
// bounded by ServerTimeout instead, because abandoning it half-way would
// break the socket for every caller.
func (s *session) write(ctx context.Context, rec []byte) error {
	select {
	case s.wmu <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stop:
		return notConnected(s.err())
	}
	defer func() { <-s.wmu }()
	select {
	case <-s.stop:
		return notConnected(s.err())
	default:
	}
	return s.writeLocked(rec, s.c.opts.ServerTimeout)
}

// tryPing sends a Ping unless a write is under way, which keeps the
// connection alive as well.
func (s *session) tryPing() {
	select {
	case s.wmu <- struct{}{}:
	default:
		return
	}
	defer func() { <-s.wmu }()
	_ = s.writeLocked(pingRecord, s.c.opts.ServerTimeout)
}

// writeLocked writes with the write lock held. A failed write aborts the
// session.
func (s *session) writeLocked(rec []byte, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.ws.Write(ctx, websocket.MessageText, rec); err != nil {
		s.abort(fmt.Errorf("%w: write: %w", ErrConnectionLost, err))
		return notConnected(s.err())
	}
	s.lastSend.Store(s.c.now())
	return nil
}

// sendClose writes a Close message on an ended session, best effort.
func (s *session) sendClose() {
	t := time.NewTimer(closeTimeout)
	defer t.Stop()
	select {
	case s.wmu <- struct{}{}:
	case <-t.C:
		return
	}
	defer func() { <-s.wmu }()
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_ = s.ws.Write(ctx, websocket.MessageText, closeRecord)
}

// readLoop reads until the socket ends, starting with the records that
// followed the handshake response. It ends the session with the reason.
func (s *session) readLoop(first []byte) {
	defer close(s.readerDone)
	err := s.handleData(first)
	var buf bytes.Buffer
	for err == nil {
		typ, r, rerr := s.ws.Reader(context.Background())
		if rerr != nil {
			err = s.readError(rerr)
			break
		}
		if typ != websocket.MessageText {
			err = fmt.Errorf("%w: binary message on the JSON hub protocol", ErrProtocol)
			break
		}
		buf.Reset()
		if _, rerr := buf.ReadFrom(r); rerr != nil {
			err = s.readError(rerr)
			break
		}
		s.lastRecv.Store(s.c.now())
		err = s.handleData(buf.Bytes())
		if buf.Cap() > maxIdleReadBuffer {
			buf = bytes.Buffer{}
		}
	}
	s.end(err)
}

// readError names why a read failed.
func (s *session) readError(err error) error {
	if errors.Is(err, websocket.ErrMessageTooBig) {
		return fmt.Errorf("%w: a message exceeded MaxMessageSize (%d bytes)", ErrProtocol, s.c.opts.MaxMessageSize)
	}
	return fmt.Errorf("%w: %w", ErrConnectionLost, err)
}

// handleData handles every record of one WebSocket message. The server
// must send whole records in each message, as the official clients
// require too.
func (s *session) handleData(data []byte) error {
	for len(data) > 0 {
		rec, rest, ok := protocol.NextRecord(data)
		if !ok {
			return fmt.Errorf("%w: incomplete record at the end of a message", ErrProtocol)
		}
		data = rest
		if err := s.handleRecord(rec); err != nil {
			return err
		}
	}
	return nil
}

// handleRecord handles one hub message.
func (s *session) handleRecord(rec []byte) error {
	m, err := protocol.DecodeMessage(rec)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	switch m.Type {
	case protocol.TypeInvocation:
		return s.enqueue(&m)
	case protocol.TypeCompletion:
		if s.completeStream(&m) {
			return nil
		}
		s.resolve(m.InvocationID, func(target string) result {
			if m.Error != "" {
				return result{err: &InvocationError{Target: target, Message: m.Error}}
			}
			return result{raw: m.Result}
		})
	case protocol.TypeStreamItem:
		if s.streamItem(&m) {
			return nil
		}
		s.resolve(m.InvocationID, func(target string) result {
			return result{err: fmt.Errorf("%w: StreamItem for %q, which is not a stream", ErrProtocol, target)}
		})
	case protocol.TypeClose:
		return &CloseError{Message: m.Error, AllowReconnect: m.AllowReconnect}
	default:
		// Ping only shows the server is alive. Ack and Sequence (stateful
		// reconnect, not negotiated), client-to-server types and unknown
		// types are ignored, as the official clients do.
	}
	return nil
}

// enqueue hands a server invocation to the dispatcher. When the queue is
// full the reader waits, so the server's messages queue up in TCP rather
// than in memory; meanwhile the server timeout is suspended, as the delay
// is the client's.
func (s *session) enqueue(m *protocol.Message) error {
	ev := &event{kind: evInvocation, sess: s, msg: m}
	select {
	case s.c.queue <- ev:
		return nil
	default:
	}
	s.stalled.Store(true)
	defer func() {
		s.lastRecv.Store(s.c.now())
		s.stalled.Store(false)
	}()
	select {
	case s.c.queue <- ev:
		return nil
	case <-s.stop:
		return s.err()
	}
}
