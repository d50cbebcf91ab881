package signalhub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/hubtest"
	"github.com/signalhub/signalhub/protocol"
)

// TestSlowClientAmongThousand puts a client that stops reading, at the
// socket level, in a group with 999 clients that read, and shows that
//
//   - (a) the readers lose nothing, and their delivery latency with the
//     stalled member in the group is about what it is without it
//     (measured in the same run and logged, not asserted: the machines
//     are shared);
//   - (b) the stalled client is closed as a slow consumer (ErrSlowConsumer
//     in OnDisconnected, and a Close message saying so) after at most the
//     documented number of messages: the one its writer is blocked on,
//     what Options.SendQueueBytes holds, and the one that overflows;
//   - (c) the hub keeps no more than that for it, however much more it is
//     sent.
//
// The readers are raw WebSocket clients of a hubtest in-memory server (one
// goroutine each, so that a thousand of them stay cheap under the race
// detector); they check every message as it arrives. The stalled client is
// connected over an unbuffered pipe (see dialStalled), so that its writer
// blocks on the first message and the bound is exact; hubtest's pipes and
// loopback TCP buffer hundreds of KiB, which would take that many more
// group sends to fill, each delivered to 999 readers. TestSlowConsumer
// covers a stalled client behind kernel buffers.
func TestSlowClientAmongThousand(t *testing.T) {
	// Not parallel: the latencies and the heap are measured, and other
	// tests running meanwhile would blur them.
	const (
		readers   = 999
		queueMsgs = 8 // what SendQueueBytes holds, in group messages
		warmup    = 4 // unrecorded rounds before the measured ones
		// A round takes milliseconds; only a lost message makes it last.
		roundTimeout = 10 * time.Second
	)
	// Group messages are Tick(round, filler), all of one size: the round
	// is a fixed-width string.
	tick := func(i int) []any { return []any{fmt.Sprintf("%04d", i), "filler-filler-filler"} }
	recSize := len(must(protocol.AppendInvocationArgs(nil, "", "Tick", tick(0))))
	queueBytes := queueMsgs * recSize
	// The documented bound: the message the blocked writer holds, a full
	// queue, and the message that overflows it.
	limit := 1 + queueMsgs + 1
	rounds := warmup + 2*limit // control and room rounds alternate

	var (
		mu          sync.Mutex
		disconnects = map[string]error{}
		stalledGone = make(chan error, 1)
		stalledID   atomic.Pointer[string]
	)
	hub := hubtest.NewHub(t, &signalhub.Options{
		SendQueueBytes: queueBytes, // SendQueueLength (1024) is far larger
		// A blocked write must not end the stalled connection before the
		// test has counted what it was sent: the queue's bound must be
		// what closes it.
		WriteTimeout: time.Minute,
		OnDisconnected: func(c *signalhub.Context, err error) {
			mu.Lock()
			disconnects[c.ConnectionID()] = err
			mu.Unlock()
			if id := stalledID.Load(); id != nil && *id == c.ConnectionID() {
				stalledGone <- err
			}
		},
	})
	mem := hubtest.NewServer(t, hub)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Receive times, by reader and round, in nanoseconds since epoch.
	epoch := time.Now()
	since := func() int64 { return int64(time.Since(epoch)) }
	type reader struct {
		ws   *websocket.Conn
		recv []int64
		next int                    // next expected round; the reader goroutine only
		fail atomic.Pointer[string] // first out-of-order or unexpected message
		done chan struct{}          // closed when the reader goroutine ends
	}
	var (
		roundDone atomic.Pointer[chan struct{}]
		arrived   atomic.Int64
	)
	// handle takes one record, in the reader's goroutine.
	handle := func(r *reader, rec []byte) {
		now := since()
		m, err := protocol.DecodeMessage(rec)
		if err == nil && m.Type == protocol.TypePing {
			return
		}
		var s string
		if err != nil || m.Type != protocol.TypeInvocation || m.Target != "Tick" || len(m.Arguments) != 2 ||
			json.Unmarshal(m.Arguments[0], &s) != nil {
			r.fail.CompareAndSwap(nil, ptr(fmt.Sprintf("unexpected %q", rec)))
			return
		}
		round, err := strconv.Atoi(s)
		if err != nil || round != r.next || round >= rounds {
			r.fail.CompareAndSwap(nil, ptr(fmt.Sprintf("got round %s, want %d", s, r.next)))
			return
		}
		r.recv[round] = now
		r.next++
		if arrived.Add(1) == readers {
			close(*roundDone.Load())
		}
	}
	rs := make([]*reader, readers)
	connect := func(i int) error {
		id, ws, err := dialRaw(ctx, mem)
		if err != nil {
			return err
		}
		r := &reader{ws: ws, recv: make([]int64, rounds), done: make(chan struct{})}
		rs[i] = r
		go func() {
			defer close(r.done)
			var partial []byte
			for {
				_, data, err := ws.Read(context.Background())
				if err != nil {
					return
				}
				partial = append(partial, data...)
				for {
					rec, rest, ok := protocol.NextRecord(partial)
					if !ok {
						break
					}
					partial = rest
					handle(r, rec)
				}
				partial = bytes.Clone(partial)
			}
		}()
		for _, g := range []string{"room", "control"} {
			if err := hub.AddToGroup(ctx, id, g); err != nil {
				return err
			}
		}
		return nil
	}
	t.Cleanup(func() {
		for _, r := range rs {
			if r != nil {
				_ = r.ws.CloseNow()
				<-r.done
			}
		}
	})
	start := time.Now()
	parallel(t, readers, 8, connect)
	t.Logf("%d readers connected in %v", readers, time.Since(start).Round(time.Millisecond))

	stalled := dialStalled(t, ctx, mem)
	stalledID.Store(&stalled.id)
	require.NoError(t, hub.AddToGroup(ctx, stalled.id, "room"))
	require.Equal(t, signalhub.Stats{Connections: readers + 1, Groups: 2}, hub.Stats())
	require.Len(t, hub.GroupMembers("room"), readers+1, "a thousand connections in one group")
	heapBefore := heapInUse()

	// One message per round, to "control" (the 999 readers: without the
	// stalled client) or to "room" (the same readers and the stalled
	// client), alternating, so that both kinds see the same machine load.
	// Each round waits until every reader has its message.
	sendAt := make([]int64, rounds)
	var roomRounds, controlRounds []int
	for i := range rounds {
		group := "control"
		switch {
		case i >= warmup && (i-warmup)%2 == 1:
			group = "room"
			roomRounds = append(roomRounds, i)
		case i >= warmup:
			controlRounds = append(controlRounds, i)
		}
		done := make(chan struct{})
		roundDone.Store(&done)
		arrived.Store(0)
		sendAt[i] = since()
		require.NoError(t, hub.SendToGroup(ctx, group, "Tick", tick(i)...))
		select {
		case <-done:
		case <-time.After(roundTimeout):
			var fails []string
			for k, r := range rs {
				if f := r.fail.Load(); f != nil && len(fails) < 5 {
					fails = append(fails, fmt.Sprintf("reader %d: %s", k, *f))
				}
			}
			require.FailNow(t, "a round was not delivered", "round %d: %d of %d readers got it within %v; failures: %v",
				i, arrived.Load(), readers, roundTimeout, fails)
		}
		if len(roomRounds) == 1 && group == "room" {
			// The stalled client's writer takes the first room message
			// and blocks writing it; the next ones wait in its queue.
			select {
			case <-stalled.writing:
			case <-time.After(roundTimeout):
				require.FailNow(t, "the hub did not write to the stalled client")
			}
		}
	}
	require.Len(t, roomRounds, limit)
	t.Logf("%d rounds in %v", rounds, time.Duration(since()-sendAt[0]).Round(time.Millisecond))

	// (a) Nothing lost, in order, for every reader.
	for k, r := range rs {
		require.Nil(t, r.fail.Load(), "reader %d", k)
		require.Equal(t, rounds, r.next, "reader %d got every round", k)
	}

	// (b) The stalled client reads one message now, and stops again. It
	// must be the room message its writer was blocked on. The writer then
	// takes what is next and blocks writing it: the queued room messages,
	// had the queue not overflowed, or else the Close message.
	first, err := stalled.read(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{fmt.Sprintf("Tick(%04d)", roomRounds[0])}, first)
	select {
	case <-stalled.writing:
	case <-time.After(roundTimeout):
		require.FailNow(t, "the hub's writer did not go on writing to the stalled client")
	}
	// A slow consumer stays in the hub's indexes while its writer is
	// blocked in a write, which only WriteTimeout would end.
	require.Contains(t, hub.GroupMembers("room"), stalled.id)

	// (c) A flood of distinct records to the stalled connection, 32 MiB in
	// all, must not stay in the hub.
	const floodRecord, floodCount = 128 << 10, 256
	flood := strings.Repeat("f", floodRecord)
	for range floodCount {
		require.NoError(t, hub.SendToConnection(ctx, stalled.id, "Flood", flood))
	}
	heapAfter := heapInUse()
	require.Contains(t, hub.GroupMembers("room"), stalled.id, "the flood reached a registered connection")
	// What the stalled connection may hold: a full queue, the batch its
	// writer is blocked on (at most a queue's worth), one oversize record
	// (queued when nothing else waits); plus 1 MiB for the rest of the
	// process (timers, buffers of 999 idle connections).
	heapBound := int64(2*queueBytes + floodRecord + 1<<20)
	growth := int64(heapAfter) - int64(heapBefore)
	t.Logf("heap in use: %d KiB before the rounds, %d KiB after %d KiB were sent to the stalled client: growth %d KiB (bound %d KiB)",
		heapBefore>>10, heapAfter>>10, (limit*recSize+floodRecord*floodCount)>>10, growth>>10, heapBound>>10)
	assert.Less(t, growth, heapBound, "the hub must not keep what it cannot deliver to a stalled client")

	// (b) The next message is the Close message for a slow consumer:
	// the queue overflowed within the limit room messages, and the flood
	// was dropped. Then the connection closes.
	second, err := stalled.read(ctx)
	require.NoError(t, err)
	require.Len(t, second, 1, "after the first room message, only the Close message: %v", second)
	assert.Regexp(t, `^Close\(".*slow consumer.*", allowReconnect=false\)$`, second[0])
	_, err = stalled.read(ctx)
	assert.Equal(t, websocket.StatusPolicyViolation, websocket.CloseStatus(err), "close frame: %v", err)
	select {
	case err := <-stalledGone:
		require.ErrorIs(t, err, signalhub.ErrSlowConsumer, "OnDisconnected's cause")
	case <-ctx.Done():
		require.FailNow(t, "OnDisconnected did not run for the stalled client")
	}

	// (a) Latencies, with and without the stalled member.
	lat := func(rounds []int) []time.Duration {
		var out []time.Duration
		for _, i := range rounds {
			for _, r := range rs {
				out = append(out, time.Duration(r.recv[i]-sendAt[i]))
			}
		}
		slices.Sort(out)
		return out
	}
	pct := func(d []time.Duration, q float64) time.Duration {
		return d[int(q*float64(len(d)-1))].Round(time.Microsecond)
	}
	without, with := lat(controlRounds), lat(roomRounds)
	t.Logf("group message %d B, SendQueueBytes %d B (%d messages); the stalled client was sent %d room messages",
		recSize, queueBytes, queueMsgs, limit)
	t.Logf("latency to the 999 readers, send to receive, %d rounds of each kind (%d deliveries each):",
		len(controlRounds), len(without))
	t.Logf("  without the stalled client: p50 %v  p99 %v", pct(without, .5), pct(without, .99))
	t.Logf("  with the stalled client:    p50 %v  p99 %v", pct(with, .5), pct(with, .99))
	t.Logf("  ratio with/without:         p50 %.2f  p99 %.2f",
		float64(pct(with, .5))/float64(pct(without, .5)), float64(pct(with, .99))/float64(pct(without, .99)))

	// The readers got nothing else meanwhile, and only the stalled client
	// left.
	for k, r := range rs {
		require.Nil(t, r.fail.Load(), "reader %d", k)
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, disconnects, 1)
	assert.Equal(t, signalhub.Stats{Connections: readers, Groups: 2}, hub.Stats())
}

// negotiateWith negotiates with the hub behind mem and returns the
// connection ID and token.
func negotiateWith(ctx context.Context, mem *hubtest.Server) (id, token string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, mem.URL+"/negotiate?negotiateVersion=1", nil)
	if err != nil {
		return "", "", err
	}
	resp, err := mem.HTTPClient.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	var neg struct {
		ConnectionID    string `json:"connectionId"`
		ConnectionToken string `json:"connectionToken"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&neg); err != nil {
		return "", "", fmt.Errorf("negotiate: status %d: %w", resp.StatusCode, err)
	}
	return neg.ConnectionID, neg.ConnectionToken, nil
}

// dialRaw negotiates with the hub behind mem, connects and completes the
// handshake; it returns the connection ID and the WebSocket.
func dialRaw(ctx context.Context, mem *hubtest.Server) (string, *websocket.Conn, error) {
	id, token, err := negotiateWith(ctx, mem)
	if err != nil {
		return "", nil, err
	}
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(mem.URL, "http")+"?id="+url.QueryEscape(token),
		&websocket.DialOptions{HTTPClient: mem.HTTPClient})
	if err != nil {
		return "", nil, err
	}
	ws.SetReadLimit(-1)
	if err := ws.Write(ctx, websocket.MessageText, []byte(handshakeV1)); err != nil {
		_ = ws.CloseNow()
		return "", nil, err
	}
	if _, data, err := ws.Read(ctx); err != nil || string(data) != "{}"+rs {
		_ = ws.CloseNow()
		return "", nil, fmt.Errorf("handshake response %q: %v", data, err)
	}
	return id, ws, nil
}

// stalledClient is a raw WebSocket client that completed the handshake and
// then reads nothing unless the test calls read.
type stalledClient struct {
	id string
	ws *websocket.Conn
	// writing receives a value whenever the server starts a write on the
	// connection's socket.
	writing chan struct{}
}

// dialStalled connects a client to hub over an unbuffered in-memory
// connection (net.Pipe), served by an http.Server of its own: a write
// blocks until the client reads, so nothing sits between the hub's writer
// and a client that stopped reading. Kernel buffers would only delay the
// moment the writer blocks by their size in messages.
func dialStalled(t *testing.T, ctx context.Context, mem *hubtest.Server) *stalledClient {
	t.Helper()
	s := &stalledClient{writing: make(chan struct{}, 16)}
	ln := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{}), writing: s.writing}
	mux := http.NewServeMux()
	mem.Hub.Mount(mux, "/hub")
	srv := &http.Server{Handler: mux}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()

	// Negotiate through the in-memory server: tokens belong to the hub.
	var token string
	var err error
	s.id, token, err = negotiateWith(ctx, mem)
	require.NoError(t, err)
	hc := &http.Client{Transport: &http.Transport{DialContext: ln.dial}}
	s.ws, _, err = websocket.Dial(ctx, "ws://stalled/hub?id="+url.QueryEscape(token), &websocket.DialOptions{HTTPClient: hc})
	require.NoError(t, err)
	s.ws.SetReadLimit(-1)
	t.Cleanup(func() {
		_ = s.ws.CloseNow()
		_ = mem.Hub.Close() // before the server: hijacked connections are the hub's
		_ = srv.Close()
		<-served
	})
	require.NoError(t, s.ws.Write(ctx, websocket.MessageText, []byte(handshakeV1)))
	_, data, err := s.ws.Read(ctx)
	require.NoError(t, err)
	require.Equal(t, "{}"+rs, string(data), "handshake response")
	// Forget the writes so far (the upgrade response, the handshake's).
	for len(s.writing) > 0 {
		<-s.writing
	}
	// From here on nothing reads the socket unless the test calls read.
	return s
}

// read reads one WebSocket message and describes its records: Tick(round)
// for group messages, Close("error", allowReconnect=...) for a Close
// message, the record itself for anything else.
func (s *stalledClient) read(ctx context.Context) ([]string, error) {
	_, data, err := s.ws.Read(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for len(data) > 0 {
		rec, rest, ok := protocol.NextRecord(data)
		if !ok {
			return out, fmt.Errorf("incomplete record %q", data)
		}
		data = rest
		m, err := protocol.DecodeMessage(rec)
		var round string
		switch {
		case err != nil:
			return out, err
		case m.Type == protocol.TypeInvocation && m.Target == "Tick" && len(m.Arguments) == 2 &&
			json.Unmarshal(m.Arguments[0], &round) == nil:
			out = append(out, "Tick("+round+")")
		case m.Type == protocol.TypeClose:
			out = append(out, fmt.Sprintf("Close(%q, allowReconnect=%v)", m.Error, m.AllowReconnect))
		default:
			out = append(out, fmt.Sprintf("%.80s", rec))
		}
	}
	return out, nil
}

// pipeListener serves the server ends of net.Pipe connections, whose
// writes it reports on writing.
type pipeListener struct {
	conns   chan net.Conn
	done    chan struct{}
	once    sync.Once
	writing chan<- struct{}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial is the client side's DialContext.
func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- reportingConn{server, l.writing}:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "stalled" }

// reportingConn reports every write it starts.
type reportingConn struct {
	net.Conn
	writing chan<- struct{}
}

func (c reportingConn) Write(p []byte) (int, error) {
	select {
	case c.writing <- struct{}{}:
	default:
	}
	return c.Conn.Write(p)
}

// parallel runs fn(0) to fn(n-1) on at most workers goroutines and fails
// the test with the first error.
func parallel(t *testing.T, n, workers int, fn func(i int) error) {
	t.Helper()
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, workers)
	)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					errs <- fmt.Errorf("%d: %w", i, err)
					next.Store(int64(n)) // stop the others
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// heapInUse returns the bytes of live heap objects after a collection.
func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC() // a second cycle frees what the first one's finalizers released
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func ptr[T any](v T) *T { return &v }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
