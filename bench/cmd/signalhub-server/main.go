// Command signalhub-server serves a signalhub Hub for the load generator.
//
// Clients connect the SignalR way at /hub (negotiate, then the WebSocket
// and the JSON handshake) with the query parameters user (the user ID) and
// group (optional: a group the connection joins in OnConnected). The hub
// method Send(user, message) sends message to every connection of user as
// the invocation "m"; the control API's publish sends to a group with
// SendToGroup, also as "m".
package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/bench/internal/server"
)

func main() {
	hub, err := signalhub.New(&signalhub.Options{
		// Identity and group come from the query, as a token would carry
		// them in an app; the generator sends both on negotiate and connect.
		Authenticate: func(r *http.Request) (signalhub.Claims, error) {
			q := r.URL.Query()
			return signalhub.Claims{"sub": q.Get("user"), "group": q.Get("group")}, nil
		},
		OnConnected: func(c *signalhub.Context) error {
			if g := c.Claims().String("group"); g != "" {
				if err := c.Hub().AddToGroup(c.Context(), c.ConnectionID(), g); err != nil {
					return err
				}
			}
			server.Conns.Add(1)
			return nil
		},
		OnDisconnected: func(*signalhub.Context, error) { server.Conns.Add(-1) },
		Methods: map[string]any{
			"Send": func(c *signalhub.Context, user string, msg json.RawMessage) error {
				return c.Hub().SendToUser(c.Context(), user, "m", msg)
			},
		},
		// The generator's senders invoke Send at the rate a case asks for;
		// the other systems limit nothing, so neither does this hub.
		InvocationRate:        -1,
		MaxConnectionsPerUser: -1,
		Logger:                slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		slog.Error("signalhub.New", "err", err)
		os.Exit(1)
	}
	ctx := context.Background()
	server.Main(server.System{
		Name:     "signalhub",
		Register: func(mux *http.ServeMux) { hub.Mount(mux, "/hub") },
		Publish: func(group string, msg []byte) error {
			return hub.SendToGroup(ctx, group, "m", json.RawMessage(msg))
		},
	})
}
