package signalhub_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
)

// userQuery is the dial option of a connection as user, through userClaims.
func userQuery(user string) dialOptions {
	return dialOptions{Query: url.Values{"user": {user}}}
}

// negotiateStatus negotiates with o and returns the HTTP status and body.
func (f *fixture) negotiateStatus(t *testing.T, o dialOptions) (int, string) {
	t.Helper()
	q := cloneQuery(o.Query)
	q.Set("negotiateVersion", "1")
	status, body, err := f.Post(waitCtx(t), "/negotiate", q.Encode(), o.Header)
	require.NoError(t, err)
	return status, strings.TrimSpace(string(body))
}

func TestMaxConnections(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{Methods: testMethods(), MaxConnections: 2}, userClaims)
	a := f.DialUser(t, "a")
	// A connection still in its handshake holds a place too.
	neg, err := f.negotiate(waitCtx(t), dialOptions{})
	require.NoError(t, err)
	pending, _, err := f.DialWS(waitCtx(t), neg.ConnectionToken, nil, nil)
	require.NoError(t, err)
	defer pending.CloseNow()

	status, body := f.negotiateStatus(t, userQuery("b"))
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, "The server has reached its connection limit; try again later.", body)
	assert.Equal(t, http.StatusServiceUnavailable, f.wsStatus(t, "", url.Values{"user": {"b"}}, nil),
		"a connect without negotiate is refused the same way")
	assert.Equal(t, 1, f.Hub.Stats().Connections)

	// The others are unaffected, and a place frees when a connection ends.
	a.ExpectResult(t, "3", "Add", 1, 2)
	a.Close()
	f.WaitDisconnected(t, a.ID)
	b := f.DialUser(t, "b")
	b.ExpectResult(t, "3", "Add", 1, 2)
}

func TestMaxConnectionsPerUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{Methods: testMethods(), MaxConnectionsPerUser: 2}, userClaims)
	a1, a2 := f.DialUser(t, "alice"), f.DialUser(t, "alice")
	const refused = "The user already has 2 connections, the most allowed."

	status, body := f.negotiateStatus(t, userQuery("alice"))
	assert.Equal(t, http.StatusTooManyRequests, status)
	assert.Equal(t, refused, body)
	assert.Equal(t, http.StatusTooManyRequests, f.wsStatus(t, "", url.Values{"user": {"alice"}}, nil))

	// Other users and anonymous connections are not limited by alice's.
	bob := f.DialUser(t, "bob")
	anon := f.Dial(t, dialOptions{})
	bob.ExpectResult(t, "3", "Add", 1, 2)
	anon.ExpectResult(t, "3", "Add", 1, 2)
	a1.ExpectResult(t, "3", "Add", 1, 2)
	assert.Len(t, f.Hub.UserConnections("alice"), 2)

	// Two sockets accepted while alice had a place left race for it: the
	// handshake of the second is refused with the reason.
	a2.Close()
	f.WaitDisconnected(t, a2.ID)
	var tokens [2]string
	for i := range tokens {
		neg, err := f.negotiate(waitCtx(t), userQuery("alice"))
		require.NoError(t, err)
		tokens[i] = neg.ConnectionToken
	}
	first, _, err := f.DialWS(waitCtx(t), tokens[0], url.Values{"user": {"alice"}}, nil)
	require.NoError(t, err)
	second, _, err := f.DialWS(waitCtx(t), tokens[1], url.Values{"user": {"alice"}}, nil)
	require.NoError(t, err)
	c1, c2 := newClient(t, first, true), newClient(t, second, true)
	require.NoError(t, c1.SendRaw(waitCtx(t), []byte(handshakeV1)))
	rec, err := c1.NextRecord(waitCtx(t))
	require.NoError(t, err)
	assert.Equal(t, "{}", string(rec))
	require.NoError(t, c2.SendRaw(waitCtx(t), []byte(handshakeV1)))
	rec, err = c2.NextRecord(waitCtx(t))
	require.NoError(t, err)
	assert.JSONEq(t, `{"error":"`+refused+`"}`, string(rec))
	c2.ExpectClosed(t)
	assert.Len(t, f.Hub.UserConnections("alice"), 2)
}

func TestMaxGroupsPerConnection(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{Methods: testMethods(), MaxGroupsPerConnection: 2}, userClaims)
	c := f.DialUser(t, "u")
	ctx := waitCtx(t)
	require.NoError(t, f.Hub.AddToGroup(ctx, c.ID, "g1"))
	require.NoError(t, f.Hub.AddToGroup(ctx, c.ID, "g2"))
	require.NoError(t, f.Hub.AddToGroup(ctx, c.ID, "g2"), "joining a group it is in is not a new group")
	err := f.Hub.AddToGroup(ctx, c.ID, "g3")
	require.ErrorIs(t, err, signalhub.ErrTooManyGroups)
	assert.ElementsMatch(t, []string{"g1", "g2"}, f.Hub.ConnectionGroups(c.ID))

	// Leaving one makes room; another connection has its own allowance.
	require.NoError(t, f.Hub.RemoveFromGroup(ctx, c.ID, "g1"))
	require.NoError(t, f.Hub.AddToGroup(ctx, c.ID, "g3"))
	other := f.DialUser(t, "v")
	require.NoError(t, f.Hub.AddToGroup(ctx, other.ID, "g1"))
	require.NoError(t, f.Hub.SendToGroup(ctx, "g3", "Hello", 1))
	c.ExpectInvocation(t, "Hello", 1)
}

func TestGroupNameLimits(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{Methods: testMethods(), MaxGroupNameLength: 16}, userClaims)
	c := f.DialUser(t, "u")
	ctx := waitCtx(t)
	calls := map[string]func(group string) error{
		"AddToGroup":      func(g string) error { return f.Hub.AddToGroup(ctx, c.ID, g) },
		"RemoveFromGroup": func(g string) error { return f.Hub.RemoveFromGroup(ctx, c.ID, g) },
		"SendToGroup":     func(g string) error { return f.Hub.SendToGroup(ctx, g, "T") },
		"SendToGroups":    func(g string) error { return f.Hub.SendToGroups(ctx, []string{"ok", g}, "T") },
		"SendToGroupExcept": func(g string) error {
			return f.Hub.SendToGroupExcept(ctx, g, []string{c.ID}, "T")
		},
		"GroupCount": func(g string) error { _, err := f.Hub.GroupCount(ctx, g); return err },
		"GroupConnections": func(g string) error {
			_, err := f.Hub.GroupConnections(ctx, g)
			return err
		},
		"RemoveUserFromGroup": func(g string) error { return f.Hub.RemoveUserFromGroup(ctx, "u", g) },
	}
	for _, bad := range []string{
		strings.Repeat("g", 17), // one byte too long
		"tab\there",
		"nul\x00",
		"del\x7f",
		"c1\u0085",
		"bad utf8 \xff",
		"bidi \u202eevil", // right-to-left override
		"line\u2028break", // line separator
	} {
		for name, call := range calls {
			assert.ErrorIs(t, call(bad), signalhub.ErrInvalidName, "%s(%q)", name, bad)
		}
	}
	for name, call := range calls {
		assert.ErrorIs(t, call(""), signalhub.ErrEmptyName, "%s(\"\")", name)
		assert.NoError(t, call(strings.Repeat("g", 16)), "%s with a name of the maximum length", name)
		assert.NoError(t, call("Zürich 🎉"), "%s with a non-ASCII name", name)
	}
	// Only valid names ever became groups (whether they still are depends
	// on the map order of the calls above).
	assert.Subset(t, []string{strings.Repeat("g", 16), "Zürich 🎉"}, f.Hub.ConnectionGroups(c.ID))
	c.ExpectResult(t, "3", "Add", 1, 2)
}

func TestUserIDLimits(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{Methods: testMethods(), MaxUserIDLength: 8}, userClaims)
	bystander := f.DialUser(t, "ok")
	for _, bad := range []string{"123456789", "a\nb", "\x1b[31mred", "bad\xff"} {
		status, body := f.negotiateStatus(t, userQuery(bad))
		assert.Equal(t, http.StatusForbidden, status, "negotiate as %q", bad)
		assert.Equal(t, "The user ID is too long, is not valid UTF-8 or contains control characters.", body)
		assert.Equal(t, http.StatusForbidden, f.wsStatus(t, "", url.Values{"user": {bad}}, nil), "connect as %q", bad)

		ctx := waitCtx(t)
		assert.ErrorIs(t, f.Hub.SendToUser(ctx, bad, "T"), signalhub.ErrInvalidName)
		assert.ErrorIs(t, f.Hub.SendToUsers(ctx, []string{"ok", bad}, "T"), signalhub.ErrInvalidName)
		assert.ErrorIs(t, f.Hub.DisconnectUser(ctx, bad, ""), signalhub.ErrInvalidName)
		_, err := f.Hub.UserCount(ctx, bad)
		assert.ErrorIs(t, err, signalhub.ErrInvalidName)
	}
	assert.Equal(t, 1, f.Hub.Stats().Connections)
	f.DialUser(t, "12345678").ExpectResult(t, "3", "Add", 1, 2)
	bystander.ExpectResult(t, "3", "Add", 1, 2)
}

func TestInvocationRateLimit(t *testing.T) {
	t.Parallel()
	// A rate so low that no token comes back during the test: the first
	// three invocations use the burst, the next are refused, and the third
	// refusal in a row closes the connection.
	f := newFixture(t, &signalhub.Options{Methods: testMethods(), InvocationRate: 0.001, InvocationBurst: 3}, userClaims)
	c := f.DialUser(t, "flood")
	bystander := f.DialUser(t, "calm")
	for range 3 {
		c.ExpectResult(t, "3", "Add", 1, 2)
	}
	const refused = "Failed to invoke 'Add': the rate limit of 0.001 invocations per second was exceeded."
	c.ExpectError(t, refused, "Add", 1, 2)
	require.NoError(t, c.Send(waitCtx(t), "Add", 1, 2)) // refused silently: it wants no answer
	_, err := c.StartInvoke(waitCtx(t), "Add", 1, 2)
	require.NoError(t, err)
	m, _ := c.ExpectClose(t) // the next message: no Completion for that last call
	assert.Equal(t, "Connection closed with an error. The client went on invoking hub methods faster than 0.001 per second.", m.Error)
	assert.False(t, m.AllowReconnect)
	assert.ErrorIs(t, f.WaitDisconnected(t, c.ID), signalhub.ErrRateLimited)
	bystander.ExpectResult(t, "3", "Add", 1, 2)
}

func TestInvocationRateDefaults(t *testing.T) {
	t.Parallel()
	// The default burst (200) takes 150 invocations sent at once.
	f := newFixture(t, &signalhub.Options{Methods: testMethods()}, userClaims)
	invokeAtOnce(t, f.DialUser(t, "u"), 150)
	// A negative rate is no limit.
	g := newFixture(t, &signalhub.Options{Methods: testMethods(), InvocationRate: -1, MaxPendingInvocations: 5000}, userClaims)
	invokeAtOnce(t, g.DialUser(t, "u"), 1000)
}

// invokeAtOnce sends n invocations without waiting, then requires each to
// succeed.
func invokeAtOnce(t *testing.T, c *client, n int) {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		var err error
		ids[i], err = c.StartInvoke(waitCtx(t), "Add", i, 1)
		require.NoError(t, err)
	}
	for _, id := range ids {
		_, errMsg, err := c.Completion(waitCtx(t), id)
		require.NoError(t, err)
		assert.Empty(t, errMsg)
	}
}

// expiringClaims is middleware that authenticates "user" with an "exp"
// claim "ttl" (a Go duration, may be negative) from now.
func expiringClaims(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		ttl, err := time.ParseDuration(q.Get("ttl"))
		if err != nil {
			http.Error(w, "bad ttl", http.StatusBadRequest)
			return
		}
		exp := float64(time.Now().Add(ttl).UnixNano()) / 1e9
		claims := signalhub.Claims{"sub": q.Get("user"), "exp": exp}
		next.ServeHTTP(w, r.WithContext(signalhub.ContextWithClaims(r.Context(), claims)))
	})
}

func TestAuthExpiryClosesConnection(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{Methods: testMethods()}, expiringClaims)
	short := f.Dial(t, dialOptions{Query: url.Values{"user": {"short"}, "ttl": {"300ms"}}})
	long := f.Dial(t, dialOptions{Query: url.Values{"user": {"long"}, "ttl": {"1h"}}})

	// The expiry closes the connection by itself: nothing is sent to it.
	// (Nothing is invoked on it first: on a loaded machine 300 ms may be
	// over before an invocation is answered.)
	m, _ := short.ExpectClose(t)
	assert.Equal(t, "Connection closed with an error. The connection's authentication expired; reconnect with a new access token.", m.Error)
	assert.True(t, m.AllowReconnect, "a client may come back with a new token")
	assert.ErrorIs(t, f.WaitDisconnected(t, short.ID), signalhub.ErrAuthExpired)
	long.ExpectResult(t, "3", "Add", 1, 2)

	// Renewing is reconnecting with a new token.
	f.Dial(t, dialOptions{Query: url.Values{"user": {"short"}, "ttl": {"1h"}}}).ExpectResult(t, "3", "Add", 1, 2)
}

func TestExpiredCredentialsAreRefused(t *testing.T) {
	t.Parallel()
	var connected atomic.Int32
	f := newFixture(t, &signalhub.Options{
		Methods:     testMethods(),
		OnConnected: func(*signalhub.Context) error { connected.Add(1); return nil },
	}, expiringClaims)
	q := url.Values{"user": {"late"}, "ttl": {"-1s"}}
	status, body := f.negotiateStatus(t, dialOptions{Query: q})
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Equal(t, "Unauthorized", body)
	assert.Equal(t, http.StatusUnauthorized, f.wsStatus(t, "", q, nil))
	assert.Zero(t, connected.Load())
	assert.Zero(t, f.Hub.Stats())

	// With a leeway, the same credentials are still good.
	g := newFixture(t, &signalhub.Options{Methods: testMethods(), AuthExpiryLeeway: time.Minute}, expiringClaims)
	g.Dial(t, dialOptions{Query: q}).ExpectResult(t, "3", "Add", 1, 2)
}

func TestIgnoreAuthExpiry(t *testing.T) {
	t.Parallel()
	// Credentials that expired a second ago are accepted and the
	// connection stays: its expiry is in the past, so a close would have
	// been immediate.
	f := newFixture(t, &signalhub.Options{Methods: testMethods(), IgnoreAuthExpiry: true}, expiringClaims)
	c := f.Dial(t, dialOptions{Query: url.Values{"user": {"old"}, "ttl": {"-1s"}}})
	c.ExpectResult(t, "3", "Add", 1, 2)
	require.NoError(t, f.Hub.SendToUser(waitCtx(t), "old", "Still", "here"))
	c.ExpectInvocation(t, "Still", "here")
	assert.Equal(t, 1, f.Hub.Stats().Connections)
}

func TestCustomAuthExpiry(t *testing.T) {
	t.Parallel()
	// An app whose sessions end at "session_end" (RFC 3339) instead of exp.
	sessions := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			end := time.Now().Add(200 * time.Millisecond).Format(time.RFC3339Nano)
			claims := signalhub.Claims{"sub": "s", "session_end": end}
			next.ServeHTTP(w, r.WithContext(signalhub.ContextWithClaims(r.Context(), claims)))
		})
	}
	f := newFixture(t, &signalhub.Options{
		Methods: testMethods(),
		AuthExpiry: func(c signalhub.Claims) time.Time {
			t, _ := time.Parse(time.RFC3339Nano, c.String("session_end"))
			return t
		},
	}, sessions)
	c := f.Dial(t, dialOptions{})
	m, _ := c.ExpectClose(t)
	assert.True(t, m.AllowReconnect)
	assert.ErrorIs(t, f.WaitDisconnected(t, c.ID), signalhub.ErrAuthExpired)
}

func TestDefaultAuthExpiry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		claims signalhub.Claims
		want   time.Time
	}{
		{nil, time.Time{}},
		{signalhub.Claims{"sub": "x"}, time.Time{}},
		{signalhub.Claims{"exp": float64(1_900_000_000)}, time.Unix(1_900_000_000, 0)},
		{signalhub.Claims{"exp": 1_900_000_000.5}, time.Unix(1_900_000_000, 5e8)},
		{signalhub.Claims{"exp": int64(1_900_000_000)}, time.Unix(1_900_000_000, 0)},
		{signalhub.Claims{"exp": "1900000000"}, time.Unix(1_900_000_000, 0)},
		// What cannot be read fails closed.
		{signalhub.Claims{"exp": "tomorrow"}, time.Unix(0, 0)},
		{signalhub.Claims{"exp": true}, time.Unix(0, 0)},
		{signalhub.Claims{"exp": -5.0}, time.Unix(0, 0)},
		{signalhub.Claims{"exp": "NaN"}, time.Unix(0, 0)},
		{signalhub.Claims{"exp": "Infinity"}, time.Unix(0, 0)},
		{signalhub.Claims{"exp": "+Inf"}, time.Unix(0, 0)},
		{signalhub.Claims{"exp": int32(1_900_000_000)}, time.Unix(1_900_000_000, 0)},
		{signalhub.Claims{"exp": time.Unix(1_900_000_000, 0)}, time.Unix(1_900_000_000, 0)},
		// Beyond any real date: never.
		{signalhub.Claims{"exp": 1e300}, time.Time{}},
	} {
		assert.True(t, tc.want.Equal(signalhub.DefaultAuthExpiry(tc.claims)), "%v", tc.claims)
	}
}

func TestAuthExpiryPanicIsRefusal(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{
		Methods:    testMethods(),
		AuthExpiry: func(signalhub.Claims) time.Time { panic("broken") },
	}, userClaims)
	status, _ := f.negotiateStatus(t, userQuery("u"))
	assert.Equal(t, http.StatusUnauthorized, status)
	// Anonymous connections have no claims to expire.
	f.Dial(t, dialOptions{}).ExpectResult(t, "3", "Add", 1, 2)
}

func TestOriginCheckByDefault(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{Methods: testMethods()})
	same := "http://" + strings.TrimPrefix(f.Srv.URL, "http://")
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true},   // not a browser
		{same, true}, // the page the hub's server serves
		{"https://evil.example", false},
		{"null", false},             // sandboxed frames, file:// pages
		{"http://127.0.0.1", false}, // same host, another port
	} {
		neg, err := f.negotiate(waitCtx(t), dialOptions{})
		require.NoError(t, err)
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		if !tc.ok {
			assert.Equal(t, http.StatusForbidden, f.wsStatus(t, neg.ConnectionToken, nil, h), "origin %q", tc.origin)
			continue
		}
		ws, _, err := f.DialWS(waitCtx(t), neg.ConnectionToken, nil, h)
		require.NoError(t, err, "origin %q", tc.origin)
		_ = ws.CloseNow()
	}
}

func TestLimitOptionsValidation(t *testing.T) {
	t.Parallel()
	for _, o := range []signalhub.Options{
		{MaxGroupNameLength: -1},
		{MaxUserIDLength: -1},
		{InvocationBurst: -1},
		{AuthExpiryLeeway: -time.Second},
	} {
		_, err := signalhub.New(&o)
		assert.Error(t, err, "%+v", o)
	}
	// Negative limits that mean "none" are accepted.
	h, err := signalhub.New(&signalhub.Options{MaxConnections: -1, MaxConnectionsPerUser: -1, MaxGroupsPerConnection: -1, InvocationRate: -1})
	require.NoError(t, err)
	require.NoError(t, h.Close())
}
