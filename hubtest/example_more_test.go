package hubtest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/client"
	"github.com/signalhub/signalhub/hubtest"
)

// chatMethods is a small hub contract for the examples.
func chatMethods() map[string]any {
	return map[string]any{
		"Join": func(c *signalhub.Context, room string) error {
			return c.Hub().AddToGroup(c.Context(), c.ConnectionID(), room)
		},
		"Say": func(c *signalhub.Context, room, text string) error {
			return c.Hub().SendToGroup(c.Context(), room, "Said", c.UserID(), text)
		},
		"Rename": func(c *signalhub.Context, name string) (string, error) {
			if c.Claims().String("role") != "admin" {
				return "", signalhub.HubError{Message: "admins only"}
			}
			return "renamed to " + name, nil
		},
	}
}

// A hub method's result, a HubError and a connection's claims, in a test.
func ExampleServer_ConnectWith() {
	t := &exampleT{}
	defer t.cleanup()

	srv := hubtest.NewServer(t, hubtest.NewHub(t, &signalhub.Options{Methods: chatMethods()}))
	admin := srv.ConnectWith(hubtest.ConnectOptions{Claims: signalhub.Claims{"sub": "alice", "role": "admin"}})
	bob := srv.Connect("bob")

	fmt.Println(string(admin.MustInvoke("Rename", "gophers")))
	_, err := bob.Invoke("Rename", "mine")
	var ie *client.InvocationError
	if errors.As(err, &ie) {
		fmt.Println(ie.Message)
	}
	// Output:
	// "renamed to gophers"
	// An unexpected error occurred invoking 'Rename' on the server. HubException: admins only
}

// A reconnect is a new connection: it keeps the user but not the groups.
func ExampleClient_Reconnect() {
	t := &exampleT{}
	defer t.cleanup()

	srv := hubtest.NewServer(t, hubtest.NewHub(t, &signalhub.Options{Methods: chatMethods()}))
	alice, bob := srv.Connect("alice"), srv.Connect("bob")
	alice.MustInvoke("Join", "room")
	bob.MustInvoke("Join", "room")

	alice = alice.Reconnect()
	fmt.Println("alice's groups:", srv.ConnectionGroups(alice.ID()))
	fmt.Println("alice's connections:", len(srv.UserConnections("alice")))

	bob.MustInvoke("Say", "room", "anyone?")
	bob.Expect("Said", "bob", "anyone?")
	alice.ExpectNothing()
	// Output:
	// alice's groups: []
	// alice's connections: 1
}

// Three nodes joined by an in-memory backplane: a client of one node
// reaches users and groups on every node.
func ExampleNewCluster() {
	t := &exampleT{}
	defer t.cleanup()

	nodes, _ := hubtest.NewCluster(t, 3, &signalhub.Options{Methods: chatMethods()})
	alice, bob, carol := nodes[0].Connect("alice"), nodes[1].Connect("bob"), nodes[2].Connect("carol")
	for _, c := range []*hubtest.Client{alice, bob, carol} {
		c.MustInvoke("Join", "room")
	}

	carol.MustInvoke("Say", "room", "hello from node 3")
	alice.Expect("Said", "carol", "hello from node 3")
	bob.Expect("Said", "carol", "hello from node 3")

	n, err := nodes[0].Hub.GroupCount(context.Background(), "room")
	fmt.Println("members, cluster-wide:", n, err)
	fmt.Println("members on node 1:", len(nodes[0].GroupMembers("room")))
	fmt.Println(nodes[0].Hub.ClusterNodes())
	// Output:
	// members, cluster-wide: 3 <nil>
	// members on node 1: 1
	// [node1 node2 node3]
}

// The same test clients over loopback TCP, for tests that need a real
// network; Server.URL is the hub's address for clients built by hand.
func ExampleNewNetworkServer() {
	t := &exampleT{}
	defer t.cleanup()

	srv := hubtest.NewNetworkServer(t, hubtest.NewHub(t, &signalhub.Options{Methods: chatMethods()}))
	alice := srv.Connect("alice")
	alice.MustInvoke("Join", "room")
	alice.MustInvoke("Say", "room", "over TCP")
	fmt.Println(alice.Next())
	fmt.Println(srv.URL[:len("http://127.0.0.1:")])
	// Output:
	// Said("alice", "over TCP")
	// http://127.0.0.1:
}
