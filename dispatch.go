package signalhub

import (
	"context"

	"github.com/signalhub/signalhub/protocol"
)

// maxQueuedInvocations bounds the invocations of one connection that wait
// for a worker. When it is reached the read loop stops reading, which pushes
// back on the client through TCP.
const maxQueuedInvocations = 64

// submit queues an invocation for the connection's workers, starting one
// if fewer than Options.MaxParallelInvocations run. Workers exist only while
// there is work, so an idle connection holds no goroutine for them. The read
// loop keeps reading while hub methods run, so a client that goes away
// cancels Context.Context() of its running methods.
func (c *conn) submit(m *protocol.Message) error {
	for {
		c.jmu.Lock()
		if len(c.jobs) < maxQueuedInvocations {
			c.jobs = append(c.jobs, m)
			if c.workers < c.hub.opts.MaxParallelInvocations {
				c.workers++
				c.invocations.Add(1)
				go c.work()
			}
			c.jmu.Unlock()
			return nil
		}
		c.jmu.Unlock()
		select {
		case <-c.space:
		case <-c.ctx.Done():
			return context.Cause(c.ctx)
		}
	}
}

// work runs queued invocations until there are none, then exits. With one
// worker (the default) invocations run one at a time, in order.
func (c *conn) work() {
	defer c.invocations.Done()
	for {
		c.jmu.Lock()
		if len(c.jobs) == 0 || c.ctx.Err() != nil {
			// Invocations still queued when the connection ended are
			// dropped: nobody is left to receive their completions.
			clear(c.jobs)
			c.jobs = nil
			c.workers--
			c.jmu.Unlock()
			return
		}
		m := c.jobs[0]
		c.jobs[0] = nil
		c.jobs = c.jobs[1:]
		c.jmu.Unlock()
		select {
		case c.space <- struct{}{}:
		default:
		}
		c.invoke(m)
	}
}
