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
}

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
// headers on WebSockets, from the "access_token" query parameter. Only the
// pinned algorithms are accepted, each checked against the key's type when
// the Authenticator is built; "exp" is required (see
// JWTOptions.ExpirationOptional) and "nbf" checked when present.
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
	keyfunc := opts.Keyfunc
	if keyfunc == nil {
		key := opts.Key
		keyfunc = func(*jwt.Token) (any, error) { return key, nil }
	}
	popts := []jwt.ParserOption{jwt.WithValidMethods(algs), jwt.WithLeeway(opts.Leeway)}
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
		raw := BearerToken(r)
		if raw == "" {
			return nil, nil
		}
		claims := jwt.MapClaims{}
		if _, err := parser.ParseWithClaims(raw, claims, keyfunc); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnauthorized, err)
		}
		return Claims(claims), nil
	}, nil
}

// BearerToken returns the access token of a hub request: the
// "Authorization: Bearer" header, else the "access_token" query parameter
// (its name matched case-insensitively), else "".
func BearerToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
	}
	tok, _ := queryValue(r, "access_token")
	return tok
}
