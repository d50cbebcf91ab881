package signalhub

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReplayBuffer(t *testing.T) {
	t.Parallel()
	b := newReplayBuffer(10)
	first, recs := b.pending()
	assert.Equal(t, int64(1), first, "an empty buffer announces the next ID")
	assert.Empty(t, recs)
	assert.Nil(t, b.wait())

	assert.False(t, b.add([]byte("aaa"))) // 1
	assert.False(t, b.add([]byte("bbb"))) // 2
	assert.True(t, b.add([]byte("cccc"))) // 3: 10 bytes, the limit
	assert.True(t, b.full())
	assert.Equal(t, int64(4), b.next())
	room := b.wait()
	require.NotNil(t, room)

	assert.False(t, b.ack(4), "an Ack beyond what was sent")
	assert.True(t, b.ack(0), "an old Ack is harmless")
	select {
	case <-room:
		t.Fatal("room before any Ack freed some")
	default:
	}
	assert.True(t, b.ack(1))
	<-room // closed: 7 bytes left
	assert.False(t, b.full())
	first, recs = b.pending()
	assert.Equal(t, int64(2), first)
	assert.Equal(t, [][]byte{[]byte("bbb"), []byte("cccc")}, recs)

	assert.True(t, b.ack(1), "a repeated Ack")
	assert.True(t, b.ack(3))
	first, recs = b.pending()
	assert.Equal(t, int64(4), first, "all acknowledged: the next ID")
	assert.Empty(t, recs)
	assert.False(t, b.add([]byte("d"))) // 4
	first, recs = b.pending()
	assert.Equal(t, int64(4), first)
	assert.Equal(t, [][]byte{[]byte("d")}, recs)
}
