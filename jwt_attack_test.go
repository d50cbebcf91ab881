package signalhub_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
)

// Outcomes of a JWT attack; any other outcome is the user ID the connection
// gets.
const (
	refused   = "refused with 401"
	anonymous = "anonymous"
)

// b64 encodes a JWT segment: a string as is, anything else as JSON.
func b64(t testing.TB, v any) string {
	t.Helper()
	b, ok := v.(string)
	if !ok {
		j, err := json.Marshal(v)
		require.NoError(t, err)
		b = string(j)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(b))
}

// signHeader is sign with extra header fields (a nil value removes one).
func signHeader(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		c[k] = v
	}
	tok := jwt.NewWithClaims(method, c)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

// tamper changes the payload of a JWT without re-signing it.
func tamper(token string) string {
	b := []byte(token)
	for i := len(b) / 2; i < len(b); i++ {
		if b[i] != '.' && b[i] != 'A' {
			b[i] = 'A'
			break
		}
	}
	return string(b)
}

// syncBuffer is a log destination shared by the hub's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// credentials are how one request presents its tokens.
type credentials struct {
	name   string
	header http.Header
	query  url.Values
}

// secrets are the strings of c that must never be logged: every token,
// every credential after its scheme, and every longer part of them.
func (c credentials) secrets() []string {
	var whole []string
	for _, v := range c.header.Values("Authorization") {
		if _, cred, ok := strings.Cut(v, " "); ok {
			whole = append(whole, strings.TrimSpace(cred))
		}
	}
	for k, vs := range c.query {
		if strings.EqualFold(k, "access_token") {
			whole = append(whole, vs...)
		}
	}
	var out []string
	for _, s := range whole {
		out = append(out, s)
		out = append(out, strings.Split(s, ".")...)
	}
	// Short parts (an empty signature, "a") say nothing and could match
	// by chance.
	return slices.DeleteFunc(out, func(s string) bool { return len(s) < 8 })
}

// leakWindow is the length of the shortest part of a credential that
// leaked reports: long enough not to occur in a log by chance.
const leakWindow = 16

// leaked returns a part of secret that text contains, if any: secret itself
// when it is shorter than leakWindow, else any leakWindow bytes of it, so
// that a truncated or clipped credential counts too.
func leaked(text, secret string) string {
	if len(secret) <= leakWindow {
		if strings.Contains(text, secret) {
			return secret
		}
		return ""
	}
	windows := make(map[string]struct{}, len(text))
	for i := 0; i+leakWindow <= len(text); i++ {
		windows[text[i:i+leakWindow]] = struct{}{}
	}
	for i := 0; i+leakWindow <= len(secret); i++ {
		if _, ok := windows[secret[i:i+leakWindow]]; ok {
			return secret[i : i+leakWindow]
		}
	}
	return ""
}

// TestJWTAttacks sends each attack through the hub's real handler, on
// negotiate and on the WebSocket connect, and checks that it is refused
// with 401 and leaves no trace: no connection token, no connection, user or
// group, no OnConnected, and no token in the hub's logs, at Debug level.
// The few rows that are not refused say why.
func TestJWTAttacks(t *testing.T) {
	t.Parallel()
	k := keys()
	now := time.Now()
	future := now.Add(time.Hour).Unix()
	hs := func(claims jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, k.secret, claims) }
	mallory := jwt.MapClaims{"sub": "mallory"}

	rsaDER, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	require.NoError(t, err)
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaDER})
	rsaPKCS1PEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})
	rs256 := signalhub.JWTOptions{Key: &k.rsa.PublicKey, Algorithms: []string{"RS256"}}

	noneClaims := b64(t, jwt.MapClaims{"sub": "mallory", "exp": future})
	none := func(alg string) string { return b64(t, map[string]string{"alg": alg, "typ": "JWT"}) + "." + noneClaims }
	hsHeader := b64(t, map[string]string{"alg": "HS256", "typ": "JWT"})
	validParts := strings.Split(hs(mallory), ".")

	byKID := map[string][]byte{"old": k.otherSecret, "new": k.secret}
	kidOpts := signalhub.JWTOptions{
		Algorithms: []string{"HS256"},
		Keyfunc: func(tok *jwt.Token) (any, error) {
			kid, _ := tok.Header["kid"].(string)
			if key, ok := byKID[kid]; ok {
				return key, nil
			}
			return nil, errors.New("unknown kid")
		},
	}
	kid := func(kid any, key []byte, sub string) string {
		return signHeader(t, jwt.SigningMethodHS256, key, map[string]any{"kid": kid}, jwt.MapClaims{"sub": sub})
	}

	longToken := hs(jwt.MapClaims{"sub": "mallory", "pad": strings.Repeat("x", signalhub.DefaultMaxTokenLength)})
	sized := hs(jwt.MapClaims{"sub": "sized", "pad": strings.Repeat("x", 300)})

	alice := hs(jwt.MapClaims{"sub": "alice"})
	bob := hs(jwt.MapClaims{"sub": "bob"})

	for _, tc := range []struct {
		name        string
		opts        signalhub.JWTOptions // Key defaults to the HS secret
		requireAuth bool
		// token is sent in the Authorization header, then apart in the
		// access_token query parameter; without it, header and query are
		// sent together.
		token string
		// mint makes the token in the subtest, for tokens whose validity
		// depends on the time: parallel subtests may start much later
		// than the table is built.
		mint   func() string
		header http.Header
		query  url.Values
		want   string // refused, anonymous or a user ID
	}{
		// alg "none" and its spellings: never an accepted algorithm.
		{name: "alg none, unsigned with trailing dot", token: none("none") + ".", want: refused},
		{name: "alg none, without trailing dot", token: none("none"), want: refused},
		{name: "alg None", token: none("None") + ".", want: refused},
		{name: "alg NONE", token: none("NONE") + ".", want: refused},
		{name: "alg none with a signature", token: none("none") + "." + validParts[2], want: refused},
		{name: "alg none against an RSA key", opts: rs256, token: none("none") + ".", want: refused},
		{name: "alg spelled hs256", token: b64(t, map[string]string{"alg": "hs256"}) + "." + noneClaims + "." + validParts[2], want: refused},

		// Algorithm confusion: HMAC keyed with the RSA public key's bytes.
		{name: "HS256 keyed with the RSA public key, PEM", opts: rs256,
			token: sign(t, jwt.SigningMethodHS256, rsaPEM, mallory), want: refused},
		{name: "HS256 keyed with the RSA public key, DER", opts: rs256,
			token: sign(t, jwt.SigningMethodHS256, rsaDER, mallory), want: refused},
		{name: "HS256 keyed with the RSA public key, PKCS #1 PEM", opts: rs256,
			token: sign(t, jwt.SigningMethodHS256, rsaPKCS1PEM, mallory), want: refused},
		{name: "HS256 keyed with the RSA public key, default RSA algorithms",
			opts:  signalhub.JWTOptions{Key: &k.rsa.PublicKey},
			token: sign(t, jwt.SigningMethodHS256, rsaPEM, mallory), want: refused},
		{name: "ES256 when only HS256 is pinned", opts: signalhub.JWTOptions{Key: k.secret, Algorithms: []string{"HS256"}},
			token: sign(t, jwt.SigningMethodES256, k.ecdsa, mallory), want: refused},
		{name: "HS512 when only HS256 is pinned", opts: signalhub.JWTOptions{Key: k.secret, Algorithms: []string{"HS256"}},
			token: sign(t, jwt.SigningMethodHS512, k.secret, mallory), want: refused},
		{name: "RS256 when only RS512 is pinned", opts: signalhub.JWTOptions{Key: &k.rsa.PublicKey, Algorithms: []string{"RS512"}},
			token: sign(t, jwt.SigningMethodRS256, k.rsa, mallory), want: refused},

		// Signatures.
		{name: "wrong secret", token: sign(t, jwt.SigningMethodHS256, k.otherSecret, mallory), want: refused},
		{name: "wrong ECDSA key", opts: signalhub.JWTOptions{Key: &k.ecdsa.PublicKey},
			token: sign(t, jwt.SigningMethodES256, k.otherECDSA, mallory), want: refused},
		{name: "embedded jwk header with the signer's key", opts: signalhub.JWTOptions{Key: &k.ecdsa.PublicKey},
			token: signHeader(t, jwt.SigningMethodES256, k.otherECDSA, map[string]any{"jwk": map[string]string{
				"kty": "EC", "crv": "P-256",
				"x": base64.RawURLEncoding.EncodeToString(k.otherECDSA.X.Bytes()),
				"y": base64.RawURLEncoding.EncodeToString(k.otherECDSA.Y.Bytes()),
			}}, mallory), want: refused},
		{name: "tampered payload", token: tamper(hs(mallory)), want: refused},
		{name: "signature stripped", token: validParts[0] + "." + validParts[1] + ".", want: refused},

		// Time.
		{name: "expired", mint: func() string { return hs(jwt.MapClaims{"sub": "mallory", "exp": time.Now().Add(-time.Minute).Unix()}) }, want: refused},
		{name: "expired beyond the leeway", opts: signalhub.JWTOptions{Key: k.secret, Leeway: time.Minute},
			mint: func() string {
				return hs(jwt.MapClaims{"sub": "mallory", "exp": time.Now().Add(-2 * time.Minute).Unix()})
			}, want: refused},
		{name: "expired within the leeway (control)", opts: signalhub.JWTOptions{Key: k.secret, Leeway: time.Minute},
			mint: func() string {
				return hs(jwt.MapClaims{"sub": "late", "exp": time.Now().Add(-10 * time.Second).Unix()})
			}, want: "late"},
		{name: "not yet valid", mint: func() string { return hs(jwt.MapClaims{"sub": "mallory", "nbf": time.Now().Add(time.Hour).Unix()}) }, want: refused},
		{name: "not yet valid beyond the leeway", opts: signalhub.JWTOptions{Key: k.secret, Leeway: time.Minute},
			mint: func() string {
				return hs(jwt.MapClaims{"sub": "mallory", "nbf": time.Now().Add(2 * time.Minute).Unix()})
			}, want: refused},
		{name: "no exp", token: hs(jwt.MapClaims{"sub": "mallory", "exp": nil}), want: refused},
		{name: "no exp with ExpirationOptional (control)", opts: signalhub.JWTOptions{Key: k.secret, ExpirationOptional: true},
			token: hs(jwt.MapClaims{"sub": "forever", "exp": nil}), want: "forever"},
		{name: "exp not a number", token: hs(jwt.MapClaims{"sub": "mallory", "exp": "tomorrow"}), want: refused},

		// Issuer and audience.
		{name: "wrong issuer", opts: signalhub.JWTOptions{Key: k.secret, Issuer: "https://issuer.example"},
			token: hs(jwt.MapClaims{"sub": "mallory", "iss": "https://evil.example"}), want: refused},
		{name: "no issuer", opts: signalhub.JWTOptions{Key: k.secret, Issuer: "https://issuer.example"},
			token: hs(mallory), want: refused},
		{name: "wrong audience", opts: signalhub.JWTOptions{Key: k.secret, Audience: "chat"},
			token: hs(jwt.MapClaims{"sub": "mallory", "aud": []string{"billing"}}), want: refused},
		{name: "no audience", opts: signalhub.JWTOptions{Key: k.secret, Audience: "chat"},
			token: hs(mallory), want: refused},
		{name: "right issuer and one of the audiences (control)",
			opts:  signalhub.JWTOptions{Key: k.secret, Issuer: "https://issuer.example", Audience: "chat"},
			token: hs(jwt.MapClaims{"sub": "member", "iss": "https://issuer.example", "aud": []string{"billing", "chat"}}),
			want:  "member"},

		// Keys picked by "kid".
		{name: "kid naming no key", opts: kidOpts, token: kid("gone", k.secret, "mallory"), want: refused},
		{name: "kid naming another key than the signer's", opts: kidOpts, token: kid("old", k.secret, "mallory"), want: refused},
		{name: "kid as a path", opts: kidOpts, token: kid("../../../../dev/null", k.secret, "mallory"), want: refused},
		{name: "kid not a string", opts: kidOpts, token: kid(1, k.secret, "mallory"), want: refused},
		{name: "no kid", opts: kidOpts, token: sign(t, jwt.SigningMethodHS256, k.secret, mallory), want: refused},
		{name: "old kid (control)", opts: kidOpts, token: kid("old", k.otherSecret, "by-old"), want: "by-old"},
		{name: "new kid (control)", opts: kidOpts, token: kid("new", k.secret, "by-new"), want: "by-new"},

		// JWS extensions the hub cannot honour.
		{name: `crit naming b64`, token: signHeader(t, jwt.SigningMethodHS256, k.secret,
			map[string]any{"crit": []string{"b64"}, "b64": false}, mallory), want: refused},
		{name: `crit naming nothing`, token: signHeader(t, jwt.SigningMethodHS256, k.secret,
			map[string]any{"crit": []string{}}, mallory), want: refused},
		{name: `crit with Keyfunc`, opts: kidOpts, token: signHeader(t, jwt.SigningMethodHS256, k.secret,
			map[string]any{"kid": "new", "crit": []string{"x-policy"}, "x-policy": "strict"}, mallory), want: refused},

		// Malformed tokens.
		{name: "two segments", token: validParts[0] + "." + validParts[1], want: refused},
		{name: "four segments", token: strings.Join(validParts, ".") + "." + validParts[2], want: refused},
		{name: "bad base64 header", token: "!" + validParts[0][1:] + "." + validParts[1] + "." + validParts[2], want: refused},
		{name: "bad base64 payload", token: validParts[0] + ".*" + validParts[1] + "." + validParts[2], want: refused},
		{name: "bad base64 signature", token: validParts[0] + "." + validParts[1] + ".%%" + validParts[2], want: refused},
		{name: "bad JSON header", token: b64(t, `{"alg":"HS256",`) + "." + validParts[1] + "." + validParts[2], want: refused},
		{name: "bad JSON payload", token: hsHeader + "." + b64(t, `{"sub":"mallory"`) + "." + validParts[2], want: refused},
		{name: "empty segments", token: "..", want: refused},
		{name: "not a JWT", token: "not-a-jwt-at-all", want: refused},

		// Length.
		{name: "longer than the default MaxTokenLength", token: longToken, want: refused},
		{name: "one byte over MaxTokenLength", opts: signalhub.JWTOptions{Key: k.secret, MaxTokenLength: len(sized) - 1},
			token: sized, want: refused},
		{name: "exactly MaxTokenLength (control)", opts: signalhub.JWTOptions{Key: k.secret, MaxTokenLength: len(sized)},
			token: sized, want: "sized"},

		// Where the token is.
		{name: "header and query disagree", header: bearer(bob), query: url.Values{"access_token": {alice}}, want: refused},
		{name: "header and query disagree, query garbage", header: bearer(alice), query: url.Values{"access_token": {"x"}}, want: refused},
		{name: "header and query disagree, header garbage", header: bearer("x"), query: url.Values{"access_token": {alice}}, want: refused},
		{name: "two Bearer headers that disagree", header: http.Header{"Authorization": {"Bearer " + alice, "Bearer " + bob}}, want: refused},
		{name: "repeated access_token that disagree", query: url.Values{"access_token": {alice, bob}}, want: refused},
		{name: "access_token spellings that disagree", query: url.Values{"access_token": {alice}, "Access_Token": {bob}}, want: refused},
		{name: "same token in header and query", header: bearer(alice), query: url.Values{"access_token": {alice}}, want: "alice"},
		{name: "same token in repeated access_token", query: url.Values{"access_token": {alice, alice}}, want: "alice"},
		{name: "lowercase bearer", header: http.Header{"Authorization": {"bearer " + alice}}, want: "alice"},
		{name: "uppercase BEARER", header: http.Header{"Authorization": {"BEARER " + alice}}, want: "alice"},
		// An empty bearer token is no token: the query's counts.
		{name: "empty Bearer and a query token", header: http.Header{"Authorization": {"Bearer "}},
			query: url.Values{"access_token": {alice}}, want: "alice"},
		{name: "empty Bearer alone", header: http.Header{"Authorization": {"Bearer "}}, want: anonymous},
		// Basic credentials are not the JWT authenticator's: the request is
		// anonymous, which only RequireAuth refuses.
		{name: "Basic credentials", header: http.Header{"Authorization": {"Basic bWFsbG9yeTpodW50ZXIy"}}, want: anonymous},
		{name: "Basic credentials with RequireAuth", requireAuth: true,
			header: http.Header{"Authorization": {"Basic bWFsbG9yeTpodW50ZXIy"}}, want: refused},
		{name: "Basic credentials and a query token", header: http.Header{"Authorization": {"Basic bWFsbG9yeTpodW50ZXIy"}},
			query: url.Values{"access_token": {alice}}, want: "alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mint != nil {
				tc.token = tc.mint()
			}
			t.Parallel()
			opts := tc.opts
			if opts.Key == nil && opts.Keyfunc == nil {
				opts.Key = k.secret
			}
			auth := newAuthenticator(t, opts)
			ways := []credentials{{"together", tc.header, tc.query}}
			if tc.token != "" {
				ways = []credentials{
					{"header", bearer(tc.token), nil},
					{"query", nil, url.Values{"access_token": {tc.token}}},
				}
			}

			// Registered before the fixture, so that it runs after the hub
			// closed and logged its last.
			logs := &syncBuffer{}
			t.Cleanup(func() {
				out := logs.String()
				if tc.want == refused {
					assert.Contains(t, out, "request refused", "refusals are logged at Debug level")
				}
				for _, w := range ways {
					for _, s := range w.secrets() {
						if part := leaked(out, s); part != "" {
							assert.Fail(t, "the hub's logs show a credential", "%q of %s in:\n%s", part, w.name, out)
							break
						}
					}
				}
			})
			f := newFixture(t, &signalhub.Options{
				Methods:      whoMethods(),
				Authenticate: auth,
				RequireAuth:  tc.requireAuth,
				// The hub closes expired connections with the same skew.
				AuthExpiryLeeway: tc.opts.Leeway,
				Logger:           slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			ctx := waitCtx(t)

			for _, w := range ways {
				// The Authenticator alone.
				req := httptest.NewRequest(http.MethodGet, "/hub?"+w.query.Encode(), nil)
				req.Header = w.header.Clone()
				claims, err := auth(req)
				switch {
				case tc.want == refused && !tc.requireAuth:
					require.ErrorIs(t, err, signalhub.ErrUnauthorized, w.name)
					for _, s := range w.secrets() {
						assert.Empty(t, leaked(err.Error(), s), "the error shows a credential: %v", err)
					}
				case tc.want == refused, tc.want == anonymous:
					require.NoError(t, err, w.name)
					assert.Nil(t, claims, w.name)
				default:
					require.NoError(t, err, w.name)
					assert.Equal(t, tc.want, signalhub.DefaultUserID(claims), w.name)
				}

				if tc.want != refused {
					c := f.Dial(t, dialOptions{Header: w.header, Query: w.query})
					want := tc.want
					if want == anonymous {
						want = ""
					}
					c.ExpectResult(t, `"`+want+`"`, "User")
					if want != "" {
						assert.Contains(t, f.Hub.UserConnections(want), c.ID, w.name)
					}
					continue
				}

				// Negotiate is refused and issues no connection token.
				q := cloneQuery(w.query)
				q.Set("negotiateVersion", "1")
				pending, _ := signalhub.PendingNegotiations(f.Hub)
				status, body, err := f.Post(ctx, "/negotiate", q.Encode(), w.header)
				require.NoError(t, err)
				assert.Equal(t, http.StatusUnauthorized, status, "negotiate via %s", w.name)
				assert.NotContains(t, string(body), "connection", "negotiate via %s", w.name)
				after, _ := signalhub.PendingNegotiations(f.Hub)
				assert.Equal(t, pending, after, "negotiate via %s issued a connection token", w.name)

				// Connect is refused, without negotiation and after one
				// that passed (the connect checks the credentials again).
				assert.Equal(t, http.StatusUnauthorized, f.wsStatus(t, "", w.query, w.header), "connect via %s without negotiation", w.name)
				if !tc.requireAuth {
					neg, err := f.negotiate(ctx, dialOptions{})
					require.NoError(t, err)
					assert.Equal(t, http.StatusUnauthorized, f.wsStatus(t, neg.ConnectionToken, w.query, w.header), "connect via %s", w.name)
				}
			}

			stats := f.Hub.Stats()
			attempts, _, _ := f.TotalHooks()
			switch tc.want {
			case refused:
				assert.Zero(t, stats, "a refused request leaves no state")
				assert.Zero(t, attempts, "OnConnected never ran")
			case anonymous:
				assert.Equal(t, signalhub.Stats{Connections: len(ways)}, stats)
			default:
				assert.Equal(t, signalhub.Stats{Connections: len(ways), Users: 1}, stats)
			}
		})
	}
}

// TestJWTMaxTokenLength checks that an over-long token is refused before it
// is parsed: whatever it holds, the error is about its length and no key is
// looked up.
func TestJWTMaxTokenLength(t *testing.T) {
	t.Parallel()
	k := keys()
	lookups := 0
	auth := newAuthenticator(t, signalhub.JWTOptions{
		Algorithms: []string{"HS256"},
		Keyfunc: func(*jwt.Token) (any, error) {
			lookups++
			return k.secret, nil
		},
	})
	valid := sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "u", "pad": strings.Repeat("x", signalhub.DefaultMaxTokenLength)})
	for name, tok := range map[string]string{
		"validly signed": valid,
		"garbage":        strings.Repeat("!", signalhub.DefaultMaxTokenLength+1),
	} {
		req := httptest.NewRequest(http.MethodGet, "/hub", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		_, err := auth(req)
		require.ErrorIs(t, err, signalhub.ErrUnauthorized, name)
		assert.ErrorContains(t, err, "token longer than 8192 bytes", name)
	}
	assert.Zero(t, lookups, "no key was looked up")
}
