package main

import (
	"context"
	"errors"
	"io"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/signalhub/signalhub/bench/internal/payload"
)

// client is one connection of the generator. Its reader goroutine is the
// only one that touches run, last and buf.
type client struct {
	ws   *websocket.Conn
	sys  *system
	idx  int
	pair int // the pair a receiver belongs to in the one-to-one cases; -1 otherwise

	run  int64 // the run of the last message read
	last int64 // the last sequence number read in run
	buf  []byte
}

// phase is one measured stretch of a case: the messages of one run. The
// readers record into the phase that is current when a message arrives.
type phase struct {
	run       int64
	hist      histogram
	delivered counter
	dups      atomic.Int64 // messages at or below a connection's last sequence number
	lastRecv  atomic.Int64 // Unix nanoseconds of the latest delivery
	pairs     []pairState  // per pair, in the one-to-one flat-out case
}

// pairState lets a sender wait for its receiver.
type pairState struct {
	recv atomic.Int64
	wake chan struct{} // capacity 1
}

// receiver is what the readers share: the current phase, and counts of
// what arrived outside one.
type receiver struct {
	cur   atomic.Pointer[phase]
	stale atomic.Int64
}

// readLoop reads until the connection ends. first is the part of the
// handshake frame that followed the handshake.
func (c *client) readLoop(ctx context.Context, rc *receiver, first []byte, wg *sync.WaitGroup) {
	defer wg.Done()
	if len(first) > 0 {
		c.frame(ctx, rc, first)
	}
	for {
		_, r, err := c.ws.Reader(ctx)
		if err != nil {
			return
		}
		c.buf, err = readAll(r, c.buf[:0])
		if err != nil {
			return
		}
		c.frame(ctx, rc, c.buf)
	}
}

func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

func (c *client) frame(ctx context.Context, rc *receiver, frame []byte) {
	if c.sys.reply != nil {
		if out := c.sys.reply(frame); out != nil {
			_ = c.ws.Write(ctx, websocket.MessageText, out)
		}
	}
	now := time.Now().UnixNano()
	ph := rc.cur.Load()
	payload.Scan(frame, func(m payload.Message) {
		if ph == nil || m.Run != ph.run {
			rc.stale.Add(1)
			return
		}
		if c.run != m.Run {
			c.run, c.last = m.Run, -1
		}
		if m.Seq <= c.last {
			ph.dups.Add(1)
			return
		}
		c.last = m.Seq
		ph.hist.record(c.idx, now-m.Time)
		if ph.pairs != nil && c.pair >= 0 {
			p := &ph.pairs[c.pair]
			p.recv.Add(1)
			select {
			case p.wake <- struct{}{}:
			default:
			}
		}
		ph.delivered.add(1)
	})
	if ph != nil && ph.run == c.run {
		if ph.lastRecv.Load() < now {
			ph.lastRecv.Store(now)
		}
	}
}

// counter is a count that one goroutine at a time can wait on.
type counter struct {
	n      atomic.Int64
	target atomic.Int64 // the waited-for count; 0 when nobody waits
	mu     sync.Mutex   // guards ch
	ch     chan struct{}
}

func (c *counter) add(d int64) {
	n := c.n.Add(d)
	if t := c.target.Load(); t > 0 && n >= t {
		c.mu.Lock()
		if c.ch != nil && c.target.Load() > 0 && n >= c.target.Load() {
			close(c.ch)
			c.ch = nil
			c.target.Store(0)
		}
		c.mu.Unlock()
	}
}

func (c *counter) load() int64 { return c.n.Load() }

// wait blocks until the count reaches target, ctx ends or timeout passes,
// and reports whether the count reached target.
func (c *counter) wait(ctx context.Context, target int64, timeout time.Duration) bool {
	ch := make(chan struct{})
	c.mu.Lock()
	c.ch = ch
	c.target.Store(target)
	c.mu.Unlock()
	if c.n.Load() >= target {
		c.mu.Lock()
		c.ch = nil
		c.target.Store(0)
		c.mu.Unlock()
		return true
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
	case <-t.C:
	}
	c.mu.Lock()
	c.ch = nil
	c.target.Store(0)
	c.mu.Unlock()
	return c.n.Load() >= target
}

// waitProgress waits until the count reaches target, as long as it keeps
// growing: it gives up when the count has not moved for stall, or when ctx
// ends, and reports whether the count reached target.
func (c *counter) waitProgress(ctx context.Context, target int64, stall time.Duration) bool {
	for {
		before := c.load()
		if c.wait(ctx, target, stall) {
			return true
		}
		if ctx.Err() != nil || c.load() == before {
			return false
		}
	}
}

// histogram counts latencies in log-linear buckets: exact below 64 ns, then
// 32 buckets per power of two, so a quantile is within 1/64 (1.6 %) of the
// true value. Shards keep the two cores from fighting over cache lines.
type histogram struct {
	shards [histShards]histShard
	max    atomic.Int64
	neg    atomic.Int64 // latencies below zero (clock steps); counted as 0
}

const (
	histShards  = 16
	histBuckets = 64 * 32
)

type histShard struct {
	b [histBuckets]atomic.Uint64
	_ [64]byte
}

func bucketOf(v int64) int {
	if v < 64 {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - 6
	i := (e+1)*32 + int(uint64(v)>>e) - 32
	return min(i, histBuckets-1)
}

// bucketValue is the middle of bucket i.
func bucketValue(i int) int64 {
	if i < 64 {
		return int64(i)
	}
	e := i/32 - 1
	m := int64(i%32 + 32)
	return m<<e + (int64(1)<<e)/2
}

func (h *histogram) record(shard int, ns int64) {
	if ns < 0 {
		h.neg.Add(1)
		ns = 0
	}
	h.shards[shard%histShards].b[bucketOf(ns)].Add(1)
	for {
		m := h.max.Load()
		if ns <= m || h.max.CompareAndSwap(m, ns) {
			return
		}
	}
}

// quantiles returns the latencies at each q in qs (0 < q <= 1), in ns.
func (h *histogram) quantiles(qs ...float64) []int64 {
	var counts [histBuckets]uint64
	var total uint64
	for s := range h.shards {
		for i := range counts {
			n := h.shards[s].b[i].Load()
			counts[i] += n
			total += n
		}
	}
	out := make([]int64, len(qs))
	if total == 0 {
		return out
	}
	for k, q := range qs {
		rank := uint64(q*float64(total) + 0.5)
		rank = max(rank, 1)
		var seen uint64
		for i, n := range counts {
			seen += n
			if seen >= rank {
				out[k] = min(bucketValue(i), h.max.Load())
				break
			}
		}
	}
	return out
}
