package signalhub

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Server-Sent Events: the GET that opens the connection stays open as an
// event stream carrying the server's records, one event per batch, while
// the client sends its records in POSTs (transport_http.go). The GET's
// goroutine holds the response for the connection's life; the writer
// goroutine writes to it, as it writes to a WebSocket, with keep-alive
// Pings and the client timeout as on WebSockets.

// errStreamClosed is a write to an event stream that has ended.
var errStreamClosed = errors.New("signalhub: event stream closed")

// ssePreamble is a comment the stream opens with, flushed at once so that
// the client's EventSource fires its open event.
var ssePreamble = []byte(":\r\n")

// sseWire is the wire of a Server-Sent Events connection: the open
// response of its GET.
type sseWire struct {
	in           *httpInput
	writeTimeout time.Duration

	// mu serializes writes to the response and guards open, so that the
	// GET's handler returns (and net/http reuses the response) only when
	// no write is under way.
	mu   sync.Mutex
	w    http.ResponseWriter
	rc   *http.ResponseController
	open bool // the GET's handler holds the response

	stop     chan struct{} // closed when the stream is to end
	stopOnce sync.Once
}

// write sends the records as one event. Each write is bounded by its own
// write deadline (the earlier of ctx's and WriteTimeout), so that a write
// to a client that stopped reading ends and the handler can return.
func (s *sseWire) write(ctx context.Context, records [][]byte) error {
	bp := messageBufs.Get().(*[]byte)
	ev := appendEvent((*bp)[:0], records)
	s.mu.Lock()
	err := s.writeLocked(ctx, ev)
	s.mu.Unlock()
	if cap(ev) <= maxPooledMessage {
		*bp = ev[:0]
	}
	messageBufs.Put(bp)
	return err
}

func (s *sseWire) writeLocked(ctx context.Context, b []byte) error {
	if !s.open {
		return errStreamClosed
	}
	deadline := time.Now().Add(s.writeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = s.rc.SetWriteDeadline(deadline)
	_, err := s.w.Write(b)
	if err == nil {
		err = s.rc.Flush()
	}
	// No deadline is left behind for a later request on the same
	// connection.
	_ = s.rc.SetWriteDeadline(time.Time{})
	return err
}

// appendEvent appends one event holding records: a "data:" line per line
// of the payload (the JSON protocol's records have no line breaks, so that
// is one line), then the blank line that ends the event. Clients join the
// lines with "\n".
func appendEvent(b []byte, records [][]byte) []byte {
	b = append(b, "data: "...)
	for _, r := range records {
		for {
			i := bytes.IndexAny(r, "\r\n")
			if i < 0 {
				b = append(b, r...)
				break
			}
			b = append(b, r[:i]...)
			b = append(b, "\r\ndata: "...)
			if r[i] == '\r' && i+1 < len(r) && r[i+1] == '\n' {
				i++
			}
			r = r[i+1:]
		}
	}
	return append(b, "\r\n\r\n"...)
}

// close ends the stream after what was written; the client's EventSource
// sees it end.
func (s *sseWire) close(websocket.StatusCode, string) error {
	s.end()
	return nil
}

// closeNow ends the stream. A write under way ends by its deadline.
func (s *sseWire) closeNow() error {
	s.end()
	return nil
}

func (s *sseWire) end() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.in.end(errTransportClosed)
}

// openSSE serves the GET that opens a Server-Sent Events connection: it
// creates the connection, opens the event stream and holds it until the
// connection ends or the client goes away.
func (h *Hub) openSSE(w http.ResponseWriter, r *http.Request, req tokenRequest) {
	rc := http.NewResponseController(w)
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		// Without write deadlines a client that stops reading would hold
		// the stream's writer for good.
		h.log.LogAttrs(r.Context(), slog.LevelError, "Server-Sent Events need a ResponseWriter with write deadlines (see http.ResponseController)",
			slog.Any("err", err))
		http.Error(w, "Server-Sent Events are not available on this server.", http.StatusInternalServerError)
		return
	}
	// The stream outlives any read timeout of the server, which would end
	// it as if the client had gone.
	_ = rc.SetReadDeadline(time.Time{})
	in := &httpInput{}
	s := &sseWire{in: in, writeTimeout: h.opts.WriteTimeout, w: w, rc: rc, stop: make(chan struct{})}
	// Held until the stream is open, so that a handshake answer from a POST
	// that comes early waits for it.
	s.mu.Lock()
	c := h.openHTTPConn(w, req, in, func(*conn) wire { return s })
	if c == nil {
		s.mu.Unlock()
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache, no-store")
	hdr.Set("Pragma", "no-cache")
	hdr.Set("Content-Encoding", "identity") // never compressed: events must arrive as they are written
	w.WriteHeader(http.StatusOK)
	s.open = true
	err := s.writeLocked(context.Background(), ssePreamble)
	s.mu.Unlock()
	if err != nil {
		c.logDebug("event stream failed to open", slog.Any("err", err))
		c.abort(writeFailure{err})
	}

	select {
	case <-s.stop:
	case <-r.Context().Done():
		// The client closed its EventSource: that is how it stops.
		in.end(errClientClose)
	}
	s.mu.Lock()
	s.open = false
	s.mu.Unlock()
}
