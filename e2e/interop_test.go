// Package e2e holds the end-to-end checks that need Node.js and the
// official SignalR client (installed by `make test` from package-lock.json).
package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/client"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder keeps what the hub received, per user.
type recorder struct {
	mu    sync.Mutex
	calls map[string][]string
}

func (r *recorder) add(c *signalhub.Context, method string, args ...any) {
	b, _ := json.Marshal(append([]any{}, args...))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[c.UserID()] = append(r.calls[c.UserID()], method+string(b))
}

func (r *recorder) of(user string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[user]
}

func interopHub(t *testing.T, rec *recorder) string {
	hub, err := signalhub.New(&signalhub.Options{
		Authenticate: func(r *http.Request) (signalhub.Claims, error) {
			return signalhub.Claims{"sub": r.Header.Get("X-User")}, nil
		},
		OnConnected: func(c *signalhub.Context) error {
			return c.Caller().Send(c.Context(), "Welcome", "welcome")
		},
		Methods: map[string]any{
			"Add": func(c *signalhub.Context, a, b int) int { rec.add(c, "Add", a, b); return a + b },
			"Echo": func(c *signalhub.Context, v map[string]any) map[string]any {
				rec.add(c, "Echo", v)
				return v
			},
			"Fail": func(c *signalhub.Context) error {
				rec.add(c, "Fail")
				return signalhub.HubError{Message: "refused"}
			},
			"Record": func(c *signalhub.Context, s string, n int) { rec.add(c, "Record", s, n) },
			"Greet": func(c *signalhub.Context, name string) (string, error) {
				rec.add(c, "Greet", name)
				return "done", c.Caller().Send(c.Context(), "ReceiveMessage", "hub", "hello "+name)
			},
			"Void": func(c *signalhub.Context) { rec.add(c, "Void") },
		},
	})
	require.NoError(t, err)
	return serveHub(t, hub)
}

// outcome is what a client got back: results of its calls and the
// server's invocations, as JSON-shaped values.
type outcome struct {
	Results [][]any `json:"results"`
	Events  [][]any `json:"events"`
}

// goScenario runs interop.mjs's scenario with the Go client.
func goScenario(t *testing.T, url, user string) outcome {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.New(url, &client.Options{Header: http.Header{"X-User": {user}}})
	require.NoError(t, err)
	var (
		mu     sync.Mutex
		out    outcome
		events = make(chan struct{}, 2)
	)
	require.NoError(t, c.On("Welcome", func(text string) {
		mu.Lock()
		out.Events = append(out.Events, []any{"Welcome", text})
		mu.Unlock()
		events <- struct{}{}
	}))
	require.NoError(t, c.On("ReceiveMessage", func(from, text string) {
		mu.Lock()
		out.Events = append(out.Events, []any{"ReceiveMessage", from, text})
		mu.Unlock()
		events <- struct{}{}
	}))
	require.NoError(t, c.Start(ctx))
	call := func(name string, args ...any) {
		res, err := c.Invoke(ctx, name, args...)
		var ie *client.InvocationError
		switch {
		case errors.As(err, &ie):
			out.Results = append(out.Results, []any{name, "error", ie.Message})
		case err != nil:
			t.Fatalf("invoke %s: %v", name, err)
		default:
			var v any
			require.NoError(t, json.Unmarshal(res, &v))
			out.Results = append(out.Results, []any{name, "ok", v})
		}
	}
	call("Add", 40, 2)
	call("Echo", map[string]any{"a": []any{1, "x", true}, "b": nil, "c": map[string]any{"d": 1.5}})
	call("Fail")
	call("Nope")
	call("Add", 1)
	require.NoError(t, c.Send(ctx, "Record", "fire", 7))
	call("Greet", "ünï 😀")
	call("Void")
	for range 2 {
		select {
		case <-events:
		case <-ctx.Done():
			t.Fatal("the Go client did not get both server invocations")
		}
	}
	require.NoError(t, c.Close())
	mu.Lock()
	defer mu.Unlock()
	return normalize(t, out)
}

// normalize passes an outcome through JSON so that both sides compare as
// the same types.
func normalize(t *testing.T, o outcome) outcome {
	b, err := json.Marshal(o)
	require.NoError(t, err)
	var n outcome
	require.NoError(t, json.Unmarshal(b, &n))
	return n
}

func nodeScenario(t *testing.T, url, user string) outcome {
	if _, err := os.Stat("node_modules/@microsoft/signalr"); err != nil {
		need(t, "the official client is not installed: run `make test` (or `npm ci` in e2e)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		need(t, "node is not installed (apt-get install nodejs npm)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "interop.mjs", url, user)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("node interop.mjs: %v\n%s", err, ee.Stderr)
	}
	require.NoError(t, err)
	var o outcome
	require.NoError(t, json.Unmarshal(out, &o), "%s", out)
	return normalize(t, o)
}

// need skips outside CI and fails in CI, where nothing may be missing.
func need(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// TestInteropWithOfficialClient drives the same calls through the Go client
// and through @microsoft/signalr against one hub, and compares what the hub
// received and what each client got back.
func TestInteropWithOfficialClient(t *testing.T) {
	rec := &recorder{calls: map[string][]string{}}
	url := interopHub(t, rec)

	js := nodeScenario(t, url, "js")
	gogot := goScenario(t, url, "go")

	assert.Equal(t, js.Results, gogot.Results, "results of the calls")
	assert.Equal(t, js.Events, gogot.Events, "invocations from the server")
	assert.Equal(t, rec.of("js"), rec.of("go"), "what the hub received")
	assert.Equal(t, []string{
		"Add[40,2]", `Echo[{"a":[1,"x",true],"b":null,"c":{"d":1.5}}]`, "Fail[]",
		`Record["fire",7]`, `Greet["ünï 😀"]`, "Void[]",
	}, rec.of("go"), "Nope and Add with one argument never reach a method")

	// Spot-check the shared outcome itself, not only the agreement.
	assert.Equal(t, []any{"Add", "ok", float64(42)}, gogot.Results[0])
	assert.Equal(t, []any{"Fail", "error", "An unexpected error occurred invoking 'Fail' on the server. HubException: refused"}, gogot.Results[2])
	assert.Equal(t, []any{"Welcome", "welcome"}, gogot.Events[0])
	assert.Equal(t, []any{"ReceiveMessage", "hub", "hello ünï 😀"}, gogot.Events[1])
}
