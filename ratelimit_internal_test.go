package signalhub

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The invocation bucket, driven by a clock of the test's own.
func TestInvocationBucket(t *testing.T) {
	t.Parallel()
	h, err := New(&Options{InvocationRate: 10, InvocationBurst: 3})
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	c := newConn(h, "c", "", nil)
	now := c.tokenAt
	at := func(d time.Duration) (ok, abuse bool) {
		now += int64(d)
		return c.allowInvocationAt(now)
	}

	// A new connection starts with a full bucket.
	for i := range 3 {
		ok, _ := at(0)
		assert.True(t, ok, "burst call %d", i)
	}
	ok, abuse := at(0)
	assert.False(t, ok)
	assert.False(t, abuse, "one refusal is not abuse")
	ok, _ = at(50 * time.Millisecond)
	assert.False(t, ok, "half a token is none")

	// 100ms at 10 per second is one token.
	ok, _ = at(50 * time.Millisecond)
	assert.True(t, ok, "a token came back")
	assert.Zero(t, c.refused, "an accepted call forgives earlier refusals")

	// A long pause refills no more than the burst.
	for i := range 4 {
		d := time.Duration(0)
		if i == 0 {
			d = time.Hour
		}
		ok, _ := at(d)
		assert.Equal(t, i < 3, ok, "call %d after a pause", i)
	}
	// Burst refusals in a row are abuse (the one above was the first).
	for i := range 2 {
		ok, abuse := at(0)
		assert.False(t, ok)
		assert.Equal(t, i == 1, abuse, "refusal %d", i+2)
	}
}

// Without a rate (negative or +Inf) there is no bucket.
func TestInvocationBucketUnlimited(t *testing.T) {
	t.Parallel()
	for _, rate := range []float64{-1, math.Inf(1)} {
		h, err := New(&Options{InvocationRate: rate})
		require.NoError(t, err)
		t.Cleanup(func() { _ = h.Close() })
		c := newConn(h, "c", "", nil)
		for range 10_000 {
			ok, _ := c.allowInvocationAt(c.tokenAt)
			require.True(t, ok, "rate %v", rate)
		}
	}
}
