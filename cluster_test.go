package signalhub_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/backplane/backplanetest"
	signalrclient "github.com/signalhub/signalhub/client"
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

func TestClusterCountsAndPresence(t *testing.T) {
	t.Parallel()
	nodes, _ := hubtest.NewCluster(t, 3, &signalhub.Options{Methods: clusterMethods()})
	a1, a2, b := nodes[0].Connect("alice"), nodes[1].Connect("alice"), nodes[2].Connect("bob")
	a1.MustInvoke("Join", "g")
	a2.MustInvoke("Join", "g")
	b.MustInvoke("Join", "g")
	ctx := ctxT(t)

	for _, n := range nodes {
		count, err := n.Hub.GroupCount(ctx, "g")
		require.NoError(t, err)
		assert.Equal(t, 3, count, "group count asked on %s", n.Hub.NodeID())
		users, err := n.Hub.UserCount(ctx, "alice")
		require.NoError(t, err)
		assert.Equal(t, 2, users)
		online, err := n.Hub.UserOnline(ctx, "carol")
		require.NoError(t, err)
		assert.False(t, online)
		ids, err := n.Hub.GroupConnections(ctx, "g")
		require.NoError(t, err)
		want := []string{a1.ID(), a2.ID(), b.ID()}
		slices.Sort(want)
		assert.Equal(t, want, ids)
	}
	a2.Close()
	users, err := nodes[2].Hub.UserCount(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, 1, users)
	_, err = nodes[0].Hub.GroupCount(ctx, "")
	assert.ErrorIs(t, err, signalhub.ErrEmptyName)
}

// A node that dies without a word stops being counted after NodeTimeout;
// until then, asking for a count fails rather than answers wrong.
func TestClusterNodeDiesSilently(t *testing.T) {
	t.Parallel()
	bus := backplanetest.NewBus()
	opts := func(id string) *signalhub.Options {
		return &signalhub.Options{Backplane: bus.Node(), NodeID: id, NodeTimeout: 300 * time.Millisecond}
	}
	first := hubtest.NewServer(t, hubtest.NewHub(t, opts("n1")))
	secondOpts := opts("n2")
	second := hubtest.NewServer(t, hubtest.NewHub(t, secondOpts))
	second.Connect("alice")
	second.Connect("alice")
	require.NoError(t, first.Hub.AwaitNodes(ctxT(t), 2))
	assert.Equal(t, []string{"n1", "n2"}, first.Hub.ClusterNodes())
	ctx := ctxT(t)
	n, err := first.Hub.UserCount(ctx, "alice")
	require.NoError(t, err)
	require.Equal(t, 2, n)

	// n2's link to the cluster dies; its hub does not say goodbye.
	require.NoError(t, secondOpts.Backplane.Close())
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = first.Hub.UserCount(short, "alice")
	assert.ErrorIs(t, err, signalhub.ErrBackplaneUnavailable, "n2 is still expected to answer")

	deadline := time.Now().Add(5 * time.Second)
	for {
		q, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		n, err = first.Hub.UserCount(q, "alice")
		cancel()
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	require.NoError(t, err, "n2 is forgotten within NodeTimeout")
	assert.Zero(t, n)
}

func TestClusterRevocation(t *testing.T) {
	t.Parallel()
	gone := make(chan string, 8)
	nodes, _ := hubtest.NewCluster(t, 2, &signalhub.Options{Methods: clusterMethods(), OnDisconnected: leftTo(gone)})
	a1, a2, b := nodes[0].Connect("alice"), nodes[1].Connect("alice"), nodes[1].Connect("bob")
	ctx := ctxT(t)
	for _, c := range []*hubtest.Client{a1, a2, b} {
		c.MustInvoke("Join", "admins")
	}

	require.NoError(t, nodes[1].Hub.RemoveUserFromGroup(ctx, "alice", "admins"))
	count, err := nodes[0].Hub.GroupCount(ctx, "admins")
	require.NoError(t, err)
	assert.Equal(t, 1, count, "only bob is left, on both nodes' books")
	require.NoError(t, nodes[0].Hub.SendToGroup(ctx, "admins", "Secret"))
	b.Expect("Secret")
	a1.ExpectNothing()
	a2.ExpectNothing()

	aliceIDs := []string{a1.ID(), a2.ID()} // IDs are gone from the clients once closed
	require.NoError(t, nodes[0].Hub.DisconnectUser(ctx, "alice", "Your access was revoked."))
	// Once it returns, alice is offline everywhere and can join nothing,
	// whether or not her clients have heard of it yet.
	online, err := nodes[1].Hub.UserOnline(ctx, "alice")
	require.NoError(t, err)
	assert.False(t, online, "offline as soon as DisconnectUser returns")
	for i, id := range aliceIDs {
		assert.ErrorIs(t, nodes[i].Hub.AddToGroup(ctx, id, "admins"), signalhub.ErrConnectionNotFound)
	}
	for _, c := range []*hubtest.Client{a1, a2} {
		var ce *signalrclient.CloseError
		require.ErrorAs(t, c.WaitClosed(), &ce)
		assert.Equal(t, "Your access was revoked.", ce.Message)
		assert.False(t, ce.AllowReconnect)
	}
	awaitLeft(t, gone, aliceIDs...) // the client may see its Close before its node forgets it
	online, err = nodes[1].Hub.UserOnline(ctx, "alice")
	require.NoError(t, err)
	assert.False(t, online)
	b.MustInvoke("Whisper", "bob", "still here")
	b.Expect("Whispered", "bob", "still here")
	assert.ErrorIs(t, nodes[0].Hub.DisconnectUser(ctx, "", "x"), signalhub.ErrEmptyName)
}

// Counts, presence and revocation work on a single node too.
func TestSingleNodeCountsAndRevocation(t *testing.T) {
	t.Parallel()
	gone := make(chan string, 8)
	srv := hubtest.NewServer(t, hubtest.NewHub(t, &signalhub.Options{Methods: clusterMethods(), OnDisconnected: leftTo(gone)}))
	a1, a2, b := srv.Connect("alice"), srv.Connect("alice"), srv.Connect("bob")
	for _, c := range []*hubtest.Client{a1, a2, b} {
		c.MustInvoke("Join", "g")
	}
	ctx := ctxT(t)
	n, err := srv.Hub.GroupCount(ctx, "g")
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Empty(t, srv.Hub.NodeID())
	require.NoError(t, srv.Hub.AwaitNodes(ctx, 1), "a single node is its own cluster")
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, srv.Hub.AwaitNodes(short, 2), context.DeadlineExceeded)

	require.NoError(t, srv.Hub.RemoveUserFromGroup(ctx, "alice", "g"))
	ids, err := srv.Hub.GroupConnections(ctx, "g")
	require.NoError(t, err)
	assert.Equal(t, []string{b.ID()}, ids)

	aliceIDs := []string{a1.ID(), a2.ID()}
	require.NoError(t, srv.Hub.DisconnectUser(ctx, "alice", ""))
	a2.WaitClosed()
	var ce *signalrclient.CloseError
	require.ErrorAs(t, a1.WaitClosed(), &ce)
	assert.Equal(t, "Connection closed by the server.", ce.Message)
	awaitLeft(t, gone, aliceIDs...)
	online, err := srv.Hub.UserOnline(ctx, "alice")
	require.NoError(t, err)
	assert.False(t, online)
	online, err = srv.Hub.UserOnline(ctx, "bob")
	require.NoError(t, err)
	assert.True(t, online)
}

// A member who joins while the backplane is down gets the group's channel
// once it is back, without another join.
func TestClusterSubscribeRetriedAfterOutage(t *testing.T) {
	t.Parallel()
	nodes, bus := hubtest.NewCluster(t, 2, &signalhub.Options{Methods: clusterMethods(), NodeTimeout: 300 * time.Millisecond})
	late, sender := nodes[1].Connect("late"), nodes[0].Connect("sender")
	bus.SetAvailable(false)
	_, err := late.Invoke("Join", "g")
	require.Error(t, err, "the join is local only while the backplane is down")
	assert.Equal(t, []string{late.ID()}, nodes[1].GroupMembers("g"))
	bus.SetAvailable(true)

	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		sender.MustInvoke("Shout", "g", fmt.Sprint(i))
		m := late.Received()
		if len(m) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling a timer-driven retry: no event to await
	}
	require.NotEmpty(t, late.Received(), "the node subscribed again after the outage")
}

// A node that shuts down is forgotten at once, so counts do not wait for
// it; and a revocation during an outage is an error, not a quiet success.
func TestClusterLeaveAndOutageErrors(t *testing.T) {
	t.Parallel()
	nodes, bus := hubtest.NewCluster(t, 2, &signalhub.Options{Methods: clusterMethods()})
	nodes[1].Connect("alice")
	ctx := ctxT(t)
	n, err := nodes[0].Hub.UserCount(ctx, "alice")
	require.NoError(t, err)
	require.Equal(t, 1, n)

	bus.SetAvailable(false)
	assert.ErrorIs(t, nodes[0].Hub.DisconnectUser(ctx, "alice", "revoked"), signalhub.ErrBackplaneUnavailable)
	bus.SetAvailable(true)

	require.NoError(t, nodes[1].Hub.Shutdown(ctx))
	require.NoError(t, nodes[0].Hub.AwaitNodes(ctx, 1), "the leaving heartbeat arrives")
	start := time.Now()
	n, err = nodes[0].Hub.UserCount(ctx, "alice")
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Less(t, time.Since(start), time.Second, "no wait for the node that left")
	_, err = nodes[1].Hub.UserCount(ctx, "alice")
	assert.ErrorIs(t, err, signalhub.ErrHubClosed)
}

// leftTo returns an OnDisconnected hook that reports connection IDs on ch.
func leftTo(ch chan<- string) func(*signalhub.Context, error) {
	return func(c *signalhub.Context, _ error) { ch <- c.ConnectionID() }
}

// awaitLeft waits until the hub has let go of every listed connection.
func awaitLeft(t *testing.T, ch <-chan string, ids ...string) {
	t.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for len(want) > 0 {
		select {
		case id := <-ch:
			delete(want, id)
		case <-time.After(hubtest.Timeout):
			t.Fatalf("the hub still holds %v", want)
		}
	}
}
