package signalhub

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// countingWire is an in-memory wire that counts the records written to it,
// so a benchmark can wait until every recipient's writer has delivered.
type countingWire struct {
	d *delivered
}

// delivered counts records across all wires and closes reached once the
// count hits target.
type delivered struct {
	total   atomic.Int64
	target  atomic.Int64
	reached chan struct{}
	once    sync.Once
}

func newDelivered() *delivered { return &delivered{reached: make(chan struct{})} }

// reset starts counting from zero. No writer may be delivering.
func (d *delivered) reset() {
	d.target.Store(0)
	d.total.Store(0)
	d.reached = make(chan struct{})
	d.once = sync.Once{}
}

func (d *delivered) add(n int64) {
	if t := d.target.Load(); d.total.Add(n) >= t && t > 0 {
		d.once.Do(func() { close(d.reached) })
	}
}

// wait returns once want records have been delivered, or fails after a
// minute.
func (d *delivered) wait(tb testing.TB, want int64) {
	tb.Helper()
	d.target.Store(want)
	d.add(0)
	select {
	case <-d.reached:
	case <-time.After(time.Minute):
		tb.Fatalf("delivered %d of %d records", d.total.Load(), want)
	}
}

func (w countingWire) write(_ context.Context, records [][]byte) error {
	w.d.add(int64(len(records)))
	return nil
}
func (countingWire) close(websocket.StatusCode, string) error { return nil }
func (countingWire) closeNow() error                          { return nil }

// attachMemoryConns registers n handshaken in-memory connections in group
// and starts their writers. The returned stop function ends them.
func attachMemoryConns(tb testing.TB, h *Hub, n int, group string, d *delivered) (stop func()) {
	tb.Helper()
	conns := make([]*conn, n)
	for i := range conns {
		c := newConn(h, fmt.Sprintf("c%d", i), "", countingWire{d: d})
		c.userID = fmt.Sprintf("u%d", i)
		if err := h.register(c); err != nil {
			tb.Fatal(err)
		}
		c.started.Store(true)
		go c.writeLoop()
		if err := h.AddToGroup(context.Background(), c.id, group); err != nil {
			tb.Fatal(err)
		}
		conns[i] = c
	}
	return func() {
		for _, c := range conns {
			h.unregister(c)
			c.stopWriter()
			<-c.done
			c.cancel(nil)
		}
	}
}

// BenchmarkSendToGroup measures a group send end to end in process: encode
// once, queue for every member, and every member's writer delivering the
// record to an in-memory wire. Allocations per send must not grow with N.
func BenchmarkSendToGroup(b *testing.B) {
	payload := strings.Repeat("x", 200)
	for _, n := range []int{1, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			h, err := New(&Options{SendQueueLength: 1 << 20, SendQueueBytes: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			d := newDelivered()
			stop := attachMemoryConns(b, h, n, "g", d)
			defer stop()
			ctx := context.Background()
			// Warm up until every member's queue buffers have grown to what
			// a burst needs, so that the figures show the steady state.
			const warmup = 200
			for range warmup {
				if err := h.SendToGroup(ctx, "g", "ReceiveMessage", "alice", payload); err != nil {
					b.Fatal(err)
				}
			}
			d.wait(b, warmup*int64(n))
			d.reset()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := h.SendToGroup(ctx, "g", "ReceiveMessage", "alice", payload); err != nil {
					b.Fatal(err)
				}
			}
			// Count delivery as part of the send: wait for every writer.
			want := int64(b.N) * int64(n)
			d.wait(b, want)
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(want), "ns/recipient")
			b.ReportMetric(float64(want)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
