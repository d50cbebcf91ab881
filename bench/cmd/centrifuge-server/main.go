// Command centrifuge-server serves a centrifuge Node (in-memory broker) for
// the load generator.
//
// Clients connect at /connection/websocket with the query parameters user
// and group (optional) and speak Centrifuge's JSON client protocol: a
// connect command, whose reply carries server-side subscriptions to the
// channels "g.GROUP" and "u.USER" (the user's personal channel), then
// pushes, and an empty reply to each of the server's pings. An async
// message (the protocol's send command) whose data is ["USER",MESSAGE]
// publishes MESSAGE to the channel "u.USER". The control API's publish
// publishes to "g.GROUP". Node.Publish carries every message.
package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"

	"github.com/centrifugal/centrifuge"

	"github.com/signalhub/signalhub/bench/internal/server"
)

type ctxKey struct{}

func main() {
	node, err := centrifuge.New(centrifuge.Config{
		LogLevel: centrifuge.LogLevelWarn,
		LogHandler: func(e centrifuge.LogEntry) {
			slog.Warn(e.Message, "system", "centrifuge", "fields", e.Fields, "err", e.Error)
		},
	})
	if err != nil {
		slog.Error("centrifuge.New", "err", err)
		os.Exit(1)
	}
	node.OnConnecting(func(ctx context.Context, e centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
		q, _ := ctx.Value(ctxKey{}).(map[string][]string)
		subs := map[string]centrifuge.SubscribeOptions{}
		if u := first(q["user"]); u != "" {
			subs["u."+u] = centrifuge.SubscribeOptions{}
		}
		if g := first(q["group"]); g != "" {
			subs["g."+g] = centrifuge.SubscribeOptions{}
		}
		return centrifuge.ConnectReply{Subscriptions: subs}, nil
	})
	node.OnConnect(func(c *centrifuge.Client) {
		server.Conns.Add(1)
		c.OnDisconnect(func(centrifuge.DisconnectEvent) { server.Conns.Add(-1) })
		c.OnMessage(func(e centrifuge.MessageEvent) {
			to, msg, ok := splitSend(e.Data)
			if !ok {
				return
			}
			// The protocol decoder may reuse its buffer once the handler
			// returns; the publication must own its data.
			_, _ = node.Publish("u."+to, bytes.Clone(msg))
		})
	})
	if err := node.Run(); err != nil {
		slog.Error("centrifuge.Run", "err", err)
		os.Exit(1)
	}
	ws := centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{
		CheckOrigin: func(*http.Request) bool { return true },
	})

	server.Main(server.System{
		Name: "centrifuge",
		Register: func(mux *http.ServeMux) {
			mux.HandleFunc("/connection/websocket", func(w http.ResponseWriter, r *http.Request) {
				q := r.URL.Query()
				ctx := centrifuge.SetCredentials(r.Context(), &centrifuge.Credentials{UserID: q.Get("user")})
				ctx = context.WithValue(ctx, ctxKey{}, map[string][]string(q))
				ws.ServeHTTP(w, r.WithContext(ctx))
			})
		},
		Publish: func(group string, msg []byte) error {
			_, err := node.Publish("g."+group, msg)
			return err
		},
	})
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// splitSend reads the data of a send command, ["USER",MESSAGE], where USER
// has no quote or backslash, without a JSON decoder: the other systems'
// programs split their frames just as cheaply.
func splitSend(data []byte) (to string, msg []byte, ok bool) {
	rest, found := bytes.CutPrefix(data, []byte(`["`))
	if !found {
		return "", nil, false
	}
	user, rest, found := bytes.Cut(rest, []byte(`",`))
	if !found || len(rest) == 0 || rest[len(rest)-1] != ']' {
		return "", nil, false
	}
	return string(user), rest[:len(rest)-1], true
}
