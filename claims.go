package signalhub

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"
	"unicode"
	"unicode/utf8"
)

// Claims are the authenticated facts about a connection's user, as a JWT
// carries them: claim name to JSON value (string, float64, bool, []any,
// map[string]any). A nil Claims means an anonymous connection.
//
// The hub never changes a Claims value after the connection is made;
// treat it as read-only.
type Claims map[string]any

// String returns the claim as a string: strings as they are, numbers and
// booleans formatted, anything else (or a missing claim) as "".
func (c Claims) String(name string) string {
	switch v := c[name].(type) {
	case string:
		return v
	case nil:
		return ""
	case float64, bool, int, int64:
		return fmt.Sprint(v)
	}
	return ""
}

// ClaimNameIdentifier is the long claim name ASP.NET Core maps "sub" and
// "nameid" to; DefaultUserID reads it last.
const ClaimNameIdentifier = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier"

// DefaultUserID returns the user identifier SignalR uses by default: the
// NameIdentifier claim, which is a JWT's "sub", else "nameid", else the
// claim named ClaimNameIdentifier. It returns "" (anonymous) when none is a
// non-empty string.
func DefaultUserID(c Claims) string {
	for _, name := range [...]string{"sub", "nameid", ClaimNameIdentifier} {
		if s, ok := c[name].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

// DefaultAuthExpiry returns when the claims expire: the "exp" claim (a JWT's
// expiration time, seconds since the Unix epoch, as a number or a numeric
// string, or a time.Time), or the zero time (never) when there is none. An
// "exp" it cannot read, or an infinite one, fails closed: it returns the
// Unix epoch, long expired.
func DefaultAuthExpiry(c Claims) time.Time {
	v, ok := c["exp"]
	if !ok || v == nil {
		return time.Time{}
	}
	var secs float64
	var err error
	switch v := v.(type) {
	case float64:
		secs = v
	case float32:
		secs = float64(v)
	case int:
		secs = float64(v)
	case int32:
		secs = float64(v)
	case int64:
		secs = float64(v)
	case uint32:
		secs = float64(v)
	case uint64:
		secs = float64(v)
	case json.Number:
		secs, err = v.Float64()
	case string:
		secs, err = json.Number(v).Float64()
	case time.Time:
		return v
	default:
		err = fmt.Errorf("exp of type %T", v)
	}
	if err != nil || math.IsNaN(secs) || math.IsInf(secs, 0) || secs < 0 {
		return time.Unix(0, 0)
	}
	if secs > 1<<40 { // beyond year 36000: never
		return time.Time{}
	}
	whole, frac := math.Modf(secs)
	return time.Unix(int64(whole), int64(frac*1e9))
}

// checkName reports whether a group name or user ID is at most max bytes of
// valid UTF-8 without control characters, bidirectional formatting
// characters or line and paragraph separators, which could forge log lines
// or terminal output. Its errors wrap ErrInvalidName.
func checkName(kind, name string, max int) error {
	if len(name) > max {
		return fmt.Errorf("%s of %d bytes is longer than %d: %w", kind, len(name), max, ErrInvalidName)
	}
	// Printable ASCII, as most names are, needs no look at Unicode's
	// tables; the checks below start at the first other byte.
	i := 0
	for i < len(name) && name[i] >= 0x20 && name[i] < 0x7f {
		i++
	}
	if name = name[i:]; name == "" {
		return nil
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%s is not valid UTF-8: %w", kind, ErrInvalidName)
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || unicode.In(r, unicode.Zl, unicode.Zp) {
			return fmt.Errorf("%s contains the character %U: %w", kind, r, ErrInvalidName)
		}
	}
	return nil
}

type claimsKey struct{}

// ContextWithClaims returns a copy of ctx carrying claims. An app's own
// authentication middleware calls it so that the hub, mounted behind the
// middleware, sees who the user is without a JWT.
func ContextWithClaims(ctx context.Context, claims Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, claims)
}

// ClaimsFromContext returns the claims stored by ContextWithClaims.
func ClaimsFromContext(ctx context.Context) (Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(Claims)
	return c, ok
}
