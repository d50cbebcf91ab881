package signalhub

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub/protocol"
)

func TestSplitRecords(t *testing.T) {
	t.Parallel()
	j := protocol.AppendInvocation(nil, "", "T", []byte(`["\u001e"]`))
	m := protocol.AppendMsgPackInvocation(nil, "", "T", nil)

	only := splitRecords(j)
	assert.Equal(t, j, only.json)
	assert.Nil(t, only.msgpack, "a payload of JSON alone reaches no MessagePack connection")

	both := splitRecords(append(append([]byte(nil), j...), m...))
	assert.Equal(t, j, both.json)
	assert.Equal(t, m, both.msgpack)
	assert.Equal(t, len(j), cap(both.json), "appending to the JSON record cannot overwrite the other")
}

func TestEncodeRecords(t *testing.T) {
	t.Parallel()
	h, err := New(nil)
	require.NoError(t, err)
	args := []any{"a", []byte{1}}

	recs, err := h.encodeRecords("T", args)
	require.NoError(t, err)
	assert.Nil(t, recs.msgpack, "no MessagePack connection: no MessagePack record")
	assert.Equal(t, recs.json, recs.wire)

	c := newConn(h, "mp", "", countingWire{d: newDelivered()})
	c.proto = msgpackHub
	require.NoError(t, h.register(c))
	assert.Equal(t, int64(1), h.binaryConns.Load())
	recs, err = h.encodeRecords("T", args)
	require.NoError(t, err)
	// What the protocol documents say: a JSON record with []byte as base64,
	// and a MessagePack record (length prefix 12) [1, {}, nil, "T", ["a",
	// bin 0x01]].
	wantJSON := []byte("{\"type\":1,\"target\":\"T\",\"arguments\":[\"a\",\"AQ==\"]}\x1e")
	wantMP := []byte{0x0c, 0x95, 0x01, 0x80, 0xc0, 0xa1, 'T', 0x92, 0xa1, 'a', 0xc4, 0x01, 0x01}
	assert.Equal(t, wantJSON, recs.json)
	assert.Equal(t, wantMP, recs.msgpack)
	assert.Equal(t, append(wantJSON, wantMP...), recs.wire, "one buffer, JSON first")
	assert.Equal(t, recs, splitRecords(recs.wire), "what a node receives is what was sent")

	h.unregister(c)
	h.unregister(c)
	assert.Equal(t, int64(0), h.binaryConns.Load(), "counted once, uncounted once")
	c.cancel(nil)
}

// attachMixedConns registers n in-memory connections in group, every
// other one speaking MessagePack, without writers: the caller drains the
// queues.
func attachMixedConns(tb testing.TB, h *Hub, n int, group string) (conns []*conn, stop func()) {
	tb.Helper()
	conns = make([]*conn, n)
	for i := range conns {
		c := newConn(h, fmt.Sprintf("c%d", i), "", countingWire{})
		if i%2 == 1 {
			c.proto = msgpackHub
		}
		if err := h.register(c); err != nil {
			tb.Fatal(err)
		}
		if err := h.AddToGroup(context.Background(), c.id, group); err != nil {
			tb.Fatal(err)
		}
		conns[i] = c
	}
	return conns, func() {
		for _, c := range conns {
			h.unregister(c)
			c.cancel(nil)
		}
	}
}

// BenchmarkSendToGroupMixed is BenchmarkSendToGroup with a group of JSON
// and MessagePack connections, half each: one encoding per protocol per
// send, whatever N.
func BenchmarkSendToGroupMixed(b *testing.B) {
	benchSendToGroup(b, nil, []int{2, 100, 1000, 10000}, attachMixedConns)
}
