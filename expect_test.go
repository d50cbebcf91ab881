package signalhub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub/protocol"
)

// jsonConn is what the Expect helpers need of a JSON test client: the
// WebSocket client (wsclient_test.go) or an HTTP transport's
// (httpclient_test.go).
type jsonConn interface {
	// NextRaw returns the next non-Ping record, without its separator.
	NextRaw(ctx context.Context) ([]byte, error)
	// Invoke invokes target and waits for its Completion.
	Invoke(ctx context.Context, target string, args ...any) (result json.RawMessage, errMsg string, err error)
	// WaitClosed waits until the transport ends and returns why.
	WaitClosed(ctx context.Context) (readErr, err error)
}

// expect gives a test client its Expect methods; each client embeds one
// pointing at itself.
type expect struct{ c jsonConn }

// ExpectInvocation requires the next non-Ping message to be a non-blocking
// Invocation of target whose arguments equal args as JSON.
func (e expect) ExpectInvocation(t testing.TB, target string, args ...any) {
	t.Helper()
	raw, err := e.c.NextRaw(waitCtx(t))
	require.NoError(t, err)
	want, err := invocationRecord("", target, args...)
	require.NoError(t, err)
	assert.JSONEq(t, string(bytes.TrimSuffix(want, []byte(rs))), string(raw), "want Invocation of %s", target)
}

// ExpectMarker requires the next non-Ping message to be the Invocation
// "Marker" with the argument tag. To show that something did not arrive,
// tests send a marker after it: the marker must come next.
func (e expect) ExpectMarker(t testing.TB, tag string) {
	t.Helper()
	e.ExpectInvocation(t, "Marker", tag)
}

// ExpectResult invokes target and requires a successful Completion
// whose result equals want as JSON.
func (e expect) ExpectResult(t testing.TB, want string, target string, args ...any) {
	t.Helper()
	res, errMsg, err := e.c.Invoke(waitCtx(t), target, args...)
	require.NoError(t, err)
	require.Empty(t, errMsg, "invoke %s", target)
	assert.JSONEq(t, want, string(res), "result of %s", target)
}

// ExpectError invokes target and requires an error Completion with exactly
// want.
func (e expect) ExpectError(t testing.TB, want string, target string, args ...any) {
	t.Helper()
	res, errMsg, err := e.c.Invoke(waitCtx(t), target, args...)
	require.NoError(t, err)
	assert.Nil(t, res, "an error Completion carries no result")
	assert.Equal(t, want, errMsg, "error of %s", target)
}

// ExpectClose requires the next non-Ping message to be a Close message
// and the transport to end after it. It returns the Close message and why
// the transport ended.
func (e expect) ExpectClose(t testing.TB) (protocol.Message, error) {
	t.Helper()
	raw, err := e.c.NextRaw(waitCtx(t))
	require.NoError(t, err)
	m, err := protocol.DecodeMessage(raw)
	require.NoError(t, err, "%s", raw)
	require.Equal(t, protocol.TypeClose, m.Type, "want a Close message, got %s", raw)
	return m, e.ExpectClosed(t)
}

// ExpectClosed requires the transport to end and returns why: the error
// that ended a WebSocket client's reader; io.EOF for an event stream,
// errPolledOut or errPollGone for polls.
func (e expect) ExpectClosed(t testing.TB) error {
	t.Helper()
	readErr, err := e.c.WaitClosed(waitCtx(t))
	require.NoError(t, err)
	return readErr
}
