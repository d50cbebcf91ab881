package signalhub

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// An Authenticator reads the credentials of a negotiate or connect request.
// It returns (nil, nil) for a request that carries no credentials
// (anonymous), the claims for valid ones, and an error wrapping
// ErrUnauthorized for credentials that are present but not valid. The hub
// answers any error with 401 and creates no state.
type Authenticator func(r *http.Request) (Claims, error)

// JWTOptions configures NewJWTAuthenticator.
type JWTOptions struct {
	// Key verifies signatures: a []byte secret for HMAC, an *rsa.PublicKey,
	// an *ecdsa.PublicKey or an ed25519.PublicKey. Ignored when Keyfunc is
	// set.
	Key any

	// Keyfunc, if set, picks the verification key per token (by "kid", for
	// key rotation). It must return a key of the kind the algorithm needs.
	Keyfunc func(*jwt.Token) (any, error)

	// Algorithms are the only "alg" values accepted. Defaults to the family
	// that fits Key: HS256/384/512 for a secret, RS and PS 256/384/512 for
	// RSA, ES256/384/512 for ECDSA, EdDSA for Ed25519. Required with
	// Keyfunc. "none" is never accepted.
	Algorithms []string

	// Issuer, if set, must equal the token's "iss".
	Issuer string

	// Audience, if set, must be among the token's "aud".
	Audience string

	// Leeway is the clock skew allowed when checking "exp" and "nbf".
	// Defaults to 0.
	Leeway time.Duration

	// ExpirationOptional accepts tokens without an "exp" claim, which then
	// never expire. Defaults to false: such tokens are refused.
	ExpirationOptional bool

	// MaxTokenLength is the longest token accepted, in bytes. A longer one
	// is refused with ErrUnauthorized before it is decoded or its signature
	// checked, so an oversized token costs no parsing or cryptography.
	// Defaults to 8 KiB (DefaultMaxTokenLength); negative is an error.
	MaxTokenLength int
}

// DefaultMaxTokenLength is the default of JWTOptions.MaxTokenLength: 8 KiB,
// ample for a token of a few dozen claims signed with a 4096-bit RSA key.
const DefaultMaxTokenLength = 8 << 10

// keyFits reports whether key is the kind algorithm alg verifies with.
func keyFits(alg string, key any) bool {
	switch {
	case strings.HasPrefix(alg, "HS"):
		_, ok := key.([]byte)
		return ok
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		_, ok := key.(*rsa.PublicKey)
		return ok
	case strings.HasPrefix(alg, "ES"):
		_, ok := key.(*ecdsa.PublicKey)
		return ok
	case alg == "EdDSA":
		_, ok := key.(ed25519.PublicKey)
		return ok
	}
	return false
}

// NewJWTAuthenticator returns an Authenticator that verifies a JWT taken
// from the "Authorization: Bearer" header or, because browsers cannot set
// headers on WebSockets, from the "access_token" query parameter (its name
// matched case-insensitively). Only the pinned algorithms are accepted, each
// checked against the key's type when the Authenticator is built; "exp" is
// required (see JWTOptions.ExpirationOptional) and "nbf" checked when
// present.
//
// A request without a token (or with an empty one) is anonymous. A request
// is refused with ErrUnauthorized when it carries different tokens, in the
// header and the query or in repeated headers or parameters (the same token
// in several places is fine: there is no telling which one the client
// meant), when a token is longer than JWTOptions.MaxTokenLength, and when
// the token has a "crit" header, as none of the JWS extensions it could
// name is understood (RFC 7515, section 4.1.11). Its errors, which the hub
// logs at Debug level, never contain the token (a Keyfunc's own errors are
// passed on as they are).
func NewJWTAuthenticator(opts JWTOptions) (Authenticator, error) {
	algs := opts.Algorithms
	if len(algs) == 0 {
		if opts.Keyfunc != nil {
			return nil, errors.New("signalhub: JWTOptions.Algorithms is required with Keyfunc")
		}
		switch opts.Key.(type) {
		case []byte:
			algs = []string{"HS256", "HS384", "HS512"}
		case *rsa.PublicKey:
			algs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
		case *ecdsa.PublicKey:
			algs = []string{"ES256", "ES384", "ES512"}
		case ed25519.PublicKey:
			algs = []string{"EdDSA"}
		default:
			return nil, fmt.Errorf("signalhub: unsupported JWT key type %T", opts.Key)
		}
	}
	for _, a := range algs {
		if strings.EqualFold(a, "none") {
			return nil, errors.New(`signalhub: JWT algorithm "none" is not allowed`)
		}
		if jwt.GetSigningMethod(a) == nil {
			return nil, fmt.Errorf("signalhub: unknown JWT algorithm %q", a)
		}
		if opts.Keyfunc == nil && !keyFits(a, opts.Key) {
			return nil, fmt.Errorf("signalhub: JWT algorithm %s cannot verify with a key of type %T", a, opts.Key)
		}
	}
	if b, ok := opts.Key.([]byte); ok && opts.Keyfunc == nil && len(b) == 0 {
		return nil, errors.New("signalhub: empty JWT secret")
	}
	maxLen := opts.MaxTokenLength
	switch {
	case maxLen < 0:
		return nil, fmt.Errorf("signalhub: negative JWTOptions.MaxTokenLength %d", maxLen)
	case maxLen == 0:
		maxLen = DefaultMaxTokenLength
	}
	pick := opts.Keyfunc
	if pick == nil {
		key := opts.Key
		pick = func(*jwt.Token) (any, error) { return key, nil }
	}
	// The parser calls keyfunc once the header is decoded and the algorithm
	// found among algs, before any signature work.
	keyfunc := func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			return nil, errors.New(`unsupported "crit" header`)
		}
		return pick(t)
	}
	// Strict decoding refuses signatures with stray padding bits, so that a
	// signed token has exactly one accepted spelling.
	popts := []jwt.ParserOption{jwt.WithValidMethods(algs), jwt.WithLeeway(opts.Leeway), jwt.WithStrictDecoding()}
	if opts.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(opts.Issuer))
	}
	if opts.Audience != "" {
		popts = append(popts, jwt.WithAudience(opts.Audience))
	}
	if !opts.ExpirationOptional {
		popts = append(popts, jwt.WithExpirationRequired())
	}
	parser := jwt.NewParser(popts...)

	return func(r *http.Request) (Claims, error) {
		raw, err := requestToken(r, maxLen)
		if err != nil || raw == "" {
			return nil, err
		}
		claims := jwt.MapClaims{}
		if _, err := parser.ParseWithClaims(raw, claims, keyfunc); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnauthorized, err)
		}
		return Claims(claims), nil
	}, nil
}

// requestToken returns the one token of a request, from its Authorization
// headers and access_token query parameters, or "" for none. It refuses
// tokens that differ and tokens longer than maxLen, without looking into
// them.
func requestToken(r *http.Request, maxLen int) (string, error) {
	var tokens []string
	for _, h := range r.Header.Values("Authorization") {
		if tok := bearerHeaderToken(h); tok != "" {
			tokens = append(tokens, tok)
		}
	}
	for k, vs := range r.URL.Query() {
		if strings.EqualFold(k, "access_token") {
			for _, v := range vs {
				if v != "" {
					tokens = append(tokens, v)
				}
			}
		}
	}
	for _, tok := range tokens {
		if len(tok) > maxLen {
			return "", fmt.Errorf("%w: token longer than %d bytes", ErrUnauthorized, maxLen)
		}
	}
	if len(tokens) == 0 {
		return "", nil
	}
	for _, tok := range tokens[1:] {
		if tok != tokens[0] {
			return "", fmt.Errorf("%w: the request carries different tokens", ErrUnauthorized)
		}
	}
	if !compactJWS(tokens[0]) {
		return "", fmt.Errorf("%w: the token has characters a compact JWS cannot have", ErrUnauthorized)
	}
	return tokens[0], nil
}

// compactJWS reports whether tok has only the characters of a compact JWS:
// base64url segments and dots. Base64 decoders skip line breaks, so
// without this check one signed token would have many accepted spellings.
func compactJWS(tok string) bool {
	for i := 0; i < len(tok); i++ {
		switch c := tok[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// bearerHeaderToken returns the token of an "Authorization: Bearer" header
// value (the scheme matched case-insensitively), or "" for another scheme.
func bearerHeaderToken(h string) string {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// BearerToken returns the access token of a hub request: the token of the
// first "Authorization" header if its scheme is Bearer (matched
// case-insensitively), else the "access_token" query parameter (its name
// matched case-insensitively), else "". An empty bearer token counts as
// none.
//
// BearerToken picks one token without looking at the others, so the header
// wins over a different query token. NewJWTAuthenticator does not use it:
// it refuses a request whose tokens differ, which a custom Authenticator
// built on BearerToken may want to check as well.
func BearerToken(r *http.Request) string {
	if tok := bearerHeaderToken(r.Header.Get("Authorization")); tok != "" {
		return tok
	}
	tok, _ := queryValue(r, "access_token")
	return tok
}
