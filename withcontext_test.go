package signalhub_test

import (
	"context"
	"iter"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/hubtest"
)

// TestFilterWithContext: a filter hands the method a context of its own
// through Context.WithContext, for plain and streaming invocations; the
// rest of the Context is the connection's.
func TestFilterWithContext(t *testing.T) {
	t.Parallel()
	type key struct{}
	srv := hubtest.NewServer(t, hubtest.NewHub(t, &signalhub.Options{
		Filters: []signalhub.Filter{{Invoke: func(c *signalhub.Context, inv *signalhub.Invocation,
			next func(*signalhub.Context, *signalhub.Invocation) (any, error)) (any, error) {
			return next(c.WithContext(context.WithValue(c.Context(), key{}, inv.Method)), inv)
		}}},
		Methods: map[string]any{
			"Who": func(c *signalhub.Context) []string {
				v, _ := c.Context().Value(key{}).(string)
				return []string{v, c.ConnectionID(), c.UserID()}
			},
			"Stream": func(c *signalhub.Context) iter.Seq[string] {
				v, _ := c.Context().Value(key{}).(string)
				return slices.Values([]string{v})
			},
		},
	}))
	cl := srv.Connect("alice")
	assert.JSONEq(t, `["Who", "`+cl.ID()+`", "alice"]`, string(cl.MustInvoke("Who")))
	items := cl.MustStream("Stream")
	require.Len(t, items, 1)
	assert.JSONEq(t, `"Stream"`, string(items[0]))
}
