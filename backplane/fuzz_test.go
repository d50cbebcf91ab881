package backplane_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub/backplane"
)

// FuzzMessageUnmarshal checks that decoding never panics, that every error
// wraps ErrMalformed, that a decoded message does not alias its input, and
// that encoding a decoded message and decoding that gives the same value.
func FuzzMessageUnmarshal(f *testing.F) {
	for _, tc := range sampleMessages() {
		enc, err := tc.msg.MarshalBinary()
		require.NoError(f, err)
		f.Add(enc)
	}
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{2, 1, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var m backplane.Message
		if err := m.UnmarshalBinary(data); err != nil {
			require.ErrorIs(t, err, backplane.ErrMalformed)
			require.Equal(t, backplane.Message{}, m)
			return
		}
		snapshot := cloneMessage(m)
		for i := range data {
			data[i] ^= 0xff
		}
		require.Equal(t, snapshot, m, "decoded message aliases its input")

		enc, err := m.MarshalBinary()
		require.NoError(t, err)
		var again backplane.Message
		require.NoError(t, again.UnmarshalBinary(enc))
		require.Equal(t, m, again)
		enc2, err := again.MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, enc, enc2)
	})
}

// FuzzMessageRoundTrip checks decode(encode(m)) == m for messages built
// from fuzzed fields.
func FuzzMessageRoundTrip(f *testing.F) {
	f.Add("n1", uint8(1), uint64(0), "room 1\x00room 2", 1, "c1", []byte("payload"))
	f.Add("", uint8(4), uint64(1<<63), "", 0, "", []byte{})
	f.Add("\xff", uint8(255), uint64(5), "\x00\x00", 2, "\x00", []byte{0})
	f.Fuzz(func(t *testing.T, origin string, kind uint8, id uint64, names string, index int, except string, payload []byte) {
		m := backplane.Message{
			Origin: origin, Kind: backplane.Kind(kind), ID: id,
			Names: split(names), Index: index, Except: split(except), Payload: payload,
		}
		if len(m.Payload) == 0 {
			m.Payload = nil
		}
		enc, err := m.AppendBinary(nil)
		if err != nil {
			require.ErrorIs(t, err, backplane.ErrMalformed)
			require.True(t, kind == 0 || index < 0 || (index > 0 && index >= len(m.Names)), "rejected a valid message: %v", err)
			return
		}
		var got backplane.Message
		require.NoError(t, got.UnmarshalBinary(enc))
		require.Equal(t, m, got)
	})
}

// split turns a NUL-separated string into a list; "" is the empty list.
func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\x00")
}

func cloneMessage(m backplane.Message) backplane.Message {
	c := m
	c.Origin = strings.Clone(m.Origin)
	c.Payload = bytes.Clone(m.Payload)
	if m.Names != nil {
		c.Names = make([]string, len(m.Names))
		for i, s := range m.Names {
			c.Names[i] = strings.Clone(s)
		}
	}
	if m.Except != nil {
		c.Except = make([]string, len(m.Except))
		for i, s := range m.Except {
			c.Except[i] = strings.Clone(s)
		}
	}
	return c
}
