package nats_test

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub/backplane/nats"
)

// waitLimit bounds every wait of these tests for something to happen.
const waitLimit = 15 * time.Second

// startServer runs an embedded NATS server on 127.0.0.1 and shuts it down
// when the test ends. port -1 picks a free port.
func startServer(tb testing.TB, port int) *server.Server {
	tb.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	require.NoError(tb, err)
	s.Start()
	tb.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	require.True(tb, s.ReadyForConnections(waitLimit), "NATS server not ready")
	return s
}

// serverPort returns the port s listens on.
func serverPort(tb testing.TB, s *server.Server) int {
	tb.Helper()
	addr, ok := s.Addr().(*net.TCPAddr)
	require.True(tb, ok, "server address %v", s.Addr())
	return addr.Port
}

// connect opens a connection to url, closed when the test ends.
func connect(tb testing.TB, url string, opts ...natsgo.Option) *natsgo.Conn {
	tb.Helper()
	nc, err := natsgo.Connect(url, append([]natsgo.Option{natsgo.Name(tb.Name())}, opts...)...)
	require.NoError(tb, err)
	tb.Cleanup(nc.Close)
	return nc
}

// newBackplane returns an unstarted Backplane on nc whose warnings go to
// the test's output. The test closes it.
func newBackplane(tb testing.TB, nc *natsgo.Conn, prefix string) *nats.Backplane {
	tb.Helper()
	bp, err := nats.New(nats.Options{Conn: nc, Prefix: prefix, Logger: testLogger(tb)})
	require.NoError(tb, err)
	return bp
}

func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// prefixOf turns a test name into a subject prefix of its own.
func prefixOf(name string) string {
	return "test." + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, name)
}

// received is what a node's Handler got.
type received struct {
	channel string
	data    string
}

// node is a started Backplane whose Handler forwards every message.
type node struct {
	*nats.Backplane
	nc   *natsgo.Conn
	got  chan received
	stop chan struct{} // closed when the test ends, so the Handler never blocks then
}

// startNode connects to url, starts a Backplane under prefix and closes
// both when the test ends.
func startNode(tb testing.TB, url, prefix string, opts ...natsgo.Option) *node {
	tb.Helper()
	nc := connect(tb, url, opts...)
	return startNodeOn(tb, nc, newBackplane(tb, nc, prefix))
}

// startNodeOn starts bp, which uses nc, and closes it when the test ends.
func startNodeOn(tb testing.TB, nc *natsgo.Conn, bp *nats.Backplane) *node {
	tb.Helper()
	n := &node{Backplane: bp, nc: nc, got: make(chan received, 8192), stop: make(chan struct{})}
	require.NoError(tb, n.Start(tb.Context(), func(channel string, data []byte) {
		select {
		case n.got <- received{channel, string(data)}:
		case <-n.stop:
		}
	}))
	tb.Cleanup(func() {
		close(n.stop)
		_ = n.Close()
	})
	return n
}

func (n *node) subscribe(tb testing.TB, channels ...string) {
	tb.Helper()
	for _, ch := range channels {
		require.NoError(tb, n.Subscribe(tb.Context(), ch))
	}
}

func (n *node) publish(tb testing.TB, channel, data string) {
	tb.Helper()
	require.NoError(tb, n.Publish(tb.Context(), channel, []byte(data)))
}

// next returns the node's next message, failing the test if none comes.
func (n *node) next(tb testing.TB) received {
	tb.Helper()
	return next(tb, n.got)
}

// next returns the next value from ch, failing the test if none comes.
func next[T any](tb testing.TB, ch <-chan T) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		var zero T
		tb.Fatalf("nothing arrived within %v", waitLimit)
		return zero
	}
}

// expect checks that the node's next message is data on channel.
func (n *node) expect(tb testing.TB, channel, data string) {
	tb.Helper()
	require.Equal(tb, received{channel, data}, n.next(tb))
}

// waitStatus waits until nc's status is want.
func waitStatus(tb testing.TB, nc *natsgo.Conn, want natsgo.Status) {
	tb.Helper()
	ch := nc.StatusChanged(want)
	defer nc.RemoveStatusListener(ch)
	if nc.Status() == want {
		return
	}
	select {
	case <-ch:
	case <-time.After(waitLimit):
		tb.Fatalf("connection status is %v, want %v", nc.Status(), want)
	}
}

// eventually polls cond until it holds, failing the test after waitLimit.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			tb.Fatalf("gave up waiting: %s", what)
		}
	}
}

// logBuffer is a slog handler's output that tests may read while the
// Backplane writes to it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
