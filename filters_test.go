package signalhub_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
)

// trail records what filters and hooks did, in order.
type trail struct {
	mu    sync.Mutex
	steps []string
}

func (tr *trail) add(format string, args ...any) {
	tr.mu.Lock()
	tr.steps = append(tr.steps, fmt.Sprintf(format, args...))
	tr.mu.Unlock()
}

func (tr *trail) take() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	s := tr.steps
	tr.steps = nil
	return s
}

// recording is a filter that records each call around next.
func recording(tr *trail, name string) signalhub.Filter {
	return signalhub.Filter{
		Invoke: func(c *signalhub.Context, inv *signalhub.Invocation, next func(*signalhub.Context, *signalhub.Invocation) (any, error)) (any, error) {
			tr.add("%s before %s%v", name, inv.Method, inv.Args)
			res, err := next(c, inv)
			tr.add("%s after %s: %v %v", name, inv.Method, res, err)
			return res, err
		},
		OnConnected: func(c *signalhub.Context, next func(*signalhub.Context) error) error {
			tr.add("%s before connect", name)
			err := next(c)
			tr.add("%s after connect", name)
			return err
		},
		OnDisconnected: func(c *signalhub.Context, err error, next func(*signalhub.Context, error)) {
			tr.add("%s before disconnect", name)
			next(c, err)
			tr.add("%s after disconnect", name)
		},
	}
}

func TestFiltersRunInOrder(t *testing.T) {
	t.Parallel()
	tr := &trail{}
	methods := testMethods()
	methods["Add"] = func(c *signalhub.Context, a, b int) int { tr.add("Add runs"); return a + b }
	f := newFixture(t, &signalhub.Options{
		Methods:        methods,
		Filters:        []signalhub.Filter{recording(tr, "outer"), recording(tr, "inner")},
		OnConnected:    func(*signalhub.Context) error { tr.add("OnConnected"); return nil },
		OnDisconnected: func(*signalhub.Context, error) { tr.add("OnDisconnected") },
	})
	c := f.Dial(t, dialOptions{})
	assert.Equal(t, []string{"outer before connect", "inner before connect", "OnConnected", "inner after connect", "outer after connect"}, tr.take())

	c.ExpectResult(t, "5", "Add", 2, 3)
	assert.Equal(t, []string{
		"outer before Add[2 3]", "inner before Add[2 3]", "Add runs",
		"inner after Add: 5 <nil>", "outer after Add: 5 <nil>",
	}, tr.take())

	res, errMsg, err := c.Invoke(waitCtx(t), "Nothing")
	require.NoError(t, err)
	assert.Empty(t, errMsg)
	assert.JSONEq(t, "null", string(res), "no result: null, as without filters")
	assert.Equal(t, []string{
		"outer before Nothing[]", "inner before Nothing[]",
		"inner after Nothing: <nil> <nil>", "outer after Nothing: <nil> <nil>",
	}, tr.take())

	c.Close()
	f.WaitDisconnected(t, c.ID)
	assert.Equal(t, []string{"outer before disconnect", "inner before disconnect", "OnDisconnected", "inner after disconnect", "outer after disconnect"}, tr.take())
}

func TestFilterAuthorizesPerMethod(t *testing.T) {
	t.Parallel()
	ran := make(chan string, 1)
	methods := testMethods()
	methods["Ban"] = func(c *signalhub.Context, user string) { ran <- user }
	adminsOnly := signalhub.Filter{Invoke: func(c *signalhub.Context, inv *signalhub.Invocation, next func(*signalhub.Context, *signalhub.Invocation) (any, error)) (any, error) {
		if inv.Method == "Ban" && c.Claims().String("role") != "admin" {
			return nil, signalhub.HubError{Message: "admins only"}
		}
		return next(c, inv)
	}}
	f := newFixture(t, &signalhub.Options{Methods: methods, Filters: []signalhub.Filter{adminsOnly}}, userClaims)
	c := f.DialUser(t, "eve")
	c.ExpectError(t, "An unexpected error occurred invoking 'Ban' on the server. HubException: admins only", "Ban", "bob")
	c.ExpectResult(t, "3", "Add", 1, 2) // other methods pass
	select {
	case u := <-ran:
		t.Fatalf("Ban ran for %q", u)
	default:
	}
}

func TestFilterChangesArgumentsAndResults(t *testing.T) {
	t.Parallel()
	double := signalhub.Filter{Invoke: func(c *signalhub.Context, inv *signalhub.Invocation, next func(*signalhub.Context, *signalhub.Invocation) (any, error)) (any, error) {
		switch inv.Method {
		case "Echo":
			inv.Args[0] = "filtered " + inv.Args[0].(string)
		case "Add":
			res, err := next(c, inv)
			return res.(int) * 2, err
		case "Sum":
			inv.Args[0] = "not a slice"
		case "Nothing":
			return "added by the filter", nil
		}
		return next(c, inv)
	}}
	f := newFixture(t, &signalhub.Options{Methods: testMethods(), Filters: []signalhub.Filter{double}, DetailedErrors: true})
	c := f.Dial(t, dialOptions{})
	c.ExpectResult(t, `"filtered hi"`, "Echo", "hi")
	c.ExpectResult(t, "6", "Add", 1, 2)
	c.ExpectResult(t, `"added by the filter"`, "Nothing")
	c.ExpectError(t, "An unexpected error occurred invoking 'Sum' on the server. signalhub: a filter passed string as argument 1 of Sum, which takes []int", "Sum", []int{1})
}

func TestFilterPanicIsAnErrorCompletion(t *testing.T) {
	t.Parallel()
	boom := signalhub.Filter{Invoke: func(c *signalhub.Context, inv *signalhub.Invocation, next func(*signalhub.Context, *signalhub.Invocation) (any, error)) (any, error) {
		if inv.Method == "Echo" {
			panic("filter bug")
		}
		return next(c, inv)
	}}
	f := newFixture(t, &signalhub.Options{Methods: testMethods(), Filters: []signalhub.Filter{boom}})
	c := f.Dial(t, dialOptions{})
	c.ExpectError(t, "An unexpected error occurred invoking 'Echo' on the server.", "Echo", "x")
	c.ExpectResult(t, "3", "Add", 1, 2)
}

func TestFilterRefusesConnection(t *testing.T) {
	t.Parallel()
	disconnected := make(chan struct{}, 1)
	refuse := signalhub.Filter{
		OnConnected: func(c *signalhub.Context, next func(*signalhub.Context) error) error {
			return signalhub.HubError{Message: "maintenance"}
		},
		OnDisconnected: func(*signalhub.Context, error, func(*signalhub.Context, error)) { disconnected <- struct{}{} },
	}
	f := newFixture(t, &signalhub.Options{Methods: testMethods(), Filters: []signalhub.Filter{refuse}})
	c := f.Dial(t, dialOptions{NoWait: true})
	m, _ := c.ExpectClose(t)
	assert.Equal(t, "Connection closed with an error. HubException: maintenance", m.Error)
	assert.False(t, m.AllowReconnect)
	require.Zero(t, f.Hub.Stats().Connections)
	select {
	case <-disconnected:
		t.Fatal("OnDisconnected ran for a connection refused in OnConnected")
	default:
	}
}
