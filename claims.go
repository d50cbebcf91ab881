package signalhub

import (
	"context"
	"fmt"
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
