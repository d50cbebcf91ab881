package signalhub

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTakeOverWaitsForTheReader: a write that failed marks a stateful
// connection detached before its read goroutine notices; a new socket
// must not resume it until that reader has detached too, or the reader
// would then close the new socket (and resume found no expiry timer).
func TestTakeOverWaitsForTheReader(t *testing.T) {
	t.Parallel()
	h, err := New(&Options{StatefulReconnect: true})
	require.NoError(t, err)
	defer h.Close()
	c := newConn(h, "id", "tok", countingWire{d: &delivered{}})
	c.enableStateful()
	defer c.st.ackTimer.Stop()

	require.True(t, c.markDetached(errors.New("write: broken pipe")))
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	assert.False(t, c.takeOver(ended), "only the writer has seen the drop")

	require.True(t, c.detach(errors.New("read: connection reset")))
	defer c.st.expiry.Stop()
	assert.True(t, c.takeOver(t.Context()), "the reader has detached: a new socket may resume")
}

// TestPollMessagePackPartialRecordAtTheLimit: on an HTTP transport, a
// MessagePack record of exactly MaxMessageSize that has arrived in part
// is within the bound, as on a WebSocket: the bound counts the record's
// length prefix as framing.
func TestPollMessagePackPartialRecordAtTheLimit(t *testing.T) {
	t.Parallel()
	h, err := New(&Options{})
	require.NoError(t, err)
	defer h.Close()
	c := newConn(h, "id", "tok", nil)
	c.proto = msgpackHub
	in := &httpInput{c: c, registered: true}
	defer in.rb.release()
	max := h.opts.MaxMessageSize
	require.Less(t, max, 1<<21, "a three-byte length prefix")
	// The length prefix (7 bits per byte) of a max-byte record, and all
	// of it but its last byte.
	rec := []byte{byte(max&0x7f) | 0x80, byte((max>>7)&0x7f) | 0x80, byte(max >> 14)}
	rec = append(rec, bytes.Repeat([]byte{0xc0}, max-1)...)
	require.NoError(t, in.receive(iotest.HalfReader(bytes.NewReader(rec))))
	assert.Len(t, in.rb.b, len(rec), "the partial record waits for the next POST")
}
