package protocol

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzDecodeMessage checks that decoding never panics, that every error
// wraps ErrInvalidMessage, and that any message it accepts, of a known type
// or not, survives encode then decode unchanged: AppendMessage frames it as
// one valid JSON record, and decoding that record gives the same Message.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{
		`{"target":"Add","arguments":[40,2],"invocationId":"0","type":1}`,
		`{"type":1,"target":"Send","arguments":[ "a" , {"b" : [1, 2.5e3]} ]}`,
		`{"type":1,"target":"Up","arguments":[],"streamIds":["s1","s2"],"invocationId":"3"}`,
		`{"type":1,"target":"x","arguments":[],"streamIds":[]}`,
		`{"type":2,"invocationId":"2","item":null}`,
		`{"type":2,"invocationId":"2","item":{"deep":[[[]]]}}`,
		`{"type":3,"invocationId":"s1","result":{"a":[1,2]}}`,
		`{"type":3,"invocationId":"1","result":null}`,
		`{"type":3,"invocationId":"1","error":"x"}`,
		`{"type":3,"invocationId":"1","error":""}`,
		`{"type":3,"invocationId":"1"}`,
		`{"type":4,"invocationId":"2","target":"C","arguments":[3],"streamIds":["1"]}`,
		`{"type":5,"invocationId":"7","headers":{"a":"b","c":"d"}}`,
		`{"type":6}`,
		`{"type":6,"headers":{"a":"b"}}`,
		`{"type":7,"error":"bye","allowReconnect":true}`,
		`{"type":7}`,
		`{"type":8,"sequenceId":12}`,
		`{"type":9,"sequenceId":-9223372036854775808}`,
		`{"type":1,"target":"x","arguments":[],"headers":{"a":"b"}}`,
		`{"type":1,"target":"x","arguments":[],"headers":{}}`,
		`{"type":99}`,
		`{"type":-1,"target":"x"}`,
		`{"type":1,"target":"\u2028\ud800","arguments":["\u0000"]}`,
		"{\"type\":1,\"target\":\"\xff\xfe\",\"arguments\":[\"\xc3\x28\"],\"headers\":{\"\xe2\x82\":\"\xed\xa0\x80\"}}",
		`{"TYPE":3,"InvocationID":"1","Result":true}`,
		`{"type":1,"type":7,"error":"last one wins"}`,
		`{"type":1.0}`,
		`{"type":1,"target":"x","arguments":{}}`,
		`{"type":3,"invocationId":"1","result":1,"error":"both"}`,
		`[]`,
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := DecodeMessage(in)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidMessage)
			require.Zero(t, m, "a failed decode returns no message")
			return
		}
		rec := AppendMessage(nil, &m)
		requireOneRecord(t, rec)
		m2, err := DecodeMessage(rec[:len(rec)-1])
		require.NoError(t, err, "re-encoded %q as %q", in, rec)
		require.Equal(t, normalized(m), normalized(m2), "re-encoded %q as %q", in, rec)
		// Headers are a map, encoded in map order, so the bytes repeat
		// only when there is at most one.
		if len(m.Headers) <= 1 {
			require.Equal(t, string(rec), string(AppendMessage(nil, &m2)))
		}
	})
}

// FuzzEncodeMessage builds a message of every type from fuzzed fields and
// checks that AppendMessage and the type-specific encoders write a record
// that decodes to the message, with invalid UTF-8 turned into U+FFFD byte
// by byte, as AppendString documents.
func FuzzEncodeMessage(f *testing.F) {
	for typ := range uint8(11) {
		f.Add(typ, "inv-1", "Target", "text", "", "", int64(typ), false)
		f.Add(typ, "", "SendMessage", "", "h", "v", int64(-1), true)
	}
	f.Add(uint8(1), "\xff", "\u2028", "\x00\x1e\"\\\n\r\t\x7f", "\xed\xa0\x80", "\u2029", int64(0), true)
	f.Add(uint8(3), "7", "", "", "", "", int64(0), true)
	f.Add(uint8(1), "", "", "a", "", "", int64(0), false)
	f.Add(uint8(7), "", "", "</script>&<>", "", "", int64(0), true)
	f.Fuzz(func(t *testing.T, typ uint8, id, target, text, hk, hv string, seq int64, flag bool) {
		str := AppendString(nil, text)
		requireJSONString(t, str, text)

		m := fuzzMessage(typ, id, target, text, hk, hv, seq, flag, str, json.RawMessage("1"))
		want := expectedDecode(m)

		rec := AppendMessage(nil, &m)
		requireOneRecord(t, rec)
		got, err := DecodeMessage(rec[:len(rec)-1])
		if (m.Type == TypeInvocation || m.Type == TypeStreamInvocation) && target == "" {
			require.ErrorIs(t, err, ErrInvalidMessage, "an Invocation needs a target: %q", rec)
			return
		}
		require.NoError(t, err, "%q", rec)
		require.Equal(t, want, normalized(got), "%q", rec)

		// The fast encoders write the same message as AppendMessage.
		if m.Headers != nil {
			return
		}
		var fast [][]byte
		switch {
		case m.Type == TypeInvocation && m.StreamIDs == nil:
			fast = append(fast, AppendInvocation(nil, id, target, []byte("["+string(str)+",1]")))
			b, err := AppendInvocationArgs(nil, id, target, []any{text, 1})
			require.NoError(t, err)
			fast = append(fast, b)
		case m.Type == TypeCompletion && m.Error != "":
			fast = append(fast, AppendCompletionError(nil, id, text))
		case m.Type == TypeCompletion && m.Result != nil:
			fast = append(fast, AppendCompletion(nil, id, m.Result))
		case m.Type == TypeStreamItem:
			fast = append(fast, AppendStreamItem(nil, id, m.Item))
		case m.Type == TypePing:
			fast = append(fast, AppendPing(nil))
		case m.Type == TypeClose:
			fast = append(fast, AppendClose(nil, text, flag))
		}
		for _, b := range fast {
			requireOneRecord(t, b)
			got, err := DecodeMessage(b[:len(b)-1])
			require.NoError(t, err, "%q", b)
			require.Equal(t, want, normalized(got), "%q", b)
		}
	})
}

// FuzzDecodeHandshakeRequest checks that the handshake decoder never
// panics, that its errors wrap ErrInvalidMessage, and that what it accepts
// round-trips; also that NextRecord splits any buffer at its first
// separator and that AppendHandshakeResponse writes one valid record for
// any error text.
func FuzzDecodeHandshakeRequest(f *testing.F) {
	for _, s := range []string{
		`{"protocol":"json","version":1}`,
		`{"protocol":"json","version":2}`,
		`{"protocol":"messagepack","version":2}`,
		`{"version":1,"protocol":"json","extra":[1,{"a":null}]}`,
		`{"Protocol":"JSON","VERSION":1}`,
		`{"protocol":"json"}`,
		`{"version":1}`,
		`{"protocol":null,"version":1}`,
		`{"protocol":"json","version":1.5}`,
		`{"protocol":"json","version":"1"}`,
		`{"protocol":"json","version":99999999999999999999}`,
		`{"protocol":"json","version":-1}`,
		"{\"protocol\":\"\xff\",\"version\":1}",
		"{\"protocol\":\"json\",\"version\":1}\x1e{\"type\":6}\x1e",
		`{"protocol":"json","version":1}{}`,
		``,
		`null`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		req, err := DecodeHandshakeRequest(in)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidMessage)
			require.Zero(t, req)
		} else {
			require.True(t, json.Valid(in), "accepted invalid JSON %q", in)
			require.True(t, utf8.ValidString(req.Protocol))
			rec := `{"protocol":` + string(AppendString(nil, req.Protocol)) + `,"version":` + strconv.Itoa(req.Version) + `}`
			req2, err := DecodeHandshakeRequest([]byte(rec))
			require.NoError(t, err, "%q", rec)
			require.Equal(t, req, req2)
		}

		record, rest, ok := NextRecord(in)
		if i := bytes.IndexByte(in, RecordSeparator); i < 0 {
			require.False(t, ok)
			require.Nil(t, record)
			require.Equal(t, in, rest)
		} else {
			require.True(t, ok)
			require.Equal(t, in[:i], record)
			require.Equal(t, in[i+1:], rest)
		}

		resp := AppendHandshakeResponse(nil, string(in))
		requireOneRecord(t, resp)
		var body map[string]string
		require.NoError(t, json.Unmarshal(resp[:len(resp)-1], &body))
		if len(in) == 0 {
			require.Empty(t, body)
		} else {
			require.Equal(t, map[string]string{"error": perByteValid(string(in))}, body)
		}
	})
}

// requireOneRecord checks that rec is one JSON value followed by the
// record separator, and that the separator appears nowhere else.
func requireOneRecord(t *testing.T, rec []byte) {
	t.Helper()
	require.NotEmpty(t, rec)
	require.Equal(t, len(rec)-1, bytes.IndexByte(rec, RecordSeparator), "the separator ends the record and only there: %q", rec)
	require.True(t, json.Valid(rec[:len(rec)-1]), "not JSON: %q", rec)
}

// requireJSONString checks AppendString's output for s: a JSON string
// holding s with each invalid byte replaced, and safe to embed in
// JavaScript and in a record (no control bytes, no raw U+2028 or U+2029).
func requireJSONString(t *testing.T, enc []byte, s string) {
	t.Helper()
	var got string
	require.NoError(t, json.Unmarshal(enc, &got), "%q", enc)
	require.Equal(t, perByteValid(s), got)
	require.False(t, bytes.ContainsFunc(enc, func(r rune) bool { return r < 0x20 }), "raw control byte in %q", enc)
	require.False(t, strings.ContainsAny(string(enc), "\u2028\u2029"), "raw line separator in %q", enc)
}

// perByteValid replaces each byte of s that is not part of valid UTF-8
// with U+FFFD, as AppendString and encoding/json do.
func perByteValid(s string) string {
	var b strings.Builder
	for _, r := range s { // an invalid byte ranges as one RuneError
		b.WriteRune(r)
	}
	return b.String()
}

// normalized makes empty headers nil: "headers":{} decodes to an empty map
// and is not written back, which is the same message.
func normalized(m Message) Message {
	if len(m.Headers) == 0 {
		m.Headers = nil
	}
	return m
}

// expectedDecode is what decoding m's encoding must give: strings with
// invalid UTF-8 replaced, and only the fields the type carries (headers
// on types 1 to 5, nothing but the type for an unknown one).
func expectedDecode(m Message) Message {
	if !m.Type.Known() {
		return Message{Type: m.Type}
	}
	w := m
	w.InvocationID = perByteValid(m.InvocationID)
	w.Target = perByteValid(m.Target)
	w.Error = perByteValid(m.Error)
	if m.StreamIDs != nil {
		w.StreamIDs = make([]string, len(m.StreamIDs))
		for i, s := range m.StreamIDs {
			w.StreamIDs[i] = perByteValid(s)
		}
	}
	w.Headers = nil
	if m.Type <= TypeCancelInvocation && len(m.Headers) > 0 {
		w.Headers = make(map[string]string, len(m.Headers))
		for k, v := range m.Headers {
			w.Headers[perByteValid(k)] = perByteValid(v)
		}
	}
	return w
}

// FuzzScanFields checks DecodeMessage's fast path against encoding/json:
// whatever record fields.scan reads, json.Unmarshal reads into the same
// fields, and the copies share no memory with the record. It checks the
// scanner's value grammar too: a value skipValue accepts is one json.Valid
// accepts, and validJSON answers as json.Valid does.
func FuzzScanFields(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, ok := scanFields(in)
		if ok {
			want, err := unmarshalFields(in)
			require.NoError(t, err, "scanned %q, which encoding/json refuses", in)
			require.Equal(t, want, got, "%q", in)
			// Overwrite the record: the scanned fields must not change.
			rec := bytes.Clone(in)
			got, _ = scanFields(rec)
			for i := range rec {
				rec[i] = 'X'
			}
			require.Equal(t, want, got, "the fields of %q share memory with it", in)
		}
		if end := skipValue(in, 0); end >= 0 {
			require.True(t, json.Valid(in[:end]), "skipValue accepted %q", in[:end])
		}
		require.Equal(t, json.Valid(in), validJSON(in), "%q", in)
	})
}

// scanFields is fields.scan for tests.
func scanFields(record []byte) (fields, bool) {
	var f fields
	if !f.scan(record) {
		return fields{}, false
	}
	return f, true
}

// unmarshalFields is fields.unmarshal for tests.
func unmarshalFields(record []byte) (fields, error) {
	var f fields
	err := f.unmarshal(record)
	return f, err
}

// scanSeeds are records for FuzzScanFields and TestScanFields, among them
// every way a record can differ from what the scanner reads itself.
var scanSeeds = []string{
	`{"type":1,"target":"Send","arguments":["r12",{"r":7,"s":42,"t":1767225600000000000,"p":"xxxx"}]}`,
	`{"arguments":["alice","hello",3,true,null,-1.5e+3,[],{}],"invocationId":"17","target":"SendMessage","type":1}`,
	` { "type" : 1 , "target" : "x" , "arguments" : [ 1 , [ 2 , { "a" : [ ] } ] ] } `,
	`{"type":1,"target":"Up","arguments":[],"streamIds":["s1","s2"],"headers":{"a":"b","a":"c"}}`,
	`{"type":1,"target":"x","arguments":[],"streamIds":[],"headers":{}}`,
	`{"type":2,"invocationId":"2","item":null}`,
	`{"type":3,"invocationId":"s1","result":{"a":[1,2]}}`,
	`{"type":3,"invocationId":"1","error":"x"}`,
	`{"type":3,"invocationId":"1","result":1,"error":"both"}`,
	`{"type":6}`,
	`{}`,
	`{"type":7,"error":"bye","allowReconnect":true}`,
	`{"type":7,"allowReconnect":false}`,
	`{"type":8,"sequenceId":-12}`,
	`{"type":9,"sequenceId":123456789012345678}`,
	`{"type":9,"sequenceId":1234567890123456789}`,
	`{"type":-0,"extra":{"x":[1,"\u00e9\n",true]},"more":null}`,
	`{"type":1234567890}`,
	`{"type":01}`,
	`{"type":1.0}`,
	`{"type":1e0}`,
	`{"type":"1"}`,
	`{"type":null}`,
	`{"type":1,"type":7}`,
	`{"TYPE":1}`,
	`{"Type":6,"type":1}`,
	`{"t\u0079pe":6}`,
	"{\"ſtreamIds\":[\"a\"],\"type\":1,\"target\":\"x\",\"arguments\":[]}",
	"{\"item\":1,\"type\":2,\"ınvocationId\":\"1\"}",
	"{\"type\":1,\"target\":\"\xff\",\"arguments\":[\"\xff\"]}",
	"{\"type\":1,\"target\":\"é\u2028\",\"arguments\":[\"\xed\xa0\x80\"]}",
	`{"type":1,"target":"a\"b","arguments":[]}`,
	`{"type":1,"target":"x","arguments":["\u12", "\x"]}`,
	"{\"type\":1,\"target\":\"x\",\"arguments\":[\"\x01\"]}",
	`{"type":1,"target":"x","arguments":[1,]}`,
	`{"type":1,"target":"x","arguments":[-]}`,
	`{"type":1,"target":"x","arguments":[01]}`,
	`{"type":1,"target":"x","arguments":[1.]}`,
	`{"type":1,"target":"x","arguments":[1e]}`,
	`{"type":1,"target":"x","arguments":[tru]}`,
	`{"type":1,"target":"x","arguments":[{"a"}]}`,
	`{"type":1,"target":"x","arguments":[{"a":1,}]}`,
	`{"type":1,"target":"x","arguments":[{1:1}]}`,
	`{"type":1,"target":"x","arguments":[` + strings.Repeat("[", maxScanDepth) + strings.Repeat("]", maxScanDepth) + `]}`,
	`{"type":1,"target":"x","arguments":[` + strings.Repeat("[", maxScanDepth+1) + strings.Repeat("]", maxScanDepth+1) + `]}`,
	`{"type":1,"target":"x","arguments":[` + strings.Repeat(`{"a":`, maxScanDepth+1) + "1" + strings.Repeat("}", maxScanDepth+1) + `]}`,
	`{"type":1,"target":"x","arguments":[` + strings.Repeat("[", maxScanDepth+1) + `]}`,
	`{"type":1,"target":"x","arguments":null}`,
	`{"type":1,"target":null,"arguments":[]}`,
	`{"type":1,"streamIds":[null],"target":"x","arguments":[]}`,
	`{"type":1,"headers":{"a":null},"target":"x","arguments":[]}`,
	`{"type":1,"headers":{"a":1},"target":"x","arguments":[]}`,
	`{"type":7,"allowReconnect":null}`,
	`{"type":7,"allowReconnect":"true"}`,
	`{"type":6} x`,
	`{"type":6}}`,
	`{"type":6,}`,
	`{"type":6`,
	"\ufeff{\"type\":6}",
	`[]`,
	`null`,
	``,
}

func TestScanFields(t *testing.T) {
	t.Parallel()
	// The records clients send most are read by the scanner, not left to
	// encoding/json; the seeds of FuzzScanFields check what it reads.
	for _, rec := range []string{
		scanSeeds[0], scanSeeds[1], scanSeeds[2], scanSeeds[3], scanSeeds[5], scanSeeds[6], scanSeeds[7],
		`{"type":6}`, `{"type":8,"sequenceId":-12}`, `{"type":7,"error":"bye","allowReconnect":true}`,
	} {
		_, ok := scanFields([]byte(rec))
		assert.True(t, ok, "%s", rec)
	}
	got, ok := scanFields([]byte(scanSeeds[1]))
	require.True(t, ok)
	require.Len(t, got.arguments, 8)
	for i, a := range got.arguments {
		assert.Equal(t, len(a), cap(a), "argument %d is capped, so an append cannot overwrite the next", i)
	}
}

// FuzzUnmarshalJSON checks that UnmarshalJSON's shortcuts store what
// json.Unmarshal stores, and fail where it fails, into every type they
// cover and one they do not.
func FuzzUnmarshalJSON(f *testing.F) {
	for _, s := range []string{
		`"r12"`, `""`, `"é"`, `"a\"b"`, "\"\xff\"", `"\u00e9"`, ` "x" `, `"x`, `"`,
		`true`, `false`, `tru`, `true `, `null`,
		`0`, `-0`, `42`, `-42`, `01`, `1.5`, `1e3`, `-`, `123456789012345678`, `9223372036854775807`,
		`9223372036854775808`, `-9223372036854775808`, `1.7976931348623157e308`, `1e400`, `-1.5E-7`,
		`{"a":[1,"x",null]}`, `[]`, `{}`, ` [1] `, `[1,]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		check := func(newV func() any) {
			got, want := newV(), newV()
			gotErr, wantErr := UnmarshalJSON(raw, got), json.Unmarshal(raw, want)
			require.Equal(t, wantErr, gotErr, "%q into %T", raw, want)
			require.Equal(t, want, got, "%q into %T", raw, want)
		}
		check(func() any { return new(string) })
		check(func() any { return new(bool) })
		check(func() any { return new(int) })
		check(func() any { return new(int64) })
		check(func() any { return new(float64) })
		check(func() any { return new(json.RawMessage) })
		check(func() any { return new([]int) })
		check(func() any { s := "prev"; return &s })
		check(func() any { r := json.RawMessage("prev"); return &r })
	})
}

// fuzzMessage builds the message of type typ%11 that the encoding fuzz
// tests round-trip from their inputs: str is text encoded as a value and
// one the integer 1, both in the encoding of the protocol under test.
func fuzzMessage(typ uint8, id, target, text, hk, hv string, seq int64, flag bool, str, one json.RawMessage) Message {
	m := Message{Type: MessageType(typ % 11)}
	if hk != "" || hv != "" {
		m.Headers = map[string]string{hk: hv}
	}
	switch m.Type {
	case TypeInvocation, TypeStreamInvocation:
		m.InvocationID, m.Target = id, target
		m.Arguments = []json.RawMessage{str, one}
		if flag {
			m.StreamIDs = []string{id, text}
		}
	case TypeStreamItem:
		m.InvocationID, m.Item = id, str
	case TypeCompletion:
		m.InvocationID = id
		if flag {
			m.Error = text
		} else {
			m.Result = str
		}
	case TypeCancelInvocation:
		m.InvocationID = id
	case TypeClose:
		m.Error, m.AllowReconnect = text, flag
	case TypeAck, TypeSequence:
		m.SequenceID = seq
	}
	return m
}
