package hubtest_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/client"
	"github.com/signalhub/signalhub/hubtest"
)

func methods() map[string]any {
	return map[string]any{
		"Add": func(c *signalhub.Context, a, b int) int { return a + b },
		"Whisper": func(c *signalhub.Context, user, text string) error {
			return c.Hub().SendToUser(c.Context(), user, "Whispered", c.UserID(), text)
		},
		"Join": func(c *signalhub.Context, group string) error {
			return c.Hub().AddToGroup(c.Context(), c.ConnectionID(), group)
		},
		"Shout": func(c *signalhub.Context, group, text string) error {
			return c.OthersInGroup(group).Send(c.Context(), "Shouted", c.UserID(), text)
		},
		"Role": func(c *signalhub.Context) string { return c.Claims().String("role") },
		"Fail": func(c *signalhub.Context) error { return signalhub.HubError{Message: "nope"} },
	}
}

// servers runs a test against both kinds of server.
func servers(t *testing.T, opts *signalhub.Options, test func(t *testing.T, srv *hubtest.Server)) {
	for _, kind := range []struct {
		name string
		new  func(testing.TB, *signalhub.Hub) *hubtest.Server
	}{
		{"memory", hubtest.NewServer},
		{"network", hubtest.NewNetworkServer},
	} {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			test(t, kind.new(t, hubtest.NewHub(t, opts)))
		})
	}
}

func TestUsersAndGroups(t *testing.T) {
	t.Parallel()
	servers(t, &signalhub.Options{Methods: methods()}, func(t *testing.T, srv *hubtest.Server) {
		phone, laptop, bob := srv.Connect("alice"), srv.Connect("alice"), srv.Connect("bob")
		assert.Len(t, srv.UserConnections("alice"), 2)
		assert.Equal(t, []string{bob.ID()}, srv.UserConnections("bob"))

		bob.MustInvoke("Whisper", "alice", "psst")
		phone.Expect("Whispered", "bob", "psst")
		laptop.Expect("Whispered", "bob", "psst")
		bob.ExpectNothing()

		phone.MustInvoke("Join", "g")
		bob.MustInvoke("Join", "g")
		assert.ElementsMatch(t, []string{phone.ID(), bob.ID()}, srv.GroupMembers("g"))
		assert.Equal(t, []string{"g"}, srv.ConnectionGroups(bob.ID()))
		bob.MustInvoke("Shout", "g", "hey")
		m := phone.Next()
		var from, text string
		require.NoError(t, m.Decode(&from, &text))
		assert.Equal(t, "Shouted", m.Target)
		assert.Equal(t, [2]string{"bob", "hey"}, [2]string{from, text})
		assert.Equal(t, `Shouted("bob", "hey")`, m.String())
		laptop.ExpectNothing()
		assert.Len(t, phone.Received(), 2, "read messages stay in Received")

		again := phone.Reconnect()
		assert.NotEqual(t, phone.ID(), again.ID())
		assert.Equal(t, []string{bob.ID()}, srv.GroupMembers("g"), "groups are not restored")
		assert.Len(t, srv.UserConnections("alice"), 2, "the user is back on a new connection")
	})
}

func TestInvokeResultsAndErrors(t *testing.T) {
	t.Parallel()
	servers(t, &signalhub.Options{Methods: methods()}, func(t *testing.T, srv *hubtest.Server) {
		c := srv.Connect("")
		assert.JSONEq(t, `42`, string(c.MustInvoke("Add", 40, 2)))
		_, err := c.Invoke("Fail")
		var ie *client.InvocationError
		require.True(t, errors.As(err, &ie), "%v", err)
		assert.Contains(t, ie.Message, "HubException: nope")
		c.Send("Add", 1, 2) // non-blocking: no result, no message
		c.ExpectNothing()
	})
}

func TestClaims(t *testing.T) {
	t.Parallel()
	srv := hubtest.NewServer(t, hubtest.NewHub(t, &signalhub.Options{Methods: methods(), RequireAuth: true}))
	admin := srv.ConnectWith(hubtest.ConnectOptions{Claims: signalhub.Claims{"sub": "root", "role": "admin"}})
	assert.JSONEq(t, `"admin"`, string(admin.MustInvoke("Role")))
	assert.Equal(t, []string{admin.ID()}, srv.UserConnections("root"))

	_, err := srv.TryConnect(hubtest.ConnectOptions{})
	var he *client.HTTPError
	require.True(t, errors.As(err, &he), "anonymous is refused: %v", err)
	assert.Equal(t, 401, he.StatusCode)
}

// fakeTB records the first failure instead of failing the real test.
type fakeTB struct {
	testing.TB
	failure string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failure = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// failure runs fn with a fake TB and returns the failure it reported.
func failure(t *testing.T, fn func(tb testing.TB)) string {
	tb := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(tb)
	}()
	<-done
	return tb.failure
}

func TestFailuresSayWhatArrived(t *testing.T) {
	t.Parallel()
	srv := hubtest.NewServer(t, hubtest.NewHub(t, &signalhub.Options{Methods: methods()}))
	alice, bob := srv.Connect("alice"), srv.Connect("bob")
	bob.MustInvoke("Whisper", "alice", "one")
	bob.MustInvoke("Whisper", "alice", "two")
	alice.Expect("Whispered", "bob", "one")

	alice.Expect("Whispered", "bob", "two")

	f := failure(t, func(tb testing.TB) {
		s := hubtest.NewServer(tb, hubtest.NewHub(tb, &signalhub.Options{Methods: methods()}))
		carol, dave := s.Connect("carol"), s.Connect("dave")
		dave.MustInvoke("Whisper", "carol", "first")
		dave.MustInvoke("Whisper", "carol", "second")
		carol.Expect("Whispered", "dave", "first")
		carol.Expect("Whispered", "dave", "third")
	})
	assert.Contains(t, f, `want Whispered("dave", "third"), got Whispered("dave", "second")`)
	assert.Contains(t, f, `received so far: Whispered("dave", "first"), Whispered("dave", "second")`)

	f = failure(t, func(tb testing.TB) {
		s := hubtest.NewServer(tb, hubtest.NewHub(tb, &signalhub.Options{Methods: methods()}))
		erin := s.Connect("erin")
		erin.MustInvoke("Whisper", "erin", "to myself")
		erin.ExpectNothing()
	})
	assert.True(t, strings.Contains(f, `want no message, got Whispered("erin", "to myself")`), f)

	f = failure(t, func(tb testing.TB) {
		s := hubtest.NewServer(tb, hubtest.NewHub(tb, &signalhub.Options{Methods: methods()}))
		s.Connect("frank").MustInvoke("Nope")
	})
	assert.Contains(t, f, "Method does not exist")
}
