package hubtest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/client"
	"github.com/signalhub/signalhub/hubtest"
)

// A test of a hub method: alice on two devices and bob, no port, no token.
// In a real test, t is the test's own *testing.T.
func Example() {
	t := &exampleT{}
	defer t.cleanup()

	methods := map[string]any{
		"SendPrivateMessage": func(c *signalhub.Context, user, message string) error {
			return c.Hub().SendToUser(c.Context(), user, "ReceiveMessage", c.UserID(), message)
		},
	}
	srv := hubtest.NewServer(t, hubtest.NewHub(t, &signalhub.Options{Methods: methods}))
	phone, laptop, bob := srv.Connect("alice"), srv.Connect("alice"), srv.Connect("bob")

	bob.MustInvoke("SendPrivateMessage", "alice", "lunch?")
	phone.Expect("ReceiveMessage", "bob", "lunch?")
	laptop.Expect("ReceiveMessage", "bob", "lunch?")
	bob.ExpectNothing()

	fmt.Println(len(srv.UserConnections("alice")), "connections for alice")
	fmt.Println(laptop.Received()[0])
	// Output:
	// 2 connections for alice
	// ReceiveMessage("bob", "lunch?")
}

// Revoking a user's access in one call: every connection of the user is
// closed with the reason, at once out of the user and group indexes.
func Example_revocation() {
	t := &exampleT{}
	defer t.cleanup()

	hub := hubtest.NewHub(t, nil)
	srv := hubtest.NewServer(t, hub)
	phone, laptop, bob := srv.Connect("mallory"), srv.Connect("mallory"), srv.Connect("bob")

	ctx := context.Background()
	if err := hub.DisconnectUser(ctx, "mallory", "Your access was revoked."); err != nil {
		panic(err)
	}
	online, _ := hub.UserOnline(ctx, "mallory")
	fmt.Println("mallory online:", online)
	for _, c := range []*hubtest.Client{phone, laptop} {
		var ce *client.CloseError
		if errors.As(c.WaitClosed(), &ce) {
			fmt.Printf("closed: %q, reconnect allowed: %v\n", ce.Message, ce.AllowReconnect)
		}
	}
	bob.ExpectNothing()
	// Output:
	// mallory online: false
	// closed: "Your access was revoked.", reconnect allowed: false
	// closed: "Your access was revoked.", reconnect allowed: false
}

// exampleT stands in for a *testing.T so that the example runs on its own.
type exampleT struct {
	testing.TB
	cleanups []func()
}

func (t *exampleT) Helper()                           {}
func (t *exampleT) Output() io.Writer                 { return io.Discard }
func (t *exampleT) Cleanup(f func())                  { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

func (t *exampleT) cleanup() {
	for _, f := range slices.Backward(t.cleanups) {
		f()
	}
}
