package nats_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/hubtest"
)

func hubMethods() map[string]any {
	return map[string]any{
		"Whisper": func(c *signalhub.Context, user, text string) error {
			return c.Hub().SendToUser(c.Context(), user, "Whispered", c.UserID(), text)
		},
		"Join": func(c *signalhub.Context, group string) error {
			return c.Hub().AddToGroup(c.Context(), c.ConnectionID(), group)
		},
		"Shout": func(c *signalhub.Context, group, text string) error {
			return c.Hub().SendToGroup(c.Context(), group, "Shouted", c.UserID(), text)
		},
	}
}

// newHubNode serves a hub named nodeID whose backplane is this engine on a
// connection of its own.
func newHubNode(t *testing.T, url, nodeID string) *hubtest.Server {
	t.Helper()
	bp := newBackplane(t, connect(t, url, fastReconnect...), prefixOf(t.Name()))
	hub := hubtest.NewHub(t, &signalhub.Options{Methods: hubMethods(), Backplane: bp, NodeID: nodeID})
	return hubtest.NewServer(t, hub)
}

// Two hubs joined through NATS: users, groups and remote group changes
// reach across them.
func TestHubsOverNATS(t *testing.T) {
	url := startServer(t, -1).ClientURL()
	n1, n2 := newHubNode(t, url, "n1"), newHubNode(t, url, "n2")
	ctx, cancel := context.WithTimeout(t.Context(), hubtest.Timeout)
	defer cancel()

	phone, laptop, bob := n1.Connect("alice"), n2.Connect("alice"), n2.Connect("bob")
	bob.MustInvoke("Whisper", "alice", "psst")
	phone.Expect("Whispered", "bob", "psst")
	laptop.Expect("Whispered", "bob", "psst")
	require.NoError(t, n1.Hub.SendToUser(ctx, "bob", "Note", "from n1"))
	bob.Expect("Note", "from n1")
	bob.ExpectNothing()

	phone.MustInvoke("Join", "room")
	bob.MustInvoke("Join", "room")
	laptop.MustInvoke("Shout", "room", "hi") // from a connection outside the group
	phone.Expect("Shouted", "alice", "hi")
	bob.Expect("Shouted", "alice", "hi")
	laptop.ExpectNothing()
	require.NoError(t, n2.Hub.SendToGroups(ctx, []string{"room", "room"}, "Once"))
	phone.Expect("Once")
	bob.Expect("Once")
	phone.ExpectNothing()

	// n1 adds and removes a connection that n2 holds.
	require.NoError(t, n1.Hub.AddToGroup(ctx, laptop.ID(), "remote"))
	assert.Equal(t, []string{laptop.ID()}, n2.GroupMembers("remote"))
	require.NoError(t, n1.Hub.SendToGroup(ctx, "remote", "Remote", 1))
	laptop.Expect("Remote", 1)
	require.NoError(t, n1.Hub.RemoveFromGroup(ctx, laptop.ID(), "remote"))
	assert.Empty(t, n2.GroupMembers("remote"))
	require.NoError(t, n1.Hub.SendToGroup(ctx, "remote", "Remote", 2))
	laptop.ExpectNothing()

	// A live node answers at once for a connection it does not hold.
	start := time.Now()
	require.ErrorIs(t, n1.Hub.AddToGroup(ctx, "n2.nosuchconnection", "g"), signalhub.ErrConnectionNotFound)
	assert.Less(t, time.Since(start), time.Second)

	require.NoError(t, n2.Hub.SendToAll(ctx, "All"))
	for _, c := range []*hubtest.Client{phone, laptop, bob} {
		c.Expect("All")
	}

	// Counts and presence across the nodes.
	require.NoError(t, n1.Hub.AwaitNodes(ctx, 2), "n1 hears of n2")
	require.NoError(t, n2.Hub.AwaitNodes(ctx, 2), "n2 hears of n1")
	count, err := n1.Hub.GroupCount(ctx, "room")
	require.NoError(t, err)
	assert.Equal(t, 2, count)
	users, err := n2.Hub.UserCount(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, 2, users, "phone and laptop, one on each node")
	require.NoError(t, n1.Hub.DisconnectUser(ctx, "bob", "revoked"))
	online, err := n1.Hub.UserOnline(ctx, "bob")
	require.NoError(t, err)
	assert.False(t, online, "bob is gone from every node")
}
