package main

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/examples/chatapp"
	"github.com/signalhub/signalhub/hubtest"
)

// newChat serves the chat's hub methods in memory.
func newChat(t *testing.T) *hubtest.Server {
	t.Helper()
	return hubtest.NewServer(t, hubtest.NewHub(t, &signalhub.Options{Methods: chatapp.Methods()}))
}

func TestSendMessageReachesEveryone(t *testing.T) {
	t.Parallel()
	srv := newChat(t)
	alice, bob, anon := srv.Connect("alice"), srv.Connect("bob"), srv.Connect("")

	alice.MustInvoke("SendMessage", "hello all")
	for _, c := range []*hubtest.Client{alice, bob, anon} {
		c.Expect("ReceiveMessage", "alice", "hello all")
	}
	anon.MustInvoke("SendMessage", "who am I?")
	bob.Expect("ReceiveMessage", "", "who am I?") // anonymous senders have an empty user
}

func TestSendMessageToCaller(t *testing.T) {
	t.Parallel()
	srv := newChat(t)
	alice, bob := srv.Connect("alice"), srv.Connect("bob")

	alice.MustInvoke("SendMessageToCaller", "just me")
	alice.Expect("ReceiveMessage", "alice", "just me")
	bob.ExpectNothing()
}

func TestPrivateMessageReachesEveryDeviceOfTheUser(t *testing.T) {
	t.Parallel()
	srv := newChat(t)
	phone, laptop, bob := srv.Connect("alice"), srv.Connect("alice"), srv.Connect("bob")
	require.Len(t, srv.UserConnections("alice"), 2)

	bob.MustInvoke("SendPrivateMessage", "alice", "psst")
	phone.Expect("ReceiveMessage", "bob", "psst")
	laptop.Expect("ReceiveMessage", "bob", "psst")
	bob.ExpectNothing()

	_, err := bob.Invoke("SendPrivateMessage", "", "to nobody")
	assert.ErrorContains(t, err, "HubException: user is required")
}

func TestGroups(t *testing.T) {
	t.Parallel()
	srv := newChat(t)
	alice, bob, carol := srv.Connect("alice"), srv.Connect("bob"), srv.Connect("carol")

	alice.MustInvoke("AddToGroup", "gophers")
	alice.Expect("Send", alice.ID()+" has joined the group gophers.")
	bob.MustInvoke("AddToGroup", "gophers")
	alice.Expect("Send", bob.ID()+" has joined the group gophers.")
	bob.Expect("Send", bob.ID()+" has joined the group gophers.")
	assert.Equal(t, srv.GroupMembers("gophers"), sortedIDs(alice, bob))

	carol.MustInvoke("SendMessageToGroup", "gophers", "can non-members post?")
	alice.Expect("ReceiveMessage", "carol", "can non-members post?")
	bob.Expect("ReceiveMessage", "carol", "can non-members post?")
	carol.ExpectNothing()

	alice.MustInvoke("RemoveFromGroup", "gophers")
	bob.Expect("Send", alice.ID()+" has left the group gophers.")
	alice.ExpectNothing() // the leaver is no longer a member

	_, err := alice.Invoke("AddToGroup", "")
	assert.ErrorContains(t, err, "HubException: group name is required")
}

func TestSendFileToGroup(t *testing.T) {
	t.Parallel()
	srv := newChat(t)
	alice, bob := srv.Connect("alice"), srv.Connect("bob")
	bob.MustInvoke("AddToGroup", "gophers")
	bob.Expect("Send", bob.ID()+" has joined the group gophers.")

	// JSON clients send and receive the bytes in base64, the time in RFC 3339.
	modified := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	alice.MustInvoke("SendFileToGroup", "gophers", "notes.txt", []byte("hi\x00"), modified)
	bob.Expect("ReceiveFile", "alice", "notes.txt", []byte("hi\x00"), modified)
	alice.ExpectNothing()

	_, err := alice.Invoke("SendFileToGroup", "", "x", []byte{}, modified)
	assert.ErrorContains(t, err, "HubException: group name is required")
}

func TestGroupsAreNotRestoredOnReconnect(t *testing.T) {
	t.Parallel()
	srv := newChat(t)
	alice, bob := srv.Connect("alice"), srv.Connect("bob")
	alice.MustInvoke("AddToGroup", "gophers")
	alice.Expect("Send", alice.ID()+" has joined the group gophers.")

	again := alice.Reconnect()
	assert.NotEqual(t, alice.ID(), again.ID())
	assert.Empty(t, srv.GroupMembers("gophers"), "membership ended with the old connection")
	bob.MustInvoke("SendMessageToGroup", "gophers", "anyone?")
	again.ExpectNothing()
}

func TestWhoAmI(t *testing.T) {
	t.Parallel()
	srv := newChat(t)
	for _, user := range []string{"alice", ""} {
		c := srv.Connect(user)
		var got struct {
			ConnectionID   string  `json:"connectionId"`
			UserIdentifier *string `json:"userIdentifier"`
		}
		require.NoError(t, json.Unmarshal(c.MustInvoke("WhoAmI"), &got))
		assert.Equal(t, c.ID(), got.ConnectionID)
		if user == "" {
			assert.Nil(t, got.UserIdentifier, "anonymous")
		} else {
			require.NotNil(t, got.UserIdentifier)
			assert.Equal(t, user, *got.UserIdentifier)
		}
	}
}

func sortedIDs(cs ...*hubtest.Client) []string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID()
	}
	slices.Sort(ids)
	return ids
}
