package backplanetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signalhub/signalhub/backplane"
)

// closeQuietPeriod is how long the Close subtest waits to see whether
// Close returns while the Handler is still running.
const closeQuietPeriod = 100 * time.Millisecond

// timeout bounds each subtest of Run, and each Close at its end, unless
// the test binary's deadline (go test -timeout) comes sooner.
const timeout = 15 * time.Second

// Run tests that an engine meets the backplane.Backplane contract. Each
// call of newNode must return a new, unstarted node of one cluster: every
// node created during a subtest must reach the others, and no message from
// outside the subtest may reach them. newNode is called with the subtest's
// t, so it may register cleanups and derive a channel prefix from t.Name().
//
// Run starts every node with a Handler of its own and closes it when the
// subtest ends. The subtests run one after another, each within 15
// seconds, or within most of the time left when go test's -timeout is
// closer, so that a hang is reported as a failure of its subtest. They
// check that a message reaches every subscribed node exactly once and no
// other, in order per publisher and channel, with any bytes in payloads
// and channel names; that Subscribe takes effect when it returns; that a
// Handler may call its Backplane; that the Handler never runs twice at
// once; and that Close waits for the Handler and makes later calls return
// backplane.ErrClosed. Whether Close leaves goroutines behind is for the
// engine's own tests to check, with a leak checker.
func Run(t *testing.T, newNode func(t *testing.T) backplane.Backplane) {
	t.Helper()
	for _, tc := range []struct {
		name string
		test func(c *cluster)
	}{
		{"PublishReachesSubscribers", testPublishReachesSubscribers},
		{"OnlySubscribersReceive", testOnlySubscribersReceive},
		{"Unsubscribe", testUnsubscribe},
		{"Order", testOrder},
		{"ConcurrentPublishers", testConcurrentPublishers},
		{"BinaryPayloads", testBinaryPayloads},
		{"ChannelNames", testChannelNames},
		{"SubscribeEffectiveOnReturn", testSubscribeEffectiveOnReturn},
		{"HandlerMayCallBackplane", testHandlerMayCallBackplane},
		{"HandlerNotConcurrent", testHandlerNotConcurrent},
		{"Close", testClose},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limit := timeout
			if deadline, ok := t.Deadline(); ok {
				left := time.Until(deadline)
				limit = min(limit, left-left/10)
			}
			ctx, cancel := context.WithTimeout(t.Context(), limit)
			defer cancel()
			tc.test(&cluster{t: t, ctx: ctx, limit: limit, newNode: newNode})
		})
	}
}

// cluster is the state of one subtest. ctx is the subtest's own, ending
// with it or after limit.
type cluster struct {
	t       *testing.T
	ctx     context.Context
	limit   time.Duration
	newNode func(*testing.T) backplane.Backplane
}

// message is what a node's Handler got.
type message struct {
	channel string
	data    []byte
}

func (m message) String() string {
	data := m.data
	suffix := ""
	if len(data) > 48 {
		data, suffix = data[:48], fmt.Sprintf("...(%d bytes)", len(m.data))
	}
	return fmt.Sprintf("%q on %q", data, m.channel) + suffix
}

func msg(channel, data string) message { return message{channel, []byte(data)} }

// peer is a started node whose Handler forwards every message to got.
type peer struct {
	c    *cluster
	name string
	bp   backplane.Backplane
	got  chan message
	stop chan struct{} // closed when the subtest ends, so the Handler never blocks then
	hook func(p *peer, channel string, data []byte)

	inflight   atomic.Int32
	concurrent atomic.Bool // the Handler was called while it was running
	closed     atomic.Bool // Close has returned
	late       atomic.Bool // the Handler was called after Close returned
}

// node starts a new node.
func (c *cluster) node(name string) *peer { return c.nodeWithHook(name, nil) }

// nodeWithHook starts a new node whose Handler calls hook before it
// forwards the message.
func (c *cluster) nodeWithHook(name string, hook func(p *peer, channel string, data []byte)) *peer {
	c.t.Helper()
	p := &peer{
		c:    c,
		name: name,
		bp:   c.newNode(c.t),
		got:  make(chan message, 4096),
		stop: make(chan struct{}),
		hook: hook,
	}
	if p.bp == nil {
		c.t.Fatalf("newNode returned nil")
	}
	c.t.Cleanup(p.cleanup)
	if err := p.bp.Start(c.ctx, p.handle); err != nil {
		c.t.Fatalf("node %s: Start: %v", name, err)
	}
	return p
}

func (p *peer) handle(channel string, data []byte) {
	if p.inflight.Add(1) > 1 {
		p.concurrent.Store(true)
	}
	defer p.inflight.Add(-1)
	if p.closed.Load() {
		p.late.Store(true)
	}
	runtime.Gosched() // gives a second, concurrent call the chance to show
	if p.hook != nil {
		p.hook(p, channel, data)
	}
	select {
	case p.got <- message{channel, data}:
	case <-p.stop:
	}
}

func (p *peer) cleanup() {
	t := p.c.t
	close(p.stop)
	if !p.closed.Load() {
		if err := p.c.closeWithin(p.bp); err != nil && !errors.Is(err, backplane.ErrClosed) {
			t.Errorf("node %s: Close: %v", p.name, err)
		}
		p.closed.Store(true)
	}
	if p.concurrent.Load() {
		t.Errorf("node %s: Handler called while it was running", p.name)
	}
	if p.late.Load() {
		t.Errorf("node %s: Handler called after Close returned", p.name)
	}
}

// closeWithin closes bp, giving up after the subtest's limit.
func (c *cluster) closeWithin(bp backplane.Backplane) error {
	done := make(chan error, 1)
	go func() { done <- bp.Close() }()
	timer := time.NewTimer(c.limit)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return fmt.Errorf("did not return within %v", c.limit)
	}
}

func (p *peer) subscribe(channels ...string) {
	p.c.t.Helper()
	for _, ch := range channels {
		if err := p.bp.Subscribe(p.c.ctx, ch); err != nil {
			p.c.t.Fatalf("node %s: Subscribe(%q): %v", p.name, ch, err)
		}
	}
}

func (p *peer) unsubscribe(channel string) {
	p.c.t.Helper()
	if err := p.bp.Unsubscribe(p.c.ctx, channel); err != nil {
		p.c.t.Fatalf("node %s: Unsubscribe(%q): %v", p.name, channel, err)
	}
}

func (p *peer) publish(channel string, data []byte) {
	p.c.t.Helper()
	if err := p.bp.Publish(p.c.ctx, channel, data); err != nil {
		p.c.t.Fatalf("node %s: Publish(%q): %v", p.name, channel, err)
	}
}

func (p *peer) publishString(channel, data string) { p.c.t.Helper(); p.publish(channel, []byte(data)) }

// next returns the node's next message, failing the test if none comes.
func (p *peer) next(waitingFor string) message {
	p.c.t.Helper()
	select {
	case m := <-p.got:
		return m
	case <-p.c.ctx.Done():
		p.c.t.Fatalf("node %s: waiting for %s: nothing arrived (%v)", p.name, waitingFor, context.Cause(p.c.ctx))
		return message{}
	}
}

// expect checks that the node's next message is want and returns it.
func (p *peer) expect(want message) message {
	p.c.t.Helper()
	got := p.next(want.String())
	if got.channel != want.channel || !bytes.Equal(got.data, want.data) {
		p.c.t.Fatalf("node %s: got %v, want %v", p.name, got, want)
	}
	return got
}

// expectSet checks that the node's next len(want) messages are want, in
// any order.
func (p *peer) expectSet(want ...message) {
	p.c.t.Helper()
	left := slices.Clone(want)
	for range want {
		got := p.next(fmt.Sprint("one of ", left))
		i := slices.IndexFunc(left, func(w message) bool {
			return w.channel == got.channel && bytes.Equal(w.data, got.data)
		})
		if i < 0 {
			p.c.t.Fatalf("node %s: got %v, want one of %v", p.name, got, left)
		}
		left = slices.Delete(left, i, i+1)
	}
}

// publishAll publishes count messages from each of goroutines goroutines
// per publisher, cycling through channels. A message's data is
// "<goroutine>/<sequence>"; goroutine g belongs to publishers[g%len].
func (c *cluster) publishAll(publishers []*peer, goroutines, count int, channels []string) {
	c.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*len(publishers))
	for g := range goroutines * len(publishers) {
		p := publishers[g%len(publishers)]
		wg.Go(func() {
			for i := range count {
				ch := channels[i%len(channels)]
				if err := p.bp.Publish(c.ctx, ch, fmt.Appendf(nil, "%d/%d", g, i)); err != nil {
					errs <- fmt.Errorf("node %s: Publish(%q): %w", p.name, ch, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		c.t.Error(err)
	}
	if c.t.Failed() {
		c.t.FailNow()
	}
}

// receiveAll reads goroutines*count messages of publishAll at p and checks
// that each arrives once, on its channel, in order per goroutine and
// channel.
func (p *peer) receiveAll(goroutines, count int, channels []string) {
	p.c.t.Helper()
	type key struct{ g, channel int }
	last := make(map[key]int)
	seen := make(map[string]bool)
	for range goroutines * count {
		m := p.next(fmt.Sprintf("message %d of %d", len(seen)+1, goroutines*count))
		gs, is, ok := strings.Cut(string(m.data), "/")
		g, err1 := strconv.Atoi(gs)
		i, err2 := strconv.Atoi(is)
		if !ok || err1 != nil || err2 != nil || g < 0 || g >= goroutines || i < 0 || i >= count {
			p.c.t.Fatalf("node %s: got %v, which nobody published", p.name, m)
		}
		if seen[string(m.data)] {
			p.c.t.Fatalf("node %s: got %v twice", p.name, m)
		}
		seen[string(m.data)] = true
		if ch := channels[i%len(channels)]; m.channel != ch {
			p.c.t.Fatalf("node %s: got %v, published on %q", p.name, m, ch)
		}
		k := key{g, i % len(channels)}
		if prev, ok := last[k]; ok && prev > i {
			p.c.t.Fatalf("node %s: got %v after %d/%d on the same channel", p.name, m, g, prev)
		}
		last[k] = i
	}
}

// markers has each publisher send "marker <name>" on each channel and
// checks that each node gets exactly those next: any duplicate of an
// earlier message by the same publisher on the same channel would come
// before its marker.
func markers(publishers, receivers []*peer, channels ...string) {
	receivers[0].c.t.Helper()
	var want []message
	for _, p := range publishers {
		for _, ch := range channels {
			p.publishString(ch, "marker "+p.name)
			want = append(want, msg(ch, "marker "+p.name))
		}
	}
	for _, r := range receivers {
		r.expectSet(want...)
	}
}

func testPublishReachesSubscribers(c *cluster) {
	a, b, n := c.node("a"), c.node("b"), c.node("n")
	a.subscribe("ch")
	b.subscribe("ch")

	a.publishString("ch", "from a") // the publisher is subscribed
	a.expect(msg("ch", "from a"))
	b.expect(msg("ch", "from a"))
	n.publishString("ch", "from n") // the publisher is not
	a.expect(msg("ch", "from n"))
	b.expect(msg("ch", "from n"))
	markers([]*peer{a, n}, []*peer{a, b}, "ch") // exactly once

	// Nothing reached n, which was not subscribed: it would come before
	// the markers that follow.
	n.subscribe("ch")
	markers([]*peer{a, n}, []*peer{a, b, n}, "ch")
}

func testOnlySubscribersReceive(c *cluster) {
	a, b := c.node("a"), c.node("b")
	b.subscribe("b's channel")
	a.publishString("nobody's channel", "lost") // no subscriber: no error
	a.publishString("other", "not for b")
	a.publishString("b's channel", "for b")
	b.expect(msg("b's channel", "for b"))

	b.subscribe("nobody's channel", "other")
	markers([]*peer{a}, []*peer{b}, "nobody's channel", "other", "b's channel")
}

func testUnsubscribe(c *cluster) {
	a, b := c.node("a"), c.node("b")
	a.subscribe("ch")
	b.subscribe("ch", "kept")
	a.publishString("ch", "1")
	a.expect(msg("ch", "1"))
	b.expect(msg("ch", "1"))

	b.unsubscribe("ch")
	a.publishString("ch", "2") // reaches a only
	a.publishString("kept", "still subscribed")
	a.expect(msg("ch", "2"))

	// Had "2" reached b, it would come before the marker on "ch".
	b.subscribe("ch")
	a.publishString("ch", "marker")
	b.expectSet(msg("kept", "still subscribed"), msg("ch", "marker"))
	a.expect(msg("ch", "marker"))
}

func testOrder(c *cluster) {
	const n = 1000
	a, b, d := c.node("a"), c.node("b"), c.node("d")
	b.subscribe("ordered")
	d.subscribe("ordered")
	for i := range n {
		// Lengths vary so that framing mistakes show.
		data := binary.BigEndian.AppendUint64(nil, uint64(i))
		a.publish("ordered", append(data, strings.Repeat("x", i%17)...))
	}
	for _, p := range []*peer{b, d} {
		// Read everything first: a Handler's data must stay intact after
		// it returns, even when the engine reads more messages.
		got := make([]message, n)
		for i := range got {
			got[i] = p.next(fmt.Sprintf("message %d of %d", i+1, n))
		}
		for i, m := range got {
			if m.channel != "ordered" || len(m.data) != 8+i%17 || binary.BigEndian.Uint64(m.data) != uint64(i) {
				c.t.Fatalf("node %s: message %d is %v, want number %d on %q", p.name, i, m, i, "ordered")
			}
		}
	}
}

func testConcurrentPublishers(c *cluster) {
	const goroutines, count = 6, 150
	channels := []string{"c0", "c1", "c2", "c3"}
	nodes := []*peer{c.node("a"), c.node("b"), c.node("d")}
	for _, p := range nodes {
		p.subscribe(channels...)
	}
	c.publishAll(nodes, goroutines/len(nodes), count, channels)
	for _, p := range nodes {
		p.receiveAll(goroutines, count, channels)
	}
	markers(nodes, nodes, channels...)
}

func testBinaryPayloads(c *cluster) {
	a, b := c.node("a"), c.node("b")
	a.subscribe("binary")
	b.subscribe("binary")
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	reversed := slices.Clone(all)
	slices.Reverse(reversed)
	large := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range large {
		large[i] = byte(rng.Uint32())
	}
	for _, want := range [][]byte{all, reversed, {}, {0}, large} {
		buf := slices.Clone(want)
		a.publish("binary", buf)
		for i := range buf {
			buf[i] ^= 0xff // the publisher reuses its buffer
		}
		gotA := a.expect(message{"binary", want})
		gotB := b.expect(message{"binary", want})
		for i := range gotA.data {
			gotA.data[i] ^= 0x55 // a's Handler owns its copy
		}
		if !bytes.Equal(gotB.data, want) {
			c.t.Fatalf("node b: data changed when node a's Handler wrote to its own (%d bytes)", len(want))
		}
	}
}

func testChannelNames(c *cluster) {
	names := []string{
		"room 1", "group:room 1", "user:alice@example.com", "a:b:c", "группа", "日本語 🎉",
		"tab\tand\nnewline", "nul\x00byte", "\xff\xfe not UTF-8", "%s %d", `quote" back\slash`,
		"*", "a*", "a?", "[ab]", "a.b", ">", "{x}", "#", "/", strings.Repeat("long", 256),
	}
	a, b := c.node("a"), c.node("b")
	a.subscribe(names...)
	b.subscribe(names...)
	var want []message
	for _, name := range names {
		a.publishString(name, name)
		want = append(want, msg(name, name))
	}
	a.expectSet(want...)
	b.expectSet(want...)

	// Names that read as patterns to some servers match only themselves.
	p := c.node("patterns")
	p.subscribe("*", "a*", ">", "[ab]")
	others := []string{"abc", "a", "b", "a.b.c", "x"}
	for _, ch := range others {
		a.publishString(ch, "not for patterns")
	}
	p.subscribe(others...)
	markers([]*peer{a}, []*peer{p}, others...)
	a.publishString("a*", "for a*")
	p.expect(msg("a*", "for a*"))
}

func testSubscribeEffectiveOnReturn(c *cluster) {
	a, b := c.node("a"), c.node("b")
	for i := range 20 {
		ch := fmt.Sprintf("fresh %d", i)
		b.subscribe(ch)
		a.publishString(ch, "to b")
		b.expect(msg(ch, "to b"))
		a.subscribe(ch)
		a.publishString(ch, "to both")
		a.expect(msg(ch, "to both"))
		b.expect(msg(ch, "to both"))
	}
}

func testHandlerMayCallBackplane(c *cluster) {
	errs := make(chan error, 1)
	// b's Handler follows "join <channel>" and "leave <channel>" requests,
	// then replies, as a hub does for group requests from other nodes.
	b := c.nodeWithHook("b", func(p *peer, channel string, data []byte) {
		if channel != "requests" {
			return
		}
		op, ch, _ := strings.Cut(string(data), " ")
		var err error
		if op == "join" {
			err = p.bp.Subscribe(c.ctx, ch)
		} else {
			err = p.bp.Unsubscribe(c.ctx, ch)
		}
		if err == nil {
			err = p.bp.Publish(c.ctx, "replies", append([]byte("done "), data...))
		}
		if err != nil {
			select {
			case errs <- fmt.Errorf("node b: Handler: %s: %w", data, err):
			default:
			}
		}
	})
	a := c.node("a")
	a.subscribe("replies")
	b.subscribe("requests")
	request := func(req string) {
		c.t.Helper()
		a.publishString("requests", req)
		select {
		case err := <-errs:
			c.t.Fatal(err)
		case m := <-a.got:
			if want := msg("replies", "done "+req); m.channel != want.channel || !bytes.Equal(m.data, want.data) {
				c.t.Fatalf("node a: got %v, want %v", m, want)
			}
		case <-c.ctx.Done():
			c.t.Fatalf("node a: no reply to %q from b's Handler", req)
		}
		b.expect(msg("requests", req))
	}

	request("join room")
	a.publishString("room", "hello")
	b.expect(msg("room", "hello"))

	request("leave room")
	a.publishString("room", "after leave")
	b.subscribe("room")
	a.publishString("room", "marker")
	b.expect(msg("room", "marker"))
}

func testHandlerNotConcurrent(c *cluster) {
	const goroutines, count = 6, 100
	channels := []string{"c0", "c1", "c2"}
	target := c.node("target")
	target.subscribe(channels...)
	publishers := []*peer{c.node("a"), c.node("b"), c.node("d")}
	c.publishAll(publishers, goroutines/len(publishers), count, channels)
	target.receiveAll(goroutines, count, channels)
	if target.concurrent.Swap(false) { // reported here rather than at cleanup
		c.t.Errorf("node %s: Handler called while it was running", target.name)
	}
}

func testClose(c *cluster) {
	entered, release := make(chan struct{}), make(chan struct{})
	var enterOnce sync.Once
	b := c.nodeWithHook("b", func(p *peer, channel string, data []byte) {
		if channel != "block" {
			return
		}
		enterOnce.Do(func() { close(entered) })
		select {
		case <-release:
		case <-p.stop:
		}
	})
	a := c.node("a")
	a.subscribe("ch")
	b.subscribe("ch", "block")
	a.publishString("ch", "before")
	a.expect(msg("ch", "before"))
	b.expect(msg("ch", "before"))

	// Close while b's Handler runs: it must wait for the Handler.
	a.publishString("block", "hold on")
	select {
	case <-entered:
	case <-c.ctx.Done():
		c.t.Fatal("node b: Handler not called for a message on \"block\"")
	}
	closed := make(chan error, 1)
	go func() {
		err := b.bp.Close()
		b.closed.Store(true)
		closed <- err
	}()
	// Close must still be waiting. Proving a negative takes a quiet
	// period; a correct engine only pays it once.
	quiet := time.NewTimer(closeQuietPeriod)
	select {
	case <-closed:
		c.t.Fatal("node b: Close returned while the Handler was running")
	case <-quiet.C:
	}
	close(release)
	select {
	case err := <-closed:
		if err != nil {
			c.t.Fatalf("node b: Close: %v", err)
		}
	case <-c.ctx.Done():
		c.t.Fatal("node b: Close did not return")
	}
	ctx := c.ctx
	for name, err := range map[string]error{
		"Publish":     b.bp.Publish(ctx, "ch", []byte("x")),
		"Subscribe":   b.bp.Subscribe(ctx, "other"),
		"Unsubscribe": b.bp.Unsubscribe(ctx, "ch"),
		"Start":       b.bp.Start(ctx, func(string, []byte) {}),
		"Close":       b.bp.Close(),
	} {
		if !errors.Is(err, backplane.ErrClosed) {
			c.t.Errorf("node b: %s after Close: got %v, want an error wrapping ErrClosed", name, err)
		}
	}

	// The cluster works on without b.
	a.publishString("ch", "after")
	a.expect(msg("ch", "after"))

	// A node may be closed without being started.
	idle := c.newNode(c.t)
	if err := c.closeWithin(idle); err != nil {
		c.t.Fatalf("Close of a node never started: %v", err)
	}
	if err := idle.Publish(ctx, "ch", []byte("x")); !errors.Is(err, backplane.ErrClosed) {
		c.t.Errorf("Publish after Close of a node never started: got %v, want an error wrapping ErrClosed", err)
	}
}
