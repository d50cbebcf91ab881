package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/backplane/redis"
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

// newHubServer serves a hub that joins the cluster of prefix on srv as
// node nodeID.
func newHubServer(t *testing.T, srv *server, prefix, nodeID string) *hubtest.Server {
	t.Helper()
	client := srv.client(t) // closes after the hub, which closes the engine
	bp, err := redis.New(redis.Options{Client: client, Prefix: prefix, Logger: testLogger(t)})
	require.NoError(t, err)
	return hubtest.NewServer(t, hubtest.NewHub(t, &signalhub.Options{
		Backplane: bp, NodeID: nodeID, Methods: hubMethods(),
	}))
}

// TestHubs runs two hubs over one redis-server, each holding one user.
func TestHubs(t *testing.T) {
	srv := startServer(t)
	pre := prefix(t)
	n1, n2 := newHubServer(t, srv, pre, "n1"), newHubServer(t, srv, pre, "n2")
	alice, bob := n1.Connect("alice"), n2.Connect("bob")
	ctx := within(t, 30*time.Second)

	// Users across nodes, from clients and from the app.
	alice.MustInvoke("Whisper", "bob", "hi bob")
	bob.Expect("Whispered", "alice", "hi bob")
	bob.MustInvoke("Whisper", "alice", "hi alice")
	alice.Expect("Whispered", "bob", "hi alice")
	require.NoError(t, n1.Hub.SendToUser(ctx, "bob", "Note", "from n1"))
	bob.Expect("Note", "from n1")
	require.NoError(t, n2.Hub.SendToUser(ctx, "alice", "Note", "from n2"))
	alice.Expect("Note", "from n2")

	// A group with a member on each node: alice joins on her node, n1
	// adds bob's connection on n2, which subscribes from its Handler.
	alice.MustInvoke("Join", "room")
	require.NoError(t, n1.Hub.AddToGroup(ctx, bob.ID(), "room"))
	assert.Equal(t, []string{bob.ID()}, n2.GroupMembers("room"))
	alice.MustInvoke("Shout", "room", "hello room")
	alice.Expect("Shouted", "alice", "hello room")
	bob.Expect("Shouted", "alice", "hello room")
	require.NoError(t, n2.Hub.SendToGroup(ctx, "room", "Notice", 1))
	alice.Expect("Notice", 1)
	bob.Expect("Notice", 1)

	// Counts and presence across the nodes.
	require.NoError(t, n1.Hub.AwaitNodes(ctx, 2), "n1 hears of n2")
	require.NoError(t, n2.Hub.AwaitNodes(ctx, 2), "n2 hears of n1")
	count, err := n2.Hub.GroupCount(ctx, "room")
	require.NoError(t, err)
	assert.Equal(t, 2, count)
	online, err := n2.Hub.UserOnline(ctx, "alice")
	require.NoError(t, err)
	assert.True(t, online, "alice is online on n1")
	ids, err := n1.Hub.GroupConnections(ctx, "room")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{alice.ID(), bob.ID()}, ids)

	// A group on the other node only.
	require.NoError(t, n1.Hub.AddToGroup(ctx, bob.ID(), "bob only"))
	require.NoError(t, n1.Hub.SendToGroup(ctx, "bob only", "Private"))
	bob.Expect("Private")

	// Removal from n1: n2 unsubscribes from its Handler.
	require.NoError(t, n1.Hub.RemoveFromGroup(ctx, bob.ID(), "room"))
	assert.Empty(t, n2.GroupMembers("room"))
	room := pre + ":group:room"
	subs, err := srv.client(t).PubSubNumSub(ctx, room).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), subs[room], "only n1 is still subscribed to the group")
	alice.MustInvoke("Shout", "room", "bob left")
	alice.Expect("Shouted", "alice", "bob left")
	require.NoError(t, n1.Hub.SendToAll(ctx, "Everyone"))
	bob.Expect("Everyone") // and not "bob left" before it
	alice.Expect("Everyone")
	bob.ExpectNothing()
	alice.ExpectNothing()
}

// TestHubsSurviveRedisRestart kills redis-server under two hubs with a
// group spread over both: local sends keep working, cross-node sends fail
// with ErrBackplaneUnavailable, and after the restart the group reaches its
// members on both nodes again without anyone joining again.
func TestHubsSurviveRedisRestart(t *testing.T) {
	srv := startServer(t)
	pre := prefix(t)
	n1, n2 := newHubServer(t, srv, pre, "n1"), newHubServer(t, srv, pre, "n2")
	alice, bob := n1.Connect("alice"), n2.Connect("bob")
	alice.MustInvoke("Join", "crew")
	bob.MustInvoke("Join", "crew")
	ctx := within(t, 60*time.Second)
	require.NoError(t, n1.Hub.SendToGroup(ctx, "crew", "Before"))
	alice.Expect("Before")
	bob.Expect("Before")

	srv.kill()
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := n1.Hub.SendToGroup(short, "crew", "During")
	cancel()
	assert.ErrorIs(t, err, signalhub.ErrBackplaneUnavailable)
	alice.Expect("During") // local delivery needs no Redis

	srv.restart()
	// The engines reconnect and resubscribe by themselves; poll with
	// markers until one crosses (bounded), then check the group as a whole.
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		// Each node's engine reconnects on its own schedule: probe both
		// directions, n1 to bob's user channel and n2 to the group.
		err1 := n1.Hub.SendToUser(ctx, "bob", "Probe", i)
		err2 := n2.Hub.SendToGroup(ctx, "crew", "Probe", i)
		err := errors.Join(err1, err2)
		if err == nil && probes(alice) > 0 && probes(bob) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message crossed after the restart: last error %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling the engines' reconnection: no event to await
	}
	assert.Equal(t, []string{alice.ID()}, n1.GroupMembers("crew"), "membership on n1 intact")
	assert.Equal(t, []string{bob.ID()}, n2.GroupMembers("crew"), "membership on n2 intact")
	require.NoError(t, n2.Hub.SendToGroup(ctx, "crew", "After"))
	waitFor(t, alice, "After")
	waitFor(t, bob, "After")
}

// probes counts the probes c received.
func probes(c *hubtest.Client) int {
	n := 0
	for _, m := range c.Received() {
		if m.Target == "Probe" {
			n++
		}
	}
	return n
}

// waitFor reads c's messages until target arrives, skipping probes.
func waitFor(t *testing.T, c *hubtest.Client, target string) {
	t.Helper()
	for {
		m := c.Next()
		if m.Target == target {
			return
		}
		if m.Target != "Probe" {
			t.Fatalf("want %s, got %s", target, m)
		}
	}
}
