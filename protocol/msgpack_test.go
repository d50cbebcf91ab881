package protocol

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// b joins byte values and strings into one slice, so that vectors read
// like the layouts: b(0x95, 0x01, 0xa3, "xyz").
func b(parts ...any) []byte {
	var out []byte
	for _, p := range parts {
		switch x := p.(type) {
		case int:
			out = append(out, byte(x))
		case string:
			out = append(out, x...)
		case []byte:
			out = append(out, x...)
		default:
			panic("b: unsupported part")
		}
	}
	return out
}

// framed prefixes body with its one-byte length.
func framed(body []byte) []byte {
	if len(body) >= 0x80 {
		panic("framed: body too long for a one-byte prefix")
	}
	return append([]byte{byte(len(body))}, body...)
}

func TestReadMsgPackLength(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     []byte
		length int
		prefix int
		ok     bool
		errMsg string
	}{
		{name: "zero", in: b(0x00), length: 0, prefix: 1, ok: true},
		{name: "53 in one byte", in: b(0x35, 0xff), length: 53, prefix: 1, ok: true},
		{name: "127, the largest in one byte", in: b(0x7f), length: 127, prefix: 1, ok: true},
		{name: "128 in two bytes", in: b(0x80, 0x01), length: 128, prefix: 2, ok: true},
		{name: "5248 in two bytes", in: b(0x80, 0x29), length: 5248, prefix: 2, ok: true},
		{name: "largest length in five bytes", in: b(0xff, 0xff, 0xff, 0xff, 0x07), length: math.MaxInt32, prefix: 5, ok: true},
		{name: "a longer form than needed is read", in: b(0x81, 0x00), length: 1, prefix: 2, ok: true},
		{name: "empty buffer", in: nil},
		{name: "buffer ends inside the prefix", in: b(0x80, 0x80)},
		{name: "over 2 GB", in: b(0x80, 0x80, 0x80, 0x80, 0x08), errMsg: "over 2 GB"},
		{name: "fifth byte says more follow", in: b(0x80, 0x80, 0x80, 0x80, 0x80, 0x01), errMsg: "longer than 5 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			length, prefix, ok, err := ReadMsgPackLength(tc.in)
			if tc.errMsg != "" {
				require.ErrorIs(t, err, ErrInvalidMessage)
				assert.ErrorContains(t, err, tc.errMsg)
				assert.False(t, ok)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.length, length)
			assert.Equal(t, tc.prefix, prefix)
		})
	}
}

func TestAppendLengthPrefix(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 53, 127, 128, 5248, 16383, 16384, 1 << 21, math.MaxInt32} {
		p := appendLengthPrefix(nil, n)
		got, size, ok, err := ReadMsgPackLength(p)
		require.NoError(t, err, "%d", n)
		require.True(t, ok, "%d", n)
		assert.Equal(t, n, got)
		assert.Equal(t, len(p), size, "the shortest form of %d", n)
	}
	assert.Equal(t, b(0x35), appendLengthPrefix(nil, 53))
	assert.Equal(t, b(0x80, 0x29), appendLengthPrefix(nil, 5248))
}

func TestNextMsgPackRecord(t *testing.T) {
	t.Parallel()
	ping := b(0x91, 0x06)
	long := appendStr(nil, strings.Repeat("a", 200)) // a record of 203 bytes
	stream := b(framed(ping), 0x00, appendLengthPrefix(nil, len(long)), long, 0x03, 0x92)

	rec, rest, ok, err := NextMsgPackRecord(stream)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, ping, rec)

	rec, rest, ok, err = NextMsgPackRecord(rest)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Empty(t, rec, "a zero-length record")

	rec, rest, ok, err = NextMsgPackRecord(rest)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, long, rec, "a record with a two-byte prefix")

	tail := rest
	rec, rest, ok, err = NextMsgPackRecord(tail)
	require.NoError(t, err)
	assert.False(t, ok, "a partial record stays")
	assert.Nil(t, rec)
	assert.Equal(t, tail, rest)

	_, rest, ok, err = NextMsgPackRecord(b(0xff, 0xff, 0xff, 0xff, 0xff, 0x01))
	require.ErrorIs(t, err, ErrInvalidMessage)
	assert.False(t, ok)
	assert.NotNil(t, rest)
}

func TestDecodeMsgPackMessage(t *testing.T) {
	t.Parallel()
	raw := func(v ...byte) json.RawMessage { return json.RawMessage(v) }
	tests := []struct {
		name string
		in   []byte
		want Message
	}{
		{
			name: "non-blocking invocation",
			in:   b(0x95, 0x01, 0x80, 0xc0, 0xa6, "Target", 0x92, 0x01, 0xa3, "Foo"),
			want: Message{Type: TypeInvocation, Target: "Target", Arguments: []json.RawMessage{raw(0x01), raw(0xa3, 'F', 'o', 'o')}},
		},
		{
			name: "invocation with an ID and headers",
			in:   b(0x95, 0x01, 0x81, 0xa3, "Foo", 0xa3, "Bar", 0xa3, "xyz", 0xa6, "Target", 0x91, 0x2a),
			want: Message{Type: TypeInvocation, InvocationID: "xyz", Target: "Target", Headers: map[string]string{"Foo": "Bar"},
				Arguments: []json.RawMessage{raw(0x2a)}},
		},
		{
			name: "invocation of six elements, with stream IDs",
			in:   b(0x96, 0x01, 0x80, 0xa1, "4", 0xa6, "Upload", 0x91, 0xa1, "a", 0x91, 0xa1, "3"),
			want: Message{Type: TypeInvocation, InvocationID: "4", Target: "Upload", Arguments: []json.RawMessage{raw(0xa1, 'a')}, StreamIDs: []string{"3"}},
		},
		{
			name: "invocation with nil stream IDs",
			in:   b(0x96, 0x01, 0x80, 0xc0, 0xa1, "T", 0x90, 0xc0),
			want: Message{Type: TypeInvocation, Target: "T", Arguments: []json.RawMessage{}},
		},
		{
			name: "invocation with nested, binary, float and timestamp arguments, in wide encodings",
			in: b(0x95, 0x01, 0xde, 0x00, 0x00, 0xd9, 0x01, "0", 0xda, 0x00, 0x01, "T", 0xdc, 0x00, 0x04,
				0x92, 0x81, 0xa1, "k", 0xc0, 0x90,
				0xc4, 0x02, 0x00, 0xff,
				0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0,
				0xd6, 0xff, 0x00, 0x00, 0x00, 0x01),
			want: Message{Type: TypeInvocation, InvocationID: "0", Target: "T", Arguments: []json.RawMessage{
				raw(0x92, 0x81, 0xa1, 'k', 0xc0, 0x90), raw(0xc4, 0x02, 0x00, 0xff),
				raw(0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0), raw(0xd6, 0xff, 0x00, 0x00, 0x00, 0x01),
			}},
		},
		{
			name: "stream invocation",
			in:   b(0x95, 0x04, 0x80, 0xa1, "2", 0xa7, "Counter", 0x91, 0x03),
			want: Message{Type: TypeStreamInvocation, InvocationID: "2", Target: "Counter", Arguments: []json.RawMessage{raw(0x03)}},
		},
		{
			name: "stream item",
			in:   b(0x94, 0x02, 0x80, 0xa3, "xyz", 0x2a),
			want: Message{Type: TypeStreamItem, InvocationID: "xyz", Item: raw(0x2a)},
		},
		{
			name: "stream item with nil",
			in:   b(0x94, 0x02, 0x80, 0xa3, "xyz", 0xc0),
			want: Message{Type: TypeStreamItem, InvocationID: "xyz", Item: raw(0xc0)},
		},
		{
			name: "completion with an error",
			in:   b(0x95, 0x03, 0x80, 0xa3, "xyz", 0x01, 0xa5, "Error"),
			want: Message{Type: TypeCompletion, InvocationID: "xyz", Error: "Error"},
		},
		{
			name: "void completion",
			in:   b(0x94, 0x03, 0x80, 0xa3, "xyz", 0x02),
			want: Message{Type: TypeCompletion, InvocationID: "xyz"},
		},
		{
			name: "completion with a result",
			in:   b(0x95, 0x03, 0x80, 0xa3, "xyz", 0x03, 0x2a),
			want: Message{Type: TypeCompletion, InvocationID: "xyz", Result: raw(0x2a)},
		},
		{
			name: "completion with a nil result",
			in:   b(0x95, 0x03, 0x80, 0xa2, "s1", 0x03, 0xc0),
			want: Message{Type: TypeCompletion, InvocationID: "s1", Result: raw(0xc0)},
		},
		{
			name: "cancel invocation",
			in:   b(0x93, 0x05, 0x80, 0xa3, "xyz"),
			want: Message{Type: TypeCancelInvocation, InvocationID: "xyz"},
		},
		{
			name: "ping",
			in:   b(0x91, 0x06),
			want: Message{Type: TypePing},
		},
		{
			name: "close as the JavaScript client sends it",
			in:   b(0x92, 0x07, 0xc0),
			want: Message{Type: TypeClose},
		},
		{
			name: "close with an error and allowReconnect",
			in:   b(0x93, 0x07, 0xa3, "bye", 0xc3),
			want: Message{Type: TypeClose, Error: "bye", AllowReconnect: true},
		},
		{
			name: "ack with a 64-bit ID",
			in:   b(0x92, 0x08, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0),
			want: Message{Type: TypeAck, SequenceID: 1 << 32},
		},
		{
			name: "sequence with a negative ID",
			in:   b(0x92, 0x09, 0xd0, 0x80),
			want: Message{Type: TypeSequence, SequenceID: -128},
		},
		{
			name: "elements past the layout are ignored",
			in:   b(0x94, 0x06, 0xa1, "x", 0x92, 0x01, 0x02, 0x80),
			want: Message{Type: TypePing},
		},
		{
			name: "unknown type is not an error",
			in:   b(0x93, 0x63, 0xa1, "x", 0x80),
			want: Message{Type: 99},
		},
		{
			name: "negative type is unknown",
			in:   b(0x91, 0xff),
			want: Message{Type: -1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := bytes.Clone(tc.in)
			got, err := DecodeMsgPackMessage(in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			// The message shares no memory with the record.
			for i := range in {
				in[i] = 0xc1
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestDecodeMsgPackMessageErrors(t *testing.T) {
	t.Parallel()
	deep := bytes.Repeat([]byte{0x91}, maxMsgPackDepth+1)
	deep = append(deep, 0x01)
	tests := []struct {
		name   string
		in     []byte
		errMsg string
	}{
		{"empty record", nil, "unexpected end"},
		{"not an array", b(0x81, 0xa1, "a", 0x01), "want an array, got a map (0x81)"},
		{"empty array", b(0x90), "empty message array"},
		{"type is a string", b(0x91, 0xa1, "1"), "message type: want an integer, got a string (0xa1)"},
		{"type over int64", b(0x91, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), "out of range"},
		{"invocation with four elements", b(0x94, 0x01, 0x80, 0xc0, 0xa1, "T"), "Invocation has 4 elements, want at least 5"},
		{"headers not a map", b(0x95, 0x01, 0x90, 0xc0, 0xa1, "T", 0x90), "headers: want a map"},
		{"header value not a string", b(0x95, 0x01, 0x81, 0xa1, "a", 0x01, 0xc0, 0xa1, "T", 0x90), "headers: want a string"},
		{"invocation ID a number", b(0x95, 0x01, 0x80, 0x01, 0xa1, "T", 0x90), "invocationId: want a string"},
		{"stream invocation without ID", b(0x95, 0x04, 0x80, 0xc0, 0xa1, "T", 0x90), "invocationId: want a string, got nil"},
		{"empty target", b(0x95, 0x01, 0x80, 0xc0, 0xa0, 0x90), "empty target"},
		{"target nil", b(0x95, 0x01, 0x80, 0xc0, 0xc0, 0x90), "target: want a string, got nil"},
		{"arguments not an array", b(0x95, 0x01, 0x80, 0xc0, 0xa1, "T", 0xc0), "arguments: want an array"},
		{"stream IDs not strings", b(0x96, 0x01, 0x80, 0xc0, 0xa1, "T", 0x90, 0x91, 0x01), "streamIds: want a string"},
		{"argument array announces more than the record holds", b(0x95, 0x01, 0x80, 0xc0, 0xa1, "T", 0xdd, 0xff, 0xff, 0xff, 0xff), "4294967295 elements announced"},
		{"argument string announces more than the record holds", b(0x95, 0x01, 0x80, 0xc0, 0xa1, "T", 0x91, 0xdb, 0x7f, 0xff, 0xff, 0xff, "ab"), "unexpected end"},
		{"argument binary announces more than the record holds", b(0x95, 0x01, 0x80, 0xc0, 0xa1, "T", 0x91, 0xc6, 0x7f, 0xff, 0xff, 0xff), "unexpected end"},
		{"argument map announces more than the record holds", b(0x95, 0x01, 0x80, 0xc0, 0xa1, "T", 0x91, 0xdf, 0x00, 0x01, 0x00, 0x00, 0x01, 0x01), "65536 elements announced"},
		{"argument extension announces more than the record holds", b(0x95, 0x01, 0x80, 0xc0, 0xa1, "T", 0x91, 0xc9, 0x00, 0x00, 0x10, 0x00, 0xff), "unexpected end"},
		{"argument uses the unused code", b(0x95, 0x01, 0x80, 0xc0, 0xa1, "T", 0x91, 0xc1), "invalid MessagePack code"},
		{"argument nested too deep", b(0x95, 0x01, 0x80, 0xc0, 0xa1, "T", 0x91, deep), "nested more than 500 deep"},
		{"stream item without item", b(0x93, 0x02, 0x80, 0xa1, "1"), "StreamItem has 3 elements"},
		{"completion of unknown kind", b(0x95, 0x03, 0x80, 0xa1, "1", 0x04, 0xc0), "unknown Completion result kind 4"},
		{"error completion without the error", b(0x94, 0x03, 0x80, 0xa1, "1", 0x01), "has 4 elements, want 5"},
		{"error completion with a nil error", b(0x95, 0x03, 0x80, 0xa1, "1", 0x01, 0xc0), "error: want a string, got nil"},
		{"cancel without ID", b(0x92, 0x05, 0x80), "CancelInvocation has 2 elements"},
		{"close without its error element", b(0x91, 0x07), "Close has 1 elements"},
		{"close with a non-boolean allowReconnect", b(0x93, 0x07, 0xc0, 0x01), "allowReconnect: want a boolean"},
		{"ack with a string ID", b(0x92, 0x08, 0xa1, "1"), "sequenceId: want an integer"},
		{"bytes after the message", b(0x91, 0x06, 0x06), "1 bytes after the message"},
		{"unknown type with a malformed element", b(0x92, 0x63, 0xc1), "invalid MessagePack code"},
		{"truncated element past the layout", b(0x92, 0x06, 0xa5, "ab"), "unexpected end"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := DecodeMsgPackMessage(tc.in)
			require.ErrorIs(t, err, ErrInvalidMessage)
			assert.ErrorContains(t, err, tc.errMsg)
			assert.Zero(t, m)
		})
	}
}

func TestAppendMsgPackEncoders(t *testing.T) {
	t.Parallel()
	args, err := AppendMsgPackArguments(nil, []any{1, "Foo"})
	require.NoError(t, err)
	withArgs, err := AppendMsgPackInvocationArgs([]byte("keep"), "", "Target", []any{1, "Foo"})
	require.NoError(t, err)
	long := strings.Repeat("é", 100) // 200 bytes: the record needs a two-byte prefix
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"non-blocking invocation", AppendMsgPackInvocation(nil, "", "Target", args),
			framed(b(0x95, 0x01, 0x80, 0xc0, 0xa6, "Target", 0x92, 0x01, 0xa3, "Foo"))},
		{"invocation with an ID", AppendMsgPackInvocation(nil, "s1", "Ask", nil),
			framed(b(0x95, 0x01, 0x80, 0xa2, "s1", 0xa3, "Ask", 0x90))},
		{"invocation encoding its arguments, appended to what dst holds", withArgs,
			b("keep", framed(b(0x95, 0x01, 0x80, 0xc0, 0xa6, "Target", 0x92, 0x01, 0xa3, "Foo")))},
		{"stream item", AppendMsgPackStreamItem(nil, "xyz", []byte{0x2a}),
			framed(b(0x94, 0x02, 0x80, 0xa3, "xyz", 0x2a))},
		{"stream item of nothing is nil", AppendMsgPackStreamItem(nil, "xyz", nil),
			framed(b(0x94, 0x02, 0x80, 0xa3, "xyz", 0xc0))},
		{"completion with a result", AppendMsgPackCompletion(nil, "xyz", []byte{0x2a}),
			framed(b(0x95, 0x03, 0x80, 0xa3, "xyz", 0x03, 0x2a))},
		{"completion of a void method has a nil result", AppendMsgPackCompletion(nil, "0", nil),
			framed(b(0x95, 0x03, 0x80, 0xa1, "0", 0x03, 0xc0))},
		{"completion without a result", AppendMsgPackCompletionVoid(nil, "xyz"),
			framed(b(0x94, 0x03, 0x80, 0xa3, "xyz", 0x02))},
		{"error completion", AppendMsgPackCompletionError(nil, "xyz", "Error"),
			framed(b(0x95, 0x03, 0x80, 0xa3, "xyz", 0x01, 0xa5, "Error"))},
		{"ping", AppendMsgPackPing(nil), b(0x02, 0x91, 0x06)},
		{"close", AppendMsgPackClose(nil, "", false), framed(b(0x92, 0x07, 0xc0))},
		{"close with an error", AppendMsgPackClose(nil, "bye", false), framed(b(0x92, 0x07, 0xa3, "bye"))},
		{"close allowing reconnect", AppendMsgPackClose(nil, "", true), framed(b(0x93, 0x07, 0xc0, 0xc3))},
		{"ack", AppendMsgPackAck(nil, 300), framed(b(0x92, 0x08, 0xcd, 0x01, 0x2c))},
		{"sequence", AppendMsgPackSequence(nil, 1), framed(b(0x92, 0x09, 0x01))},
		{"error completion longer than 127 bytes", AppendMsgPackCompletionError(nil, "1", long),
			b(0xd0, 0x01, 0x95, 0x03, 0x80, 0xa1, "1", 0x01, 0xd9, 200, long)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, tc.got)
		})
	}
}

// TestMsgPackRoundTrip encodes a message of every type with
// AppendMsgPackMessage and decodes it back.
func TestMsgPackRoundTrip(t *testing.T) {
	t.Parallel()
	big := appendStr(nil, strings.Repeat("x", 70000)) // str32, and a three-byte prefix
	for _, m := range []Message{
		{Type: TypeInvocation, Target: "Send", Arguments: []json.RawMessage{{0x01}, {0xc0}}},
		{Type: TypeInvocation, InvocationID: "7", Target: "Up", Arguments: []json.RawMessage{}, StreamIDs: []string{"1", "2"},
			Headers: map[string]string{"a": "b"}},
		{Type: TypeInvocation, Target: "Big", Arguments: []json.RawMessage{big}},
		{Type: TypeStreamInvocation, InvocationID: "1", Target: "Count", Arguments: []json.RawMessage{{0x03}}},
		{Type: TypeStreamItem, InvocationID: "1", Item: json.RawMessage{0xa1, 'x'}},
		{Type: TypeCompletion, InvocationID: "1", Result: json.RawMessage{0xc0}},
		{Type: TypeCompletion, InvocationID: "1", Error: "boom"},
		{Type: TypeCompletion, InvocationID: "1"},
		{Type: TypeCancelInvocation, InvocationID: "1"},
		{Type: TypePing},
		{Type: TypeClose, Error: "bye", AllowReconnect: true},
		{Type: TypeClose},
		{Type: TypeAck, SequenceID: math.MaxInt64},
		{Type: TypeSequence, SequenceID: math.MinInt64},
		{Type: 42},
	} {
		rec := AppendMsgPackMessage(nil, &m)
		body, rest, ok, err := NextMsgPackRecord(rec)
		require.NoError(t, err)
		require.True(t, ok, "%v", m.Type)
		require.Empty(t, rest, "%v: one record", m.Type)
		got, err := DecodeMsgPackMessage(body)
		require.NoError(t, err, "%v", m.Type)
		assert.Equal(t, m, got)
	}
}

func TestMsgPackValues(t *testing.T) {
	t.Parallel()
	type point struct {
		X    int    `json:"x"`
		Name string `msgpack:"n" json:"name"`
		Skip string `json:"-"`
		Opt  string `json:"opt,omitempty"`
	}
	when := time.Date(2025, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	tests := []struct {
		name string
		in   any
		want []byte
		into func() any // a pointer to decode into; nil to skip decoding
		back any        // what decoding gives
	}{
		{"nil", nil, b(0xc0), func() any { return new(*int) }, (*int)(nil)},
		{"true", true, b(0xc3), func() any { return new(bool) }, true},
		{"small int", 5, b(0x05), func() any { return new(int) }, 5},
		{"negative int", -33, b(0xd0, 0xdf), func() any { return new(int64) }, int64(-33)},
		{"int into float64", 300, b(0xcd, 0x01, 0x2c), func() any { return new(float64) }, 300.0},
		{"int8 from the fallback, compact", int8(-1), b(0xff), func() any { return new(int8) }, int8(-1)},
		{"uint64", uint64(math.MaxUint64), b(0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), func() any { return new(uint64) }, uint64(math.MaxUint64)},
		{"float64", 1.5, b(0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0), func() any { return new(float64) }, 1.5},
		{"string", "héllo", b(0xa6, "héllo"), func() any { return new(string) }, "héllo"},
		{"bytes", []byte{0, 1, 255}, b(0xc4, 0x03, 0x00, 0x01, 0xff), func() any { return new([]byte) }, []byte{0, 1, 255}},
		{"time as the timestamp extension", when, b(0xd7, 0xff, 0xd4, 0x31, 0x4a, 0x00, 0x67, 0xc6, 0x8a, 0x3f), func() any { return new(time.Time) }, when},
		{"json.RawMessage as its value", json.RawMessage(`{"b":[1,-2,2.5,"s",true,null,18446744073709551615],"a":{}}`),
			b(0x82, 0xa1, "b", 0x97, 0x01, 0xfe, 0xcb, 0x40, 0x04, 0, 0, 0, 0, 0, 0, 0xa1, "s", 0xc3, 0xc0, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xa1, "a", 0x80),
			nil, nil},
		{"struct by tags", point{X: 1, Name: "p", Skip: "no"}, b(0x82, 0xa1, "x", 0x01, 0xa1, "n", 0xa1, "p"),
			func() any { return new(point) }, point{X: 1, Name: "p"}},
		{"map in key order", map[string]any{"b": 2, "a": "1"}, b(0x82, 0xa1, "a", 0xa1, "1", 0xa1, "b", 0x02),
			func() any { return new(map[string]any) }, map[string]any{"a": "1", "b": int64(2)}},
		{"array into any", []any{1, "x", []byte{7}, 2.5}, b(0x94, 0x01, 0xa1, "x", 0xc4, 0x01, 0x07, 0xcb, 0x40, 0x04, 0, 0, 0, 0, 0, 0),
			func() any { return new(any) }, []any{int64(1), "x", "\x07", 2.5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := AppendMsgPackValue([]byte{0xaa}, tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, got[1:], "encoding")
			assert.Equal(t, byte(0xaa), got[0], "appended after dst")
			if tc.into == nil {
				return
			}
			p := tc.into()
			require.NoError(t, UnmarshalMsgPack(got[1:], p))
			if tm, ok := tc.back.(time.Time); ok {
				assert.True(t, tm.Equal(deref(p).(time.Time)), "got %v", deref(p))
				return
			}
			assert.Equal(t, tc.back, deref(p))
		})
	}
}

func deref(p any) any { return reflect.ValueOf(p).Elem().Interface() }

func TestAppendMsgPackValueErrors(t *testing.T) {
	t.Parallel()
	_, err := AppendMsgPackValue(nil, make(chan int))
	assert.Error(t, err, "a channel has no MessagePack form")
	_, err = AppendMsgPackValue(nil, json.RawMessage(`{"a":`))
	assert.ErrorIs(t, err, ErrInvalidMessage, "truncated JSON")
	_, err = AppendMsgPackValue(nil, json.RawMessage(`1 2`))
	assert.ErrorIs(t, err, ErrInvalidMessage, "two JSON values")
	_, err = AppendMsgPackArguments(nil, []any{"ok", func() {}})
	assert.ErrorContains(t, err, "encode argument 1")
	dst, err := AppendMsgPackInvocationArgs([]byte("keep"), "", "T", []any{make(chan int)})
	require.Error(t, err)
	assert.Equal(t, []byte("keep"), dst, "dst comes back unchanged")
}

func TestUnmarshalMsgPackErrors(t *testing.T) {
	t.Parallel()
	var n int
	assert.Error(t, UnmarshalMsgPack(b(0xa1, "x"), &n), "a string into an int")
	var s string
	assert.Error(t, UnmarshalMsgPack(b(0x01), &s), "an int into a string")
	var i8 int8
	assert.ErrorContains(t, UnmarshalMsgPack(b(0xcd, 0x01, 0x00), &i8), "256 overflows int8")
	var u16 uint16
	assert.ErrorContains(t, UnmarshalMsgPack(b(0xff), &u16), "-1 overflows uint16")
	var i64 int64
	assert.ErrorContains(t, UnmarshalMsgPack(b(0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0), &i64), "out of range")
	require.NoError(t, UnmarshalMsgPack(b(0xd0, 0x80), &i8))
	assert.Equal(t, int8(-128), i8, "the smallest int8 fits")
	var u64 uint64
	require.NoError(t, UnmarshalMsgPack(b(0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0), &u64))
	assert.Equal(t, uint64(1<<63), u64)
	var list []int
	err := UnmarshalMsgPack(b(0xdd, 0xff, 0xff, 0xff, 0xff), &list)
	require.ErrorIs(t, err, ErrInvalidMessage, "a count larger than the data is refused before decoding")
	assert.ErrorContains(t, err, "elements announced")
	assert.ErrorIs(t, UnmarshalMsgPack(b(0x01, 0x02), &n), ErrInvalidMessage, "two values")
	assert.ErrorIs(t, UnmarshalMsgPack(nil, &n), ErrInvalidMessage, "no value")
	var tm time.Time
	assert.Error(t, UnmarshalMsgPack(b(0xd4, 0xff, 0x00), &tm), "a timestamp of one byte")
	var m map[string]int
	assert.Error(t, UnmarshalMsgPack(b(0x81, 0x01, 0x01), &m), "an integer key into a string-keyed map")
}

func TestAppendJSONFromMsgPack(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"scalars", b(0x96, 0xc0, 0xc2, 0xc3, 0xff, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0),
			`[null,false,true,-1,18446744073709551615,-9223372036854775808]`},
		{"floats as encoding/json writes them", b(0x94, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xca, 0x3f, 0xc0, 0x00, 0x00,
			0xcb, 0x44, 0x7e, 0xe8, 0xf0, 0xee, 0x44, 0x64, 0x0b, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0),
			`[1.5,1.5,9.123e+21,0]`},
		{"string with characters to escape", b(0xa4, "a\"\n\xff"), `"a\"\n\ufffd"`},
		{"binary data as base64", b(0xc4, 0x03, 0x00, 0x01, 0xff), `"AAH/"`},
		{"map keeps its order, integer keys quoted", b(0x82, 0xa1, "z", 0x90, 0x05, 0x80), `{"z":[],"5":{}}`},
		{"timestamp of 32 bits", b(0xd6, 0xff, 0x00, 0x00, 0x00, 0x3c), `"1970-01-01T00:01:00Z"`},
		{"timestamp of 64 bits", b(0xd7, 0xff, 0xd4, 0x31, 0x4a, 0x00, 0x67, 0xc6, 0x8a, 0x3f), `"2025-03-04T05:06:07.89Z"`},
		{"timestamp of 96 bits, before 1970", b(0xc7, 0x0c, 0xff, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), `"1969-12-31T23:59:59.000000001Z"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := AppendJSONFromMsgPack(nil, tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(got))
			require.True(t, json.Valid(got))
		})
	}
	for name, in := range map[string][]byte{
		"NaN":                    b(0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1),
		"infinity":               b(0xca, 0x7f, 0x80, 0, 0),
		"an extension not known": b(0xd4, 0x05, 0x00),
		"a boolean map key":      b(0x81, 0xc3, 0x01),
		"a timestamp of 2 bytes": b(0xd5, 0xff, 0, 0),
		"nanoseconds too large":  b(0xc7, 0x0c, 0xff, 0x3b, 0x9a, 0xca, 0x00, 0, 0, 0, 0, 0, 0, 0, 0),
	} {
		_, err := AppendJSONFromMsgPack(nil, in)
		assert.Error(t, err, name)
	}
	_, err := AppendJSONFromMsgPack(nil, b(0x92, 0x01))
	assert.ErrorIs(t, err, ErrInvalidMessage, "a truncated value")
}

// TestAppendJSONFloat: floats from MessagePack are written as encoding/json
// writes them, exponents included (1e-7, not strconv's 1e-07).
func TestAppendJSONFloat(t *testing.T) {
	for _, f := range []float64{0, 123.5, -2.25, 1e-6, 1e-7, -2e-7, 1.5e-9, 1e-300, 1e20, 1e21, 1.5e300} {
		want, err := json.Marshal(f)
		require.NoError(t, err)
		got, err := appendJSONFloat(nil, f, 64)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), "%g", f)
	}
	for _, f := range []float32{1.5, 1e-7, 3e21} {
		want, err := json.Marshal(f)
		require.NoError(t, err)
		got, err := appendJSONFloat(nil, float64(f), 32)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), "%g", f)
	}
}
