package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/examples/chatapp"
	"github.com/signalhub/signalhub/hubtest"
)

// The methods the page calls: JoinGroup, LeaveGroup, SendGroupMessage and
// SendPrivate, whose messages name users and say where they belong.

func TestPageGroupMessagesReachMembersOnly(t *testing.T) {
	t.Parallel()
	srv := newChat(t)
	alice, bob, carol := srv.Connect("alice"), srv.Connect("bob"), srv.Connect("carol")

	alice.MustInvoke("JoinGroup", "gophers")
	alice.Expect("GroupJoined", "gophers", "alice")
	bob.MustInvoke("JoinGroup", "gophers")
	alice.Expect("GroupJoined", "gophers", "bob")
	bob.Expect("GroupJoined", "gophers", "bob")
	assert.Equal(t, sortedIDs(alice, bob), srv.GroupMembers("gophers"))

	alice.MustInvoke("SendGroupMessage", "gophers", "<b>hi</b> & bye")
	alice.Expect("GroupMessage", "gophers", "alice", "<b>hi</b> & bye")
	bob.Expect("GroupMessage", "gophers", "alice", "<b>hi</b> & bye")

	_, err := carol.Invoke("SendGroupMessage", "gophers", "let me in")
	assert.ErrorContains(t, err, "HubException: join the group gophers first")
	carol.ExpectNothing()

	bob.MustInvoke("LeaveGroup", "gophers")
	alice.Expect("GroupLeft", "gophers", "bob")
	_, err = bob.Invoke("SendGroupMessage", "gophers", "still here?")
	assert.ErrorContains(t, err, "HubException: join the group gophers first")
	alice.MustInvoke("SendGroupMessage", "gophers", "alone now")
	alice.Expect("GroupMessage", "gophers", "alice", "alone now")
	bob.ExpectNothing()
	carol.ExpectNothing()
}

func TestPageGroupNamesTheUserCanFix(t *testing.T) {
	t.Parallel()
	srv := hubtest.NewServer(t, hubtest.NewHub(t, &signalhub.Options{
		Methods:                chatapp.Methods(),
		MaxGroupsPerConnection: 1,
	}))
	alice := srv.Connect("alice")

	tests := []struct {
		name, method, group, want string
	}{
		{"empty join", "JoinGroup", "", "HubException: group name is required"},
		{"empty leave", "LeaveGroup", "", "HubException: group name is required"},
		{"empty send", "SendGroupMessage", "", "HubException: group name is required"},
		{"too long", "JoinGroup", strings.Repeat("g", 300), "HubException: group name is too long or has characters that are not allowed"},
		{"control character", "JoinGroup", "a\nb", "HubException: group name is too long or has characters that are not allowed"},
	}
	for _, tc := range tests {
		args := []any{tc.group}
		if tc.method == "SendGroupMessage" {
			args = append(args, "text")
		}
		_, err := alice.Invoke(tc.method, args...)
		assert.ErrorContains(t, err, tc.want, tc.name)
	}

	alice.MustInvoke("JoinGroup", "first")
	alice.Expect("GroupJoined", "first", "alice")
	_, err := alice.Invoke("JoinGroup", "second")
	assert.ErrorContains(t, err, "HubException: you are in too many groups: leave one first")
	assert.Equal(t, []string{"first"}, srv.ConnectionGroups(alice.ID()))
	alice.ExpectNothing()
}

func TestPageGroupsAreJoinedAgainAfterReconnect(t *testing.T) {
	t.Parallel()
	srv := newChat(t)
	alice, bob := srv.Connect("alice"), srv.Connect("bob")
	for _, c := range []*hubtest.Client{alice, bob} {
		c.MustInvoke("JoinGroup", "gophers")
	}
	alice.Expect("GroupJoined", "gophers", "alice")
	alice.Expect("GroupJoined", "gophers", "bob")
	bob.Expect("GroupJoined", "gophers", "bob")

	again := alice.Reconnect()
	_, err := again.Invoke("SendGroupMessage", "gophers", "lost?")
	assert.ErrorContains(t, err, "HubException: join the group gophers first", "membership ended with the old connection")

	// What the page does in onreconnected.
	again.MustInvoke("JoinGroup", "gophers")
	again.Expect("GroupJoined", "gophers", "alice")
	bob.Expect("GroupJoined", "gophers", "alice")
	bob.MustInvoke("SendGroupMessage", "gophers", "welcome back")
	again.Expect("GroupMessage", "gophers", "bob", "welcome back")
}

func TestPagePrivateMessages(t *testing.T) {
	t.Parallel()
	srv := newChat(t)
	phone, laptop := srv.Connect("alice"), srv.Connect("alice")
	bob, carol, anon := srv.Connect("bob"), srv.Connect("carol"), srv.Connect("")
	require.Len(t, srv.UserConnections("alice"), 2)

	bob.MustInvoke("SendPrivate", "alice", "psst")
	phone.Expect("PrivateMessage", "bob", "alice", "psst")
	laptop.Expect("PrivateMessage", "bob", "alice", "psst")
	bob.Expect("PrivateMessage", "bob", "alice", "psst") // the sender's copy
	carol.ExpectNothing()
	anon.ExpectNothing()

	// A note to oneself arrives once on each of one's connections.
	phone.MustInvoke("SendPrivate", "alice", "note")
	phone.Expect("PrivateMessage", "alice", "alice", "note")
	laptop.Expect("PrivateMessage", "alice", "alice", "note")
	phone.ExpectNothing()
	laptop.ExpectNothing()

	// To a user with no connections: the sender still gets its copy.
	carol.MustInvoke("SendPrivate", "dave", "are you there?")
	carol.Expect("PrivateMessage", "carol", "dave", "are you there?")

	_, err := bob.Invoke("SendPrivate", "", "to nobody")
	assert.ErrorContains(t, err, "HubException: user is required")
	_, err = anon.Invoke("SendPrivate", "alice", "guess who")
	assert.ErrorContains(t, err, "HubException: sign in to send private messages")
	for _, c := range []*hubtest.Client{phone, laptop, bob, carol, anon} {
		c.ExpectNothing()
	}
}
