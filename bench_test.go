package signalhub

import (
	"context"
	"encoding/json"
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

// delivered counts records across all wires; wait blocks until the count
// reaches a target.
type delivered struct {
	total atomic.Int64
	mu    sync.Mutex    // guards want and ch
	want  int64         // the target a waiter waits for; 0 when none
	ch    chan struct{} // closed when total reaches want
}

func newDelivered() *delivered { return &delivered{} }

// reset starts counting from zero. No writer may be delivering.
func (d *delivered) reset() { d.total.Store(0) }

func (d *delivered) add(n int64) {
	t := d.total.Add(n)
	d.mu.Lock()
	if d.ch != nil && t >= d.want {
		close(d.ch)
		d.ch, d.want = nil, 0
	}
	d.mu.Unlock()
}

// wait returns once target records have been delivered, or fails after a
// minute.
func (d *delivered) wait(tb testing.TB, target int64) {
	tb.Helper()
	d.mu.Lock()
	if d.total.Load() >= target {
		d.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	d.ch, d.want = ch, target
	d.mu.Unlock()
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
		tb.Fatalf("delivered %d of %d records", d.total.Load(), target)
	}
}

func (w countingWire) write(_ context.Context, records [][]byte) error {
	w.d.add(int64(len(records)))
	return nil
}
func (countingWire) close(websocket.StatusCode, string) error { return nil }
func (countingWire) closeNow() error                          { return nil }

// attachMemoryConns registers n handshaken in-memory connections in group
// (with connection IDs c<group><i> and user IDs u<group><i>) and starts
// their writers. The returned stop function ends them.
// With writers (d != nil) every connection's writer goroutine runs;
// without, the caller drains the queues itself.
func attachMemoryConns(tb testing.TB, h *Hub, n int, group string, d *delivered) (conns []*conn, stop func()) {
	tb.Helper()
	conns = make([]*conn, n)
	for i := range conns {
		c := newConn(h, fmt.Sprintf("c%s%d", group, i), "", countingWire{d: d})
		c.userID = fmt.Sprintf("u%s%d", group, i)
		if err := h.register(c); err != nil {
			tb.Fatal(err)
		}
		if d != nil {
			c.startWriter()
		}
		if err := h.AddToGroup(context.Background(), c.id, group); err != nil {
			tb.Fatal(err)
		}
		conns[i] = c
	}
	return conns, func() {
		for _, c := range conns {
			h.unregister(c)
			if d != nil {
				c.stopWriter()
				<-c.done
			}
			c.cancel(nil)
		}
	}
}

// BenchmarkSendToGroup measures the hub's side of a group send in process:
// encode once, take the hub lock, and queue the shared record for every
// member. The benchmark drains each queue itself after every send, as a
// writer would, so no goroutine scheduling blurs the figures. Allocations
// per send must not grow with N.
func BenchmarkSendToGroup(b *testing.B) { benchSendToGroup(b, nil, groupSizes, attachJSONConns) }

// groupSizes are the group sizes of the group-send benchmarks.
var groupSizes = []int{1, 100, 1000, 10000}

// attachJSONConns is attachMemoryConns with JSON connections only.
func attachJSONConns(tb testing.TB, h *Hub, n int, group string) ([]*conn, func()) {
	return attachMemoryConns(tb, h, n, group, nil)
}

// benchSendToGroup is BenchmarkSendToGroup with a hub built from opts, at
// the group sizes given, the members attached by attach without writers:
// after each send it takes every member's queue, which must hold one
// record, of the member's protocol.
func benchSendToGroup(b *testing.B, opts *Options, sizes []int, attach func(tb testing.TB, h *Hub, n int, group string) ([]*conn, func())) {
	payload := strings.Repeat("x", 200)
	for _, n := range sizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			h, err := New(opts)
			if err != nil {
				b.Fatal(err)
			}
			conns, stop := attach(b, h, n, "g")
			defer stop()
			ctx := context.Background()
			drain := func() {
				for _, c := range conns {
					batch, _, _ := c.take()
					if len(batch) != 1 || (batch[0][0] == '{') == c.proto.binary {
						b.Fatalf("queued %d records, or of the other protocol", len(batch))
					}
					c.giveBack(batch)
				}
			}
			for range 2 { // both queue buffers of every member exist
				if err := h.SendToGroup(ctx, "g", "ReceiveMessage", "alice", payload); err != nil {
					b.Fatal(err)
				}
				drain()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := h.SendToGroup(ctx, "g", "ReceiveMessage", "alice", payload); err != nil {
					b.Fatal(err)
				}
				drain()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/recipient")
		})
	}
}

// BenchmarkSendToGroupDelivered measures a group send end to end in
// process: encode once, queue for every member, and every member's writer
// goroutine delivering the record to an in-memory wire. With 10,000 members
// on two cores, waking the writers dominates, and lagging writers still
// grow their queue buffers now and then.
func BenchmarkSendToGroupDelivered(b *testing.B) { benchSendToGroupDelivered(b, nil) }

// benchSendToGroupDelivered is BenchmarkSendToGroupDelivered with
// Options.Metrics set to m.
func benchSendToGroupDelivered(b *testing.B, m *Metrics) {
	payload := strings.Repeat("x", 200)
	for _, n := range []int{1, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			h, err := New(&Options{SendQueueLength: 1 << 20, SendQueueBytes: 1 << 30, Metrics: m})
			if err != nil {
				b.Fatal(err)
			}
			d := newDelivered()
			_, stop := attachMemoryConns(b, h, n, "g", d)
			defer stop()
			ctx := context.Background()
			// Warm up until every member's queue buffers have grown to what
			// a burst needs, so that the figures show the steady state.
			const warmup, window = 200, 64
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
				// Keep at most window messages in flight per member, as a
				// sender must to avoid the slow-consumer policy; it also
				// keeps queue buffers at their warmed-up size.
				if i%32 == 31 && i >= window {
					d.wait(b, int64(i+1-window)*int64(n))
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

// benchSend is the load generator's user-to-user hub method: it sends its
// message to every connection of the user.
func benchSend(c *Context, user string, msg json.RawMessage) error {
	return c.Hub().SendToUser(c.Context(), user, "m", msg)
}

// benchSendRecord is the non-blocking Invocation of Send a client of the
// load generator writes, to user, with a 200-byte JSON object.
func benchSendRecord(user string) []byte {
	msg := `{"r":7,"s":42,"t":1767225600000000000,"p":"` + strings.Repeat("x", 145) + `"}`
	return []byte(`{"type":1,"target":"Send","arguments":["` + user + `",` + msg + `]}`)
}

// BenchmarkInvocation measures one user-to-user message in process, the
// read goroutine's and the worker's share of it without their scheduling:
// decode the record, bind its arguments, call the hub method, which sends
// to the peer's user ID, and queue the encoded record for the peer
// (drained as its writer would).
func BenchmarkInvocation(b *testing.B) {
	h, err := New(&Options{Methods: map[string]any{"Send": benchSend}, InvocationRate: -1})
	if err != nil {
		b.Fatal(err)
	}
	conns, stop := attachMemoryConns(b, h, 2, "g", nil)
	defer stop()
	sender, peer := conns[0], conns[1]
	rec := benchSendRecord(peer.userID)
	send := func() {
		m, err := sender.proto.decode(rec)
		if err != nil {
			b.Fatal(err)
		}
		sender.invoke(&m)
		batch, _, _ := peer.take()
		if len(batch) != 1 {
			b.Fatalf("queued %d records, want 1", len(batch))
		}
		peer.giveBack(batch)
	}
	send()
	send()
	b.ReportAllocs()
	for b.Loop() {
		send()
	}
}

// BenchmarkInvocationDelivered measures user-to-user messages end to end
// in process: each of P senders hands its records to the connection as the
// read loop does (the invocation runs on the sender's worker goroutine)
// and the peer's writer goroutine delivers to an in-memory wire. Like the
// load generator's flat-out case, a sender has at most window messages on
// their way.
func BenchmarkInvocationDelivered(b *testing.B) {
	for _, pairs := range []int{1, 100} {
		b.Run(fmt.Sprintf("pairs=%d", pairs), func(b *testing.B) {
			h, err := New(&Options{Methods: map[string]any{"Send": benchSend}, InvocationRate: -1})
			if err != nil {
				b.Fatal(err)
			}
			d := newDelivered()
			senders, stopSenders := attachMemoryConns(b, h, pairs, "s", nil)
			defer stopSenders()
			peers, stopPeers := attachMemoryConns(b, h, pairs, "r", d)
			defer stopPeers()
			recs := make([][]byte, pairs)
			for i := range senders {
				recs[i] = benchSendRecord(peers[i].userID)
			}
			const window = 4
			sent := int64(0)
			round := func() {
				for i, s := range senders {
					if err := s.handleRecord(recs[i]); err != nil {
						b.Fatal(err)
					}
				}
				sent += int64(pairs)
				if sent >= window*int64(pairs) {
					d.wait(b, sent-window*int64(pairs)+int64(pairs))
				}
			}
			for range 2 * window {
				round()
			}
			d.wait(b, sent)
			d.reset()
			sent = 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				round()
			}
			d.wait(b, sent)
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(sent), "ns/delivery")
			for _, s := range senders {
				s.cancel(nil)
				s.invocations.Wait()
			}
		})
	}
}
