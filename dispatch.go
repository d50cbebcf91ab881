package signalhub

import (
	"fmt"
	"time"

	"github.com/coder/websocket"

	"github.com/signalhub/signalhub/protocol"
)

// workerIdle is how long a worker goroutine waits for the next invocation
// before it exits. A client in a request/response exchange reuses its
// worker; an idle connection holds none.
const workerIdle = time.Second

// submit queues an invocation for the connection's workers, starting one
// if fewer than Options.MaxParallelInvocations run.
//
// submit never blocks: the read loop keeps reading while hub methods run,
// so a client that goes away cancels Context.Context() of its running
// methods at once. A client with more than Options.MaxPendingInvocations
// invocations waiting is closed instead.
func (c *conn) submit(m *protocol.Message) error {
	c.jmu.Lock()
	defer c.jmu.Unlock()
	if c.draining {
		c.complete(m.InvocationID, nil, fmt.Sprintf("Failed to invoke '%s': the server is shutting down.", m.Target))
		return nil
	}
	if len(c.jobs) >= c.hub.opts.MaxPendingInvocations {
		return c.failRead(closeRequest{
			cause: ErrTooManyInvocations,
			errMsg: fmt.Sprintf("Connection closed with an error. More than %d invocations were waiting for the server; "+
				"the client sends faster than its hub methods complete.", c.hub.opts.MaxPendingInvocations),
			status: websocket.StatusPolicyViolation, reason: "too many pending invocations", abandon: true,
		})
	}
	c.jobs = append(c.jobs, m)
	if c.workers < c.hub.opts.MaxParallelInvocations {
		c.workers++
		c.invocations.Add(1)
		go c.work()
	} else {
		select {
		case c.jobWake <- struct{}{}:
		default:
		}
	}
	return nil
}

// work runs queued invocations, waiting up to workerIdle for more before it
// exits. With one worker (the default) invocations run one at a time, in
// order.
func (c *conn) work() {
	defer c.invocations.Done()
	var idle *time.Timer
	for {
		if m := c.nextJob(); m != nil {
			c.invoke(m)
			c.jobDone()
			continue
		}
		if idle == nil {
			idle = time.NewTimer(workerIdle)
			defer idle.Stop()
		} else {
			idle.Reset(workerIdle)
		}
		select {
		case <-c.jobWake:
			continue
		case <-c.ctx.Done():
		case <-idle.C:
		}
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
		c.jmu.Unlock()
	}
}

// nextJob pops the oldest queued invocation, or returns nil.
func (c *conn) nextJob() *protocol.Message {
	c.jmu.Lock()
	defer c.jmu.Unlock()
	if len(c.jobs) == 0 || c.ctx.Err() != nil {
		return nil
	}
	m := c.jobs[0]
	c.busy++
	c.jobs[0] = nil
	c.jobs = c.jobs[1:]
	if len(c.jobs) == 0 {
		c.jobs = nil
	}
	return m
}

// jobDone ends an invocation started by nextJob. The last one to end while
// the hub shuts down closes the connection, after its Completion.
func (c *conn) jobDone() {
	c.jmu.Lock()
	c.busy--
	last := c.draining && c.busy == 0 && len(c.jobs) == 0
	c.jmu.Unlock()
	if last {
		c.closeWith(closeShutdown)
	}
}

// drain starts a graceful close for Shutdown: the invocations already
// accepted run (their Context ends, so that they wrap up), later ones get
// an error Completion, and the Close message follows the last Completion.
func (c *conn) drain() {
	c.jmu.Lock()
	if c.draining {
		c.jmu.Unlock()
		return
	}
	c.draining = true
	idle := c.busy == 0 && len(c.jobs) == 0
	c.jmu.Unlock()
	c.mcancel(ErrHubClosed)
	if idle {
		c.closeWith(closeShutdown)
	}
}
