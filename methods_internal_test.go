package signalhub

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMethodLookupIgnoresCase(t *testing.T) {
	t.Parallel()
	long := "Send" + strings.Repeat("X", 80)
	noop := func(*Context) {}
	h, err := New(&Options{Methods: map[string]any{"SendMessage": noop, "Über": noop, long: noop}})
	require.NoError(t, err)
	for _, tc := range []struct {
		target, want string
	}{
		{"SendMessage", "SendMessage"},
		{"sendmessage", "SendMessage"},
		{"SENDMESSAGE", "SendMessage"},
		{"über", "Über"},
		{"ÜBER", "Über"},
		{strings.ToLower(long), long},
		{strings.ToUpper(long), long},
		{"SendMessag", ""},
		{"SendMessage ", ""},
		{"", ""},
	} {
		got := ""
		if m := h.method(tc.target); m != nil {
			got = m.name
		}
		assert.Equal(t, tc.want, got, "%q", tc.target)
	}
}
