package signalhub_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/protocol"
)

// fuzzKey is the HMAC secret of the fuzz targets' JWT authenticator.
var fuzzKey = []byte("signalhub-fuzz-hmac-secret-32-by")

// fuzzExp is the "exp" of the valid tokens: a fixed date, so that the
// tokens are the same bytes on every run and the committed corpus files
// keep naming them.
const fuzzExp = 4102444800 // 2100-01-01T00:00:00Z

// fuzzTokenSet is every token the fuzz targets sign or forge.
type fuzzTokenSet struct {
	// valid are signed with fuzzKey and must be accepted, with these
	// claims.
	valid map[string]signalhub.Claims
	// refused are signed with fuzzKey but must be refused: expired, not
	// yet valid, without "exp", or with an algorithm that is not pinned.
	refused []string
	// forged are not signed with fuzzKey: another key, alg "none", a
	// payload or header changed after signing, a mangled signature.
	forged []string
	// hs256 is a valid HS256 token for user "alice".
	hs256 string
}

var fuzzTokens = sync.OnceValue(func() *fuzzTokenSet {
	s := &fuzzTokenSet{valid: make(map[string]signalhub.Claims)}
	alice := jwt.MapClaims{"sub": "alice", "exp": fuzzExp}
	addValid := func(tok string, claims jwt.MapClaims) {
		b, err := json.Marshal(claims)
		if err != nil {
			panic(err)
		}
		var c signalhub.Claims
		if err := json.Unmarshal(b, &c); err != nil {
			panic(err)
		}
		s.valid[tok] = c
	}
	s.hs256 = fuzzSign(jwt.SigningMethodHS256, fuzzKey, alice)
	addValid(s.hs256, alice)
	addValid(fuzzSign(jwt.SigningMethodHS384, fuzzKey, alice), alice)
	addValid(fuzzSign(jwt.SigningMethodHS512, fuzzKey, alice), alice)
	for _, c := range []jwt.MapClaims{
		{"nameid": "bob", "exp": fuzzExp, "role": []string{"admin"}},
		{"sub": "", signalhub.ClaimNameIdentifier: "carol", "exp": fuzzExp, "nbf": 946684800},
	} {
		addValid(fuzzSign(jwt.SigningMethodHS256, fuzzKey, c), c)
	}

	for _, c := range []jwt.MapClaims{
		{"sub": "alice", "exp": 946684800},                   // expired in 2000
		{"sub": "alice", "exp": fuzzExp, "nbf": fuzzExp - 1}, // not valid before 2099
		{"sub": "alice"}, // no exp
		{"sub": "alice", "exp": strconv.Itoa(fuzzExp)}, // exp as a string
	} {
		s.refused = append(s.refused, fuzzSign(jwt.SigningMethodHS256, fuzzKey, c))
	}
	// The right HMAC under an algorithm name that is not pinned: RS256
	// (key confusion) and a lower-case hs256.
	head, payload, sig := fuzzSplit(s.hs256)
	for _, alg := range []string{`{"alg":"RS256","typ":"JWT"}`, `{"alg":"hs256","typ":"JWT"}`} {
		signing := fuzzSegment([]byte(alg)) + "." + payload
		s.refused = append(s.refused, signing+"."+fuzzHMAC(signing))
	}

	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, alice).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		panic(err)
	}
	mallory := fuzzSegment([]byte(`{"exp":4102444800,"sub":"mallory"}`))
	s.forged = []string{
		fuzzSign(jwt.SigningMethodHS256, []byte("another-secret-of-32-bytes-long!"), alice),
		none,
		none + sig,
		fuzzSegment([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + payload + "." + sig,
		fuzzSegment([]byte(`{"alg":"None"}`)) + "." + payload + ".",
		head + "." + mallory + "." + sig,
		head + "." + payload + "." + sig[:len(sig)-4],
		head + "." + payload + ".",
		head + "." + payload,
		s.hs256 + ".",
		s.hs256 + "." + sig,
		head + "." + payload + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 32)),
		head + "." + payload + "." + base64.RawStdEncoding.EncodeToString([]byte(sig)),
		"." + payload + "." + sig,
		"..",
	}
	return s
})

// fuzzSign signs claims with the jwt package.
func fuzzSign(method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		panic(err)
	}
	return tok
}

// fuzzSegment encodes one JWT segment.
func fuzzSegment(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// fuzzHMAC is the HS256 signature segment of signingString with fuzzKey.
func fuzzHMAC(signingString string) string {
	sig, err := jwt.SigningMethodHS256.Sign(signingString, fuzzKey)
	if err != nil {
		panic(err)
	}
	return fuzzSegment(sig)
}

// fuzzSplit returns the three segments of a JWT.
func fuzzSplit(tok string) (head, payload, sig string) {
	parts := strings.SplitN(tok, ".", 3)
	return parts[0], parts[1], parts[2]
}

// fuzzRequest builds the request a server would hand the hub, from fuzzed
// parts: any method, path and raw query, and headers from "Name: value"
// lines.
func fuzzRequest(method, path, rawQuery, headers string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Method = method
	r.URL.Path = path
	r.URL.RawQuery = rawQuery
	r.RequestURI = r.URL.RequestURI()
	for line := range strings.SplitSeq(headers, "\n") {
		if name, value, ok := strings.Cut(line, ":"); ok {
			r.Header.Add(strings.TrimSpace(name), strings.TrimLeft(value, " \t"))
		}
	}
	return r
}

// fuzzHub returns a hub with no methods and a silent logger, closed when
// the test ends. auth selects its authentication: 0 none, 1 a JWT
// authenticator for fuzzKey, 2 that authenticator with RequireAuth, 3
// RequireAuth with nothing to authenticate.
func fuzzHub(t *testing.T, auth uint8) *signalhub.Hub {
	t.Helper()
	return fuzzHubWith(t, auth, 0)
}

// fuzzHubWith is fuzzHub offering transports (0: all).
func fuzzHubWith(t *testing.T, auth uint8, transports signalhub.Transports) *signalhub.Hub {
	t.Helper()
	opts := &signalhub.Options{Logger: slog.New(slog.DiscardHandler), Transports: transports}
	if auth == 1 || auth == 2 {
		a, err := signalhub.NewJWTAuthenticator(signalhub.JWTOptions{Key: fuzzKey})
		require.NoError(t, err)
		opts.Authenticate = a
	}
	opts.RequireAuth = auth >= 2
	hub, err := signalhub.New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = hub.Close() })
	return hub
}

// queryFirsts returns the first value of every query key equal to key
// under case folding: the values the hub may read for it.
func queryFirsts(r *http.Request, key string) []string {
	var out []string
	for k, v := range r.URL.Query() {
		if strings.EqualFold(k, key) && len(v) > 0 {
			out = append(out, v[0])
		}
	}
	return out
}

// presentedToken returns the one token r presents, in Authorization:
// Bearer headers and access_token query values (any spelling of the key),
// and whether it presents several different ones, which the authenticator
// refuses.
func presentedToken(r *http.Request) (token string, conflict bool) {
	var all []string
	for _, h := range r.Header.Values("Authorization") {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") && strings.TrimSpace(tok) != "" {
			all = append(all, strings.TrimSpace(tok))
		}
	}
	for k, vs := range r.URL.Query() {
		if strings.EqualFold(k, "access_token") {
			for _, v := range vs {
				if v != "" {
					all = append(all, v)
				}
			}
		}
	}
	slices.Sort(all)
	all = slices.Compact(all)
	if len(all) == 0 {
		return "", false
	}
	return all[0], len(all) > 1
}

// urlSafe reports whether s is non-empty and needs no escaping in a URL,
// as the JavaScript client puts the connection token in the connect URL
// as it is.
func urlSafe(s string) bool {
	return s != "" && strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == ""
}

// FuzzNegotiate sends fuzzed requests to a hub's negotiate endpoint: any
// method, hub path, raw query (negotiateVersion spelt and repeated any
// way, access_token) and headers (Authorization, Upgrade, ...), to hubs
// that are anonymous, use a JWT authenticator, require authentication or
// are closed. "{token}" in the query or headers stands for a valid JWT.
//
// The hub must answer 405 to anything but POST, 401 (with
// WWW-Authenticate) exactly to requests whose credentials the
// authenticator must refuse, 503 once closed, and otherwise 200 with
// JSON: either only an "error" that ASP.NET Core would give for the
// negotiateVersion, or a negotiate response for the version asked, with a
// URL-safe secret token from version 1 on and never stateful reconnect.
// Only that success leaves state behind: one pending token, no
// connection, and a second negotiate gets fresh IDs.
func FuzzNegotiate(f *testing.F) {
	for _, s := range []struct {
		method, prefix, query, headers string
		mode                           uint8
	}{
		{"POST", "/hub", "negotiateVersion=1", "", 0},
		{"POST", "/hub", "", "", 0},
		{"POST", "/hub", "negotiateVersion=0", "X-Requested-With: XMLHttpRequest", 0},
		{"POST", "/hub", "negotiateVersion=2&useStatefulReconnect=true", "", 0},
		{"POST", "/hub", "negotiateVersion=-1", "", 0},
		{"POST", "/hub", "negotiateVersion=one", "", 0},
		{"POST", "/hub", "negotiateVersion=99999999999999999999", "", 0},
		{"POST", "/hub", "negotiateVersion=%2B1&negotiateVersion=-5", "", 0},
		{"POST", "/hub", "NegotiateVersion=1&negotiateversion=x", "", 0},
		{"POST", "/hub", "negotiateVersion=%zz&negotiateVersion=1", "", 0},
		{"POST", "/hub", "negotiateVersion=1;x=2", "", 0},
		{"POST", "/hub", "negotiateVersion=&id=abc&access_token=", "", 0},
		{"POST", "/hub/", "negotiateVersion=1", "Upgrade: websocket\nConnection: Upgrade", 0},
		{"POST", "", "negotiateVersion=1", "", 0},
		{"GET", "/hub", "negotiateVersion=1", "", 0},
		{"post", "/hub", "negotiateVersion=1", "", 0},
		{"OPTIONS", "/hub", "", "Origin: https://evil.example", 0},
		{"POST", "/hub", "negotiateVersion=1", "Authorization: Bearer {token}", 1},
		{"POST", "/hub", "negotiateVersion=1", "Authorization: Bearer {token}x", 1},
		{"POST", "/hub", "negotiateVersion=1", "Authorization: Basic YWxpY2U6cHc=", 1},
		{"POST", "/hub", "negotiateVersion=1&access_token={token}", "", 2},
		{"POST", "/hub", "negotiateVersion=1&ACCESS_TOKEN={token}&access_token=x", "Authorization: Basic x", 2},
		{"POST", "/hub", "negotiateVersion=1", "Authorization: bearer   {token}  \nAuthorization: Bearer x", 2},
		{"POST", "/hub", "negotiateVersion=1", "", 2},
		{"POST", "/hub", "negotiateVersion=x", "", 2},
		{"POST", "/hub", "negotiateVersion=1", "Authorization: Bearer {token}", 3},
		{"POST", "/hub", "negotiateVersion=1", "", 4},
		{"POST", "/hub", "negotiateVersion=1", "Authorization: Bearer {token}", 6},
	} {
		f.Add(s.method, s.prefix, s.query, s.headers, s.mode)
	}
	tokens := fuzzTokens()
	f.Fuzz(func(t *testing.T, method, prefix, rawQuery, headers string, mode uint8) {
		authMode, closed := mode%4, mode&4 != 0
		hub := fuzzHub(t, authMode)
		if closed {
			require.NoError(t, hub.Close())
		}
		r := fuzzRequest(method, prefix+"/negotiate",
			strings.ReplaceAll(rawQuery, "{token}", tokens.hs256),
			strings.ReplaceAll(headers, "{token}", tokens.hs256))

		presented, conflict := presentedToken(r)
		_, valid := tokens.valid[presented]
		valid = valid && !conflict
		authOK := authMode == 0 || authMode == 1 && presented == "" || (authMode == 1 || authMode == 2) && valid
		versions := queryFirsts(r, "negotiateVersion")
		versionOK := true // every value the hub may read is a version it speaks
		for _, v := range versions {
			if n, err := strconv.Atoi(v); err != nil || n < 0 {
				versionOK = false
			}
		}

		w := httptest.NewRecorder()
		hub.ServeHTTP(w, r)
		pending, queued := signalhub.PendingNegotiations(hub)
		require.Zero(t, hub.Stats(), "negotiate makes no connection")
		require.Equal(t, pending, queued)

		if method != http.MethodPost {
			require.Equal(t, http.StatusMethodNotAllowed, w.Code)
			require.Equal(t, "POST", w.Header().Get("Allow"))
			require.Zero(t, pending)
			return
		}
		if versionOK {
			switch {
			case !authOK:
				require.Equal(t, http.StatusUnauthorized, w.Code, "credentials %q must be refused: %s", presented, w.Body)
			case closed:
				require.Equal(t, http.StatusServiceUnavailable, w.Code, "%s", w.Body)
			default:
				require.Equal(t, http.StatusOK, w.Code, "%s", w.Body)
			}
		}
		switch w.Code {
		case http.StatusUnauthorized:
			require.False(t, authOK, "credentials %q must be accepted", presented)
			require.Equal(t, "Bearer", w.Header().Get("WWW-Authenticate"))
			require.Zero(t, pending)
			return
		case http.StatusServiceUnavailable:
			require.True(t, closed, "503 from an open hub: %s", w.Body)
			require.Zero(t, pending)
			return
		case http.StatusOK:
		default:
			t.Fatalf("negotiate answered %d: %s", w.Code, w.Body)
		}

		require.Equal(t, "application/json", w.Header().Get("Content-Type"))
		require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
		var fields map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &fields), "%s", w.Body)
		if raw, ok := fields["error"]; ok {
			require.Len(t, fields, 1, "%s", w.Body)
			var msg string
			require.NoError(t, json.Unmarshal(raw, &msg))
			require.True(t, slices.ContainsFunc(versions, func(v string) bool {
				if n, err := strconv.Atoi(v); err != nil {
					return msg == "The client requested a non-integer protocol version."
				} else if n < 0 {
					return msg == "The client requested version '"+v+"', but the server does not support this version."
				}
				return false
			}), "error %q explains none of negotiateVersion=%q", msg, versions)
			require.Zero(t, pending)
			return
		}

		require.True(t, authOK, "negotiated with credentials %q", presented)
		require.False(t, closed)
		resp := requireNegotiateResponse(t, w.Body.Bytes(), signalhub.AllTransports)
		if len(versions) == 0 {
			require.Zero(t, resp.NegotiateVersion)
		} else {
			require.True(t, slices.ContainsFunc(versions, func(v string) bool {
				n, err := strconv.Atoi(v)
				return err == nil && n >= 0 && min(n, protocol.MaxNegotiateVersion) == resp.NegotiateVersion
			}), "version %d answers none of negotiateVersion=%q", resp.NegotiateVersion, versions)
		}
		require.Equal(t, 1, pending, "one pending token per negotiate")

		w2 := httptest.NewRecorder()
		hub.ServeHTTP(w2, r)
		require.Equal(t, http.StatusOK, w2.Code, "%s", w2.Body)
		resp2 := requireNegotiateResponse(t, w2.Body.Bytes(), signalhub.AllTransports)
		require.NotEqual(t, resp.ConnectionID, resp2.ConnectionID)
		if resp.NegotiateVersion >= 1 {
			require.NotEqual(t, resp.ConnectionToken, resp2.ConnectionToken)
		}
		pending, queued = signalhub.PendingNegotiations(hub)
		require.Equal(t, 2, pending)
		require.Equal(t, 2, queued)
		require.Zero(t, hub.Stats())
	})
}

// requireNegotiateResponse decodes a successful negotiate body and checks
// it as a client would; it must offer transports, in SignalR's order.
func requireNegotiateResponse(t *testing.T, body []byte, transports signalhub.Transports) protocol.NegotiateResponse {
	t.Helper()
	var resp protocol.NegotiateResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&resp), "%s", body)
	require.Contains(t, []int{0, 1}, resp.NegotiateVersion)
	require.True(t, urlSafe(resp.ConnectionID), "connection ID %q", resp.ConnectionID)
	if resp.NegotiateVersion >= 1 {
		require.True(t, urlSafe(resp.ConnectionToken), "connection token %q", resp.ConnectionToken)
		require.GreaterOrEqual(t, len(resp.ConnectionToken), 22, "a token of at least 128 bits")
		require.NotEqual(t, resp.ConnectionID, resp.ConnectionToken, "the token is a secret, the ID public")
	} else {
		require.Empty(t, resp.ConnectionToken)
	}
	var want []protocol.AvailableTransport
	for _, tr := range []struct {
		t       signalhub.Transports
		name    string
		formats []string
	}{
		{signalhub.TransportWebSockets, protocol.TransportWebSockets, []string{"Text", "Binary"}},
		{signalhub.TransportServerSentEvents, protocol.TransportServerSentEvents, []string{"Text"}},
		{signalhub.TransportLongPolling, protocol.TransportLongPolling, []string{"Text", "Binary"}},
	} {
		if transports&tr.t != 0 {
			want = append(want, protocol.AvailableTransport{Transport: tr.name, TransferFormats: tr.formats})
		}
	}
	require.Equal(t, want, resp.AvailableTransports)
	require.False(t, resp.UseStatefulReconnect, "the hub does not offer stateful reconnect")
	return resp
}

// FuzzConnectWithoutUpgrade sends fuzzed requests that are not WebSocket
// upgrades to the connect endpoint of a hub that offers WebSockets only
// (Options.Transports), after one negotiate; "{token}" and "{id}" in the
// query stand for the negotiated token and connection ID. The hub answers
// as ASP.NET Core does for a WebSocket-only endpoint:
// GET without an id is 400 "Connection ID required", GET with one is 404
// "<transport> transport not supported" (Server-Sent Events when the
// Accept header asks for them, else Long Polling), POST 405, DELETE 400,
// anything else 405. None of them creates a connection or spends or drops
// the negotiated token.
func FuzzConnectWithoutUpgrade(f *testing.F) {
	for _, s := range []struct{ method, path, query, headers string }{
		{"GET", "/hub", "id={token}", ""},
		{"GET", "/hub", "id={token}", "Accept: text/event-stream"},
		{"GET", "/hub", "id={id}&access_token=x", "Accept: text/plain, text/event-stream"},
		{"GET", "/hub", "", ""},
		{"GET", "/hub", "id=", ""},
		{"GET", "/hub", "ID=&id={token}", ""},
		{"GET", "/hub", "Id=&iD=nope", ""},
		{"GET", "/hub", "id=%zz", ""},
		{"GET", "/hub", "id={token}", "Upgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Version: 13\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="},
		{"GET", "/hub", "id={token}", "Connection: Upgrade"},
		{"GET", "/hub/negotiate/x", "id={token}", ""},
		{"POST", "/hub", "id={token}", "Content-Type: text/plain"},
		{"DELETE", "/hub", "id={token}", ""},
		{"PUT", "/hub", "", ""},
		{"", "/hub", "id={token}", ""},
		{"get", "/", "id={token}", ""},
	} {
		f.Add(s.method, s.path, s.query, s.headers)
	}
	f.Fuzz(func(t *testing.T, method, path, rawQuery, headers string) {
		if strings.HasSuffix(path, "/negotiate") {
			return // FuzzNegotiate's
		}
		hub := fuzzHubWith(t, 0, signalhub.TransportWebSockets)
		w := httptest.NewRecorder()
		hub.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/hub/negotiate?negotiateVersion=1", nil))
		require.Equal(t, http.StatusOK, w.Code)
		neg := requireNegotiateResponse(t, w.Body.Bytes(), signalhub.TransportWebSockets)

		rawQuery = strings.NewReplacer("{token}", neg.ConnectionToken, "{id}", neg.ConnectionID).Replace(rawQuery)
		r := fuzzRequest(method, path, rawQuery, headers)
		r.Header.Del("Upgrade")
		w = httptest.NewRecorder()
		hub.ServeHTTP(w, r)

		body := w.Body.String()
		switch method {
		case http.MethodGet:
			ids := queryFirsts(r, "id")
			withID := slices.ContainsFunc(ids, func(v string) bool { return v != "" })
			allWithID := withID && !slices.Contains(ids, "")
			transport := protocol.TransportLongPolling
			if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
				transport = protocol.TransportServerSentEvents
			}
			switch {
			case allWithID || w.Code == http.StatusNotFound:
				require.True(t, withID, "404 without an id: %q", rawQuery)
				require.Equal(t, http.StatusNotFound, w.Code, "%s", body)
				require.Equal(t, transport+" transport not supported by this end point type\n", body)
			default:
				require.Equal(t, http.StatusBadRequest, w.Code, "%s", body)
				require.Equal(t, "Connection ID required\n", body)
			}
		case http.MethodPost:
			require.Equal(t, http.StatusMethodNotAllowed, w.Code)
			require.Equal(t, "POST requests are not allowed for WebSocket connections.\n", body)
		case http.MethodDelete:
			require.Equal(t, http.StatusBadRequest, w.Code)
			require.Equal(t, "Cannot terminate this connection using the DELETE endpoint.\n", body)
		default:
			require.Equal(t, http.StatusMethodNotAllowed, w.Code)
			require.Equal(t, "GET", w.Header().Get("Allow"))
		}
		require.Zero(t, hub.Stats(), "no connection without a WebSocket")
		pending, queued := signalhub.PendingNegotiations(hub)
		require.Equal(t, 1, pending, "the negotiated token is neither spent nor dropped")
		require.Equal(t, 1, queued)
	})
}

// FuzzClaims decodes fuzzed JSON into Claims and checks Claims.String and
// DefaultUserID against their documentation. It then signs the same bytes
// as a JWT payload with the authenticator's key, which fuzzing token
// strings never reaches: the authenticator must not panic on any payload,
// and a token it accepts has an "exp" in the future, an "nbf" (if any) in
// the past, and exactly the payload's claims.
func FuzzClaims(f *testing.F) {
	for _, s := range []struct{ payload, name string }{
		{`{"sub":"alice","exp":4102444800}`, "sub"},
		{`{"nameid":"bob","exp":4102444800,"role":["a","b"]}`, "role"},
		{`{"` + signalhub.ClaimNameIdentifier + `":"carol","sub":"","exp":4102444800}`, signalhub.ClaimNameIdentifier},
		{`{"sub":42,"nameid":"dave","exp":4102444800}`, "sub"},
		{`{"sub":null,"nameid":true,"exp":4102444800}`, "nameid"},
		{`{"sub":{"id":"x"},"exp":4102444800.5,"nbf":0}`, "exp"},
		{`{"sub":"a","sub":"b","exp":4102444800}`, "sub"},
		{`{"SUB":"upper","exp":4102444800}`, "SUB"},
		{`{"sub":"alice","exp":"4102444800"}`, "exp"},
		{`{"sub":"alice","exp":1e300}`, "exp"},
		{`{"sub":"alice","exp":-1e300}`, "exp"},
		{`{"sub":"alice","exp":4102444800,"nbf":4102444800}`, "nbf"},
		{`{"sub":"alice","exp":4102444800,"nbf":"0"}`, "nbf"},
		{`{"sub":"alice","exp":946684800}`, "sub"},
		{`{"n":1e21,"f":0.1,"z":-0,"big":12345678901234567890,"exp":4102444800}`, "big"},
		{`{"exp":4102444800}{"sub":"trailing"}`, "sub"},
		{"{\"sub\":\"\xff\xfe\",\"exp\":4102444800}", "sub"},
		{`{"sub":"\u0000\ud800","exp":4102444800}`, "sub"},
		{`null`, ""},
		{`[]`, ""},
		{``, ""},
	} {
		f.Add([]byte(s.payload), s.name)
	}
	auth, err := signalhub.NewJWTAuthenticator(signalhub.JWTOptions{Key: fuzzKey})
	require.NoError(f, err)
	header := fuzzSegment([]byte(`{"alg":"HS256","typ":"JWT"}`))
	f.Fuzz(func(t *testing.T, payload []byte, name string) {
		var c signalhub.Claims
		if json.Unmarshal(payload, &c) == nil {
			requireClaimsAccessors(t, c, name)
		}

		signing := header + "." + fuzzSegment(payload)
		r := httptest.NewRequest(http.MethodPost, "/hub/negotiate", nil)
		r.Header.Set("Authorization", "Bearer "+signing+"."+fuzzHMAC(signing))
		before := time.Now()
		claims, err := auth(r)
		after := time.Now()
		if err != nil {
			require.ErrorIs(t, err, signalhub.ErrUnauthorized)
			require.Nil(t, claims)
			return
		}
		var want signalhub.Claims
		require.NoError(t, json.Unmarshal(payload, &want), "accepted the payload %q", payload)
		require.Equal(t, want, claims)
		// Whole seconds with a second's margin: the checks ran in between.
		exp, ok := claims["exp"].(float64)
		require.True(t, ok, "accepted without a numeric exp: %q", payload)
		require.Greater(t, exp, float64(before.Unix()-1), "accepted an expired token: %q", payload)
		if nbf, ok := claims["nbf"]; ok {
			n, ok := nbf.(float64)
			require.True(t, ok, "accepted a non-numeric nbf: %q", payload)
			require.LessOrEqual(t, n, float64(after.Unix()+1), "accepted a token not yet valid: %q", payload)
		}
		requireClaimsAccessors(t, claims, name)
	})
}

// requireClaimsAccessors checks Claims.String for name and every claim,
// and DefaultUserID, against their documentation.
func requireClaimsAccessors(t *testing.T, c signalhub.Claims, name string) {
	t.Helper()
	names := []string{name, "sub", "nameid", signalhub.ClaimNameIdentifier}
	for k := range c {
		names = append(names, k)
	}
	for _, n := range names {
		s := c.String(n)
		switch v := c[n].(type) {
		case string:
			require.Equal(t, v, s)
		case float64:
			f, err := strconv.ParseFloat(s, 64)
			require.NoError(t, err, "claim %q = %v formats as %q", n, v, s)
			require.Equal(t, v, f, "claim %q loses precision as %q", n, s)
		case bool:
			require.Equal(t, strconv.FormatBool(v), s)
		default: // missing, null, array or object
			require.Empty(t, s, "claim %q = %#v", n, v)
		}
	}
	want := ""
	for _, n := range []string{"sub", "nameid", signalhub.ClaimNameIdentifier} {
		if s, ok := c[n].(string); ok && s != "" {
			want = s
			break
		}
	}
	require.Equal(t, want, signalhub.DefaultUserID(c), "claims %v", c)
}

// FuzzJWTAuthenticator presents fuzzed credentials to a JWT authenticator
// with an HMAC key, in the Authorization header and in the access_token
// query parameter; "{token}" in either stands for a valid token (escaped
// in the query). The authenticator must not panic; it must return no
// claims and no error without a token, ErrUnauthorized and no claims for
// a refused one, and accept exactly the tokens the test signed validly:
// an accepted token is byte for byte one of them, with its claims.
func FuzzJWTAuthenticator(f *testing.F) {
	tokens := fuzzTokens()
	var all []string
	for tok := range tokens.valid {
		all = append(all, tok)
	}
	slices.Sort(all) // map order would make the seed corpus change between runs
	all = append(append(all, tokens.refused...), tokens.forged...)
	for _, tok := range all {
		f.Add("Bearer {token}", "", tok)
		f.Add("", "access_token={token}", tok)
	}
	for _, s := range []struct{ authorization, query, token string }{
		{"bearer   {token}  ", "", tokens.hs256},
		{"BEARER\t{token}", "", tokens.hs256},
		{"Bearer", "access_token={token}", tokens.hs256},
		{"Basic YWxpY2U6cHc=", "ACCESS_TOKEN={token}", tokens.hs256},
		{"Bearer x.y.z", "access_token={token}", tokens.hs256},
		{"", "Access_Token=x&access_token={token}", tokens.hs256},
		{"", "access_token={token}&access_token=x", tokens.hs256},
		{"", "access_token=%zz&access_token={token}", tokens.hs256},
		{"Bearer {token}", "", strings.ToUpper(tokens.hs256)},
		{"Bearer {token}", "", " " + tokens.hs256},
		{"Bearer {token}", "", tokens.hs256 + "\x00"},
		{"Bearer {token}", "", strings.Replace(tokens.hs256, ".", "..", 1)},
		{"Bearer {token}", "", ""},
		{"", "", ""},
	} {
		f.Add(s.authorization, s.query, s.token)
	}
	auth, err := signalhub.NewJWTAuthenticator(signalhub.JWTOptions{Key: fuzzKey})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, authorization, rawQuery, token string) {
		r := httptest.NewRequest(http.MethodPost, "/hub/negotiate", nil)
		r.URL.RawQuery = strings.ReplaceAll(rawQuery, "{token}", url.QueryEscape(token))
		if authorization != "" {
			r.Header.Set("Authorization", strings.ReplaceAll(authorization, "{token}", token))
		}
		presented, conflict := presentedToken(r)
		claims, err := auth(r)
		want, valid := tokens.valid[presented]
		valid = valid && !conflict
		switch {
		case presented == "":
			require.NoError(t, err)
			require.Nil(t, claims)
		case err == nil:
			require.True(t, valid, "accepted a token the test did not sign (or signed to be refused): %q", presented)
			require.Equal(t, want, claims)
		default:
			require.ErrorIs(t, err, signalhub.ErrUnauthorized)
			require.Nil(t, claims)
			require.False(t, valid, "refused a valid token: %v", err)
		}
	})
}
