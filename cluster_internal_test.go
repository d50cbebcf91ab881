package signalhub

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub/backplane/backplanetest"
)

func (h *Hub) subscriptions() []string {
	h.cl.mu.Lock()
	defer h.cl.mu.Unlock()
	return slices.Sorted(maps.Keys(h.cl.subscribed))
}

// A node subscribes to a user's or group's channel only while it holds one
// of its connections.
func TestSubscriptionsFollowLocalMembers(t *testing.T) {
	t.Parallel()
	bus := backplanetest.NewBus()
	h, err := New(&Options{Backplane: bus.Node(), NodeID: "n1"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	ctx := context.Background()

	c1, c2 := newConn(h, h.newConnID(), "", countingWire{}), newConn(h, h.newConnID(), "", countingWire{})
	c1.userID, c2.userID = "alice", "alice"
	for _, c := range []*conn{c1, c2} {
		require.NoError(t, h.register(c))
		h.subscribeUser(ctx, c)
	}
	assert.Equal(t, []string{"user:alice"}, h.subscriptions(), "fixed channels are not tracked")

	require.NoError(t, h.AddToGroup(ctx, c1.id, "g"))
	require.NoError(t, h.AddToGroup(ctx, c2.id, "g"))
	require.NoError(t, h.AddToGroup(ctx, c2.id, "h"))
	assert.Equal(t, []string{"group:g", "group:h", "user:alice"}, h.subscriptions())

	require.NoError(t, h.RemoveFromGroup(ctx, c2.id, "h"))
	assert.Equal(t, []string{"group:g", "user:alice"}, h.subscriptions())

	h.unregister(c1)
	assert.Equal(t, []string{"group:g", "user:alice"}, h.subscriptions(), "c2 still needs both")
	h.unregister(c2)
	assert.Empty(t, h.subscriptions())
	for _, c := range []*conn{c1, c2} {
		c.cancel(nil)
	}
}
