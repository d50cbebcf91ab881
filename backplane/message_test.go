package backplane_test

import (
	"bytes"
	"encoding/hex"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub/backplane"
)

func sampleMessages() []struct {
	name string
	msg  backplane.Message
} {
	return []struct {
		name string
		msg  backplane.Message
	}{
		{"minimal", backplane.Message{Kind: backplane.Invocation}},
		{"invocation to all", backplane.Message{
			Origin: "n1", Kind: backplane.Invocation, Except: []string{"c1", "c2"},
			Payload: []byte(`{"type":1,"target":"Receive","arguments":["hi"]}` + "\x1e"),
		}},
		{"multi-group copy", backplane.Message{
			Origin: "n2", Kind: backplane.Invocation, Names: []string{"room 1", "room:2", "комната"}, Index: 2,
			Payload: []byte{0},
		}},
		{"group request", backplane.Message{
			Origin: "n3", Kind: backplane.AddToGroup, ID: 1 << 40, Names: []string{"conn-1", "group:x"},
		}},
		{"remove request", backplane.Message{Origin: "n3", Kind: backplane.RemoveFromGroup, ID: 7, Names: []string{"c", "g"}}},
		{"reply with error", backplane.Message{Origin: "n1", Kind: backplane.Reply, ID: math.MaxUint64, Payload: []byte("connection not found")}},
		{"heartbeat", backplane.Message{Origin: "n1", Kind: backplane.Heartbeat}},
		{"query", backplane.Message{Origin: "n1", Kind: backplane.Query, ID: 9, Names: []string{"user-count", "alice"}}},
		{"client invocation", backplane.Message{Origin: "n1", Kind: backplane.ClientInvocation, ID: 10, Names: []string{"n2.abc", "Ask", "5000"}, Payload: []byte(`["sure?"]`)}},
		{"unknown kind", backplane.Message{Origin: "n9", Kind: 200, ID: 3, Payload: []byte("future")}},
		{"binary strings", backplane.Message{
			Origin: "\x00\xff", Kind: backplane.Invocation, Names: []string{"", "\x80", strings.Repeat("x", 300)},
			Index: 1, Except: []string{""}, Payload: bytes.Repeat([]byte{0xff, 0}, 40000),
		}},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range sampleMessages() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			enc, err := tc.msg.AppendBinary([]byte("prefix"))
			require.NoError(t, err)
			require.Equal(t, "prefix", string(enc[:6]), "AppendBinary keeps dst")

			marshaled, err := tc.msg.MarshalBinary()
			require.NoError(t, err)
			assert.Equal(t, enc[6:], marshaled)

			var got backplane.Message
			require.NoError(t, got.UnmarshalBinary(enc[6:]))
			assert.Equal(t, tc.msg, got)
		})
	}
}

// TestMessageGolden pins the binary form: nodes of different versions
// share a cluster, so it may change only with a new version byte.
func TestMessageGolden(t *testing.T) {
	t.Parallel()
	m := backplane.Message{
		Origin: "n1", Kind: backplane.AddToGroup, ID: 300,
		Names: []string{"c1", "g"}, Index: 1, Except: []string{"x"}, Payload: []byte("hi"),
	}
	const want = "01" + "02" + // version, Kind
		"026e31" + // Origin
		"ac02" + // ID 300
		"02" + "026331" + "0167" + // Names
		"01" + // Index
		"01" + "0178" + // Except
		"026869" // Payload
	enc, err := m.MarshalBinary()
	require.NoError(t, err)
	assert.Equal(t, want, hex.EncodeToString(enc))
}

func TestMessageAppendBinaryInvalid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		msg  backplane.Message
	}{
		{"zero kind", backplane.Message{Origin: "n1"}},
		{"negative index", backplane.Message{Kind: backplane.Invocation, Names: []string{"a"}, Index: -1}},
		{"index past names", backplane.Message{Kind: backplane.Invocation, Names: []string{"a", "b"}, Index: 2}},
		{"index without names", backplane.Message{Kind: backplane.Invocation, Index: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dst := []byte("dst")
			out, err := tc.msg.AppendBinary(dst)
			require.ErrorIs(t, err, backplane.ErrMalformed)
			assert.Equal(t, "dst", string(out))
		})
	}
}

func TestMessageUnmarshalMalformed(t *testing.T) {
	t.Parallel()
	valid, err := (&backplane.Message{
		Origin: "n1", Kind: backplane.Invocation, ID: 1000,
		Names: []string{"a", "bc"}, Index: 1, Except: []string{"x"}, Payload: []byte("payload"),
	}).MarshalBinary()
	require.NoError(t, err)

	cases := []struct {
		name string
		data []byte
	}{
		{"nil", nil},
		{"version only", []byte{1}},
		{"version 0", append([]byte{0}, valid[1:]...)},
		{"version 2", append([]byte{2}, valid[1:]...)},
		{"zero kind", append([]byte{1, 0}, valid[2:]...)},
		{"byte left over", append(bytes.Clone(valid), 0)},
		{"payload longer than data", []byte{1, 1, 0, 0, 0, 0, 0, 5, 'a'}},
		{"origin longer than data", []byte{1, 1, 9, 'a'}},
		{"huge name count", []byte{1, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 'a'}},
		{"name count past data", []byte{1, 1, 0, 0, 3, 0, 0, 0, 0, 0}},
		{"huge except count", []byte{1, 1, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x08, 0}},
		{"varint overflow", []byte{1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0, 0}},
		{"index without names", []byte{1, 1, 0, 0, 0, 1, 0, 0}},
		{"index past names", []byte{1, 1, 0, 0, 1, 1, 'a', 1, 0, 0}},
		{"huge index", []byte{1, 1, 0, 0, 1, 1, 'a', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0}},
	}
	for i := range len(valid) {
		cases = append(cases, struct {
			name string
			data []byte
		}{"truncated to " + string(rune('0'+i/10)) + string(rune('0'+i%10)), valid[:i]})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := backplane.Message{Origin: "unchanged", Kind: backplane.Reply}
			m := before
			err := m.UnmarshalBinary(tc.data)
			require.ErrorIs(t, err, backplane.ErrMalformed)
			assert.Equal(t, before, m, "a failed decode leaves the message alone")
		})
	}
}

func TestMessageUnmarshalCopies(t *testing.T) {
	t.Parallel()
	want := backplane.Message{
		Origin: "n1", Kind: backplane.Invocation, Names: []string{"g1", "g2"}, Index: 1,
		Except: []string{"c1"}, Payload: []byte("payload"),
	}
	data, err := want.MarshalBinary()
	require.NoError(t, err)
	var got backplane.Message
	require.NoError(t, got.UnmarshalBinary(data))
	for i := range data {
		data[i] = 0xAA
	}
	assert.Equal(t, want, got)
}

func TestMessageAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	m := backplane.Message{
		Origin: "n1", Kind: backplane.Invocation, Names: []string{"g1", "g2", "g3"}, Index: 1,
		Except: []string{"c1", "c2"}, Payload: make([]byte, 512),
	}
	enc, err := m.MarshalBinary()
	require.NoError(t, err)
	encodeAllocs := testing.AllocsPerRun(100, func() { _, _ = m.AppendBinary(nil) })
	assert.Equal(t, 1.0, encodeAllocs, "AppendBinary grows dst once")
	dst := make([]byte, 0, len(enc))
	assert.Zero(t, testing.AllocsPerRun(100, func() { dst, _ = m.AppendBinary(dst[:0]) }), "AppendBinary into a large enough dst")
	var got backplane.Message
	decodeAllocs := testing.AllocsPerRun(100, func() { _ = got.UnmarshalBinary(enc) })
	assert.LessOrEqual(t, decodeAllocs, 4.0, "strings, Names, Except and Payload")
}

func TestKind(t *testing.T) {
	t.Parallel()
	for k, want := range map[backplane.Kind]string{
		backplane.Invocation:       "Invocation",
		backplane.AddToGroup:       "AddToGroup",
		backplane.RemoveFromGroup:  "RemoveFromGroup",
		backplane.Reply:            "Reply",
		backplane.Heartbeat:        "Heartbeat",
		backplane.Query:            "Query",
		backplane.ClientInvocation: "ClientInvocation",
	} {
		assert.Equal(t, want, k.String())
		assert.True(t, k.Known(), want)
	}
	for _, k := range []backplane.Kind{0, backplane.ClientInvocation + 1, 255} {
		assert.False(t, k.Known(), k)
	}
	assert.Equal(t, "Kind(0)", backplane.Kind(0).String())
	assert.Equal(t, "Kind(42)", backplane.Kind(42).String())
}

func BenchmarkMessage(b *testing.B) {
	m := backplane.Message{
		Origin: "node-1", Kind: backplane.Invocation, Names: []string{"room 1", "room 2"}, Index: 1,
		Except: []string{"conn-a"}, Payload: bytes.Repeat([]byte("x"), 256),
	}
	enc, err := m.MarshalBinary()
	require.NoError(b, err)
	b.Run("AppendBinary", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		buf := make([]byte, 0, len(enc))
		for b.Loop() {
			buf, _ = m.AppendBinary(buf[:0])
		}
	})
	b.Run("UnmarshalBinary", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		var got backplane.Message
		for b.Loop() {
			if err := got.UnmarshalBinary(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}
