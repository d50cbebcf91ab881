package signalhub

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestReplayBuffer(t *testing.T) {
	t.Parallel()
	b := newReplayBuffer(10)
	first, recs := b.pending()
	assert.Equal(t, int64(1), first, "an empty buffer announces the next ID")
	assert.Empty(t, recs)

	b.add([]byte("aaa")) // 1
	b.add([]byte("bbb")) // 2
	assert.False(t, b.full())
	b.add([]byte("cccc")) // 3: 10 bytes, the limit
	assert.True(t, b.full())

	assert.False(t, b.ack(4), "an Ack beyond what was sent")
	assert.True(t, b.ack(0), "an old Ack is harmless")
	assert.True(t, b.full())
	assert.True(t, b.ack(1))
	assert.False(t, b.full(), "7 bytes left")
	first, recs = b.pending()
	assert.Equal(t, int64(2), first)
	assert.Equal(t, [][]byte{[]byte("bbb"), []byte("cccc")}, recs)

	assert.True(t, b.ack(1), "a repeated Ack")
	assert.True(t, b.ack(3))
	first, recs = b.pending()
	assert.Equal(t, int64(4), first, "all acknowledged: the next ID")
	assert.Empty(t, recs)
	b.add([]byte("d")) // 4
	first, recs = b.pending()
	assert.Equal(t, int64(4), first)
	assert.Equal(t, [][]byte{[]byte("d")}, recs)
}
