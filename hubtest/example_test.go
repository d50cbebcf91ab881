package hubtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
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

// Testing streaming hub methods: a stream read whole, one read item by
// item and cancelled, and a stream to the hub passed as an argument.
func Example_streaming() {
	t := &exampleT{}
	defer t.cleanup()

	methods := map[string]any{
		"Countdown": func(c *signalhub.Context, from int) iter.Seq[int] {
			return func(yield func(int) bool) {
				for i := from; i > 0; i-- {
					if !yield(i) {
						return // cancelled
					}
				}
			}
		},
		"Sum": func(c *signalhub.Context, numbers <-chan int) int {
			sum := 0
			for n := range numbers {
				sum += n
			}
			return sum
		},
	}
	srv := hubtest.NewServer(t, hubtest.NewHub(t, &signalhub.Options{Methods: methods}))
	alice := srv.Connect("alice")

	var got []int
	for _, item := range alice.MustStream("Countdown", 3) {
		var n int
		if err := json.Unmarshal(item, &n); err != nil {
			panic(err)
		}
		got = append(got, n)
	}
	fmt.Println(got)

	s := alice.OpenStream("Countdown", 1000)
	s.Expect(1000, 999)
	s.Cancel()

	fmt.Println(string(alice.MustInvoke("Sum", slices.Values([]int{1, 2, 3}))))
	// Output:
	// [3 2 1]
	// 6
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
func (t *exampleT) Errorf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

func (t *exampleT) cleanup() {
	for _, f := range slices.Backward(t.cleanups) {
		f()
	}
}
