package signalhub_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/backplane/backplanetest"
	goclient "github.com/signalhub/signalhub/client"
	"github.com/signalhub/signalhub/protocol"
)

// Mounting the hub by hand, behind the application's own authentication
// middleware, which passes the user's claims on with ContextWithClaims.
func ExampleHub_ServeHTTP() {
	hub, err := signalhub.New(&signalhub.Options{
		RequireAuth: true, // no claims, no connection
		Methods: map[string]any{
			"WhoAmI": func(c *signalhub.Context) string { return c.UserID() },
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	// sessions stands in for the app's session middleware.
	sessions := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if user := r.Header.Get("X-Demo-User"); user != "" {
				r = r.WithContext(signalhub.ContextWithClaims(r.Context(), signalhub.Claims{"sub": user}))
			}
			next.ServeHTTP(w, r)
		})
	}
	mux := http.NewServeMux()
	// Both the hub path and its negotiate endpoint go to the hub.
	mux.Handle("/hub", sessions(hub))
	mux.Handle("/hub/negotiate", sessions(hub))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer hub.Shutdown(context.Background())

	res, err := http.Post(srv.URL+"/hub/negotiate?negotiateVersion=1", "text/plain", nil)
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	fmt.Println("negotiate without a session:", res.StatusCode)

	alice := connect(srv.URL+"/hub", "alice")
	defer alice.close()
	fmt.Println("WhoAmI:", alice.invoke("WhoAmI"))
	// Output:
	// negotiate without a session: 401
	// WhoAmI: "alice"
}

// audienceDemo serves a hub with alice, bob and carol connected (alice on
// two devices), all of them in group "team" but carol, and returns what
// each one received from send.
func audienceDemo(send func(hub *signalhub.Hub) error) {
	hub, err := signalhub.New(&signalhub.Options{Authenticate: demoAuth})
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(hub)
	defer stop()

	clients := map[string]*exampleClient{}
	for _, name := range []string{"alice (phone)", "alice (laptop)", "bob", "carol"} {
		user, _, _ := strings.Cut(name, " ")
		c := connect(url, user)
		defer c.close()
		clients[name] = c
	}
	ctx := context.Background()
	for _, user := range []string{"alice", "bob"} {
		for _, id := range hub.UserConnections(user) {
			if err := hub.AddToGroup(ctx, id, "team"); err != nil {
				log.Fatal(err)
			}
		}
	}

	if err := send(hub); err != nil {
		log.Fatal(err)
	}
	// A last message to everyone marks the end: what came before it is
	// what the send delivered.
	if err := hub.SendToAll(ctx, "End"); err != nil {
		log.Fatal(err)
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range clients {
			if !yield(n) {
				return
			}
		}
	}) {
		fmt.Printf("%-15s %v\n", name+":", clients[name].until("End"))
	}
}

// until returns the invocations that arrive before target.
func (c *exampleClient) until(target string) []string {
	got := []string{}
	for {
		s := c.next()
		if strings.HasPrefix(s, target+" ") {
			return got
		}
		got = append(got, s)
	}
}

// firstConnection returns the ID of the user's only (or any) connection.
func firstConnection(hub *signalhub.Hub, user string) string {
	ids := hub.UserConnections(user)
	if len(ids) == 0 {
		log.Fatalf("%s has no connection", user)
	}
	return ids[0]
}

func ExampleHub_SendToAll() {
	audienceDemo(func(hub *signalhub.Hub) error {
		return hub.SendToAll(context.Background(), "Announce", "maintenance at noon")
	})
	// Output:
	// alice (laptop): [Announce ["maintenance at noon"]]
	// alice (phone):  [Announce ["maintenance at noon"]]
	// bob:            [Announce ["maintenance at noon"]]
	// carol:          [Announce ["maintenance at noon"]]
}

func ExampleHub_SendToAllExcept() {
	audienceDemo(func(hub *signalhub.Hub) error {
		bob := firstConnection(hub, "bob")
		return hub.SendToAllExcept(context.Background(), []string{bob}, "Announce", "bob left")
	})
	// Output:
	// alice (laptop): [Announce ["bob left"]]
	// alice (phone):  [Announce ["bob left"]]
	// bob:            []
	// carol:          [Announce ["bob left"]]
}

func ExampleHub_SendToConnection() {
	audienceDemo(func(hub *signalhub.Hub) error {
		return hub.SendToConnection(context.Background(), firstConnection(hub, "carol"), "Notify", "just you")
	})
	// Output:
	// alice (laptop): []
	// alice (phone):  []
	// bob:            []
	// carol:          [Notify ["just you"]]
}

func ExampleHub_SendToConnections() {
	audienceDemo(func(hub *signalhub.Hub) error {
		ids := []string{firstConnection(hub, "bob"), firstConnection(hub, "carol"), firstConnection(hub, "bob")}
		return hub.SendToConnections(context.Background(), ids, "Notify", "once each")
	})
	// Output:
	// alice (laptop): []
	// alice (phone):  []
	// bob:            [Notify ["once each"]]
	// carol:          [Notify ["once each"]]
}

func ExampleHub_SendToUsers() {
	audienceDemo(func(hub *signalhub.Hub) error {
		return hub.SendToUsers(context.Background(), []string{"alice", "carol"}, "Notify", "every device")
	})
	// Output:
	// alice (laptop): [Notify ["every device"]]
	// alice (phone):  [Notify ["every device"]]
	// bob:            []
	// carol:          [Notify ["every device"]]
}

func ExampleHub_SendToGroup() {
	audienceDemo(func(hub *signalhub.Hub) error {
		return hub.SendToGroup(context.Background(), "team", "Notify", "standup in 5")
	})
	// Output:
	// alice (laptop): [Notify ["standup in 5"]]
	// alice (phone):  [Notify ["standup in 5"]]
	// bob:            [Notify ["standup in 5"]]
	// carol:          []
}

func ExampleHub_SendToGroups() {
	audienceDemo(func(hub *signalhub.Hub) error {
		ctx := context.Background()
		if err := hub.AddToGroup(ctx, firstConnection(hub, "carol"), "guests"); err != nil {
			return err
		}
		if err := hub.AddToGroup(ctx, firstConnection(hub, "bob"), "guests"); err != nil {
			return err
		}
		// bob is in both groups and gets the message once.
		return hub.SendToGroups(ctx, []string{"team", "guests"}, "Notify", "lunch is served")
	})
	// Output:
	// alice (laptop): [Notify ["lunch is served"]]
	// alice (phone):  [Notify ["lunch is served"]]
	// bob:            [Notify ["lunch is served"]]
	// carol:          [Notify ["lunch is served"]]
}

func ExampleHub_SendToGroupExcept() {
	audienceDemo(func(hub *signalhub.Hub) error {
		// As OthersInGroup does for a hub method's caller.
		bob := firstConnection(hub, "bob")
		return hub.SendToGroupExcept(context.Background(), "team", []string{bob}, "Notify", "bob is typing")
	})
	// Output:
	// alice (laptop): [Notify ["bob is typing"]]
	// alice (phone):  [Notify ["bob is typing"]]
	// bob:            []
	// carol:          []
}

// Group membership managed from outside a hub method, such as an HTTP
// handler that has checked the user's rights.
func ExampleHub_AddToGroup() {
	hub, err := signalhub.New(&signalhub.Options{Authenticate: demoAuth})
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(hub)
	defer stop()
	alice := connect(url, "alice")
	defer alice.close()

	ctx := context.Background()
	id := firstConnection(hub, "alice")
	for _, group := range []string{"admins", "gophers", "gophers"} { // adding twice does nothing
		if err := hub.AddToGroup(ctx, id, group); err != nil {
			log.Fatal(err)
		}
	}
	groups := hub.ConnectionGroups(id)
	slices.Sort(groups)
	fmt.Println(groups, len(hub.GroupMembers("gophers")))

	err = hub.AddToGroup(ctx, "no-such-connection", "gophers")
	fmt.Println(errors.Is(err, signalhub.ErrConnectionNotFound))
	err = hub.AddToGroup(ctx, id, "")
	fmt.Println(errors.Is(err, signalhub.ErrEmptyName))
	// Output:
	// [admins gophers] 1
	// true
	// true
}

func ExampleHub_RemoveFromGroup() {
	hub, err := signalhub.New(&signalhub.Options{Authenticate: demoAuth})
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(hub)
	defer stop()
	alice := connect(url, "alice")
	defer alice.close()

	ctx := context.Background()
	id := firstConnection(hub, "alice")
	if err := hub.AddToGroup(ctx, id, "admins"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("members:", len(hub.GroupMembers("admins")), "groups:", hub.Stats().Groups)

	// Removing twice does nothing; the empty group is freed.
	for range 2 {
		if err := hub.RemoveFromGroup(ctx, id, "admins"); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("members:", len(hub.GroupMembers("admins")), "groups:", hub.Stats().Groups)
	// Output:
	// members: 1 groups: 1
	// members: 0 groups: 0
}

// Audiences relative to a hub method's caller, and the connection's item
// store.
func ExampleContext_Others() {
	hub, err := signalhub.New(&signalhub.Options{
		Authenticate: demoAuth,
		Methods: map[string]any{
			"SetName": func(c *signalhub.Context, name string) error {
				c.Set("name", name) // lives as long as the connection
				if err := c.Caller().Send(c.Context(), "Welcome", name); err != nil {
					return err
				}
				return c.Others().Send(c.Context(), "Joined", name)
			},
			"Say": func(c *signalhub.Context, text string) error {
				name, _ := c.Get("name")
				return c.Others().Send(c.Context(), "Said", name, text)
			},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(hub)
	defer stop()
	alice, bob := connect(url, "alice"), connect(url, "bob")
	defer alice.close()
	defer bob.close()

	alice.invoke("SetName", "Alice")
	fmt.Println("alice got:", alice.next())
	fmt.Println("bob got:  ", bob.next())
	bob.invoke("SetName", "Bob")
	bob.invoke("Say", "hi")
	fmt.Println("bob got:  ", bob.next())
	fmt.Println("alice got:", alice.next())
	fmt.Println("alice got:", alice.next())
	// Output:
	// alice got: Welcome ["Alice"]
	// bob got:   Joined ["Alice"]
	// bob got:   Welcome ["Bob"]
	// alice got: Joined ["Bob"]
	// alice got: Said ["Bob","hi"]
}

// A hub method ends its caller's connection: the client gets a Close
// message without an error, and does not reconnect.
func ExampleContext_Abort() {
	disconnected := make(chan error, 1)
	hub, err := signalhub.New(&signalhub.Options{
		Methods: map[string]any{
			"Quit": func(c *signalhub.Context) error {
				if err := c.Caller().Send(c.Context(), "Bye"); err != nil {
					return err
				}
				c.Abort()
				return nil
			},
		},
		OnDisconnected: func(c *signalhub.Context, err error) { disconnected <- err },
	})
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(hub)
	defer stop()
	c := connect(url, "")
	defer c.close()

	// A non-blocking invocation: the connection ends before any
	// Completion could go out.
	c.write(string(protocol.AppendInvocation(nil, "", "Quit", []byte("[]"))))
	fmt.Println(c.next())
	fmt.Println(c.closeMessage())
	fmt.Println("OnDisconnected:", <-disconnected)
	// Output:
	// Bye []
	// close: error "", allowReconnect false
	// OnDisconnected: <nil>
}

// closeMessage skips to the hub's Close message, closes the WebSocket as
// the official clients do then, and describes the message.
func (c *exampleClient) closeMessage() string {
	for {
		m := c.message()
		if m.Type == protocol.TypeClose {
			_ = c.ws.Close(websocket.StatusNormalClosure, "")
			return fmt.Sprintf("close: error %q, allowReconnect %v", m.Error, m.AllowReconnect)
		}
	}
}

// OnConnected and OnDisconnected run once each per connection; here they
// keep a user's group of devices and announce who comes and goes.
func ExampleOptions_lifecycle() {
	gone := make(chan string, 1)
	hub, err := signalhub.New(&signalhub.Options{
		Authenticate: demoAuth,
		OnConnected: func(c *signalhub.Context) error {
			if c.UserID() == "" {
				return signalhub.HubError{Message: "sign in first"} // closes the connection
			}
			return c.Others().Send(c.Context(), "Online", c.UserID())
		},
		OnDisconnected: func(c *signalhub.Context, err error) {
			// The connection's Context is done: send with a context of
			// your own.
			_ = c.Hub().SendToAll(context.Background(), "Offline", c.UserID())
			gone <- fmt.Sprintf("%s left, err=%v", c.UserID(), err)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(hub)
	defer stop()

	alice := connect(url, "alice")
	defer alice.close()
	bob := connect(url, "bob")
	fmt.Println("alice got:", alice.next())
	bob.close()
	fmt.Println(<-gone)
	fmt.Println("alice got:", alice.next())

	anonymous := connect(url, "")
	defer anonymous.close()
	fmt.Println(anonymous.closeMessage())
	// Output:
	// alice got: Online ["bob"]
	// bob left, err=<nil>
	// alice got: Offline ["bob"]
	// close: error "Connection closed with an error. HubException: sign in first", allowReconnect false
}

// Revoking a user's access: every connection of the user, on every node
// of a cluster, is closed with the reason and told not to reconnect.
func ExampleHub_DisconnectUser() {
	hub, err := signalhub.New(&signalhub.Options{Authenticate: demoAuth})
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(hub)
	defer stop()
	phone, laptop := connect(url, "mallory"), connect(url, "mallory")
	defer phone.close()
	defer laptop.close()

	ctx := context.Background()
	if err := hub.DisconnectUser(ctx, "mallory", "Your access was revoked."); err != nil {
		log.Fatal(err)
	}
	// Offline at once, while the Close messages are on their way.
	online, err := hub.UserOnline(ctx, "mallory")
	fmt.Println("online:", online, err)
	fmt.Println("phone: ", phone.closeMessage())
	fmt.Println("laptop:", laptop.closeMessage())
	// Output:
	// online: false <nil>
	// phone:  close: error "Your access was revoked.", allowReconnect false
	// laptop: close: error "Your access was revoked.", allowReconnect false
}

// Taking a user out of a group on every device at once, when the user's
// rights change.
func ExampleHub_RemoveUserFromGroup() {
	hub, err := signalhub.New(&signalhub.Options{Authenticate: demoAuth})
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(hub)
	defer stop()
	phone, laptop := connect(url, "alice"), connect(url, "alice")
	defer phone.close()
	defer laptop.close()

	ctx := context.Background()
	for _, id := range hub.UserConnections("alice") {
		if err := hub.AddToGroup(ctx, id, "admins"); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("admins:", len(hub.GroupMembers("admins")))
	if err := hub.RemoveUserFromGroup(ctx, "alice", "admins"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("admins:", len(hub.GroupMembers("admins")))
	// Output:
	// admins: 2
	// admins: 0
}

// Shutdown drains: a running hub method sees its Context end, finishes and
// sends its result; then the client gets a Close message that invites it
// to reconnect, to another server.
func ExampleHub_Shutdown() {
	started := make(chan struct{})
	hub, err := signalhub.New(&signalhub.Options{
		Methods: map[string]any{
			"Export": func(c *signalhub.Context) string {
				close(started)
				<-c.Context().Done() // a long job, cut short by the shutdown
				return "partial export"
			},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	hub.Mount(mux, "/hub")
	srv := httptest.NewServer(mux)
	defer srv.Close()

	c := connect(srv.URL+"/hub", "")
	defer c.close()
	c.write(string(protocol.AppendInvocation(nil, "1", "Export", []byte("[]"))))
	<-started

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- hub.Shutdown(ctx) }()

	m := c.message()
	fmt.Println("result:", string(m.Result))
	fmt.Println(c.closeMessage())
	fmt.Println("Shutdown:", <-done)
	fmt.Println("after:", hub.SendToAll(ctx, "Hello"))
	// Output:
	// result: "partial export"
	// close: error "", allowReconnect true
	// Shutdown: <nil>
	// after: signalhub: hub closed
}

// Client results: the hub asks a client and waits for the value its
// handler returns. A hub method may ask its own caller.
func ExampleInvokeConnectionAs() {
	hub, err := signalhub.New(&signalhub.Options{
		Methods: map[string]any{
			"DeleteAll": func(c *signalhub.Context) (string, error) {
				ctx, cancel := context.WithTimeout(c.Context(), 5*time.Second)
				defer cancel()
				ok, err := signalhub.InvokeConnectionAs[bool](ctx, c.Hub(), c.ConnectionID(), "Confirm", "Delete everything?")
				if err != nil {
					return "", err
				}
				if !ok {
					return "kept", nil
				}
				return "deleted", nil
			},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	hub.Mount(mux, "/hub")
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer hub.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := goclient.New(srv.URL+"/hub", nil)
	if err != nil {
		log.Fatal(err)
	}
	// A handler that returns a value answers the hub's invocation.
	if err := c.On("Confirm", func(question string) bool { return false }); err != nil {
		log.Fatal(err)
	}
	if err := c.On("GetLocation", func() (string, error) { return "Lisbon", nil }); err != nil {
		log.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	where, err := signalhub.InvokeConnectionAs[string](ctx, hub, c.ConnectionID(), "GetLocation")
	fmt.Println(where, err)

	answer, err := goclient.InvokeAs[string](ctx, c, "DeleteAll")
	fmt.Println(answer, err)

	_, err = hub.InvokeConnection(ctx, c.ConnectionID(), "GetBattery")
	var ce *signalhub.ClientError
	if errors.As(err, &ce) {
		fmt.Println(ce.Message)
	}
	// Output:
	// Lisbon <nil>
	// kept <nil>
	// Client didn't provide a result.
}

// Filters wrap every invocation: here one logs and one authorizes per
// method, the first outermost.
func ExampleFilter() {
	logCalls := signalhub.Filter{
		Invoke: func(c *signalhub.Context, inv *signalhub.Invocation, next func(*signalhub.Context, *signalhub.Invocation) (any, error)) (any, error) {
			res, err := next(c, inv)
			fmt.Printf("filter: %s%v by %s: %v, %v\n", inv.Method, inv.Args, c.UserID(), res, err)
			return res, err
		},
	}
	adminsOnly := signalhub.Filter{
		Invoke: func(c *signalhub.Context, inv *signalhub.Invocation, next func(*signalhub.Context, *signalhub.Invocation) (any, error)) (any, error) {
			if strings.HasPrefix(inv.Method, "Admin") && c.Claims().String("role") != "admin" {
				return nil, signalhub.HubError{Message: "not allowed"}
			}
			return next(c, inv)
		},
	}
	hub, err := signalhub.New(&signalhub.Options{
		Authenticate: demoAuth,
		Filters:      []signalhub.Filter{logCalls, adminsOnly},
		Methods: map[string]any{
			"AdminBan": func(c *signalhub.Context, user string) string { return user + " banned" },
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(hub)
	defer stop()
	c := connect(url, "bob")
	defer c.close()

	fmt.Println("client:", c.invoke("AdminBan", "alice"))
	// Output:
	// filter: AdminBan[alice] by bob: <nil>, not allowed
	// client: error: An unexpected error occurred invoking 'AdminBan' on the server. HubException: not allowed
}

// Two hubs joined by a backplane form one cluster: sends, group changes
// and counts reach every node. backplanetest.Bus is an in-memory
// backplane; in production each node gets a Redis or NATS engine
// (packages backplane/redis and backplane/nats).
func ExampleOptions_backplane() {
	bus := backplanetest.NewBus()
	var urls []string
	var hubs []*signalhub.Hub
	for _, node := range []string{"web-1", "web-2"} {
		hub, err := signalhub.New(&signalhub.Options{Backplane: bus.Node(), NodeID: node, Authenticate: demoAuth})
		if err != nil {
			log.Fatal(err)
		}
		url, stop := serve(hub)
		defer stop()
		urls, hubs = append(urls, url), append(hubs, hub)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, hub := range hubs {
		if err := hub.AwaitNodes(ctx, 2); err != nil { // the nodes have met
			log.Fatal(err)
		}
	}

	alice, bob := connect(urls[0], "alice"), connect(urls[1], "bob")
	defer alice.close()
	defer bob.close()

	// From web-1: bob's connection is on web-2.
	if err := hubs[0].SendToUser(ctx, "bob", "Notify", "from web-1"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("bob got:", bob.next())

	bobID := firstConnection(hubs[1], "bob")
	for _, id := range []string{firstConnection(hubs[0], "alice"), bobID} {
		if err := hubs[0].AddToGroup(ctx, id, "room"); err != nil {
			log.Fatal(err)
		}
	}
	n, err := hubs[1].GroupCount(ctx, "room")
	fmt.Println("room, cluster-wide:", n, err, "- on web-2:", len(hubs[1].GroupMembers("room")))
	if err := hubs[1].SendToGroup(ctx, "room", "Said", "hi"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("alice got:", alice.next())
	fmt.Println("nodes:", hubs[0].ClusterNodes(), strings.HasPrefix(bobID, "web-2."))
	// Output:
	// bob got: Notify ["from web-1"]
	// room, cluster-wide: 2 <nil> - on web-2: 1
	// alice got: Said ["hi"]
	// nodes: [web-1 web-2] true
}

// BearerToken reads a request's token as NewJWTAuthenticator does, for an
// Authenticator of your own (an opaque session token, say).
func ExampleBearerToken() {
	r := httptest.NewRequest(http.MethodGet, "/hub?id=xyz&access_token=from-query", nil)
	fmt.Printf("%q\n", signalhub.BearerToken(r))
	r.Header.Set("Authorization", "Bearer from-header")
	fmt.Printf("%q\n", signalhub.BearerToken(r))
	// Output:
	// "from-query"
	// "from-header"
}

// The user ID is the NameIdentifier claim, as ASP.NET Core reads it.
func ExampleDefaultUserID() {
	fmt.Printf("%q\n", signalhub.DefaultUserID(signalhub.Claims{"sub": "alice", "nameid": "ignored"}))
	fmt.Printf("%q\n", signalhub.DefaultUserID(signalhub.Claims{"nameid": "bob"}))
	fmt.Printf("%q\n", signalhub.DefaultUserID(signalhub.Claims{"email": "carol@example.com"}))
	// Output:
	// "alice"
	// "bob"
	// ""
}

// Choosing another claim as the user ID, with a limit on connections per
// user.
func ExampleOptions_userID() {
	hub, err := signalhub.New(&signalhub.Options{
		Authenticate:          demoAuth,
		UserID:                func(c signalhub.Claims) string { return "user-" + c.String("sub") },
		MaxConnectionsPerUser: 1,
		Methods: map[string]any{
			"WhoAmI": func(c *signalhub.Context) string { return c.UserID() },
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(hub)
	defer stop()
	c := connect(url, "alice")
	defer c.close()
	fmt.Println(c.invoke("WhoAmI"))

	req, _ := http.NewRequest(http.MethodPost, url+"/negotiate?negotiateVersion=1", nil)
	req.Header.Set("X-Demo-User", "alice")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	fmt.Println("a second connection:", res.StatusCode)
	// Output:
	// "user-alice"
	// a second connection: 429
}
