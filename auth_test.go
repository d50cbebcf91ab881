package signalhub_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
)

// testKeys are generated once per run; RSA generation is slow under -race.
type testKeys struct {
	secret      []byte
	otherSecret []byte
	rsa         *rsa.PrivateKey
	ecdsa       *ecdsa.PrivateKey
	otherECDSA  *ecdsa.PrivateKey
	ed25519     ed25519.PrivateKey
}

var keys = sync.OnceValue(func() testKeys {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	k := testKeys{secret: []byte("a-32-byte-secret-for-hs256-tests"), otherSecret: []byte("another-32-byte-secret-for-tests")}
	var err error
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.ecdsa, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.otherECDSA, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	_, k.ed25519, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return k
})

// sign makes a JWT; claims get an "exp" an hour ahead unless they have one
// (a nil value removes it).
func sign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	tok, err := jwt.NewWithClaims(method, c).SignedString(key)
	require.NoError(t, err)
	return tok
}

func newAuthenticator(t testing.TB, opts signalhub.JWTOptions) signalhub.Authenticator {
	t.Helper()
	auth, err := signalhub.NewJWTAuthenticator(opts)
	require.NoError(t, err)
	return auth
}

// whoMethods report the connection's identity.
func whoMethods() map[string]any {
	m := testMethods()
	m["User"] = func(c *signalhub.Context) string { return c.UserID() }
	m["Claim"] = func(c *signalhub.Context, name string) any { return c.Claims()[name] }
	return m
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

func TestJWTAuthenticatorAccepts(t *testing.T) {
	t.Parallel()
	k := keys()
	for _, tc := range []struct {
		name   string
		key    any // verification key
		method jwt.SigningMethod
		sign   any // signing key
	}{
		{"HS256", k.secret, jwt.SigningMethodHS256, k.secret},
		{"HS512", k.secret, jwt.SigningMethodHS512, k.secret},
		{"RS256", &k.rsa.PublicKey, jwt.SigningMethodRS256, k.rsa},
		{"PS256", &k.rsa.PublicKey, jwt.SigningMethodPS256, k.rsa},
		{"ES256", &k.ecdsa.PublicKey, jwt.SigningMethodES256, k.ecdsa},
		{"EdDSA", k.ed25519.Public(), jwt.SigningMethodEdDSA, k.ed25519},
	} {
		for _, via := range []string{"header", "query"} {
			t.Run(tc.name+" via "+via, func(t *testing.T) {
				t.Parallel()
				f := newFixture(t, &signalhub.Options{
					Methods:      whoMethods(),
					Authenticate: newAuthenticator(t, signalhub.JWTOptions{Key: tc.key}),
				})
				token := sign(t, tc.method, tc.sign, jwt.MapClaims{"sub": "user-" + tc.name, "role": "admin"})
				o := dialOptions{Header: bearer(token)}
				if via == "query" {
					o = dialOptions{Query: url.Values{"access_token": {token}}}
				}
				c := f.Dial(t, o)
				c.ExpectResult(t, `"user-`+tc.name+`"`, "User")
				c.ExpectResult(t, `"admin"`, "Claim", "role")
				assert.ElementsMatch(t, []string{c.ID}, f.Hub.UserConnections("user-"+tc.name))
				assert.Equal(t, signalhub.Stats{Connections: 1, Users: 1}, f.Hub.Stats())
			})
		}
	}
}

func TestJWTRefusedConnectKeepsToken(t *testing.T) {
	t.Parallel()
	k := keys()
	f := newFixture(t, &signalhub.Options{
		Methods:      whoMethods(),
		Authenticate: newAuthenticator(t, signalhub.JWTOptions{Key: k.secret}),
		RequireAuth:  true,
	})
	good := sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "alice"})
	bad := sign(t, jwt.SigningMethodHS256, k.otherSecret, jwt.MapClaims{"sub": "mallory"})
	neg, err := f.negotiate(waitCtx(t), dialOptions{Header: bearer(good)})
	require.NoError(t, err)

	assert.Equal(t, http.StatusUnauthorized, f.wsStatus(t, neg.ConnectionToken, nil, bearer(bad)))
	assert.Equal(t, http.StatusUnauthorized, f.wsStatus(t, neg.ConnectionToken, nil, nil))

	ws, _, err := f.DialWS(waitCtx(t), neg.ConnectionToken, nil, bearer(good))
	require.NoError(t, err, "a refused connect does not use up the token")
	c := newClient(t, ws, true)
	c.ID = neg.ConnectionID
	require.NoError(t, c.SendRaw(waitCtx(t), []byte(handshakeV1)))
	rec, err := c.NextRecord(waitCtx(t))
	require.NoError(t, err)
	require.Equal(t, "{}", string(rec))
	c.ExpectResult(t, `"alice"`, "User")
}

func TestNewJWTAuthenticatorErrors(t *testing.T) {
	t.Parallel()
	k := keys()
	for _, tc := range []struct {
		name string
		opts signalhub.JWTOptions
	}{
		{"no key", signalhub.JWTOptions{}},
		{"string secret", signalhub.JWTOptions{Key: "secret"}},
		{"empty secret", signalhub.JWTOptions{Key: []byte{}}},
		{"private RSA key", signalhub.JWTOptions{Key: k.rsa}},
		{"keyfunc without algorithms", signalhub.JWTOptions{Keyfunc: func(*jwt.Token) (any, error) { return k.secret, nil }}},
		{"none", signalhub.JWTOptions{Key: k.secret, Algorithms: []string{"HS256", "none"}}},
		{"NONE", signalhub.JWTOptions{Key: k.secret, Algorithms: []string{"NONE"}}},
		{"unknown algorithm", signalhub.JWTOptions{Key: k.secret, Algorithms: []string{"HS999"}}},
		{"algorithm that does not fit the key", signalhub.JWTOptions{Key: k.secret, Algorithms: []string{"HS256", "RS256"}}},
		{"string secret with pinned algorithm", signalhub.JWTOptions{Key: "secret", Algorithms: []string{"HS256"}}},
		{"RSA key for ES256", signalhub.JWTOptions{Key: &k.rsa.PublicKey, Algorithms: []string{"ES256"}}},
		{"negative MaxTokenLength", signalhub.JWTOptions{Key: k.secret, MaxTokenLength: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			auth, err := signalhub.NewJWTAuthenticator(tc.opts)
			assert.Error(t, err)
			assert.Nil(t, auth)
		})
	}
}

func TestJWTAuthenticatorWithoutToken(t *testing.T) {
	t.Parallel()
	auth := newAuthenticator(t, signalhub.JWTOptions{Key: keys().secret})
	claims, err := auth(httptest.NewRequest(http.MethodGet, "/hub", nil))
	assert.NoError(t, err)
	assert.Nil(t, claims, "no credentials: anonymous")

	req := httptest.NewRequest(http.MethodGet, "/hub", nil)
	req.Header.Set("Authorization", "Bearer garbage")
	claims, err = auth(req)
	assert.ErrorIs(t, err, signalhub.ErrUnauthorized)
	assert.Nil(t, claims)
}

func TestAnonymousConnections(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{
		Methods:      whoMethods(),
		Authenticate: newAuthenticator(t, signalhub.JWTOptions{Key: keys().secret}),
	})
	c := f.Dial(t, dialOptions{})
	c.ExpectResult(t, `""`, "User")
	c.ExpectResult(t, `null`, "Claim", "sub")
	assert.Equal(t, signalhub.Stats{Connections: 1}, f.Hub.Stats(), "anonymous connections belong to no user")
	hc := f.WaitConnected(t, c.ID)
	assert.Nil(t, hc.Claims())
}

func TestRequireAuth(t *testing.T) {
	t.Parallel()
	k := keys()
	for _, tc := range []struct {
		name  string
		opts  signalhub.Options
		mw    []func(http.Handler) http.Handler
		good  dialOptions
		user  string
		wrong dialOptions // credentials of the wrong kind for this setup
	}{
		{
			name: "JWT",
			opts: signalhub.Options{Authenticate: newAuthenticator(t, signalhub.JWTOptions{Key: k.secret})},
			good: dialOptions{Header: bearer(sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "jwt-user"}))},
			user: "jwt-user",
			// The middleware's claims do not count when nobody installed it.
			wrong: dialOptions{Query: url.Values{"user": {"mw-user"}}},
		},
		{
			name: "middleware",
			mw:   []func(http.Handler) http.Handler{userClaims},
			good: dialOptions{Query: url.Values{"user": {"mw-user"}}},
			user: "mw-user",
			// Without an Authenticate a bearer token means nothing.
			wrong: dialOptions{Header: bearer(sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "jwt-user"}))},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := tc.opts
			opts.Methods = whoMethods()
			opts.RequireAuth = true
			f := newFixture(t, &opts, tc.mw...)
			for _, o := range []dialOptions{{}, tc.wrong} {
				q := cloneQuery(o.Query)
				q.Set("negotiateVersion", "1")
				status, _, err := f.Post(waitCtx(t), "/negotiate", q.Encode(), o.Header)
				require.NoError(t, err)
				assert.Equal(t, http.StatusUnauthorized, status, "negotiate")
				assert.Equal(t, http.StatusUnauthorized, f.wsStatus(t, "", o.Query, o.Header), "connect")
			}
			assert.Zero(t, f.Hub.Stats())

			c := f.Dial(t, tc.good)
			c.ExpectResult(t, `"`+tc.user+`"`, "User")
		})
	}
}

func TestClaimsFromMiddleware(t *testing.T) {
	t.Parallel()
	roles := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			claims := signalhub.Claims{"sub": "mw", "role": "admin", "level": 3.0}
			next.ServeHTTP(w, r.WithContext(signalhub.ContextWithClaims(r.Context(), claims)))
		})
	}
	f := newFixture(t, &signalhub.Options{Methods: whoMethods()}, roles)
	c := f.Dial(t, dialOptions{})
	c.ExpectResult(t, `"mw"`, "User")
	c.ExpectResult(t, `"admin"`, "Claim", "role")
	hc := f.WaitConnected(t, c.ID)
	assert.Equal(t, signalhub.Claims{"sub": "mw", "role": "admin", "level": 3.0}, hc.Claims())
	assert.Equal(t, "3", hc.Claims().String("level"))
}

func TestAuthenticatorAndMiddleware(t *testing.T) {
	t.Parallel()
	k := keys()
	auth := newAuthenticator(t, signalhub.JWTOptions{Key: k.secret})
	f := newFixture(t, &signalhub.Options{Methods: whoMethods(), Authenticate: auth}, userClaims)

	// No token: the Authenticate returns nil claims and the middleware's
	// claims are used.
	c := f.Dial(t, dialOptions{Query: url.Values{"user": {"from-mw"}}})
	c.ExpectResult(t, `"from-mw"`, "User")

	// A token: the Authenticate's claims win.
	token := sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "from-jwt"})
	c = f.Dial(t, dialOptions{Query: url.Values{"user": {"from-mw"}}, Header: bearer(token)})
	c.ExpectResult(t, `"from-jwt"`, "User")
}

func TestCustomAuthenticatorErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"ErrUnauthorized", signalhub.ErrUnauthorized},
		{"wrapped ErrUnauthorized", errors.Join(errors.New("revoked"), signalhub.ErrUnauthorized)},
		{"any other error", errors.New("directory unavailable")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, &signalhub.Options{
				Authenticate: func(r *http.Request) (signalhub.Claims, error) { return nil, tc.err },
			})
			status, _, err := f.Post(waitCtx(t), "/negotiate", "negotiateVersion=1", nil)
			require.NoError(t, err)
			assert.Equal(t, http.StatusUnauthorized, status)
			assert.Equal(t, http.StatusUnauthorized, f.wsStatus(t, "", nil, nil))
			assert.Zero(t, f.Hub.Stats())
		})
	}
}

func TestUnauthorizedResponse(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &signalhub.Options{RequireAuth: true})
	req, err := http.NewRequestWithContext(waitCtx(t), http.MethodPost, f.URL+"/negotiate?negotiateVersion=1", nil)
	require.NoError(t, err)
	resp, err := f.Srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, "Bearer", resp.Header.Get("WWW-Authenticate"))
}

func TestDefaultUserID(t *testing.T) {
	t.Parallel()
	const uri = signalhub.ClaimNameIdentifier
	assert.Equal(t, "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier", uri)
	for _, tc := range []struct {
		name   string
		claims signalhub.Claims
		want   string
	}{
		{"sub first", signalhub.Claims{"sub": "a", "nameid": "b", uri: "c"}, "a"},
		{"then nameid", signalhub.Claims{"nameid": "b", uri: "c"}, "b"},
		{"then the URI", signalhub.Claims{uri: "c"}, "c"},
		{"empty sub skipped", signalhub.Claims{"sub": "", "nameid": "b"}, "b"},
		{"non-string sub skipped", signalhub.Claims{"sub": 42.0, uri: "c"}, "c"},
		{"other claims only", signalhub.Claims{"name": "Alice", "email": "a@example.com"}, ""},
		{"empty", signalhub.Claims{}, ""},
		{"nil", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, signalhub.DefaultUserID(tc.claims))
		})
	}
}

func TestDefaultUserIDThroughHub(t *testing.T) {
	t.Parallel()
	withClaims := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			claims := signalhub.Claims{}
			for k, v := range r.URL.Query() {
				if k != "id" && k != "negotiateVersion" {
					claims[k] = v[0]
				}
			}
			next.ServeHTTP(w, r.WithContext(signalhub.ContextWithClaims(r.Context(), claims)))
		})
	}
	f := newFixture(t, &signalhub.Options{Methods: whoMethods()}, withClaims)
	for _, tc := range []struct {
		claims url.Values
		want   string
	}{
		{url.Values{"nameid": {"by-nameid"}, signalhub.ClaimNameIdentifier: {"by-uri"}}, "by-nameid"},
		{url.Values{signalhub.ClaimNameIdentifier: {"by-uri"}}, "by-uri"},
		{url.Values{"sub": {"by-sub"}, "nameid": {"by-nameid"}}, "by-sub"},
	} {
		c := f.Dial(t, dialOptions{Query: tc.claims})
		c.ExpectResult(t, `"`+tc.want+`"`, "User")
		assert.Contains(t, f.Hub.UserConnections(tc.want), c.ID)
	}
}

func TestCustomUserID(t *testing.T) {
	t.Parallel()
	byEmail := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if e := r.URL.Query().Get("email"); e != "" {
				claims := signalhub.Claims{"sub": "ignored-" + e, "email": e}
				r = r.WithContext(signalhub.ContextWithClaims(r.Context(), claims))
			}
			next.ServeHTTP(w, r)
		})
	}
	f := newFixture(t, &signalhub.Options{
		Methods: whoMethods(),
		UserID:  func(c signalhub.Claims) string { return c.String("email") },
	}, byEmail)
	phone := f.Dial(t, dialOptions{Query: url.Values{"email": {"ann@example.com"}}})
	laptop := f.Dial(t, dialOptions{Query: url.Values{"email": {"ann@example.com"}}})
	anon := f.Dial(t, dialOptions{})
	phone.ExpectResult(t, `"ann@example.com"`, "User")
	anon.ExpectResult(t, `""`, "User")

	require.NoError(t, f.Hub.SendToUser(waitCtx(t), "ann@example.com", "Msg", "hi"))
	phone.ExpectInvocation(t, "Msg", "hi")
	laptop.ExpectInvocation(t, "Msg", "hi")
	f.mark(t, anon, "not ann")
	assert.Empty(t, f.Hub.UserConnections("ignored-ann@example.com"))
}

func TestClaimsString(t *testing.T) {
	t.Parallel()
	c := signalhub.Claims{
		"s": "text", "f": 42.0, "frac": 1.5, "b": true, "i": 7,
		"list": []any{"a"}, "obj": map[string]any{"k": "v"}, "null": nil,
	}
	for name, want := range map[string]string{
		"s": "text", "f": "42", "frac": "1.5", "b": "true", "i": "7",
		"list": "", "obj": "", "null": "", "missing": "",
	} {
		assert.Equal(t, want, c.String(name), name)
	}
	assert.Equal(t, "", signalhub.Claims(nil).String("s"))
}

func TestClaimsContext(t *testing.T) {
	t.Parallel()
	_, ok := signalhub.ClaimsFromContext(context.Background())
	assert.False(t, ok)
	ctx := signalhub.ContextWithClaims(context.Background(), signalhub.Claims{"sub": "x"})
	got, ok := signalhub.ClaimsFromContext(ctx)
	assert.True(t, ok)
	assert.Equal(t, signalhub.Claims{"sub": "x"}, got)
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, header, query, want string
	}{
		{"header", "Bearer abc", "", "abc"},
		{"scheme case", "bearer abc", "", "abc"},
		{"header wins", "Bearer abc", "q", "abc"},
		{"query", "", "q", "q"},
		{"other scheme", "Basic dXNlcjpwdw==", "q", "q"},
		{"nothing", "", "", ""},
		{"scheme only", "Bearer", "", ""},
		{"empty bearer token is none", "Bearer ", "q", "q"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target := "/hub"
			if tc.query != "" {
				target += "?access_token=" + url.QueryEscape(tc.query)
			}
			req := httptest.NewRequest(http.MethodGet, target, nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			assert.Equal(t, tc.want, signalhub.BearerToken(req))
		})
	}
}

func TestBearerTokenQueryKeyCase(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest(http.MethodGet, "/hub?Access_Token=xyz", nil)
	assert.Equal(t, "xyz", signalhub.BearerToken(req), "query keys match case-insensitively, as for every hub query key")
}
