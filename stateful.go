package signalhub

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/signalhub/signalhub/protocol"
)

// Stateful reconnect (Options.StatefulReconnect), as ASP.NET Core and the
// official clients do it.
//
// Each side numbers the messages of types 1 to 5 it sends, from 1, and
// keeps them until the other side acknowledges them with an Ack; the
// server keeps them in a replayBuffer. When the WebSocket drops without a
// close, the connection is detached: it stays in the hub (ID, user,
// groups, item store, running invocations) and messages to it wait in its
// queue, for at most DisconnectTimeout. A new WebSocket of the client with
// the same connection token resumes it: each side first sends a Sequence
// with the ID of the oldest message it is sending again, then those
// messages, and the receiver drops the ones it had already processed.

// ackDelay is how long the server waits after a numbered message before it
// acknowledges what it received, as ASP.NET Core's timer does.
const ackDelay = time.Second

// statefulState is the state of a connection with stateful reconnect. It
// is nil on the others, so that they pay one pointer for the feature.
type statefulState struct {
	replay *replayBuffer

	// heard is set once the client has sent something after the
	// handshake: the official clients count the server's messages only
	// from then on, so none is sent before (the writer waits).
	heard atomic.Bool

	// The client's numbered messages: inNext is the ID the next one gets
	// (read goroutine only), inSeen the highest processed, which Acks
	// report.
	inNext int64
	inSeen atomic.Int64

	ackTimer   *time.Timer
	ackPending atomic.Bool // ackTimer runs
	ackTick    atomic.Bool // an Ack is due: the writer sends it

	// Guarded by the connection's qmu.
	detached   bool          // the WebSocket dropped (its writer or its reader saw it); waiting for a resume
	parked     bool          // the reader has detached too (detach): the old socket is closed, expiry runs; only now may a new socket resume
	ending     bool          // the detached connection is ending for good
	resumed    bool          // the writer starts the new socket with the Sequence and the replay
	writerGone chan struct{} // closed when the writer of the dropped socket has exited
	detachWait chan struct{} // closed when the connection is detached (takeOver)
	lost       error         // why the last socket ended
	expiry     *time.Timer   // ends a detached connection after DisconnectTimeout
}

// enableStateful turns stateful reconnect on for a connection whose
// handshake asked for it (version 2) after negotiate granted it. It runs
// in the handshake, before the connection joins the hub.
func (c *conn) enableStateful() {
	st := &statefulState{replay: newReplayBuffer(c.hub.opts.StatefulReconnectBufferSize), inNext: 1}
	st.ackTimer = time.AfterFunc(time.Hour, func() {
		st.ackPending.Store(false)
		st.ackTick.Store(true)
		c.kick()
	})
	st.ackTimer.Stop()
	c.st = st
}

// receivedStateful does stateful reconnect's part for a message m from the
// client: Acks and Sequences, and the numbering of the other messages. It
// reports whether m is to be handled further (false for a duplicate sent
// again after a resume). Read goroutine only.
func (c *conn) receivedStateful(m *protocol.Message) (handle bool, err error) {
	st := c.st
	if !st.heard.Load() {
		st.heard.Store(true)
		c.kick() // what waited for the client goes out now
	}
	switch {
	case m.Type == protocol.TypeAck:
		st.replay.ack(m.SequenceID)
		c.kick() // the replay buffer may have room again
		return false, nil
	case m.Type == protocol.TypeSequence:
		if m.SequenceID > st.inSeen.Load()+1 || m.SequenceID < 1 {
			return false, c.failRead(closeRequest{
				cause:  fmt.Errorf("%w: Sequence %d after message %d", ErrProtocol, m.SequenceID, st.inSeen.Load()),
				errMsg: "Connection closed with an error. Sequence ID greater than amount of messages we've received.",
				status: websocket.StatusPolicyViolation, reason: "bad sequence",
			})
		}
		st.inNext = m.SequenceID
		return false, nil
	case m.Type < protocol.TypeInvocation || m.Type > protocol.TypeCancelInvocation:
		return true, nil // not numbered
	}
	id := st.inNext
	st.inNext++
	if id <= st.inSeen.Load() {
		return false, nil // processed before the socket dropped
	}
	st.inSeen.Store(id)
	if !st.ackPending.Swap(true) {
		st.ackTimer.Reset(ackDelay)
	}
	return true, nil
}

// gatedLocked reports whether the writer must leave the queue alone: the
// client has not spoken since the handshake, the replay buffer is full, or
// the socket is gone. The caller holds qmu.
func (st *statefulState) gatedLocked() bool {
	return st.detached || !st.heard.Load() || st.replay.full()
}

// takeStateful is take for a connection with stateful reconnect: it keeps
// what it takes for a replay, starts a resumed socket with the Sequence
// and the replay, and adds a due Ack. detached reports that the socket is
// gone: the writer must exit.
func (c *conn) takeStateful() (batch [][]byte, closing bool, r closeRequest, detached bool) {
	st := c.st
	c.qmu.Lock()
	if st.detached {
		c.qmu.Unlock()
		return nil, false, closeRequest{}, true
	}
	closing, r = c.closing, c.closeReq
	resumed := st.resumed
	st.resumed = false
	var again [][]byte
	first := int64(0)
	if resumed {
		first, again = st.replay.pending()
	}
	if len(c.queue) > 0 && (closing || (st.heard.Load() && !st.replay.full())) {
		// Take records until the replay buffer is full; the rest waits
		// for an Ack. A closing connection sends everything before its
		// Close.
		k, size := 0, 0
		for k < len(c.queue) && (closing || !st.replay.full()) {
			rec := c.queue[k]
			if !c.isPing(rec) {
				st.replay.add(rec)
			}
			size += len(rec)
			k++
		}
		if k == len(c.queue) {
			batch, _, _ = c.takeLocked()
		} else {
			batch = append(c.spare[:0], c.queue[:k]...)
			c.spare = nil
			n := copy(c.queue, c.queue[k:])
			clear(c.queue[n:])
			c.queue = c.queue[:n]
			c.qbytes -= size
			c.wakeProducersLocked()
		}
	}
	c.qmu.Unlock()
	if resumed {
		// The new socket starts with the Sequence and what the client has
		// not acknowledged, then this batch.
		pre := make([][]byte, 0, 1+len(again)+len(batch)+1)
		pre = append(pre, c.proto.appendSequence(nil, first))
		batch = append(append(pre, again...), batch...)
	}
	if st.ackTick.Swap(false) {
		batch = append(batch, c.proto.appendAck(nil, st.inSeen.Load()))
	}
	return batch, closing, r, false
}

// isPing reports whether rec is the shared keep-alive Ping record, the
// only record of the queue that is not numbered.
func (c *conn) isPing(rec []byte) bool {
	p := c.proto.ping
	return len(rec) == len(p) && len(rec) > 0 && &rec[0] == &p[0]
}

// hasWorkLocked reports whether the writer of a stateful connection has
// something to do. The caller holds qmu.
func (st *statefulState) hasWorkLocked(queued bool) bool {
	if st.detached {
		return false
	}
	return st.resumed || st.ackTick.Load() || (queued && !st.gatedLocked())
}

// transportLost reports whether err, the end of a socket's reading, is a
// drop rather than a close: no Close message and no close frame.
func transportLost(err error) bool {
	return err != nil && err != errClientClose && websocket.CloseStatus(err) == -1
}

// markDetached marks the connection detached after its writer's write
// failed (err), unless it is closing anyway. The read goroutine completes
// the detachment (detach) when its read fails too.
func (c *conn) markDetached(err error) bool {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.closing || c.finished || c.st.ending {
		return false
	}
	if !c.st.detached {
		c.st.detached, c.st.lost = true, err
	}
	return true
}

// exitDetached ends the writer of a dropped socket.
func (c *conn) exitDetached() {
	c.qmu.Lock()
	c.statefulWriterExitLocked()
	c.qmu.Unlock()
}

// statefulWriterExitLocked ends a stateful connection's running writer
// (not for good): a resume waiting for it goes on, and a stop that came
// while it ran ends the writer for good. The caller holds qmu.
func (c *conn) statefulWriterExitLocked() {
	c.writing = false
	c.st.writerExitedLocked()
	if c.stopped.Load() && !c.finished {
		c.finishLocked()
	}
}

// writerExitedLocked wakes a resume waiting for the writer of the dropped
// socket to exit. The caller holds qmu.
func (st *statefulState) writerExitedLocked() {
	if st.writerGone != nil {
		close(st.writerGone)
		st.writerGone = nil
	}
}

// detach keeps a stateful connection whose socket dropped (readErr) for a
// resume, and reports whether it did: not when the connection is closing
// anyway. It runs on the read goroutine, instead of finish.
func (c *conn) detach(readErr error) bool {
	st := c.st
	c.qmu.Lock()
	if c.closing || c.finished || st.ending {
		c.qmu.Unlock()
		return false
	}
	if !st.detached {
		st.detached, st.lost = true, readErr
	}
	st.parked = true
	if st.detachWait != nil {
		close(st.detachWait)
		st.detachWait = nil
	}
	if st.expiry == nil {
		st.expiry = time.AfterFunc(c.hub.opts.DisconnectTimeout, c.endDetached)
	} else {
		st.expiry.Reset(c.hub.opts.DisconnectTimeout)
	}
	w := c.wire
	c.qmu.Unlock()
	_ = w.closeNow() // a writer still writing to it fails at once
	c.logDebug("connection detached; waiting for its client to resume it")
	return true
}

// endDetached ends a detached connection for good: its client did not
// come back in time, or the server closes it meanwhile.
func (c *conn) endDetached() {
	st := c.st
	c.qmu.Lock()
	if !st.detached || st.ending {
		c.qmu.Unlock()
		return
	}
	st.ending = true
	lost := st.lost
	c.qmu.Unlock()
	c.stopWriter() // no socket to write the Close to
	c.finish(true, lost)
}

// resume makes ws the socket of a detached connection and reads it on the
// calling (ServeHTTP) goroutine. It reports false, having closed ws, when
// the connection ended meanwhile.
func (c *conn) resume(ws *websocket.Conn, bw *batchWriter) bool {
	st := c.st
	c.qmu.Lock()
	for c.writing && st.parked && !st.ending {
		// The dropped socket's writer has not noticed yet: its write fails
		// at once on the closed socket.
		if st.writerGone == nil {
			st.writerGone = make(chan struct{})
		}
		gone := st.writerGone
		c.qmu.Unlock()
		<-gone
		c.qmu.Lock()
	}
	if !st.parked || st.ending || c.closing {
		c.qmu.Unlock()
		_ = ws.Close(websocket.StatusNormalClosure, "connection closed")
		return false
	}
	st.expiry.Stop() // endDetached, if it fired, finds the connection attached and leaves it
	st.detached, st.parked = false, false
	st.resumed = true
	c.wire = wsWire{ws: ws, bw: bw}
	now := c.hub.now()
	c.lastRecv.Store(now)
	c.lastSend = now
	c.keepAlive.Reset(c.nextDeadline(now))
	c.kickLocked() // the Sequence and the replay go first
	c.qmu.Unlock()
	c.logDebug("connection resumed")
	c.continueReading(ws)
	return true
}

// takeOver detaches the connection from a socket that the server still
// thinks open when its client comes back on a new one: the client knows
// better (its network changed, or the drop has not reached the server
// yet). It waits, within ctx, until the read goroutine has detached the
// connection (a failed write alone is not enough: that reader would
// still close the socket it read, by then the new one), and reports
// whether it has.
func (c *conn) takeOver(ctx context.Context) bool {
	st := c.st
	c.qmu.Lock()
	if st.parked || st.ending || c.closing {
		ok := st.parked && !st.ending && !c.closing
		c.qmu.Unlock()
		return ok
	}
	if st.detachWait == nil {
		st.detachWait = make(chan struct{})
	}
	wait, w := st.detachWait, c.wire
	c.qmu.Unlock()
	_ = w.closeNow() // the read goroutine detaches the connection
	select {
	case <-wait:
	case <-ctx.Done():
		return false
	}
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return st.parked && !st.ending && !c.closing
}

// setResumable lets a new WebSocket with c's token resume c.
func (h *Hub) setResumable(c *conn) {
	h.mu.Lock()
	if e := h.tokens[c.token]; e != nil {
		e.conn = c
	}
	h.mu.Unlock()
}

// serveResume answers a WebSocket request that would resume req's
// connection: 401 or 403 for a request that is not its user's (as for
// every request of an HTTP transport's connection, checkOwner), 409 as
// for a second socket of an attached connection, or the resumed
// connection.
func (h *Hub) serveResume(w http.ResponseWriter, r *http.Request, req tokenRequest) {
	if !h.checkOwner(w, r, req) {
		return
	}
	rc := req.c
	ctx, cancel := context.WithTimeout(r.Context(), takeOverTimeout)
	defer cancel()
	if !rc.takeOver(ctx) {
		w.WriteHeader(http.StatusConflict)
		return
	}
	lw := &lightHijacker{ResponseWriter: w}
	var aw http.ResponseWriter = lw
	if !canHijack(w) {
		aw = w // the WebSocket library answers 501
	}
	ws, err := websocket.Accept(aw, r, &websocket.AcceptOptions{OriginPatterns: h.opts.AllowedOrigins})
	if err != nil {
		return // Accept has answered the request
	}
	ws.SetReadLimit(-1)
	rc.resume(ws, lw.bw)
}

// takeOverTimeout bounds how long a resume waits for the old socket's
// reading to end.
const takeOverTimeout = 5 * time.Second
