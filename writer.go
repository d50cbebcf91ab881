package signalhub

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// errWriteTimeout is OnDisconnected's cause for a write slower than
// Options.WriteTimeout.
var errWriteTimeout = fmt.Errorf("signalhub: write: %w", context.DeadlineExceeded)

// writeFailure is the cause of a connection whose write failed. When the
// client closed the connection meanwhile, the client's close is what
// OnDisconnected sees (see finish).
type writeFailure struct{ err error }

func (e writeFailure) Error() string { return "signalhub: write: " + e.err.Error() }
func (e writeFailure) Unwrap() error { return e.err }

// writeLoop is the connection's only socket writer while it runs: kick
// starts it when there is work and none runs, and it exits once nothing is
// left, so that idle connections hold no goroutine. It batches whatever is
// queued into one message, sends keep-alive Pings, enforces the client
// timeout, and performs the server side of a close.
func (c *conn) writeLoop() {
	opts := &c.hub.opts
	for {
		if c.stopped.Load() {
			c.exitWriter(true)
			return
		}
		if c.tick.Swap(false) {
			now := c.hub.now()
			sendAt := c.lastSend
			if time.Duration(now-c.lastRecv.Load()) >= opts.ClientTimeout {
				c.closeWith(closeTimeout)
			} else if time.Duration(now-c.lastSend) >= opts.KeepAliveInterval {
				c.enqueue(c.proto.ping) // goes out below with anything else queued
				sendAt = now
			}
			c.keepAlive.Reset(c.nextDeadline(sendAt))
		}
		var batch [][]byte
		var closing bool
		var r closeRequest
		if c.st != nil {
			var detached bool
			if batch, closing, r, detached = c.takeStateful(); detached {
				c.exitDetached()
				return
			}
		} else {
			batch, closing, r = c.take()
		}
		if closing {
			// The queue is sealed: this batch is the last, and the Close
			// message ends it.
			batch = append(batch, c.proto.appendClose(nil, r.errMsg, r.allowReconnect))
		}
		if len(batch) > 0 {
			if c.watchdog == nil {
				// Writes take a context that is never cancelled, so that
				// they allocate nothing; the watchdog drops the socket when
				// one takes longer than WriteTimeout, which fails the write.
				c.watchdog = time.AfterFunc(time.Hour, func() {
					// Record the cause first, so that the read loop does not
					// report the dropped socket as the client's doing.
					c.abort(errWriteTimeout)
				})
			}
			c.watchdog.Reset(opts.WriteTimeout)
			err := c.writeRecords(context.Background(), batch)
			if !c.watchdog.Stop() {
				c.exitWriter(true) // the watchdog dropped the connection
				return
			}
			if err == nil {
				c.metricsSent(batch)
			}
			if !closing {
				c.giveBack(batch)
			}
			if err != nil {
				c.logDebug("write failed", slog.Any("err", err))
				if c.st != nil && !closing && c.markDetached(err) {
					// The socket dropped: what was written is kept for a
					// resume, and the read goroutine, whose read fails
					// now, waits for one.
					_ = c.wire.closeNow()
					c.exitDetached()
					return
				}
				c.abort(writeFailure{err})
				c.exitWriter(true)
				return
			}
			c.lastSend = c.hub.now()
		}
		if closing {
			c.logClose(r)
			_ = c.wire.close(r.status, r.reason)
			c.exitWriter(true)
			return
		}
		if c.exitWriter(false) {
			return
		}
	}
}

// exitWriter ends the running writer: for good when final, else only if
// no work arrived meanwhile. It reports whether the writer must exit.
func (c *conn) exitWriter(final bool) bool {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if final {
		c.writing = false
		c.finishLocked()
		if c.st != nil {
			c.st.writerExitedLocked()
		}
		return true
	}
	if st := c.st; st != nil {
		if !st.detached && (c.closing || c.stopped.Load() || c.tick.Load() || st.hasWorkLocked(len(c.queue) > 0)) {
			return false
		}
		c.statefulWriterExitLocked()
		return true
	}
	if len(c.queue) > 0 || c.closing || c.stopped.Load() || c.tick.Load() {
		return false
	}
	c.writing = false
	return true
}

// nextDeadline returns how long the writer may sleep before it has to send
// a Ping or check the client timeout.
func (c *conn) nextDeadline(lastSend int64) time.Duration {
	opts := &c.hub.opts
	now := c.hub.now()
	d := min(time.Duration(lastSend-now)+opts.KeepAliveInterval,
		time.Duration(c.lastRecv.Load()-now)+opts.ClientTimeout)
	return max(d, time.Millisecond)
}

// logClose logs a server-side close worth an operator's attention: a slow
// consumer's.
func (c *conn) logClose(r closeRequest) {
	if r.cause == ErrSlowConsumer {
		c.hub.log.LogAttrs(context.Background(), slog.LevelWarn, "closing slow connection",
			slog.String("conn_id", c.id))
	}
}
