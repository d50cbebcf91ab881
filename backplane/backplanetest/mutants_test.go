package backplanetest_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub/backplane"
	"github.com/signalhub/signalhub/backplane/backplanetest"
)

// A mutant is an engine with one bug, built on a bus node, and the subtest
// of Run that must catch it with the given text in its output.
type mutant struct {
	wrap    func(inner backplane.Backplane, r *registry) backplane.Backplane
	subtest string
	want    string
}

var mutants = map[string]mutant{
	"NoSelfDelivery":     {newNoSelfDelivery, "PublishReachesSubscribers", "nothing arrived"},
	"Duplicates":         {wrapHandler(duplicate), "PublishReachesSubscribers", "node a: got"},
	"Reorders":           {newReorder, "Order", "message 0 is"},
	"IgnoresUnsubscribe": {newIgnoreUnsubscribe, "Unsubscribe", "want one of"},
	"SharesData":         {newSharedData, "BinaryPayloads", "got"},
	"OpenAfterClose":     {newOpenAfterClose, "Close", "want an error wrapping ErrClosed"},
	"ConcurrentHandler":  {wrapHandler(concurrent), "HandlerNotConcurrent", "Handler called while it was running"},
	"CloseDoesNotWait":   {newCloseNoWait, "Close", "Close returned while the Handler was running"},
}

// TestRunCatchesBrokenEngines runs the suite on each mutant in a child
// process and checks that the expected subtest fails.
func TestRunCatchesBrokenEngines(t *testing.T) {
	t.Parallel()
	for name, m := range mutants {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0],
				"-test.run=^TestMutant$/^"+m.subtest+"$", "-test.count=1", "-test.timeout=3s")
			cmd.Env = append(os.Environ(), "BACKPLANETEST_MUTANT="+name)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "the suite passed a broken engine:\n%s", out)
			assert.Contains(t, string(out), "--- FAIL: TestMutant/"+m.subtest+" ")
			assert.Contains(t, string(out), m.want)
		})
	}
}

// TestMutant is the child process of TestRunCatchesBrokenEngines.
func TestMutant(t *testing.T) {
	name := os.Getenv("BACKPLANETEST_MUTANT")
	if name == "" {
		t.Skip("runs in a child process of TestRunCatchesBrokenEngines")
	}
	m, ok := mutants[name]
	require.True(t, ok, "unknown mutant %q", name)
	bus := backplanetest.NewBus()
	var r registry
	backplanetest.Run(t, func(*testing.T) backplane.Backplane { return m.wrap(bus.Node(), &r) })
}

// registry lets mutants share state across the nodes of a cluster.
type registry struct {
	nodes atomic.Uint64
	mu    sync.Mutex
	data  map[uint64][]byte
}

func wrapHandler(f func(h backplane.Handler) backplane.Handler) func(backplane.Backplane, *registry) backplane.Backplane {
	return func(inner backplane.Backplane, _ *registry) backplane.Backplane {
		return &handlerMutant{Backplane: inner, f: f}
	}
}

type handlerMutant struct {
	backplane.Backplane
	f func(backplane.Handler) backplane.Handler
}

func (m *handlerMutant) Start(ctx context.Context, h backplane.Handler) error {
	return m.Backplane.Start(ctx, m.f(h))
}

func duplicate(h backplane.Handler) backplane.Handler {
	return func(channel string, data []byte) {
		h(channel, bytes.Clone(data))
		h(channel, data)
	}
}

func concurrent(h backplane.Handler) backplane.Handler {
	return func(channel string, data []byte) { go h(channel, data) }
}

// noSelfDelivery tags what it publishes and drops its own messages.
type noSelfDelivery struct {
	backplane.Backplane
	id uint64
}

func newNoSelfDelivery(inner backplane.Backplane, r *registry) backplane.Backplane {
	return &noSelfDelivery{Backplane: inner, id: r.nodes.Add(1)}
}

func (m *noSelfDelivery) Start(ctx context.Context, h backplane.Handler) error {
	return m.Backplane.Start(ctx, func(channel string, data []byte) {
		if binary.BigEndian.Uint64(data) != m.id {
			h(channel, data[8:])
		}
	})
}

func (m *noSelfDelivery) Publish(ctx context.Context, channel string, data []byte) error {
	return m.Backplane.Publish(ctx, channel, append(binary.BigEndian.AppendUint64(nil, m.id), data...))
}

// reorder swaps every two messages.
type reorder struct {
	backplane.Backplane
}

func newReorder(inner backplane.Backplane, _ *registry) backplane.Backplane {
	return &reorder{inner}
}

func (m *reorder) Start(ctx context.Context, h backplane.Handler) error {
	var held *[2]any
	return m.Backplane.Start(ctx, func(channel string, data []byte) {
		if held == nil {
			held = &[2]any{channel, data}
			return
		}
		h(channel, data)
		h(held[0].(string), held[1].([]byte))
		held = nil
	})
}

type ignoreUnsubscribe struct{ backplane.Backplane }

func newIgnoreUnsubscribe(inner backplane.Backplane, _ *registry) backplane.Backplane {
	return ignoreUnsubscribe{inner}
}

func (ignoreUnsubscribe) Unsubscribe(context.Context, string) error { return nil }

// sharedData hands every Handler the publisher's own slice.
type sharedData struct {
	backplane.Backplane
	r *registry
}

func newSharedData(inner backplane.Backplane, r *registry) backplane.Backplane {
	return &sharedData{inner, r}
}

func (m *sharedData) Start(ctx context.Context, h backplane.Handler) error {
	return m.Backplane.Start(ctx, func(channel string, key []byte) {
		m.r.mu.Lock()
		data := m.r.data[binary.BigEndian.Uint64(key)]
		m.r.mu.Unlock()
		h(channel, data)
	})
}

func (m *sharedData) Publish(ctx context.Context, channel string, data []byte) error {
	key := m.r.nodes.Add(1)
	m.r.mu.Lock()
	if m.r.data == nil {
		m.r.data = make(map[uint64][]byte)
	}
	m.r.data[key] = data
	m.r.mu.Unlock()
	return m.Backplane.Publish(ctx, channel, binary.BigEndian.AppendUint64(nil, key))
}

// openAfterClose accepts publishes after Close.
type openAfterClose struct {
	backplane.Backplane
	closed atomic.Bool
}

func newOpenAfterClose(inner backplane.Backplane, _ *registry) backplane.Backplane {
	return &openAfterClose{Backplane: inner}
}

func (m *openAfterClose) Publish(ctx context.Context, channel string, data []byte) error {
	if m.closed.Load() {
		return nil
	}
	return m.Backplane.Publish(ctx, channel, data)
}

func (m *openAfterClose) Close() error {
	m.closed.Store(true)
	return m.Backplane.Close()
}

// closeNoWait returns from Close before the Handler has returned.
type closeNoWait struct {
	backplane.Backplane
	closed atomic.Bool
}

func newCloseNoWait(inner backplane.Backplane, _ *registry) backplane.Backplane {
	return &closeNoWait{Backplane: inner}
}

func (m *closeNoWait) Close() error {
	if m.closed.Swap(true) {
		return backplane.ErrClosed
	}
	go func() { _ = m.Backplane.Close() }()
	return nil
}
