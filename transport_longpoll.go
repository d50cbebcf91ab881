package signalhub

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"
)

// Long Polling: the client keeps one GET (a poll) waiting, and the server
// answers it with whatever is queued for the connection, as whole records;
// the client sends its records in POSTs (transport_http.go).
//
// The waiting poll is the connection's writer: kick wakes it (kickLocked)
// instead of starting a writer goroutine, and it takes the queue and
// writes it as its answer. Between polls nothing runs: what is sent waits
// in the connection's queue, bounded as on every transport (a full queue
// closes the connection as a slow consumer), and the connection holds no
// goroutine, only timers.
//
// A poll is answered:
//   - 200 with an empty body at once, when it is the connection's first;
//   - 200 with every queued record as soon as there are some;
//   - 200 with an empty body after Options.PollTimeout without any;
//   - 204 once the connection has ended, or when a newer poll replaced it.
//
// The connection ends when the client sends a Close message or a DELETE,
// when no poll comes for Options.DisconnectTimeout, or when the server
// closes it: its Close message goes out as a poll's answer, and later
// polls get 204.

// pollWire is the wire of a Long Polling connection. Its fields are
// guarded by the connection's qmu, which kickLocked holds.
type pollWire struct {
	in *httpInput
	c  *conn

	waiting *pollRequest  // the poll waiting for something to send
	pre     [][]byte      // written before the writer started: the handshake's answer
	gone    bool          // the transport ended: polls get what pre holds, then 204
	idle    *time.Timer   // ends the connection when no poll comes in time
	final   closeRequest  // the close whose Close message a poll took
	taken   chan struct{} // closed when a poll takes pre; see linger
}

// pollRequest is a waiting poll.
type pollRequest struct {
	wake     chan struct{} // capacity 1
	replaced bool          // a newer poll took its place
}

func (p *pollRequest) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// inherentKeepAlive marks a transport whose polls show the client is
// there: the writer sends it no Pings and runs no client timeout, and the
// official clients send no Pings on it either.
func (p *pollWire) inherentKeepAlive() {}

// wakeLocked tells the waiting poll, if any, that there is something to
// send. The caller holds qmu.
func (p *pollWire) wakeLocked() {
	if p.waiting != nil {
		p.waiting.signal()
	}
}

// write keeps the records for the next poll. It is used before the writer
// starts (the handshake's answer); the records must not change afterwards.
func (p *pollWire) write(_ context.Context, records [][]byte) error {
	p.c.qmu.Lock()
	defer p.c.qmu.Unlock()
	if p.gone {
		return errTransportClosed
	}
	p.pre = append(p.pre, records...)
	p.wakeLocked()
	return nil
}

// writeBinary is write: a poll's answer carries MessagePack's binary
// records as it carries JSON's (see binaryWire).
func (p *pollWire) writeBinary(ctx context.Context, records [][]byte) error {
	return p.write(ctx, records)
}

// close ends the transport after what was written: a poll still gets the
// handshake's answer, if one is left, and then 204.
func (p *pollWire) close(websocket.StatusCode, string) error {
	p.end()
	return nil
}

// closeNow is close: what the queue held was dropped by the caller.
func (p *pollWire) closeNow() error {
	p.end()
	return nil
}

func (p *pollWire) end() {
	p.c.qmu.Lock()
	p.gone = true
	if p.idle != nil {
		p.idle.Stop()
	}
	p.wakeLocked()
	p.c.qmu.Unlock()
	p.in.end(errTransportClosed)
}

// linger keeps an ended connection's token valid until a poll has taken
// the handshake's answer (an error) that pre still holds, at most
// DisconnectTimeout or until ctx ends: the refused handshake's POST and
// the poll that is to carry the answer race, and a poll that came after
// the connection was forgotten would get 404 instead of the reason.
func (p *pollWire) linger(ctx context.Context) {
	c := p.c
	c.qmu.Lock()
	if len(p.pre) == 0 {
		c.qmu.Unlock()
		return
	}
	taken := make(chan struct{})
	p.taken = taken
	c.qmu.Unlock()
	t := time.NewTimer(c.hub.opts.DisconnectTimeout)
	defer t.Stop()
	select {
	case <-taken:
	case <-t.C:
	case <-ctx.Done():
	}
}

// armIdleLocked starts counting DisconnectTimeout when no poll waits. The
// caller holds qmu.
func (p *pollWire) armIdleLocked() {
	if p.gone || p.waiting != nil {
		return
	}
	d := p.c.hub.opts.DisconnectTimeout
	if p.idle == nil {
		p.idle = time.AfterFunc(d, p.inactive)
	} else {
		p.idle.Reset(d)
	}
}

// inactive drops a connection whose client has not polled for
// DisconnectTimeout: nobody would read a Close message.
func (p *pollWire) inactive() {
	c := p.c
	c.qmu.Lock()
	polling := p.waiting != nil || c.writing
	c.qmu.Unlock()
	if polling {
		return // a poll came meanwhile
	}
	c.abort(fmt.Errorf("%w: no poll for %v", ErrClientTimeout, c.hub.opts.DisconnectTimeout))
}

// openPoll serves a connection's first poll: it creates the connection and
// answers 200 with an empty body at once, as ASP.NET Core does.
func (h *Hub) openPoll(w http.ResponseWriter, req tokenRequest) {
	in := &httpInput{}
	var p *pollWire
	c := h.openHTTPConn(w, req, in, func(c *conn) wire {
		p = &pollWire{in: in, c: c}
		return p
	})
	if c == nil {
		return
	}
	c.qmu.Lock()
	p.armIdleLocked()
	c.qmu.Unlock()
	pollHeaders(w)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// pollHeaders keeps caches and proxies from storing poll answers.
func pollHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Expires", "Thu, 01 Jan 1970 00:00:00 GMT")
}

// pollVerdict is what a poll does next.
type pollVerdict uint8

const (
	pollWait pollVerdict = iota // nothing to send yet
	pollSend                    // answer 200 with a batch
	pollEnd                     // answer 204
)

// serve serves a poll of an open connection.
func (p *pollWire) serve(w http.ResponseWriter, r *http.Request) {
	c := p.c
	req := &pollRequest{wake: make(chan struct{}, 1)}
	c.qmu.Lock()
	if old := p.waiting; old != nil {
		old.replaced = true
		old.signal()
	}
	p.waiting = req
	if p.idle != nil {
		p.idle.Stop()
	}
	c.qmu.Unlock()

	// A poll may wait longer than the server's read timeout, which would
	// end it as if the client had gone.
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	timeout := time.NewTimer(c.hub.opts.PollTimeout)
	defer timeout.Stop()
	done := c.done
	for {
		c.qmu.Lock()
		handshake := len(p.pre) // the batch's first records, if it is sent: not counted in Options.Metrics
		batch, final, verdict := p.collectLocked(req)
		if verdict != pollWait {
			p.leaveLocked(req)
		}
		c.qmu.Unlock()
		switch verdict {
		case pollSend:
			err := p.answer(w, batch)
			if err == nil {
				c.metricsSent(batch[handshake:])
			}
			if !final {
				c.giveBack(batch) // as the writer does: the next queue reuses it
			}
			p.written(final, err)
			return
		case pollEnd:
			pollHeaders(w)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		select {
		case <-req.wake:
			continue
		case <-done: // the writer's end: stopped, or aborted
			done = nil
			continue
		case <-timeout.C:
			pollHeaders(w)
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusOK)
		case <-r.Context().Done():
			// The client gave up on this poll; its next one takes over.
		}
		c.qmu.Lock()
		p.leaveLocked(req)
		c.qmu.Unlock()
		return
	}
}

// leaveLocked takes req out of the waiting place and, unless it is to
// write an answer (see written) or a newer poll took its place, starts
// counting the client's absence. The caller holds qmu.
func (p *pollWire) leaveLocked(req *pollRequest) {
	if p.waiting == req {
		p.waiting = nil
		if !p.c.writing {
			p.armIdleLocked()
		}
	}
}

// collectLocked decides what the poll answers: the handshake's answer and
// whatever is queued, as the writer would write it (the Close message
// last when the connection is closing), or 204 once the connection has
// ended. A poll that takes a batch is the connection's writer until
// written. The caller holds qmu.
func (p *pollWire) collectLocked(req *pollRequest) (batch [][]byte, final bool, v pollVerdict) {
	c := p.c
	if req.replaced {
		return nil, false, pollEnd
	}
	if c.writing {
		return nil, false, pollWait // an older poll is still writing its answer
	}
	batch, p.pre = p.pre, nil
	if p.taken != nil && len(batch) > 0 {
		close(p.taken)
		p.taken = nil
	}
	if c.started && !c.finished {
		if c.stopped.Load() {
			c.finishLocked()
		} else {
			queued, closing, r := c.takeLocked()
			if len(batch) == 0 {
				batch = queued // no copy: given back after the write (see serve)
			} else {
				batch = append(batch, queued...)
			}
			if closing {
				batch = append(batch, c.proto.appendClose(nil, r.errMsg, r.allowReconnect))
				final, p.final = true, r
			}
		}
	}
	if len(batch) > 0 {
		c.writing = true
		return batch, final, pollSend
	}
	if c.finished || p.gone {
		return nil, false, pollEnd
	}
	return nil, false, pollWait
}

// answer writes a batch as the poll's 200 answer, bounded by WriteTimeout.
func (p *pollWire) answer(w http.ResponseWriter, batch [][]byte) error {
	n := 0
	for _, rec := range batch {
		n += len(rec)
	}
	pollHeaders(w)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(n))
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(p.c.hub.opts.WriteTimeout))
	w.WriteHeader(http.StatusOK)
	var err error
	for _, rec := range batch {
		if _, err = w.Write(rec); err != nil {
			break
		}
	}
	if err == nil {
		err = rc.Flush()
	}
	// No deadline is left behind for a later request on the same
	// connection.
	_ = rc.SetWriteDeadline(time.Time{})
	return err
}

// written ends a poll's turn as the writer. After the final batch, the
// one with the Close message, the writer is done and the transport ends,
// as it does after a WebSocket's close frame.
func (p *pollWire) written(final bool, err error) {
	c := p.c
	c.qmu.Lock()
	c.writing = false
	switch {
	case c.finished:
	case final:
		p.gone = true
		c.finishLocked()
	case c.started && c.stopped.Load():
		c.finishLocked()
	case len(c.queue) > 0 || c.closing || len(p.pre) > 0:
		p.wakeLocked() // for a poll that came while this one wrote
	}
	p.armIdleLocked() // unless a poll waits already
	c.qmu.Unlock()
	if err != nil {
		c.logDebug("poll answer failed", slog.Any("err", err))
		c.abort(writeFailure{err})
	}
	if final {
		c.logClose(p.final)
		p.in.end(errTransportClosed)
	}
}
