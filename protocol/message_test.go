package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDecodeMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want Message
	}{
		{
			name: "invocation as the JS client writes it, type last",
			in:   `{"target":"Add","arguments":[40,2],"invocationId":"0","type":1}`,
			want: Message{Type: TypeInvocation, InvocationID: "0", Target: "Add",
				Arguments: []json.RawMessage{json.RawMessage("40"), json.RawMessage("2")}},
		},
		{
			name: "non-blocking invocation has no id",
			in:   `{"type":1,"target":"Fire","arguments":["x"]}`,
			want: Message{Type: TypeInvocation, Target: "Fire", Arguments: []json.RawMessage{json.RawMessage(`"x"`)}},
		},
		{
			name: "empty arguments",
			in:   `{"type":1,"target":"WhoAmI","arguments":[]}`,
			want: Message{Type: TypeInvocation, Target: "WhoAmI", Arguments: []json.RawMessage{}},
		},
		{
			name: "headers, stream ids and unknown fields",
			in:   `{"type":1,"target":"Up","arguments":[],"streamIds":["3"],"headers":{"a":"b"},"extra":{"x":[1]}}`,
			want: Message{Type: TypeInvocation, Target: "Up", Arguments: []json.RawMessage{}, StreamIDs: []string{"3"}, Headers: map[string]string{"a": "b"}},
		},
		{
			name: "stream invocation",
			in:   `{"type":4,"invocationId":"2","target":"Counter","arguments":[3]}`,
			want: Message{Type: TypeStreamInvocation, InvocationID: "2", Target: "Counter", Arguments: []json.RawMessage{json.RawMessage("3")}},
		},
		{
			name: "stream item with null item",
			in:   `{"type":2,"invocationId":"2","item":null}`,
			want: Message{Type: TypeStreamItem, InvocationID: "2", Item: json.RawMessage("null")},
		},
		{
			name: "completion with result",
			in:   `{"type":3,"invocationId":"s1","result":{"a":1}}`,
			want: Message{Type: TypeCompletion, InvocationID: "s1", Result: json.RawMessage(`{"a":1}`)},
		},
		{
			name: "completion with null result",
			in:   `{"type":3,"invocationId":"s1","result":null}`,
			want: Message{Type: TypeCompletion, InvocationID: "s1", Result: json.RawMessage("null")},
		},
		{
			name: "void completion",
			in:   `{"type":3,"invocationId":"1"}`,
			want: Message{Type: TypeCompletion, InvocationID: "1"},
		},
		{
			name: "error completion",
			in:   `{"type":3,"invocationId":"1","error":"boom"}`,
			want: Message{Type: TypeCompletion, InvocationID: "1", Error: "boom"},
		},
		{
			name: "cancel",
			in:   `{"type":5,"invocationId":"7"}`,
			want: Message{Type: TypeCancelInvocation, InvocationID: "7"},
		},
		{name: "ping", in: `{"type":6}`, want: Message{Type: TypePing}},
		{name: "close", in: `{"type":7}`, want: Message{Type: TypeClose}},
		{
			name: "close with error and reconnect",
			in:   `{"type":7,"error":"bye","allowReconnect":true}`,
			want: Message{Type: TypeClose, Error: "bye", AllowReconnect: true},
		},
		{name: "ack", in: `{"type":8,"sequenceId":12}`, want: Message{Type: TypeAck, SequenceID: 12}},
		{name: "sequence", in: `{"type":9,"sequenceId":1}`, want: Message{Type: TypeSequence, SequenceID: 1}},
		{name: "unknown type is ignored, not an error", in: `{"type":42,"target":"x"}`, want: Message{Type: 42}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeMessage([]byte(tc.in))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestDecodeMessageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"not json", `{"type":1,`, "unexpected end of JSON input"},
		{"not an object", `[1,2]`, "cannot unmarshal array"},
		{"missing type", `{"target":"x","arguments":[]}`, "missing 'type'"},
		{"string type", `{"type":"1","target":"x","arguments":[]}`, "cannot unmarshal string"},
		{"fractional type", `{"type":1.5}`, "cannot unmarshal number 1.5"},
		{"invocation without target", `{"type":1,"arguments":[]}`, "missing 'target' on Invocation"},
		{"invocation with empty target", `{"type":1,"target":"","arguments":[]}`, "missing 'target' on Invocation"},
		{"invocation without arguments", `{"type":1,"target":"x"}`, "missing 'arguments' on Invocation"},
		{"arguments not an array", `{"type":1,"target":"x","arguments":{"a":1}}`, "cannot unmarshal object"},
		{"target not a string", `{"type":1,"target":5,"arguments":[]}`, "cannot unmarshal number"},
		{"stream invocation without id", `{"type":4,"target":"x","arguments":[]}`, "missing 'invocationId' on StreamInvocation"},
		{"stream item without item", `{"type":2,"invocationId":"1"}`, "missing 'item' on StreamItem"},
		{"completion without id", `{"type":3,"result":1}`, "missing 'invocationId' on Completion"},
		{"completion with result and error", `{"type":3,"invocationId":"1","result":1,"error":"x"}`, "both 'result' and 'error'"},
		{"cancel without id", `{"type":5}`, "missing 'invocationId' on CancelInvocation"},
		{"ack without sequence id", `{"type":8}`, "missing 'sequenceId' on Ack"},
		{"headers not strings", `{"type":1,"target":"x","arguments":[],"headers":{"a":1}}`, "cannot unmarshal number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeMessage([]byte(tc.in))
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrInvalidMessage), "errors.Is(%v, ErrInvalidMessage)", err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestEncoders(t *testing.T) {
	t.Parallel()
	args, err := EncodeArguments([]any{"bob", 42, true, nil, map[string]int{"a": 1}, json.RawMessage(`[1]`), int64(-7), 1.5})
	require.NoError(t, err)
	assert.Equal(t, `["bob",42,true,null,{"a":1},[1],-7,1.5]`, string(args))

	empty, err := EncodeArguments(nil)
	require.NoError(t, err)
	assert.Equal(t, `[]`, string(empty))

	_, err = EncodeArguments([]any{make(chan int)})
	assert.ErrorContains(t, err, "encode argument 0")
	_, err = EncodeArguments([]any{json.RawMessage(`{`)})
	assert.ErrorContains(t, err, "invalid json.RawMessage")

	rs := string(RecordSeparator)
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"invocation", AppendInvocation(nil, "", "ReceiveMessage", []byte(`["bob","hi"]`)), `{"type":1,"target":"ReceiveMessage","arguments":["bob","hi"]}` + rs},
		{"invocation with id and no args", AppendInvocation(nil, "s1", "Ask", nil), `{"type":1,"invocationId":"s1","target":"Ask","arguments":[]}` + rs},
		{"completion", AppendCompletion(nil, "0", []byte(`42`)), `{"type":3,"invocationId":"0","result":42}` + rs},
		{"void completion", AppendCompletion(nil, "0", nil), `{"type":3,"invocationId":"0","result":null}` + rs},
		{"stream item", AppendStreamItem(nil, "2", []byte(`{"n":1}`)), `{"type":2,"invocationId":"2","item":{"n":1}}` + rs},
		{"null stream item", AppendStreamItem(nil, "2", nil), `{"type":2,"invocationId":"2","item":null}` + rs},
		{"stream completion", AppendStreamCompletion(nil, "2"), `{"type":3,"invocationId":"2"}` + rs},
		{"ack", AppendAck(nil, 42), `{"type":8,"sequenceId":42}` + rs},
		{"sequence", AppendSequence(nil, 1), `{"type":9,"sequenceId":1}` + rs},
		{"error completion", AppendCompletionError(nil, "0", `bad "x"`), `{"type":3,"invocationId":"0","error":"bad \"x\""}` + rs},
		{"ping", AppendPing(nil), `{"type":6}` + rs},
		{"close", AppendClose(nil, "", false), `{"type":7}` + rs},
		{"close with error", AppendClose(nil, "oops", true), `{"type":7,"error":"oops","allowReconnect":true}` + rs},
		{"handshake ok", AppendHandshakeResponse(nil, ""), `{}` + rs},
		{"handshake error", AppendHandshakeResponse(nil, "no"), `{"error":"no"}` + rs},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, string(tc.got), tc.name)
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"", "plain", `quote " and \ backslash`, "tab\tnew\nline\rcr", "\x00\x01\x1e\x1f",
		"<html>&amp;", "ünïcödé 😀", "line\u2028sep\u2029", "bad \xff utf8", "\x7f",
	} {
		got := AppendString(nil, s)
		var back string
		require.NoError(t, json.Unmarshal(got, &back), "%q -> %s", s, got)
		want, _ := json.Marshal(s)
		var wantBack string
		require.NoError(t, json.Unmarshal(want, &wantBack))
		assert.Equal(t, wantBack, back, "round trip of %q", s)
	}
}

func TestAppendMessageRoundTrip(t *testing.T) {
	t.Parallel()
	msgs := []Message{
		{Type: TypeInvocation, InvocationID: "1", Target: "T", Arguments: []json.RawMessage{json.RawMessage(`1`), json.RawMessage(`"a"`)}, StreamIDs: []string{"2"}, Headers: map[string]string{"k": "v"}},
		{Type: TypeInvocation, Target: "T", Arguments: []json.RawMessage{}},
		{Type: TypeStreamInvocation, InvocationID: "1", Target: "T", Arguments: []json.RawMessage{}},
		{Type: TypeStreamItem, InvocationID: "1", Item: json.RawMessage(`{"x":1}`)},
		{Type: TypeCompletion, InvocationID: "1", Result: json.RawMessage(`null`)},
		{Type: TypeCompletion, InvocationID: "1", Error: "e"},
		{Type: TypeCompletion, InvocationID: "1"},
		{Type: TypeCancelInvocation, InvocationID: "1"},
		{Type: TypePing},
		{Type: TypeClose, Error: "e", AllowReconnect: true},
		{Type: TypeAck, SequenceID: 5},
		{Type: TypeSequence, SequenceID: 6},
	}
	for _, m := range msgs {
		rec := AppendMessage(nil, &m)
		require.Equal(t, RecordSeparator, rec[len(rec)-1])
		got, err := DecodeMessage(rec[:len(rec)-1])
		require.NoError(t, err, "%s", rec)
		assert.Equal(t, m, got, "%s", rec)
	}
}

func TestHandshake(t *testing.T) {
	t.Parallel()
	req, err := DecodeHandshakeRequest([]byte(`{"version":2,"protocol":"json"}`))
	require.NoError(t, err)
	assert.Equal(t, HandshakeRequest{Protocol: "json", Version: 2}, req)

	for _, bad := range []string{`{"protocol":"json"}`, `{"version":1}`, `nope`, `{"protocol":1,"version":1}`} {
		_, err := DecodeHandshakeRequest([]byte(bad))
		assert.ErrorIs(t, err, ErrInvalidMessage, bad)
	}
}

func TestNextRecord(t *testing.T) {
	t.Parallel()
	buf := []byte("{\"type\":6}\x1e{\"type\":7}\x1e{\"par")
	rec, rest, ok := NextRecord(buf)
	require.True(t, ok)
	assert.Equal(t, `{"type":6}`, string(rec))
	rec, rest, ok = NextRecord(rest)
	require.True(t, ok)
	assert.Equal(t, `{"type":7}`, string(rec))
	_, rest, ok = NextRecord(rest)
	assert.False(t, ok)
	assert.Equal(t, `{"par`, string(rest))
}

func TestMessageTypeString(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "Invocation", TypeInvocation.String())
	assert.Equal(t, "Sequence", TypeSequence.String())
	assert.Equal(t, "MessageType(0)", MessageType(0).String())
	assert.Equal(t, "MessageType(10)", MessageType(10).String())
	assert.False(t, MessageType(10).Known())
}

func TestAppendInvocationArgs(t *testing.T) {
	t.Parallel()
	args := []any{"bob", 42, []string{"x"}}
	rec, err := AppendInvocationArgs([]byte("prefix"), "", "ReceiveMessage", args)
	require.NoError(t, err)
	assert.Equal(t, `prefix{"type":1,"target":"ReceiveMessage","arguments":["bob",42,["x"]]}`+"\x1e", string(rec))

	enc, err := EncodeArguments(args)
	require.NoError(t, err)
	assert.Equal(t, string(AppendInvocation([]byte("prefix"), "", "ReceiveMessage", enc)), string(rec),
		"the one-buffer encoder matches the two-step one")

	rec, err = AppendInvocationArgs([]byte("prefix"), "7", "T", []any{"ok", make(chan int)})
	require.Error(t, err)
	assert.Equal(t, "prefix", string(rec), "a failed encode leaves dst as it was")

	long := strings.Repeat("y", 500)
	rec, err = AppendInvocationArgs(make([]byte, 0, SizeHint("T", []any{long, long})), "", "T", []any{long, long})
	require.NoError(t, err)
	assert.LessOrEqual(t, len(rec), SizeHint("T", []any{long, long}), "string arguments are sized exactly enough")

	raw := json.RawMessage(`{"p":"` + long + `"}`)
	rec, err = AppendInvocationArgs(nil, "", "T", []any{raw, long})
	require.NoError(t, err)
	assert.LessOrEqual(t, len(rec), SizeHint("T", []any{raw, long}), "json.RawMessage arguments are sized enough")
}

func TestAppendInvocationStreams(t *testing.T) {
	t.Parallel()
	rec, err := AppendInvocationStreams(nil, TypeStreamInvocation, "3", "Upper", []any{"a<b"}, []string{"1", "2"})
	require.NoError(t, err)
	assert.Equal(t, `{"type":4,"invocationId":"3","target":"Upper","arguments":["a<b"],"streamIds":["1","2"]}`+"\x1e", string(rec))
	m, err := DecodeMessage(rec[:len(rec)-1])
	require.NoError(t, err)
	assert.Equal(t, TypeStreamInvocation, m.Type)
	assert.Equal(t, []string{"1", "2"}, m.StreamIDs)

	rec, err = AppendInvocationStreams([]byte("prefix"), TypeInvocation, "", "T", []any{make(chan int)}, []string{"1"})
	require.Error(t, err)
	assert.Equal(t, "prefix", string(rec), "a failed encode leaves dst as it was")
}
