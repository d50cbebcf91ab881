package protocol

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzDecodeMessage checks that decoding never panics and that a decoded
// message survives encode then decode unchanged.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{
		`{"target":"Add","arguments":[40,2],"invocationId":"0","type":1}`,
		`{"type":2,"invocationId":"2","item":null}`,
		`{"type":3,"invocationId":"s1","result":{"a":[1,2]}}`,
		`{"type":3,"invocationId":"1","error":"x"}`,
		`{"type":4,"invocationId":"2","target":"C","arguments":[3],"streamIds":["1"]}`,
		`{"type":5,"invocationId":"7"}`,
		`{"type":6}`,
		`{"type":7,"error":"bye","allowReconnect":true}`,
		`{"type":8,"sequenceId":12}`,
		`{"type":1,"target":"x","arguments":[],"headers":{"a":"b"}}`,
		`{"type":99}`,
		`{"type":1,"target":"\u2028\ud800","arguments":["\u0000"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := DecodeMessage(in)
		if err != nil || !m.Type.Known() {
			return
		}
		rec := AppendMessage(nil, &m)
		require.Equal(t, RecordSeparator, rec[len(rec)-1])
		m2, err := DecodeMessage(rec[:len(rec)-1])
		require.NoError(t, err, "re-encoded %q as %q", in, rec)
		rec2 := AppendMessage(nil, &m2)
		// Headers are a map, so compare the messages rather than bytes
		// when there is more than one header.
		if len(m.Headers) <= 1 {
			require.Equal(t, string(rec), string(rec2))
		}
		require.Equal(t, m.Type, m2.Type)
		require.Equal(t, m.InvocationID, m2.InvocationID)
		require.Equal(t, m.Target, m2.Target)
		require.Equal(t, len(m.Arguments), len(m2.Arguments))
		require.Equal(t, m.Error, m2.Error)
	})
}

// FuzzDecodeHandshakeRequest checks that the handshake decoder never panics.
func FuzzDecodeHandshakeRequest(f *testing.F) {
	f.Add([]byte(`{"protocol":"json","version":1}`))
	f.Add([]byte(`{"protocol":"messagepack","version":2}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = DecodeHandshakeRequest(in)
	})
}
