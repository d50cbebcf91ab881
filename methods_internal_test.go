package signalhub

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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

func TestDirectCallSignatures(t *testing.T) {
	t.Parallel()
	type handler func(*Context, string) error
	for _, fn := range []any{
		func(*Context) {}, func(*Context) error { return nil },
		func(*Context, string) {}, func(*Context, string) error { return nil },
		func(*Context, json.RawMessage) {}, func(*Context, json.RawMessage) error { return nil },
		func(*Context, string, string) {}, func(*Context, string, string) error { return nil },
		func(*Context, string, json.RawMessage) {}, func(*Context, string, json.RawMessage) error { return nil },
		func(*Context, json.RawMessage, string) {}, func(*Context, json.RawMessage, string) error { return nil },
		func(*Context, json.RawMessage, json.RawMessage) {}, func(*Context, json.RawMessage, json.RawMessage) error { return nil },
	} {
		assert.NotNil(t, directCallOf(fn), "%T", fn)
	}
	for _, fn := range []any{
		func(*Context, int) error { return nil },
		func(*Context) string { return "" },
		func(*Context, string) (string, error) { return "", nil },
		func(*Context, string, string, string) error { return nil },
		handler(func(*Context, string) error { return nil }),
	} {
		assert.Nil(t, directCallOf(fn), "%T", fn)
	}
}

// TestDirectCallsAsReflection checks that methods called directly bind
// their arguments, run and complete exactly as through reflection: the
// same arguments reach them and the client gets the same Completions.
func TestDirectCallsAsReflection(t *testing.T) {
	t.Parallel()
	records := []string{
		`{"type":1,"invocationId":"1","target":"None","arguments":[]}`,
		`{"type":1,"invocationId":"2","target":"Text","arguments":["a\"b"]}`,
		`{"type":1,"invocationId":"3","target":"Text","arguments":[null]}`,
		`{"type":1,"invocationId":"4","target":"Text","arguments":[1]}`,
		`{"type":1,"invocationId":"5","target":"Text","arguments":["a","b"]}`,
		`{"type":1,"invocationId":"6","target":"Raw","arguments":[{"x":[1,2]}]}`,
		`{"type":1,"invocationId":"7","target":"Raw","arguments":[null]}`,
		`{"type":1,"invocationId":"8","target":"Pair","arguments":["u1",[true]]}`,
		`{"type":1,"invocationId":"9","target":"Pair","arguments":[2,[true]]}`,
		`{"type":1,"invocationId":"10","target":"Pair","arguments":["fail",1]}`,
		`{"type":1,"invocationId":"11","target":"Pair","arguments":["hub",1]}`,
		`{"type":1,"invocationId":"12","target":"Pair","arguments":["panic",1]}`,
		`{"type":1,"target":"Pair","arguments":["non-blocking",1]}`,
		`{"type":1,"invocationId":"13","target":"Pair","arguments":[]}`,
		`{"type":1,"invocationId":"14","target":"RawText","arguments":[[],""]}`,
	}
	run := func(direct bool) (seen, sent []string) {
		methods := map[string]any{
			"None": func(*Context) { seen = append(seen, "None") },
			"Text": func(_ *Context, s string) { seen = append(seen, fmt.Sprintf("Text %q", s)) },
			"Raw": func(_ *Context, r json.RawMessage) error {
				seen = append(seen, fmt.Sprintf("Raw %s", r))
				return nil
			},
			"Pair": func(_ *Context, s string, r json.RawMessage) error {
				seen = append(seen, fmt.Sprintf("Pair %q %s", s, r))
				switch s {
				case "fail":
					return errors.New("failed")
				case "hub":
					return HubError{Message: "refused"}
				case "panic":
					panic("boom")
				}
				return nil
			},
			"RawText": func(_ *Context, r json.RawMessage, s string) {
				seen = append(seen, fmt.Sprintf("RawText %s %q", r, s))
			},
		}
		h, err := New(&Options{Methods: methods, DetailedErrors: true, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		for _, m := range h.methods {
			require.NotNil(t, m.direct, m.name)
			if !direct {
				m.direct = nil
			}
		}
		conns, stop := attachMemoryConns(t, h, 1, "g", nil)
		defer stop()
		c := conns[0]
		for _, rec := range records {
			m, err := c.proto.decode([]byte(rec))
			require.NoError(t, err)
			c.invoke(&m)
			batch, _, _ := c.take()
			for _, r := range batch {
				sent = append(sent, string(r))
			}
			c.giveBack(batch)
		}
		return seen, sent
	}
	seen, sent := run(true)
	wantSeen, wantSent := run(false)
	assert.Equal(t, wantSeen, seen)
	assert.Equal(t, wantSent, sent)
	assert.Len(t, sent, len(records)-1, "a Completion for every invocation with an id")
	assert.Contains(t, sent, "{\"type\":3,\"invocationId\":\"12\",\"error\":\"An unexpected error occurred invoking 'Pair' on the server. panic: boom\"}\x1e")
}
