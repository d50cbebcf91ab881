package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/signalhub/signalhub/examples/chatapp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newTestServer(t *testing.T, bundle string) (*chatapp.App, *httptest.Server) {
	t.Helper()
	a, err := chatapp.New(chatapp.Config{Key: []byte("test-key"), BundlePath: bundle, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	srv := httptest.NewServer(a.Mux)
	t.Cleanup(func() {
		srv.Close()
		require.NoError(t, a.Hub.Close())
	})
	return a, srv
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(body), res.Header
}

func TestTokenEndpoint(t *testing.T) {
	t.Parallel()
	_, srv := newTestServer(t, "")

	status, tok, hdr := get(t, srv.URL+"/token?user=alice&ttl=120")
	require.Equal(t, http.StatusOK, status, tok)
	assert.Equal(t, "text/plain; charset=utf-8", hdr.Get("Content-Type"))
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"})).ParseWithClaims(tok, claims,
		func(*jwt.Token) (any, error) { return []byte("test-key"), nil })
	require.NoError(t, err)
	assert.Equal(t, "alice", claims["sub"])
	exp, err := claims.GetExpirationTime()
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(120*time.Second), exp.Time, 5*time.Second)

	_, tok, _ = get(t, srv.URL+"/token?user=bob")
	claims = jwt.MapClaims{}
	_, err = jwt.NewParser().ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return []byte("test-key"), nil })
	require.NoError(t, err)
	exp, _ = claims.GetExpirationTime()
	assert.WithinDuration(t, time.Now().Add(time.Hour), exp.Time, 5*time.Second, "default ttl is one hour")

	for _, q := range []string{"", "?user=", "?user=a&ttl=0", "?user=a&ttl=-5", "?user=a&ttl=x"} {
		status, _, _ := get(t, srv.URL+"/token"+q)
		assert.Equal(t, http.StatusBadRequest, status, q)
	}
}

func TestNegotiateAuth(t *testing.T) {
	t.Parallel()
	_, srv := newTestServer(t, "")
	_, good, _ := get(t, srv.URL+"/token?user=alice")
	expired, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice", "exp": time.Now().Add(-time.Minute).Unix(),
	}).SignedString([]byte("test-key"))
	require.NoError(t, err)
	wrongKey, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice"}).SignedString([]byte("other"))
	require.NoError(t, err)

	tests := []struct {
		name, token string
		want        int
	}{
		{"anonymous", "", http.StatusOK},
		{"valid token", good, http.StatusOK},
		{"garbage", "garbage", http.StatusUnauthorized},
		{"expired", expired, http.StatusUnauthorized},
		{"wrong key", wrongKey, http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/chathub/negotiate?negotiateVersion=1", nil)
			require.NoError(t, err)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			assert.Equal(t, tc.want, res.StatusCode)
			if tc.want == http.StatusOK {
				var body struct {
					ConnectionID    string `json:"connectionId"`
					ConnectionToken string `json:"connectionToken"`
				}
				require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
				assert.NotEmpty(t, body.ConnectionID)
				assert.NotEqual(t, body.ConnectionID, body.ConnectionToken)
			}
		})
	}
}

func TestPageAndBundle(t *testing.T) {
	t.Parallel()
	_, srv := newTestServer(t, "")
	status, body, hdr := get(t, srv.URL+"/")
	require.Equal(t, http.StatusOK, status)
	assert.True(t, strings.HasPrefix(hdr.Get("Content-Type"), "text/html"))
	assert.Contains(t, body, `<script src="/signalr.min.js"></script>`)

	assert.NotContains(t, body, "innerHTML", "the page puts text in with textContent")

	status, body, _ = get(t, srv.URL+"/signalr.min.js")
	assert.Equal(t, http.StatusNotFound, status)
	assert.Contains(t, body, "make chat", "the missing bundle says how to get it")
}

// The page calls hub methods by name in strings: each must exist.
func TestPageCallsOnlyHubMethods(t *testing.T) {
	t.Parallel()
	_, srv := newTestServer(t, "")
	_, page, _ := get(t, srv.URL+"/")
	methods := map[string]bool{}
	for name := range chatapp.Methods() {
		methods[strings.ToLower(name)] = true
	}
	calls := regexp.MustCompile(`\b(?:invoke|call)\("(\w+)"`).FindAllStringSubmatch(page, -1)
	called := map[string]bool{}
	for _, m := range calls {
		called[m[1]] = true
		assert.True(t, methods[strings.ToLower(m[1])], "the page calls %s, which the hub does not have", m[1])
	}
	for _, want := range []string{"JoinGroup", "LeaveGroup", "SendGroupMessage", "SendPrivate"} {
		assert.True(t, called[want], "the page calls %s", want)
	}
}
