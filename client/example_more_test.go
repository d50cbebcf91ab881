package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/client"
)

// A hub method's result decoded into a Go type.
func ExampleInvokeAs() {
	type forecast struct {
		City  string `json:"city"`
		TempC int    `json:"tempC"`
	}
	hub, err := signalhub.New(&signalhub.Options{
		Methods: map[string]any{
			"Forecast": func(c *signalhub.Context, city string) forecast {
				return forecast{City: city, TempC: 21}
			},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serveHub(hub)
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	f, err := client.InvokeAs[forecast](ctx, c, "Forecast", "Lisbon")
	fmt.Printf("%+v %v\n", f, err)
	// Output: {City:Lisbon TempC:21} <nil>
}

// A token for every negotiate and connect, reconnects included: return a
// fresh one from AccessToken when tokens expire.
func ExampleOptions_accessToken() {
	secret := []byte("a long random secret")
	auth, err := signalhub.NewJWTAuthenticator(signalhub.JWTOptions{Key: secret})
	if err != nil {
		log.Fatal(err)
	}
	hub, err := signalhub.New(&signalhub.Options{
		Authenticate: auth,
		RequireAuth:  true,
		Methods: map[string]any{
			"WhoAmI": func(c *signalhub.Context) string { return c.UserID() },
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serveHub(hub)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	_, err = client.Dial(ctx, url, nil)
	var he *client.HTTPError
	if errors.As(err, &he) {
		fmt.Println("without a token:", he.Op, he.StatusCode)
	}

	c, err := client.Dial(ctx, url, &client.Options{
		AccessToken: func(ctx context.Context) (string, error) {
			// Your login flow's token; here one signed on the spot.
			return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
				"sub": "alice",
				"exp": time.Now().Add(time.Hour).Unix(),
			}).SignedString(secret)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	who, err := client.InvokeAs[string](ctx, c, "WhoAmI")
	fmt.Println("with a token:", who, err)
	// Output:
	// without a token: negotiate 401
	// with a token: alice <nil>
}

// A hub that shuts down, as during a deploy, invites its clients to
// reconnect; with a reconnect policy the client comes back, here to the
// server's replacement behind the same URL, as a new connection.
func ExampleDefaultReconnect() {
	newHub := func(name string) *signalhub.Hub {
		hub, err := signalhub.New(&signalhub.Options{
			Methods: map[string]any{
				"Server": func(c *signalhub.Context) string { return name },
			},
		})
		if err != nil {
			log.Fatal(err)
		}
		return hub
	}
	old, replacement := newHub("old"), newHub("replacement")
	var current atomic.Pointer[signalhub.Hub]
	current.Store(old)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		current.Load().ServeHTTP(w, r) // both /hub and /hub/negotiate
	}))
	defer srv.Close()
	defer replacement.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reconnected := make(chan string, 1)
	c, err := client.Dial(ctx, srv.URL+"/hub", &client.Options{
		Reconnect:      client.DefaultReconnect(), // after 0s, 2s, 10s and 30s, then give up
		OnReconnecting: func(err error) { fmt.Println("reconnecting:", err) },
		OnReconnected:  func(connectionID string) { reconnected <- connectionID },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	first := c.ConnectionID()
	fmt.Println(client.InvokeAs[string](ctx, c, "Server"))

	current.Store(replacement)
	if err := old.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("new connection:", <-reconnected != first)
	fmt.Println(client.InvokeAs[string](ctx, c, "Server"))
	// Output:
	// old <nil>
	// reconnecting: client: server closed the connection
	// new connection: true
	// replacement <nil>
}
