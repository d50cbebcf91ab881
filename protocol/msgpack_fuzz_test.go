package protocol

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// msgpackSeeds are records of every type, as the official clients write
// them and in unusual but valid encodings, and malformed ones.
var msgpackSeeds = [][]byte{
	b(0x95, 0x01, 0x80, 0xc0, 0xa6, "Target", 0x92, 0x01, 0xa3, "Foo"),
	b(0x95, 0x01, 0x80, 0xa1, "0", 0xa3, "Add", 0x92, 0x28, 0x02),
	b(0x96, 0x01, 0x80, 0xa1, "4", 0xa6, "Upload", 0x91, 0xa1, "a", 0x91, 0xa1, "3"),
	b(0x96, 0x04, 0x81, 0xa1, "k", 0xa1, "v", 0xa1, "2", 0xa1, "C", 0x90, 0x90),
	b(0x95, 0x01, 0xde, 0x00, 0x00, 0xd9, 0x01, "0", 0xda, 0x00, 0x01, "T", 0xdc, 0x00, 0x03,
		0x92, 0x81, 0xa1, "k", 0xc0, 0x90, 0xc4, 0x02, 0x00, 0xff, 0xd6, 0xff, 0x00, 0x00, 0x00, 0x01),
	b(0x94, 0x02, 0x80, 0xa3, "xyz", 0x2a),
	b(0x95, 0x03, 0x80, 0xa3, "xyz", 0x01, 0xa5, "Error"),
	b(0x94, 0x03, 0x80, 0xa3, "xyz", 0x02),
	b(0x95, 0x03, 0x80, 0xa2, "s1", 0x03, 0x82, 0xa1, "a", 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xa1, "b", 0xc7, 0x0c, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1),
	b(0x93, 0x05, 0x80, 0xa3, "xyz"),
	b(0x91, 0x06),
	b(0x92, 0x07, 0xc0),
	b(0x93, 0x07, 0xa3, "bye", 0xc3),
	b(0x92, 0x08, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0),
	b(0x92, 0x09, 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0),
	b(0x93, 0x63, 0xa1, "x", 0x80),
	b(0x91, 0xff),
	b(0x90),
	b(0x95, 0x01, 0x80, 0xc0, 0xa1, "T", 0xdd, 0xff, 0xff, 0xff, 0xff),
	b(0x91, 0x06, 0x06),
	b(0x95, 0x03, 0x80, 0xa1, "1", 0x04, 0xc0),
	b(0x02, 0x91, 0x06, 0x00),
}

// FuzzDecodeMsgPackMessage checks that framing and decoding never panic,
// that every error wraps ErrInvalidMessage, and that any message decoding
// accepts, of a known type or not, survives encode then decode unchanged:
// AppendMsgPackMessage frames it as one record, and decoding that record
// gives the same Message. The values it carries never panic a decoder
// either, and those with a JSON form convert to valid JSON and back.
func FuzzDecodeMsgPackMessage(f *testing.F) {
	for _, s := range msgpackSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		length, prefix, ok, err := ReadMsgPackLength(in)
		rec, rest, recOK, recErr := NextMsgPackRecord(in)
		require.Equal(t, err, recErr)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidMessage)
			require.False(t, ok || recOK)
		} else if recOK {
			require.True(t, ok)
			require.Equal(t, in[prefix:prefix+length], rec)
			require.Equal(t, in[prefix+length:], rest)
		} else {
			require.Equal(t, in, rest, "an incomplete record stays whole")
			require.True(t, !ok || len(in)-prefix < length)
		}

		m, err := DecodeMsgPackMessage(in)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidMessage)
			require.Zero(t, m, "a failed decode returns no message")
			return
		}
		out := AppendMsgPackMessage(nil, &m)
		body, rest, ok, err := NextMsgPackRecord(out)
		require.NoError(t, err)
		require.True(t, ok, "one whole record: %x", out)
		require.Empty(t, rest, "one whole record: %x", out)
		m2, err := DecodeMsgPackMessage(body)
		require.NoError(t, err, "re-encoded %x as %x", in, out)
		require.Equal(t, m, m2, "re-encoded %x as %x", in, out)
		// Headers are a map, encoded in map order, so the bytes repeat
		// only when there is at most one.
		if len(m.Headers) <= 1 {
			require.Equal(t, out, AppendMsgPackMessage(nil, &m2))
		}

		values := append([]json.RawMessage{m.Item, m.Result}, m.Arguments...)
		for _, v := range values {
			if v != nil {
				checkMsgPackValue(t, v)
			}
		}
	})
}

// FuzzMsgPackValue checks any bytes as a MessagePack value: checking and
// decoding them into common types never panics, and a value with a JSON
// form converts to valid JSON, back to MessagePack, and to the same JSON.
func FuzzMsgPackValue(f *testing.F) {
	for _, s := range msgpackSeeds {
		f.Add(s)
	}
	for _, s := range [][]byte{
		b(0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1),
		b(0xca, 0x3f, 0x8c, 0xcc, 0xcd),
		b(0xd7, 0xff, 0xd4, 0x31, 0x4a, 0x00, 0x67, 0xc6, 0x8a, 0x3f),
		b(0x81, 0x05, 0xc4, 0x00),
		b(0xcd, 0x01, 0x00),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if err := UnmarshalMsgPack(in, new(any)); err != nil {
			return
		}
		checkMsgPackValue(t, in)
	})
}

// checkMsgPackValue decodes v, a checked value, into common types and
// through JSON and back.
func checkMsgPackValue(t *testing.T, v []byte) {
	t.Helper()
	var target struct {
		A int               `json:"a"`
		B []string          `json:"b"`
		C map[string]any    `json:"c"`
		D time.Time         `json:"d"`
		E *struct{ F byte } `json:"e"`
	}
	for _, into := range []any{new(any), new(int8), new(uint), new(float32), new(string), new([]byte),
		new([]any), new(map[string]int), new(time.Time), &target} {
		_ = UnmarshalMsgPack(v, into) // an error is fine; a panic is not
	}
	j, err := AppendJSONFromMsgPack(nil, v)
	if err != nil {
		return
	}
	require.True(t, json.Valid(j), "%x as JSON: %s", v, j)
	back, err := AppendMsgPackFromJSON(nil, j)
	require.NoError(t, err, "%s", j)
	j2, err := AppendJSONFromMsgPack(nil, back)
	require.NoError(t, err, "%x", back)
	// The same value: invalid UTF-8 was escaped as \ufffd the first time
	// and is the character itself now.
	require.Equal(t, jsonValue(t, j), jsonValue(t, j2), "%s and %s", j, j2)
}

// jsonValue decodes JSON, keeping numbers as written.
func jsonValue(t *testing.T, j []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(j))
	d.UseNumber()
	var v any
	require.NoError(t, d.Decode(&v))
	return v
}

// FuzzEncodeMsgPackMessage builds a message of every type from fuzzed
// fields and checks that AppendMsgPackMessage and the type-specific
// encoders write the same record, which decodes to the message.
func FuzzEncodeMsgPackMessage(f *testing.F) {
	for typ := range uint8(11) {
		f.Add(typ, "inv-1", "Target", "text", "", "", int64(typ), false)
		f.Add(typ, "", "SendMessage", "", "h", "v", int64(-1), true)
	}
	f.Add(uint8(1), "\xff", "\u2028", string(make([]byte, 300)), "\xed\xa0\x80", "", int64(1)<<40, true)
	f.Add(uint8(3), "7", "", "", "", "", int64(0), true)
	f.Fuzz(func(t *testing.T, typ uint8, id, target, text, hk, hv string, seq int64, flag bool) {
		str := appendStr(nil, text)
		m := fuzzMessage(typ, id, target, text, hk, hv, seq, flag, str, json.RawMessage{0x01})
		want := m
		if !m.Type.Known() {
			want = Message{Type: m.Type}
		} else if m.Type > TypeCancelInvocation {
			want.Headers = nil
		}

		rec := AppendMsgPackMessage(nil, &m)
		body, rest, ok, err := NextMsgPackRecord(rec)
		require.NoError(t, err)
		require.True(t, ok)
		require.Empty(t, rest)
		got, err := DecodeMsgPackMessage(body)
		if (m.Type == TypeInvocation || m.Type == TypeStreamInvocation) && target == "" {
			require.ErrorIs(t, err, ErrInvalidMessage, "an Invocation needs a target: %x", rec)
			return
		}
		require.NoError(t, err, "%x", rec)
		require.Equal(t, want, got, "%x", rec)

		if m.Headers != nil && m.Type <= TypeCancelInvocation {
			return
		}
		var fast []byte
		switch {
		case m.Type == TypeInvocation && m.StreamIDs == nil:
			fast = AppendMsgPackInvocation(nil, id, target, b(0x92, str, 0x01))
			withArgs, err := AppendMsgPackInvocationArgs(nil, id, target, []any{text, 1})
			require.NoError(t, err)
			require.Equal(t, fast, withArgs)
		case m.Type == TypeStreamItem:
			fast = AppendMsgPackStreamItem(nil, id, str)
		case m.Type == TypeCompletion && m.Error != "":
			fast = AppendMsgPackCompletionError(nil, id, text)
		case m.Type == TypeCompletion && !flag:
			fast = AppendMsgPackCompletion(nil, id, m.Result)
		case m.Type == TypeCompletion:
			fast = AppendMsgPackCompletionVoid(nil, id)
		case m.Type == TypePing:
			fast = AppendMsgPackPing(nil)
		case m.Type == TypeClose:
			fast = AppendMsgPackClose(nil, text, flag)
		case m.Type == TypeAck:
			fast = AppendMsgPackAck(nil, seq)
		case m.Type == TypeSequence:
			fast = AppendMsgPackSequence(nil, seq)
		default:
			return
		}
		require.Equal(t, rec, fast, "the type's own encoder writes what AppendMsgPackMessage does")
	})
}
