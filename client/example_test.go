package client_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"

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

func ExampleStreamAs() {
	hub, err := signalhub.New(&signalhub.Options{
		Methods: map[string]any{
			"Countdown": func(c *signalhub.Context, from int) iter.Seq[int] {
				return func(yield func(int) bool) {
					for i := from; i > 0; i-- {
						if !yield(i) {
							return // the client cancelled
						}
					}
				}
			},
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

	for n, err := range client.StreamAs[int](ctx, c, "Countdown", 3) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(n)
	}
	// Breaking out of the loop cancels the stream on the server.
	for n, err := range client.StreamAs[int](ctx, c, "Countdown", 1000) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("first of 1000:", n)
		break
	}
	// Output:
	// 3
	// 2
	// 1
	// first of 1000: 1000
}

func ExampleInvokeAs_streamArgument() {
	hub, err := signalhub.New(&signalhub.Options{
		Methods: map[string]any{
			// A parameter of type <-chan T (or iter.Seq2[T, error]) is a
			// stream from the client.
			"Sum": func(c *signalhub.Context, numbers <-chan int) int {
				sum := 0
				for n := range numbers {
					sum += n
				}
				return sum
			},
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

	// An iter.Seq, an iter.Seq2[T, error] or a <-chan T argument is sent
	// item by item.
	sum, err := client.InvokeAs[int](ctx, c, "Sum", slices.Values([]int{1, 2, 3, 4}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sum)

	numbers := make(chan int)
	go func() {
		defer close(numbers) // completes the stream
		for i := range 5 {
			numbers <- i * 10
		}
	}()
	sum, err = client.InvokeAs[int](ctx, c, "Sum", numbers)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sum)
	// Output:
	// 10
	// 100
}
