package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/client"
)

// serveHub serves hub at /hub on a local test server and returns the hub
// URL and a function that stops both.
func serveHub(hub *signalhub.Hub) (url string, stop func()) {
	mux := http.NewServeMux()
	hub.Mount(mux, "/hub")
	srv := httptest.NewServer(mux)
	return srv.URL + "/hub", func() {
		_ = hub.Close()
		srv.Close()
	}
}

func ExampleDial() {
	hub, err := signalhub.New(&signalhub.Options{
		Methods: map[string]any{
			"Add": func(c *signalhub.Context, a, b int) int { return a + b },
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serveHub(hub)
	defer stop()

	ctx := context.Background()
	c, err := client.Dial(ctx, url, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	sum, err := client.InvokeAs[int](ctx, c, "Add", 40, 2)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sum)

	_, err = c.Invoke(ctx, "Subtract", 40, 2)
	var ie *client.InvocationError
	if errors.As(err, &ie) {
		fmt.Println(ie.Message)
	}
	// Output:
	// 42
	// Failed to invoke 'Subtract' due to an error on the server. HubException: Method does not exist.
}

func ExampleConn_On() {
	hub, err := signalhub.New(&signalhub.Options{
		Methods: map[string]any{
			"SendMessage": func(c *signalhub.Context, user, message string) error {
				return c.Hub().SendToAll(c.Context(), "ReceiveMessage", user, message)
			},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serveHub(hub)
	defer stop()

	c, err := client.New(url, nil)
	if err != nil {
		log.Fatal(err)
	}
	received := make(chan string, 1)
	// Arguments are decoded from JSON into the handler's parameter types.
	err = c.On("ReceiveMessage", func(user, message string) {
		received <- user + ": " + message
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if err := c.Send(ctx, "SendMessage", "gopher", "hello"); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-received)
	// Output: gopher: hello
}
