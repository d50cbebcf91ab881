package hubtest

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// pipeBuffer bounds the bytes in flight in each direction of a pipe, as a
// socket's buffers do. net.Pipe has none, so two ends that write at once
// (both sides of a WebSocket close handshake) would wait on each other.
const pipeBuffer = 256 << 10

// half is one direction of a pipe: bytes written by one end, read by the
// other.
type half struct {
	mu       sync.Mutex
	buf      []byte
	closed   bool          // no more writes; reads drain, then EOF
	changed  chan struct{} // closed and replaced on every change
	rdl, wdl time.Time     // read and write deadlines of the two ends
}

func newHalf() *half { return &half{changed: make(chan struct{})} }

// wakeLocked wakes every waiter. The caller holds mu.
func (h *half) wakeLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// wait releases mu until something changes or deadline passes.
func (h *half) wait(deadline time.Time) {
	ch := h.changed
	h.mu.Unlock()
	defer h.mu.Lock()
	if deadline.IsZero() {
		<-ch
		return
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}

func (h *half) read(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(h.buf) == 0 {
		switch {
		case h.closed:
			return 0, io.EOF
		case !h.rdl.IsZero() && !time.Now().Before(h.rdl):
			return 0, os.ErrDeadlineExceeded
		}
		h.wait(h.rdl)
	}
	n := copy(p, h.buf)
	h.buf = h.buf[n:]
	if len(h.buf) == 0 {
		h.buf = nil
	}
	h.wakeLocked()
	return n, nil
}

func (h *half) write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	written := 0
	for written < len(p) {
		switch {
		case h.closed:
			return written, net.ErrClosed
		case !h.wdl.IsZero() && !time.Now().Before(h.wdl):
			return written, os.ErrDeadlineExceeded
		}
		room := pipeBuffer - len(h.buf)
		if room <= 0 {
			h.wait(h.wdl)
			continue
		}
		n := min(room, len(p)-written)
		h.buf = append(h.buf, p[written:written+n]...)
		written += n
		h.wakeLocked()
	}
	return written, nil
}

func (h *half) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		h.wakeLocked()
	}
}

func (h *half) setDeadline(read bool, t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if read {
		h.rdl = t
	} else {
		h.wdl = t
	}
	h.wakeLocked()
}

// pipeConn is one end of a buffered in-memory connection.
type pipeConn struct {
	in, out *half
}

// newPipe returns the two ends of a buffered in-memory connection.
func newPipe() (net.Conn, net.Conn) {
	a, b := newHalf(), newHalf()
	return &pipeConn{in: a, out: b}, &pipeConn{in: b, out: a}
}

func (c *pipeConn) Read(p []byte) (int, error)  { return c.in.read(p) }
func (c *pipeConn) Write(p []byte) (int, error) { return c.out.write(p) }

// Close ends both directions, as closing a socket does.
func (c *pipeConn) Close() error {
	c.in.close()
	c.out.close()
	return nil
}

func (c *pipeConn) LocalAddr() net.Addr  { return memAddr{} }
func (c *pipeConn) RemoteAddr() net.Addr { return memAddr{} }

func (c *pipeConn) SetDeadline(t time.Time) error {
	c.in.setDeadline(true, t)
	c.out.setDeadline(false, t)
	return nil
}

func (c *pipeConn) SetReadDeadline(t time.Time) error {
	c.in.setDeadline(true, t)
	return nil
}

func (c *pipeConn) SetWriteDeadline(t time.Time) error {
	c.out.setDeadline(false, t)
	return nil
}
