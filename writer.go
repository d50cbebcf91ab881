package signalhub

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/signalhub/signalhub/protocol"
)

// errWriteTimeout is OnDisconnected's cause for a write slower than
// Options.WriteTimeout.
var errWriteTimeout = fmt.Errorf("signalhub: write: %w", context.DeadlineExceeded)

// writeLoop is the connection's only socket writer. It batches whatever is
// queued into one message, sends keep-alive Pings, enforces the client
// timeout, and performs the server side of a close.
func (c *conn) writeLoop() {
	defer close(c.done)
	opts := &c.hub.opts
	lastSend := c.hub.now()
	// The writer waits on wake alone: the keep-alive timer and stopWriter
	// set a flag and signal it, which is cheaper per message than a select.
	timer := time.AfterFunc(c.nextDeadline(lastSend), func() {
		c.tick.Store(true)
		c.signal()
	})
	defer timer.Stop()
	// Writes take a context that is never cancelled, so that they allocate
	// nothing; a watchdog timer drops the socket when one takes longer than
	// WriteTimeout, which fails the write.
	watchdog := time.AfterFunc(time.Hour, func() {
		// Record the cause first, so that the read loop does not report
		// the dropped socket as the client's doing.
		c.abort(errWriteTimeout)
	})
	watchdog.Stop()
	var ping []byte
	for {
		<-c.wake
		if c.stopped.Load() {
			return
		}
		if c.tick.Swap(false) {
			now := c.hub.now()
			if time.Duration(now-c.lastRecv.Load()) >= opts.ClientTimeout {
				c.closeWith(closeTimeout)
			} else if time.Duration(now-lastSend) >= opts.KeepAliveInterval {
				if ping == nil {
					ping = protocol.AppendPing(nil)
				}
				c.enqueue(ping) // goes out below with anything else queued
			}
			timer.Reset(c.nextDeadline(lastSend))
		}
		batch, closing, r := c.take()
		if closing {
			// The queue is sealed: this batch is the last, and the Close
			// message ends it.
			batch = append(batch, protocol.AppendClose(nil, r.errMsg, r.allowReconnect))
		}
		if len(batch) > 0 {
			watchdog.Reset(opts.WriteTimeout)
			err := c.wire.write(context.Background(), batch)
			if !watchdog.Stop() {
				return // the watchdog dropped the connection
			}
			if !closing {
				c.giveBack(batch)
			}
			if err != nil {
				c.logDebug("write failed", slog.Any("err", err))
				c.abort(fmt.Errorf("signalhub: write: %w", err))
				return
			}
			lastSend = c.hub.now()
		}
		if closing {
			if r.cause == ErrSlowConsumer {
				c.hub.log.LogAttrs(context.Background(), slog.LevelWarn, "closing slow connection",
					slog.String("conn_id", c.id))
			}
			_ = c.wire.close(r.status, r.reason)
			return
		}
	}
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
