package signalhub_test

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
)

// TestSecretsStayOutOfLogs runs the flows that log, at Debug level (the
// most talkative), and checks that no token, connection token, claim value
// or user ID shows up in the output: connects with a token in the header
// and in the query, refused and expired tokens, a failing hub method,
// revocation, a rate-limit close, a slow-consumer close, an expiry close
// and a graceful shutdown.
func TestSecretsStayOutOfLogs(t *testing.T) {
	t.Parallel()
	k := keys()
	logs := &syncBuffer{}
	auth := newAuthenticator(t, signalhub.JWTOptions{Key: k.secret})
	f := newFixture(t, &signalhub.Options{
		Methods: func() map[string]any {
			m := testMethods()
			m["Fail"] = func(c *signalhub.Context) error { return signalhub.HubError{Message: "refused"} }
			return m
		}(),
		Authenticate:    auth,
		InvocationRate:  0.001,
		InvocationBurst: 3,
		SendQueueLength: 4,
		WriteTimeout:    500 * time.Millisecond, // the slow consumer's blocked write
		// Claims marked "brief" expire 200ms after the connect.
		AuthExpiry: func(c signalhub.Claims) time.Time {
			if c["brief"] == true {
				return time.Now().Add(200 * time.Millisecond)
			}
			return signalhub.DefaultAuthExpiry(c)
		},
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	var secrets []string
	token := func(sub string, extra jwt.MapClaims) string {
		claims := jwt.MapClaims{"sub": sub, "email": sub + "@mail.example", "role": "role-" + sub}
		for k, v := range extra {
			claims[k] = v
		}
		tok := sign(t, jwt.SigningMethodHS256, k.secret, claims)
		secrets = append(secrets, tok, sub, sub+"@mail.example", "role-"+sub)
		secrets = append(secrets, strings.Split(tok, ".")...)
		return tok
	}

	// A token in the header; a failing method; revocation.
	revoked := f.Dial(t, dialOptions{Header: bearer(token("sub-hdr-7Qx2", nil))})
	revoked.ExpectResult(t, "3", "Add", 1, 2)
	revoked.ExpectError(t, "An unexpected error occurred invoking 'Fail' on the server. HubException: refused", "Fail")
	revoked.ExpectError(t, "Failed to invoke 'Nope' due to an error on the server. HubException: Method does not exist.", "Nope")
	require.NoError(t, f.Hub.DisconnectUser(waitCtx(t), "sub-hdr-7Qx2", "revoked"))
	assert.ErrorIs(t, f.WaitDisconnected(t, revoked.ID), signalhub.ErrUserDisconnected)

	// A token in the query; the connection token; a rate-limit close.
	flood := f.Dial(t, dialOptions{Query: url.Values{"access_token": {token("sub-qry-4Lm9", nil)}}})
	secrets = append(secrets, flood.Token)
	for range 6 {
		require.NoError(t, flood.Send(waitCtx(t), "Add", 1, 2))
	}
	assert.ErrorIs(t, f.WaitDisconnected(t, flood.ID), signalhub.ErrRateLimited)

	// A slow consumer.
	slow := f.Dial(t, dialOptions{Header: bearer(token("sub-slow-8Vn3", nil)), NoReader: true, ReadBuffer: 4 << 10})
	big := strings.Repeat("p", 256<<10)
	for range 64 {
		if f.Hub.SendToUser(waitCtx(t), "sub-slow-8Vn3", "Data", big) != nil {
			break
		}
		select {
		case <-f.Disconnected(slow.ID):
		default:
			continue
		}
		break
	}
	assert.ErrorIs(t, f.WaitDisconnected(t, slow.ID), signalhub.ErrSlowConsumer)

	// Expiry.
	brief := f.Dial(t, dialOptions{Header: bearer(token("sub-brief-2Kp5", jwt.MapClaims{"brief": true}))})
	assert.ErrorIs(t, f.WaitDisconnected(t, brief.ID), signalhub.ErrAuthExpired)

	// Refused: a wrong key, an expired token.
	for _, bad := range []string{
		sign(t, jwt.SigningMethodHS256, []byte("another key entirely, 32 bytes!!"), jwt.MapClaims{"sub": "sub-forged-1Zz0"}),
		sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "sub-late-6Hh1", "exp": time.Now().Add(-time.Hour).Unix()}),
	} {
		secrets = append(secrets, bad, "sub-forged-1Zz0", "sub-late-6Hh1")
		status, _ := f.negotiateStatus(t, dialOptions{Header: bearer(bad)})
		assert.Equal(t, http.StatusUnauthorized, status)
	}

	// A graceful shutdown with a connection open.
	f.Dial(t, dialOptions{Header: bearer(token("sub-last-3Tt8", nil))})
	require.NoError(t, f.Hub.Shutdown(waitCtx(t)))

	out := logs.String()
	for _, want := range []string{"hub method failed", "outgoing queue full", "authentication expired", "request refused", "hub shutting down"} {
		assert.Contains(t, out, want, "the flows were logged")
	}
	for _, s := range secrets {
		if len(s) < 8 {
			continue
		}
		if part := leaked(out, s); part != "" {
			assert.Fail(t, "a secret is in the logs", "%q (of %q) in:\n%s", part, s, out)
		}
	}
}
