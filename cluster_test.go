package signalhub_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/hubtest"
)

func clusterMethods() map[string]any {
	return map[string]any{
		"Whisper": func(c *signalhub.Context, user, text string) error {
			return c.Hub().SendToUser(c.Context(), user, "Whispered", c.UserID(), text)
		},
		"Join": func(c *signalhub.Context, group string) error {
			return c.Hub().AddToGroup(c.Context(), c.ConnectionID(), group)
		},
		"Leave": func(c *signalhub.Context, group string) error {
			return c.Hub().RemoveFromGroup(c.Context(), c.ConnectionID(), group)
		},
		"Shout": func(c *signalhub.Context, group, text string) error {
			return c.Hub().SendToGroup(c.Context(), group, "Shouted", c.UserID(), text)
		},
	}
}

func TestClusterUsers(t *testing.T) {
	t.Parallel()
	nodes, _ := hubtest.NewCluster(t, 3, &signalhub.Options{Methods: clusterMethods()})
	phone, laptop, bob := nodes[0].Connect("alice"), nodes[1].Connect("alice"), nodes[2].Connect("bob")
	assert.Equal(t, "node1", nodes[0].Hub.NodeID())

	bob.MustInvoke("Whisper", "alice", "psst")
	phone.Expect("Whispered", "bob", "psst")
	laptop.Expect("Whispered", "bob", "psst")
	bob.ExpectNothing()

	// From the app, on a node where alice has no connection.
	require.NoError(t, nodes[2].Hub.SendToUsers(ctxT(t), []string{"alice", "bob", "alice"}, "Note", "both"))
	phone.Expect("Note", "both")
	laptop.Expect("Note", "both")
	bob.Expect("Note", "both")
	phone.ExpectNothing()
}

func TestClusterGroupsAndAll(t *testing.T) {
	t.Parallel()
	nodes, _ := hubtest.NewCluster(t, 3, &signalhub.Options{Methods: clusterMethods()})
	a, b, c := nodes[0].Connect("a"), nodes[1].Connect("b"), nodes[2].Connect("c")
	a.MustInvoke("Join", "g1")
	b.MustInvoke("Join", "g1")
	b.MustInvoke("Join", "g2")

	c.MustInvoke("Shout", "g1", "hi") // from a node with no member
	a.Expect("Shouted", "c", "hi")
	b.Expect("Shouted", "c", "hi")
	c.ExpectNothing()

	ctx := ctxT(t)
	require.NoError(t, nodes[2].Hub.SendToGroups(ctx, []string{"g1", "g2"}, "Multi"))
	a.Expect("Multi")
	b.Expect("Multi") // in both groups, once
	require.NoError(t, nodes[2].Hub.SendToGroupExcept(ctx, "g1", []string{a.ID()}, "NotA"))
	b.Expect("NotA")
	require.NoError(t, nodes[0].Hub.SendToAllExcept(ctx, []string{c.ID()}, "NotC"))
	a.Expect("NotC")
	b.Expect("NotC")
	require.NoError(t, nodes[1].Hub.SendToAll(ctx, "All"))
	for _, cl := range []*hubtest.Client{a, b, c} {
		cl.Expect("All")
	}
	a.ExpectNothing()
	b.ExpectNothing()
	c.ExpectNothing()

	require.NoError(t, nodes[0].Hub.SendToConnection(ctx, c.ID(), "Direct", 1))
	require.NoError(t, nodes[0].Hub.SendToConnections(ctx, []string{a.ID(), b.ID(), c.ID(), b.ID()}, "Direct", 2))
	c.Expect("Direct", 1)
	c.Expect("Direct", 2)
	a.Expect("Direct", 2)
	b.Expect("Direct", 2)
	b.ExpectNothing()

	b.MustInvoke("Leave", "g1")
	c.MustInvoke("Shout", "g1", "after")
	a.Expect("Shouted", "c", "after")
	b.ExpectNothing()
}

func TestClusterRemoteGroupManagement(t *testing.T) {
	t.Parallel()
	nodes, _ := hubtest.NewCluster(t, 2, &signalhub.Options{Methods: clusterMethods()})
	remote, sender := nodes[1].Connect("r"), nodes[0].Connect("s")
	ctx := ctxT(t)

	require.NoError(t, nodes[0].Hub.AddToGroup(ctx, remote.ID(), "g"), "node1 adds node2's connection")
	assert.Equal(t, []string{remote.ID()}, nodes[1].GroupMembers("g"))
	sender.MustInvoke("Shout", "g", "one")
	remote.Expect("Shouted", "s", "one")

	require.NoError(t, nodes[0].Hub.RemoveFromGroup(ctx, remote.ID(), "g"))
	assert.Empty(t, nodes[1].GroupMembers("g"))
	sender.MustInvoke("Shout", "g", "two")
	remote.ExpectNothing()

	// A live node answers at once for a connection it does not hold.
	start := time.Now()
	err := nodes[0].Hub.AddToGroup(ctx, "node2.nosuchconnection", "g")
	assert.ErrorIs(t, err, signalhub.ErrConnectionNotFound)
	assert.Less(t, time.Since(start), time.Second, "answered by node2, not by a timeout")
	// No node answers for a node that does not exist: the caller's
	// context bounds the wait.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err = nodes[0].Hub.AddToGroup(short, "node9.gone", "g")
	assert.ErrorIs(t, err, signalhub.ErrConnectionNotFound)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorIs(t, nodes[0].Hub.AddToGroup(ctx, "no-node-in-this-id", "g"), signalhub.ErrConnectionNotFound)
}

func TestClusterOrderAcrossNodes(t *testing.T) {
	t.Parallel()
	nodes, _ := hubtest.NewCluster(t, 2, nil)
	c := nodes[1].Connect("u")
	ctx := ctxT(t)
	const n = 200
	for i := range n {
		require.NoError(t, nodes[0].Hub.SendToUser(ctx, "u", "Seq", i))
	}
	for i := range n {
		c.Expect("Seq", i)
	}
}

func TestClusterBackplaneOutage(t *testing.T) {
	t.Parallel()
	nodes, bus := hubtest.NewCluster(t, 2, &signalhub.Options{Methods: clusterMethods()})
	local, remote := nodes[0].Connect("l"), nodes[1].Connect("r")
	local.MustInvoke("Join", "g")
	remote.MustInvoke("Join", "g")
	ctx := ctxT(t)

	bus.SetAvailable(false)
	err := nodes[0].Hub.SendToGroup(ctx, "g", "During")
	assert.ErrorIs(t, err, signalhub.ErrBackplaneUnavailable)
	local.Expect("During") // local delivery does not depend on the backplane
	remote.ExpectNothing()

	bus.SetAvailable(true)
	require.NoError(t, nodes[0].Hub.SendToGroup(ctx, "g", "After"))
	local.Expect("After")
	remote.Expect("After") // memberships and subscriptions survived
}

func TestClusterManyNodesAndConnections(t *testing.T) {
	t.Parallel()
	nodes, _ := hubtest.NewCluster(t, 4, &signalhub.Options{Methods: clusterMethods()})
	var clients []*hubtest.Client
	for i := range 20 {
		c := nodes[i%4].Connect(fmt.Sprintf("user%d", i%5))
		c.MustInvoke("Join", fmt.Sprintf("room%d", i%3))
		clients = append(clients, c)
	}
	require.NoError(t, nodes[3].Hub.SendToGroup(ctxT(t), "room1", "R1"))
	require.NoError(t, nodes[2].Hub.SendToUser(ctxT(t), "user2", "U2"))
	for i, c := range clients {
		if i%3 == 1 {
			c.Expect("R1")
		}
		if i%5 == 2 {
			c.Expect("U2")
		}
		c.ExpectNothing()
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
