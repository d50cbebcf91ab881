package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/signalhub/signalhub"
)

// stepTimeout bounds every wait of the shutdown test; none of them is
// expected to take more than a fraction of a second.
const stepTimeout = 20 * time.Second

// nodeEvent is one line shutdown.mjs prints.
type nodeEvent struct {
	Ev      string `json:"ev"`
	Clients map[string]struct {
		Log    [][]any  `json:"log"`
		Closes []string `json:"closes"`
	} `json:"clients"`
}

// nodeProcess is a Node script whose stdout lines are read as events.
type nodeProcess struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	cancel context.CancelFunc
	events chan nodeEvent // closed at the end of stdout
	stderr *syncBuffer
	raw    *syncBuffer // stdout, for failure messages
	waited bool
	err    error // of cmd.Wait
}

// startNode runs `node script args...` in this directory. It skips (or,
// with CI set, fails) when node or the official client is missing. The
// process is killed when the test ends, if it has not exited by then.
func startNode(t *testing.T, script string, args ...string) *nodeProcess {
	t.Helper()
	if _, err := os.Stat("node_modules/@microsoft/signalr"); err != nil {
		need(t, "the official client is not installed: run `make test` (or `npm ci` in e2e)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		need(t, "node is not installed (apt-get install nodejs npm)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	p := &nodeProcess{
		cmd:    exec.CommandContext(ctx, node, append([]string{script}, args...)...),
		cancel: cancel,
		events: make(chan nodeEvent),
		stderr: &syncBuffer{},
		raw:    &syncBuffer{},
	}
	p.cmd.Stderr = p.stderr
	p.stdin, err = p.cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start(), "start node %s", script)
	go func() {
		defer close(p.events)
		sc := bufio.NewScanner(io.TeeReader(stdout, p.raw))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var ev nodeEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				ev = nodeEvent{Ev: "unparsable: " + sc.Text()}
			}
			p.events <- ev
		}
	}()
	t.Cleanup(func() {
		p.cancel()
		p.wait()
	})
	return p
}

// next returns the next event, failing the test when the process ends or
// stays silent instead.
func (p *nodeProcess) next(t *testing.T, want string) nodeEvent {
	t.Helper()
	select {
	case ev, ok := <-p.events:
		if !ok {
			p.wait()
			t.Fatalf("node exited (%v) before %q\n%s", p.err, want, p)
		}
		require.Equal(t, want, ev.Ev, "%s", p)
		return ev
	case <-time.After(stepTimeout):
		t.Fatalf("no %q from node within %v\n%s", want, stepTimeout, p)
	}
	return nodeEvent{}
}

// wait reads stdout to its end, then waits for the process to exit.
func (p *nodeProcess) wait() error {
	if !p.waited {
		_ = p.stdin.Close()
		for range p.events {
		}
		p.err = p.cmd.Wait()
		p.waited = true
	}
	return p.err
}

func (p *nodeProcess) String() string {
	return fmt.Sprintf("--- node stdout ---\n%s--- node stderr ---\n%s", p.raw, p.stderr)
}

// TestShutdownWithOfficialClient shuts a hub down while two
// @microsoft/signalr clients are connected, one with automatic reconnect
// and one without, each with a hub method running. It checks what
// Hub.Shutdown documents, as the official client sees it: the running
// methods' Context ends and Shutdown waits for them; invocations sent
// meanwhile get an error Completion; the running methods' results arrive,
// after what was sent before Shutdown, and then a Close message that lets
// the client reconnect; afterwards negotiate answers 503, no goroutine is
// left, and Node exits cleanly.
func TestShutdownWithOfficialClient(t *testing.T) {
	leaksBefore := goleak.IgnoreCurrent()

	type running struct {
		user string
		ctx  context.Context
	}
	var (
		started     = make(chan running, 2)
		release     = make(chan struct{})
		releaseOnce sync.Once
		returned    = make(chan string, 2)
		mu          sync.Mutex
		disconnects = map[string]error{}
	)
	unblock := func() { releaseOnce.Do(func() { close(release) }) }

	hub, err := signalhub.New(&signalhub.Options{
		Authenticate: func(r *http.Request) (signalhub.Claims, error) {
			return signalhub.Claims{"sub": r.Header.Get("X-User")}, nil
		},
		OnDisconnected: func(c *signalhub.Context, err error) {
			mu.Lock()
			defer mu.Unlock()
			disconnects[c.UserID()] = err
		},
		Methods: map[string]any{
			"Add": func(c *signalhub.Context, a, b int) int { return a + b },
			// Block runs until the test releases it, ignoring its Context
			// so that the test alone decides when it returns.
			"Block": func(c *signalhub.Context) (string, error) {
				if err := c.Caller().Send(c.Context(), "Msg", "running"); err != nil {
					return "", err
				}
				started <- running{c.UserID(), c.Context()}
				<-release
				returned <- c.UserID()
				return "finished", nil
			},
		},
	})
	require.NoError(t, err)
	mux := http.NewServeMux()
	hub.Mount(mux, "/hub")
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		unblock() // a failed test must not leave Close waiting for Block
		require.NoError(t, hub.Close())
		srv.Close()
	})

	node := startNode(t, "shutdown.mjs", srv.URL+"/hub")

	// Both clients are connected, each with Block running.
	runs := map[string]context.Context{}
	for len(runs) < 2 {
		select {
		case r := <-started:
			runs[r.user] = r.ctx
		case ev, ok := <-node.events:
			t.Fatalf("node: %q (open %v) while Block should be starting\n%s", ev.Ev, ok, node)
		case <-time.After(stepTimeout):
			t.Fatalf("Block did not start for both clients within %v\n%s", stepTimeout, node)
		}
	}
	require.Contains(t, runs, "auto")
	require.Contains(t, runs, "plain")

	// Sent before Shutdown: each client must see all of it before the Close.
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	for i := range 20 {
		require.NoError(t, hub.SendToAll(ctx, "Msg", i))
	}
	for _, user := range []string{"auto", "plain"} {
		require.NoError(t, hub.SendToUser(ctx, user, "Msg", "bye "+user))
	}

	shutdownDone := make(chan error, 1)
	go func() { shutdownDone <- hub.Shutdown(ctx) }()

	// The running methods' Context ends, and says why; Shutdown waits.
	for user, runCtx := range runs {
		select {
		case <-runCtx.Done():
			assert.ErrorIs(t, context.Cause(runCtx), signalhub.ErrHubClosed, "Context cause of %s's Block", user)
		case <-time.After(stepTimeout):
			t.Fatalf("%s's Block Context did not end within %v of Shutdown", user, stepTimeout)
		}
	}

	// Invocations that arrive now are refused with an error Completion.
	_, err = io.WriteString(node.stdin, "late\n")
	require.NoError(t, err)
	require.NoError(t, node.stdin.Close())
	node.next(t, "late")
	select {
	case err := <-shutdownDone:
		t.Fatalf("Shutdown returned (%v) before the running hub methods did", err)
	default:
	}

	// Released, Block returns its result, which reaches the clients before
	// the Close.
	unblock()
	for range 2 {
		<-returned // Block cannot block after the release
	}
	node.next(t, "settled")
	select {
	case err := <-shutdownDone:
		require.NoError(t, err, "Shutdown")
	case <-time.After(stepTimeout):
		t.Fatalf("Shutdown did not return within %v of the hub methods' return", stepTimeout)
	}

	// Shutdown returned after OnDisconnected ran for every connection.
	mu.Lock()
	assert.Len(t, disconnects, 2, "OnDisconnected calls")
	for user, err := range disconnects {
		assert.ErrorIs(t, err, signalhub.ErrHubClosed, "OnDisconnected cause for %s", user)
	}
	mu.Unlock()
	assert.Zero(t, hub.Stats())

	// Negotiate answers 503 from now on.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/hub/negotiate?negotiateVersion=1", nil)
	require.NoError(t, err)
	req.Close = true // keep no idle connection for the leak check
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode, "negotiate after Shutdown")
	assert.Equal(t, "The hub is shutting down.\n", string(body))

	// What each client saw, in order, and a clean exit.
	done := node.next(t, "done")
	select {
	case ev, ok := <-node.events:
		require.False(t, ok, "node printed %q after done", ev.Ev)
	case <-time.After(stepTimeout):
		t.Fatalf("node did not exit within %v of its clients' close\n%s", stepTimeout, node)
	}
	require.NoError(t, node.wait(), "node exit status\n%s", node)
	assert.Empty(t, node.stderr.String(), "node stderr")

	var sent [][]any
	for i := range 20 {
		sent = append(sent, []any{"Msg", float64(i)})
	}
	before := func(user string) [][]any {
		return append(append([][]any{{"Add", float64(42)}, {"Msg", "running"}}, sent...),
			[]any{"Msg", "bye " + user},
			[]any{"Late", "error", "Failed to invoke 'Add': the server is shutting down."},
			[]any{"Block", "ok", "finished"})
	}
	// The Close message carries no error, as ASP.NET Core's on shutdown:
	// {"type":7,"allowReconnect":true}. So the client reconnects (or
	// closes) with no error (the WebSocket close reason is never seen: the
	// client drops the socket on the Close message).
	const refused = "Failed to complete negotiation with the server: Error: The hub is shutting down.\n: Status code '503'"
	assert.Equal(t, append(before("auto"),
		[]any{"retry", float64(0), "Attempting to reconnect due to a unknown error."},
		[]any{"reconnecting", nil, "Reconnecting"},
		// The one reconnect attempt: negotiate answers 503 with the
		// hub's text, and the client logs it before asking the policy.
		[]any{"log", "Error", refused},
		[]any{"log", "Error", "Failed to start the connection: Error: " + refused},
		[]any{"retry", float64(1), refused},
		[]any{"close", nil, "Disconnected"},
	), done.Clients["auto"].Log, "what the client with automatic reconnect saw")
	assert.Equal(t, append(before("plain"),
		[]any{"close", nil, "Disconnected"},
	), done.Clients["plain"].Log, "what the client without automatic reconnect saw")
	for _, user := range []string{"auto", "plain"} {
		assert.Equal(t, []string{`{"type":7,"allowReconnect":true}`}, done.Clients[user].Closes,
			"the Close records %s received", user)
	}

	// Nothing the hub or the test started is left running.
	srv.Close()
	goleak.VerifyNone(t, leaksBefore)
}
