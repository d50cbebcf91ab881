package backplanetest_test

import (
	"context"
	"fmt"

	"github.com/signalhub/signalhub/backplane/backplanetest"
)

// Two nodes of one cluster: the second gets what the first publishes on a
// channel it subscribed to.
func ExampleBus() {
	ctx := context.Background()
	bus := backplanetest.NewBus()
	n1, n2 := bus.Node(), bus.Node()
	defer n1.Close()
	defer n2.Close()

	got := make(chan string, 1)
	if err := n1.Start(ctx, func(string, []byte) {}); err != nil {
		fmt.Println(err)
		return
	}
	if err := n2.Start(ctx, func(channel string, data []byte) { got <- channel + ": " + string(data) }); err != nil {
		fmt.Println(err)
		return
	}
	if err := n2.Subscribe(ctx, "group:room 1"); err != nil {
		fmt.Println(err)
		return
	}
	if err := n1.Publish(ctx, "group:room 1", []byte("hello")); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-got)
	// Output: group:room 1: hello
}
