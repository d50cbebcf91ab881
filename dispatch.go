package signalhub

import (
	"fmt"

	"github.com/coder/websocket"

	"github.com/signalhub/signalhub/protocol"
)

// submit queues an invocation for the connection's workers, starting one
// if fewer than Options.MaxParallelInvocations run. Workers exist only while
// there is work, so an idle connection holds no goroutine for them.
//
// submit never blocks: the read loop keeps reading while hub methods run,
// so a client that goes away cancels Context.Context() of its running
// methods at once. A client with more than Options.MaxPendingInvocations
// invocations waiting is closed instead.
func (c *conn) submit(m *protocol.Message) error {
	c.jmu.Lock()
	defer c.jmu.Unlock()
	if len(c.jobs) >= c.hub.opts.MaxPendingInvocations {
		msg := fmt.Sprintf("Connection closed with an error. More than %d invocations were waiting for the server; the client sends faster than its hub methods complete.", c.hub.opts.MaxPendingInvocations)
		return c.failRead(closeRequest{cause: ErrTooManyInvocations, errMsg: msg,
			status: websocket.StatusPolicyViolation, reason: "too many pending invocations", abandon: true})
	}
	c.jobs = append(c.jobs, m)
	if c.workers < c.hub.opts.MaxParallelInvocations {
		c.workers++
		c.invocations.Add(1)
		go c.work()
	}
	return nil
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
		c.invoke(m)
	}
}
