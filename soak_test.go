package signalhub_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	signalrclient "github.com/signalhub/signalhub/client"
)

var soakFor = flag.Duration("soak", 0,
	"run TestSoakChurn this long, with no bound on the number of connections (go test -run Soak -soak=5m)")

// Soak sizes. By default the churn stops after soakConnections
// connections or soakBudget, whichever comes first; -soak replaces both
// with its duration.
const (
	soakBudget      = 25 * time.Second
	soakConnections = 6000
	soakWorkers     = 8 // goroutines, each driving soakPool live clients
	soakPool        = 4
	soakGroups      = 6
)

// TestSoakChurn connects, joins, sends and disconnects thousands of
// clients from several goroutines at once, over loopback TCP, and checks
// each delivery as it happens and everything the hub holds afterwards:
//
//   - every message a client gets was meant for it when it was sent (the
//     message's sequence number names the send: its audience and when it
//     started), arrives once, and in order for its sender; and every
//     message meant for it for the whole of a send that ended before the
//     client's final marker arrived before that marker;
//   - a connection that ended gets nothing more: its client sees no
//     message after it ended, the hub writes to no socket after closing it,
//     and sends and group changes for its ID are no-ops or
//     ErrConnectionNotFound;
//   - OnConnected and OnDisconnected run exactly once per connection, with
//     the cause its ending calls for (the client's close, Context.Abort,
//     DisconnectUser, a dropped socket);
//   - afterwards, with the hub still running, Stats is zero, every server
//     socket is closed, and goroutines and heap are back to what they were
//     before the first connection; after Shutdown too.
func TestSoakChurn(t *testing.T) {
	// Not parallel: goroutines and heap are compared with a baseline.
	budget, maxConns := soakBudget, soakConnections
	if *soakFor > 0 {
		budget, maxConns = *soakFor, math.MaxInt
	}
	goroutinesBefore, heapBefore := runtime.NumGoroutine(), heapInUse()

	var (
		log    sendLog
		hooks  = newSoakHooks()
		issues soakIssues
	)
	hub, err := signalhub.New(&signalhub.Options{
		Logger: testLogger(t),
		Methods: map[string]any{
			"Join": func(c *signalhub.Context, group string) error {
				return c.Hub().AddToGroup(c.Context(), c.ConnectionID(), group)
			},
			"Leave": func(c *signalhub.Context, group string) error {
				return c.Hub().RemoveFromGroup(c.Context(), c.ConnectionID(), group)
			},
			"Say": func(c *signalhub.Context, group string, seq int) error {
				return c.OthersInGroup(group).Send(c.Context(), "Msg", seq)
			},
			"Quit": func(c *signalhub.Context) { c.Abort() },
		},
		OnConnected:    hooks.connected,
		OnDisconnected: hooks.disconnected,
	})
	require.NoError(t, err)
	mux := http.NewServeMux()
	hub.Mount(mux, "/hub")
	srv := httptest.NewUnstartedServer(userClaims(mux))
	sockets := &trackingListener{Listener: srv.Listener}
	srv.Listener = sockets
	srv.Start()
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = hub.Close()
			srv.Close()
		}
	})
	goroutinesServing, heapServing := runtime.NumGoroutine(), heapInUse()

	env := &soakEnv{hub: hub, url: srv.URL + "/hub", log: &log, hooks: hooks, issues: &issues}
	ctx, cancel := context.WithTimeout(context.Background(), budget+time.Minute)
	defer cancel()
	start := time.Now()
	deadline := start.Add(budget)
	var (
		made    atomic.Int64
		workers sync.WaitGroup
		fatal   = make(chan error, soakWorkers)
		stats   = make([]soakStats, soakWorkers)
	)
	for w := range soakWorkers {
		workers.Go(func() {
			wk := &soakWorker{soakEnv: env, w: w, rng: rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano()))), stats: &stats[w]}
			more := func() bool {
				return time.Now().Before(deadline) && made.Add(1) <= int64(maxConns)
			}
			if err := wk.run(ctx, more); err != nil {
				fatal <- fmt.Errorf("worker %d: %w", w, err)
			}
		})
	}
	workers.Wait()
	elapsed := time.Since(start)
	close(fatal)
	for err := range fatal {
		t.Error(err)
	}
	issues.report(t)

	var total soakStats
	for _, s := range stats {
		total.add(s)
	}

	// Every connection had its hooks run once each, with the right cause
	// (checked by the workers), and the hub holds nothing any more.
	hooks.check(t, total.connections)
	assert.Zero(t, hub.Stats(), "no connection, user or group is left")

	// The client side is gone too (each client's transport was closed
	// with it), so the server's sockets close. Nothing signals the last
	// of these closes: poll, for a bounded time.
	assert.True(t, eventually(10*time.Second, func() bool { return sockets.open() == 0 }),
		"server sockets still open: %d of %d", sockets.open(), sockets.accepted.Load())
	assert.Zero(t, sockets.writesAfterClose.Load(), "writes to a socket the server had closed")

	// Goroutines and heap, hub still running with no connections. The
	// goroutines of closed connections exit on their own time: poll.
	var goroutinesIdle int
	assert.True(t, eventually(10*time.Second, func() bool {
		goroutinesIdle = runtime.NumGoroutine()
		return goroutinesIdle <= goroutinesServing
	}), "goroutines: %d with the hub idle, %d before the first connection\n%s", goroutinesIdle, goroutinesServing, goroutineDump())
	sent, delivered := log.len(), total.received
	log.reset() // the test's own records, not the hub's
	hooks.reset()
	heapIdle := heapInUse()
	// What may remain is bounded by the peak load, not by the number of
	// connections made: negotiated tokens wait in a FIFO until they expire
	// (NegotiateTimeout), maps keep the size they grew to, the runtime
	// keeps the descriptors of exited goroutines for reuse. 2 MiB is some
	// ten times that here; a leak of 64 bytes per connection exceeds it
	// in a soak of five minutes.
	const heapSlack int64 = 2 << 20
	assert.Less(t, int64(heapIdle)-int64(heapServing), heapSlack,
		"heap with the hub idle after %d connections, compared with before the first", total.connections)

	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	require.NoError(t, hub.Shutdown(sctx))
	srv.Close()
	closed = true
	var goroutinesAfter int
	assert.True(t, eventually(10*time.Second, func() bool {
		goroutinesAfter = runtime.NumGoroutine()
		return goroutinesAfter <= goroutinesBefore
	}), "goroutines: %d after Shutdown, %d before the hub\n%s", goroutinesAfter, goroutinesBefore, goroutineDump())
	heapAfter := heapInUse()
	assert.Less(t, int64(heapAfter)-int64(heapBefore), heapSlack, "heap after Shutdown, compared with before the hub")

	t.Logf("%v, %d workers: %d connections (%d closed by the client, %d by Context.Abort, %d by DisconnectUser, %d dropped), %.0f a second",
		elapsed.Round(time.Millisecond), soakWorkers, total.connections, total.ends[endClose], total.ends[endQuit],
		total.ends[endRevoke], total.ends[endDrop], float64(total.connections)/elapsed.Seconds())
	t.Logf("%d group joins and %d leaves; %d sends (%d by hub method, %d to connections that had left), %d deliveries, %d of them checked as due before a marker",
		total.joins, total.leaves, sent, total.says, total.toDeparted, delivered, total.due)
	t.Logf("server sockets: %d accepted, %d closed, %d writes after close", sockets.accepted.Load(), sockets.closed.Load(), sockets.writesAfterClose.Load())
	t.Logf("goroutines: %d before the hub, %d serving idle, %d after the churn, %d after Shutdown",
		goroutinesBefore, goroutinesServing, goroutinesIdle, goroutinesAfter)
	t.Logf("heap in use: %d KiB before the hub, %d KiB serving idle, %d KiB after the churn (%+d B per connection made), %d KiB after Shutdown (slack %d KiB)",
		heapBefore>>10, heapServing>>10, heapIdle>>10, (int64(heapIdle)-int64(heapServing))/max(total.connections, 1), heapAfter>>10, heapSlack>>10)
}

// clock orders the soak's events: sends, group changes, connects, markers.
var clock atomic.Int64

func tick() int64 { return clock.Add(1) }

// audience kinds of a logged send.
const (
	sendAll = iota
	sendGroup
	sendGroups
	sendUser
	sendConn
	sendConns
)

// soakSend is one send: who it is for, who sent it, and when it started
// and ended (0 while it runs).
type soakSend struct {
	kind       int
	names      []string // the group, groups, user or connection IDs
	except     string   // a connection left out
	sender     int      // the worker that sent it, one send at a time
	start, end int64
}

// sendLog holds every send, indexed by sequence number, which is what the
// message carries.
type sendLog struct {
	mu      sync.RWMutex
	entries []soakSend
}

func (l *sendLog) begin(e soakSend) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.start = tick() // under the lock: start grows with the sequence number
	l.entries = append(l.entries, e)
	return len(l.entries) - 1
}

func (l *sendLog) finish(seq int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries[seq].end = tick()
}

func (l *sendLog) len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.entries)
}

func (l *sendLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = nil
}

// soakHooks records OnConnected and OnDisconnected by connection ID.
type soakHooks struct {
	mu   sync.Mutex
	recs map[string]*soakHookRecord
}

type soakHookRecord struct {
	connected, disconnected int
	cause                   error
	done                    chan struct{} // closed by the first OnDisconnected
}

func newSoakHooks() *soakHooks { return &soakHooks{recs: make(map[string]*soakHookRecord)} }

func (h *soakHooks) record(id string) *soakHookRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.recs[id]
	if r == nil {
		r = &soakHookRecord{done: make(chan struct{})}
		h.recs[id] = r
	}
	return r
}

// reset forgets every record (after check).
func (h *soakHooks) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = nil
}

func (h *soakHooks) connected(c *signalhub.Context) error {
	r := h.record(c.ConnectionID())
	h.mu.Lock()
	r.connected++
	h.mu.Unlock()
	return nil
}

func (h *soakHooks) disconnected(c *signalhub.Context, err error) {
	r := h.record(c.ConnectionID())
	h.mu.Lock()
	defer h.mu.Unlock()
	r.disconnected++
	if r.disconnected == 1 {
		r.cause = err
		close(r.done)
	}
}

// wait returns OnDisconnected's cause for id once it has run.
func (h *soakHooks) wait(ctx context.Context, id string) (error, error) {
	r := h.record(id)
	select {
	case <-r.done:
		h.mu.Lock()
		defer h.mu.Unlock()
		return r.cause, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("OnDisconnected did not run for %s: %w", id, ctx.Err())
	}
}

// check requires exactly one OnConnected and one OnDisconnected for each
// of the n connections made, and for no other.
func (h *soakHooks) check(t *testing.T, n int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	assert.Len(t, h.recs, int(n), "connections seen by the hooks")
	bad := 0
	for id, r := range h.recs {
		if r.connected != 1 || r.disconnected != 1 {
			if bad++; bad <= 5 {
				t.Errorf("connection %s: OnConnected ran %d times, OnDisconnected %d times", id, r.connected, r.disconnected)
			}
		}
	}
	assert.Zero(t, bad, "connections whose hooks did not run exactly once each")
}

// soakIssues collects what went wrong, from any goroutine.
type soakIssues struct {
	mu    sync.Mutex
	n     int
	first []string
}

func (s *soakIssues) add(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	if len(s.first) < 20 {
		s.first = append(s.first, fmt.Sprintf(format, args...))
	}
}

func (s *soakIssues) report(t *testing.T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.first {
		t.Error(m)
	}
	if s.n > len(s.first) {
		t.Errorf("and %d more", s.n-len(s.first))
	}
}

// How a client's connection ends.
const (
	endClose  = iota // the client closes it
	endQuit          // a hub method calls Context.Abort
	endRevoke        // the app calls DisconnectUser
	endDrop          // the client's sockets are dropped
	endKinds
)

var endNames = [endKinds]string{"the client's close", "Context.Abort", "DisconnectUser", "a dropped socket"}

// soakWait bounds each wait for an event: a marker, a client's end,
// OnDisconnected. Only a bug makes one last.
const soakWait = 10 * time.Second

// soakStats are one worker's counts.
type soakStats struct {
	connections, joins, leaves, says, toDeparted, received, due int64
	ends                                                        [endKinds]int64
}

func (s *soakStats) add(o soakStats) {
	s.connections += o.connections
	s.joins += o.joins
	s.leaves += o.leaves
	s.says += o.says
	s.toDeparted += o.toDeparted
	s.received += o.received
	s.due += o.due
	for i := range s.ends {
		s.ends[i] += o.ends[i]
	}
}

// soakEnv is what the workers share.
type soakEnv struct {
	hub    *signalhub.Hub
	url    string
	log    *sendLog
	hooks  *soakHooks
	issues *soakIssues
}

// soakWorker drives up to soakPool live clients, one action at a time.
type soakWorker struct {
	*soakEnv
	w        int
	rng      *rand.Rand
	stats    *soakStats
	pool     []*soakClient
	departed []string // IDs of this worker's connections that ended, newest last
	n        int      // clients made
}

// run works until more says stop, then ends every client left. On error
// it closes them.
func (wk *soakWorker) run(ctx context.Context, more func() bool) (err error) {
	defer func() {
		for _, c := range wk.pool {
			_ = c.conn.Close()
			c.transport.CloseIdleConnections()
		}
	}()
	for {
		if len(wk.pool) < soakPool || wk.rng.IntN(8) == 0 {
			if len(wk.pool) >= soakPool {
				if err := wk.end(ctx, wk.rng.IntN(len(wk.pool))); err != nil {
					return err
				}
			}
			if !more() {
				break
			}
			if err := wk.connect(ctx); err != nil {
				return err
			}
			continue
		}
		if err := wk.act(ctx, wk.pool[wk.rng.IntN(len(wk.pool))]); err != nil {
			return err
		}
	}
	for len(wk.pool) > 0 {
		if err := wk.end(ctx, 0); err != nil {
			return err
		}
	}
	return nil
}

// soakClient is one connection and what its worker knows of it.
type soakClient struct {
	env       *soakEnv
	conn      *signalrclient.Conn
	transport *http.Transport
	sockets   *dialed
	id        string // set once Start returned, under mu
	user      string
	ending    int
	connected int64 // tick once Start returned

	mu       sync.Mutex // guards what follows; the client's dispatcher reads it
	groups   map[string][]*membership
	got      map[int]bool
	last     map[int]int // last sequence number received, by sender
	ended    bool
	marker   chan int64
	received int64
}

// membership is one stay in a group, in ticks; zeros are still to come.
type membership struct {
	joinStart, joinEnd, leaveStart, leaveEnd int64
}

func (wk *soakWorker) connect(ctx context.Context) error {
	wk.n++
	c := &soakClient{
		env:    wk.soakEnv,
		ending: wk.rng.IntN(endKinds),
		groups: map[string][]*membership{},
		got:    map[int]bool{},
		last:   map[int]int{},
		marker: make(chan int64, 1),
	}
	// Users own several connections, except those revoked with
	// DisconnectUser: that must end only this one.
	c.user = fmt.Sprintf("w%d-u%d", wk.w, wk.n%3)
	if c.ending == endRevoke {
		c.user = fmt.Sprintf("w%d-r%d", wk.w, wk.n)
	}
	c.sockets = &dialed{}
	c.transport = &http.Transport{DialContext: c.sockets.dial}
	conn, err := signalrclient.New(wk.url+"?user="+c.user, &signalrclient.Options{
		HTTPClient: &http.Client{Transport: c.transport},
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	c.conn = conn
	if err := conn.OnAny(c.onMessage); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, soakWait)
	defer cancel()
	if err := conn.Start(sctx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	c.connected = tick()
	c.mu.Lock() // messages may have come already
	c.id = conn.ConnectionID()
	c.mu.Unlock()
	c.transport.CloseIdleConnections() // negotiate's
	wk.pool = append(wk.pool, c)
	wk.stats.connections++
	return nil
}

// onMessage runs on the client's dispatcher for every message it gets.
func (c *soakClient) onMessage(target string, args []json.RawMessage) {
	now := tick()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		c.env.issues.add("%s got %s%s after its connection ended", c.id, target, args)
		return
	}
	var n int64
	if len(args) != 1 || json.Unmarshal(args[0], &n) != nil {
		c.env.issues.add("%s got %s%s", c.id, target, args)
		return
	}
	switch target {
	case "Marker":
		c.marker <- n
		return
	case "Msg":
	default:
		c.env.issues.add("%s got %s%s", c.id, target, args)
		return
	}
	seq := int(n)
	c.received++
	if c.got[seq] {
		c.env.issues.add("%s got send %d twice", c.id, seq)
	}
	c.got[seq] = true
	c.env.log.mu.RLock()
	defer c.env.log.mu.RUnlock()
	if seq < 0 || seq >= len(c.env.log.entries) {
		c.env.issues.add("%s got send %d, which was not made", c.id, seq)
		return
	}
	e := &c.env.log.entries[seq]
	if last, ok := c.last[e.sender]; ok && seq <= last {
		c.env.issues.add("%s got send %d from worker %d after its send %d", c.id, seq, e.sender, last)
	}
	c.last[e.sender] = seq
	if !c.mayGetLocked(e, now) {
		c.env.issues.add("%s (user %s, groups %v) got send %d, meant for %s", c.id, c.user, c.groupNamesLocked(), seq, e)
	}
}

// mayGetLocked reports whether the client may get e at tick now: it was in
// e's audience at some point while e ran.
func (c *soakClient) mayGetLocked(e *soakSend, now int64) bool {
	if e.except != "" && e.except == c.id {
		return false
	}
	switch e.kind {
	case sendAll:
		return true
	case sendUser:
		return e.names[0] == c.user
	case sendConn, sendConns:
		return slices.Contains(e.names, c.id)
	}
	for _, g := range e.names {
		for _, m := range c.groups[g] {
			if m.joinStart < now && (m.leaveEnd == 0 || m.leaveEnd > e.start) {
				return true
			}
		}
	}
	return false
}

// mustGetLocked reports whether the client had to get e: it was in e's
// audience for the whole of e.
func (c *soakClient) mustGetLocked(e *soakSend) bool {
	if e.except == c.id || e.end == 0 || e.start < c.connected {
		return false
	}
	switch e.kind {
	case sendAll:
		return true
	case sendUser:
		return e.names[0] == c.user
	case sendConn, sendConns:
		return slices.Contains(e.names, c.id)
	}
	for _, g := range e.names {
		for _, m := range c.groups[g] {
			if m.joinEnd != 0 && m.joinEnd < e.start && (m.leaveStart == 0 || m.leaveStart > e.end) {
				return true
			}
		}
	}
	return false
}

func (c *soakClient) groupNamesLocked() []string {
	var out []string
	for g, ms := range c.groups {
		for _, m := range ms {
			if m.leaveEnd == 0 {
				out = append(out, g)
			}
		}
	}
	slices.Sort(out)
	return out
}

func (e *soakSend) String() string {
	kinds := []string{"all", "group", "groups", "user", "connection", "connections"}
	s := fmt.Sprintf("%s %v from worker %d, ticks %d-%d", kinds[e.kind], e.names, e.sender, e.start, e.end)
	if e.except != "" {
		s += " except " + e.except
	}
	return s
}

// member returns the client's current stay in group, or nil.
func (c *soakClient) member(group string) *membership {
	c.mu.Lock()
	defer c.mu.Unlock()
	ms := c.groups[group]
	if len(ms) > 0 && ms[len(ms)-1].leaveStart == 0 {
		return ms[len(ms)-1]
	}
	return nil
}

// act does one random thing with c.
func (wk *soakWorker) act(ctx context.Context, c *soakClient) error {
	group := fmt.Sprintf("g%d", wk.rng.IntN(soakGroups))
	switch k := wk.rng.IntN(10); {
	case k < 3: // join or leave the group, through the hub or a hub method
		byMethod := wk.rng.IntN(2) == 0
		if m := c.member(group); m != nil {
			c.mu.Lock()
			m.leaveStart = tick()
			c.mu.Unlock()
			var err error
			if byMethod {
				_, err = c.conn.Invoke(ctx, "Leave", group)
			} else {
				err = wk.hub.RemoveFromGroup(ctx, c.id, group)
			}
			if err != nil {
				return fmt.Errorf("leave %s: %w", group, err)
			}
			c.mu.Lock()
			m.leaveEnd = tick()
			c.mu.Unlock()
			wk.stats.leaves++
			return nil
		}
		m := &membership{}
		c.mu.Lock()
		m.joinStart = tick()
		c.groups[group] = append(c.groups[group], m)
		c.mu.Unlock()
		var err error
		if byMethod {
			_, err = c.conn.Invoke(ctx, "Join", group)
		} else {
			err = wk.hub.AddToGroup(ctx, c.id, group)
		}
		if err != nil {
			return fmt.Errorf("join %s: %w", group, err)
		}
		c.mu.Lock()
		m.joinEnd = tick()
		c.mu.Unlock()
		wk.stats.joins++
		return nil
	case k < 4: // a hub method sends to the others in the group
		seq := wk.log.begin(soakSend{kind: sendGroup, names: []string{group}, except: c.id, sender: wk.w})
		if _, err := c.conn.Invoke(ctx, "Say", group, seq); err != nil {
			return fmt.Errorf("say: %w", err)
		}
		wk.log.finish(seq)
		wk.stats.says++
		return nil
	}
	// The app sends to some audience.
	e := soakSend{sender: wk.w}
	var send func(seq int) error
	other := wk.pool[wk.rng.IntN(len(wk.pool))].id
	switch wk.rng.IntN(7) {
	case 0:
		e.kind = sendAll
		send = func(seq int) error { return wk.hub.SendToAll(ctx, "Msg", seq) }
	case 1:
		e.kind, e.names = sendGroup, []string{group}
		send = func(seq int) error { return wk.hub.SendToGroup(ctx, group, "Msg", seq) }
	case 2:
		e.kind, e.names = sendGroups, []string{group, fmt.Sprintf("g%d", wk.rng.IntN(soakGroups))}
		send = func(seq int) error { return wk.hub.SendToGroups(ctx, e.names, "Msg", seq) }
	case 3:
		e.kind, e.names, e.except = sendGroup, []string{group}, other
		send = func(seq int) error { return wk.hub.SendToGroupExcept(ctx, group, []string{other}, "Msg", seq) }
	case 4:
		user := fmt.Sprintf("w%d-u%d", wk.rng.IntN(soakWorkers), wk.rng.IntN(3))
		e.kind, e.names = sendUser, []string{user}
		send = func(seq int) error { return wk.hub.SendToUser(ctx, user, "Msg", seq) }
	case 5:
		e.kind, e.names = sendConn, []string{other}
		if len(wk.departed) > 0 && wk.rng.IntN(2) == 0 {
			e.names[0] = wk.departed[wk.rng.IntN(len(wk.departed))]
			wk.stats.toDeparted++
		}
		send = func(seq int) error { return wk.hub.SendToConnection(ctx, e.names[0], "Msg", seq) }
	default:
		e.kind, e.names = sendConns, []string{other, c.id}
		if len(wk.departed) > 0 {
			e.names = append(e.names, wk.departed[wk.rng.IntN(len(wk.departed))])
			wk.stats.toDeparted++
		}
		send = func(seq int) error { return wk.hub.SendToConnections(ctx, e.names, "Msg", seq) }
	}
	seq := wk.log.begin(e)
	if err := send(seq); err != nil {
		return fmt.Errorf("send %s: %w", &e, err)
	}
	wk.log.finish(seq)
	return nil
}

// end checks what pool[i] got, ends it as it was meant to end, and checks
// that the hub forgot it.
func (wk *soakWorker) end(ctx context.Context, i int) error {
	c := wk.pool[i]

	// A marker sent after everything that was due: once it arrived, so
	// had they (one connection's messages keep their order).
	mark := tick()
	if err := wk.hub.SendToConnection(ctx, c.id, "Marker", mark); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, soakWait)
	defer cancel()
	select {
	case got := <-c.marker:
		if got != mark {
			return fmt.Errorf("%s: marker %d, want %d", c.id, got, mark)
		}
	case <-wctx.Done():
		return fmt.Errorf("%s: no marker: %w", c.id, wctx.Err())
	}
	c.mu.Lock()
	wk.log.mu.RLock()
	entries := wk.log.entries
	from := sort.Search(len(entries), func(k int) bool { return entries[k].start > c.connected })
	for seq := from; seq < len(entries) && entries[seq].start < mark; seq++ {
		e := &entries[seq]
		if e.end != 0 && e.end < mark && c.mustGetLocked(e) {
			wk.stats.due++
			if !c.got[seq] {
				wk.issues.add("%s (user %s) did not get send %d, %s", c.id, c.user, seq, e)
			}
		}
	}
	wk.log.mu.RUnlock()
	wk.stats.received += c.received
	groups := slices.Collect(func(yield func(string) bool) {
		for g := range c.groups {
			if !yield(g) {
				return
			}
		}
	})
	c.mu.Unlock()

	var want func(error) bool
	switch c.ending {
	case endClose:
		if err := c.conn.Close(); err != nil {
			return err
		}
		want = func(err error) bool { return err == nil }
	case endQuit:
		if err := c.conn.Send(ctx, "Quit"); err != nil {
			return err
		}
		want = func(err error) bool { return err == nil }
	case endRevoke:
		if err := wk.hub.DisconnectUser(ctx, c.user, "soak"); err != nil {
			return err
		}
		want = func(err error) bool { return errors.Is(err, signalhub.ErrUserDisconnected) }
	case endDrop:
		c.sockets.drop()
		// The read fails (or, if the writer was writing, the write).
		want = func(err error) bool { return err != nil && !errors.Is(err, signalhub.ErrSlowConsumer) }
	}
	select {
	case <-c.conn.Done():
	case <-wctx.Done():
		return fmt.Errorf("%s: the client did not end (%s): %w", c.id, endNames[c.ending], wctx.Err())
	}
	cause, err := wk.hooks.wait(wctx, c.id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.ended = true
	c.mu.Unlock()
	_ = c.conn.Close()
	c.transport.CloseIdleConnections()
	wk.pool = slices.Delete(wk.pool, i, i+1)
	wk.stats.ends[c.ending]++
	if !want(cause) {
		wk.issues.add("%s ended by %s: OnDisconnected got %v", c.id, endNames[c.ending], cause)
	}

	// The hub forgot it: sends to it do nothing, group changes fail.
	if err := wk.hub.SendToConnection(ctx, c.id, "Msg", -1); err != nil {
		wk.issues.add("send to %s, which left: %v", c.id, err)
	}
	if err := wk.hub.AddToGroup(ctx, c.id, "g0"); !errors.Is(err, signalhub.ErrConnectionNotFound) {
		wk.issues.add("AddToGroup(%s), which left: %v", c.id, err)
	}
	if err := wk.hub.RemoveFromGroup(ctx, c.id, "g0"); !errors.Is(err, signalhub.ErrConnectionNotFound) {
		wk.issues.add("RemoveFromGroup(%s), which left: %v", c.id, err)
	}
	if gs := wk.hub.ConnectionGroups(c.id); len(gs) > 0 {
		wk.issues.add("%s left but is in groups %v", c.id, gs)
	}
	for _, g := range groups {
		if slices.Contains(wk.hub.GroupMembers(g), c.id) {
			wk.issues.add("%s left but is a member of %s", c.id, g)
		}
	}
	if slices.Contains(wk.hub.UserConnections(c.user), c.id) {
		wk.issues.add("%s left but is a connection of %s", c.id, c.user)
	}
	wk.departed = append(wk.departed, c.id)
	if len(wk.departed) > 16 {
		wk.departed = wk.departed[1:]
	}
	return nil
}

// dialed dials TCP for one client and remembers its sockets, to drop them.
type dialed struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (d *dialed) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.conns = append(d.conns, conn)
	d.mu.Unlock()
	return conn, nil
}

func (d *dialed) drop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		_ = c.Close()
	}
}

// trackingListener counts the server's sockets, the ones it closed, and
// writes to sockets it had closed.
type trackingListener struct {
	net.Listener
	accepted, closed, writesAfterClose atomic.Int64
}

func (l *trackingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.accepted.Add(1)
	return &trackedConn{Conn: conn, l: l}, nil
}

func (l *trackingListener) open() int64 { return l.accepted.Load() - l.closed.Load() }

type trackedConn struct {
	net.Conn
	l      *trackingListener
	closed atomic.Bool
}

func (c *trackedConn) Write(p []byte) (int, error) {
	if c.closed.Load() {
		c.l.writesAfterClose.Add(1)
	}
	return c.Conn.Write(p)
}

func (c *trackedConn) Close() error {
	if !c.closed.Swap(true) {
		c.l.closed.Add(1)
	}
	return c.Conn.Close()
}

// eventually polls cond every 10 ms until it holds or d has passed. Only
// for states that nothing signals, such as goroutines that have exited.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// goroutineDump returns every goroutine's stack, abridged.
func goroutineDump() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	if len(buf) > 16<<10 {
		buf = append(buf[:16<<10], "\n..."...)
	}
	return strings.TrimSpace(string(buf))
}
