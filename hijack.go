package signalhub

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// readBufferSize is the WebSocket read buffer of a connection: frame
// headers and small records are read through it, larger payloads go
// straight into the read loop's buffer.
const readBufferSize = 1024

// lightHijacker hands the WebSocket library small per-connection buffers
// instead of net/http's 4 KiB reader and writer, which an idle connection
// would hold for its whole life: a 1 KiB read buffer, and a minimal write
// buffer over a batchWriter that gathers a batch's frames in a pooled
// buffer only while the batch is written.
type lightHijacker struct {
	http.ResponseWriter
	bw *batchWriter // set by Hijack
}

// Hijack takes over the connection from net/http.
func (w *lightHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// Anything net/http left buffered goes out first (it sends the 101
	// response itself today).
	if err := brw.Writer.Flush(); err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	br := bufio.NewReaderSize(conn, readBufferSize)
	if n := brw.Reader.Buffered(); n > 0 {
		// Bytes net/http read past the request: they must be buffered in
		// the reader handed over, which the WebSocket library re-bases on
		// conn after taking what is buffered.
		b, _ := brw.Reader.Peek(n)
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(b)), conn), max(readBufferSize, n))
		if _, err := br.Peek(n); err != nil {
			_ = conn.Close()
			return nil, nil, err
		}
	}
	w.bw = &batchWriter{conn: conn}
	// bufio's smallest writer: frames pass through to batchWriter.
	return flushingConn{conn, w.bw}, bufio.NewReadWriter(br, bufio.NewWriterSize(w.bw, 16)), nil
}

// flushingConn is the socket as the WebSocket library sees it: closing it
// first writes what the batchWriter gathered. The library answers a
// client's close frame from the reading goroutine and closes the socket
// right after; when that happens during a batch, the answer sits in the
// batch, and must not be lost with it.
type flushingConn struct {
	net.Conn
	bw *batchWriter
}

// closeFlushTimeout bounds the last write of a closing socket.
const closeFlushTimeout = time.Second

func (c flushingConn) Close() error {
	// The deadline also ends a write that is stuck holding the lock (the
	// write watchdog closes a socket whose write does not end).
	_ = c.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
	c.bw.mu.Lock()
	if c.bw.batching && len(*c.bw.buf) > 0 {
		_ = c.bw.flushLocked()
	}
	c.bw.mu.Unlock()
	return c.Conn.Close()
}

// canHijack reports whether w, or a writer it wraps, can be hijacked.
func canHijack(w http.ResponseWriter) bool {
	for {
		switch t := w.(type) {
		case http.Hijacker:
			return true
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return false
		}
	}
}

// Unwrap lets http.ResponseController reach the original writer.
func (w *lightHijacker) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// batchWriter is the socket under a connection's WebSocket writer. Outside
// a batch it writes through; within one (begin, end) it gathers the frames
// and writes them at end with one system call, flushing early only past
// batchFlushSize.
type batchWriter struct {
	mu       sync.Mutex
	conn     net.Conn
	batching bool
	buf      *[]byte
}

// batchFlushSize bounds a batch's buffer: a larger batch is written in
// pieces of about this size.
const batchFlushSize = 64 << 10

var batchBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

func (w *batchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.batching {
		return w.conn.Write(p)
	}
	if len(*w.buf)+len(p) > batchFlushSize {
		if err := w.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) >= batchFlushSize {
			return w.conn.Write(p)
		}
	}
	*w.buf = append(*w.buf, p...)
	return len(p), nil
}

func (w *batchWriter) flushLocked() error {
	if len(*w.buf) == 0 {
		return nil
	}
	_, err := w.conn.Write(*w.buf)
	*w.buf = (*w.buf)[:0]
	return err
}

// begin starts gathering frames.
func (w *batchWriter) begin() {
	w.mu.Lock()
	w.batching = true
	w.buf = batchBufs.Get().(*[]byte)
	w.mu.Unlock()
}

// end writes what was gathered and returns the buffer to the pool.
func (w *batchWriter) end() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.flushLocked()
	w.batching = false
	if cap(*w.buf) <= batchFlushSize {
		batchBufs.Put(w.buf)
	}
	w.buf = nil
	return err
}
