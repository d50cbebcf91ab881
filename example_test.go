package signalhub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/protocol"
)

func ExampleNew() {
	hub, err := signalhub.New(&signalhub.Options{
		Methods: map[string]any{
			// Arguments are decoded from JSON into the parameter types;
			// the result is what the client's invoke resolves to.
			"Add": func(c *signalhub.Context, a, b int) int { return a + b },
			"Greet": func(c *signalhub.Context, name string) (string, error) {
				if name == "" {
					return "", signalhub.HubError{Message: "name is required"}
				}
				return "hello, " + name, nil
			},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(hub)
	defer stop()

	c := connect(url, "")
	defer c.close()
	fmt.Println(c.invoke("Add", 40, 2))
	fmt.Println(c.invoke("Greet", "gopher"))
	fmt.Println(c.invoke("Greet", ""))
	// Output:
	// 42
	// "hello, gopher"
	// error: An unexpected error occurred invoking 'Greet' on the server. HubException: name is required
}

func ExampleHub_Mount() {
	hub, err := signalhub.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	hub.Mount(mux, "/chathub") // POST /chathub/negotiate and the WebSocket at /chathub

	srv := &http.Server{Addr: "localhost:5000", Handler: mux}
	// http.Server.Shutdown leaves WebSockets alone: the hub closes them.
	srv.RegisterOnShutdown(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hub.Shutdown(ctx)
	})
	_ = srv // srv.ListenAndServe()
}

func ExampleHub_SendToUser() {
	hub, err := signalhub.New(&signalhub.Options{Authenticate: demoAuth})
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(hub)
	defer stop()

	phone, laptop := connect(url, "alice"), connect(url, "alice")
	defer phone.close()
	defer laptop.close()

	// From anywhere in the app: every connection of the user gets it.
	if err := hub.SendToUser(context.Background(), "alice", "Notify", "your report is ready"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("phone: ", phone.next())
	fmt.Println("laptop:", laptop.next())
	// Output:
	// phone:  Notify ["your report is ready"]
	// laptop: Notify ["your report is ready"]
}

func Example_groups() {
	hub, err := signalhub.New(&signalhub.Options{
		Authenticate: demoAuth,
		Methods: map[string]any{
			"Join": func(c *signalhub.Context, room string) error {
				if err := c.Hub().AddToGroup(c.Context(), c.ConnectionID(), room); err != nil {
					return err
				}
				return c.OthersInGroup(room).Send(c.Context(), "Joined", c.UserID())
			},
			"Say": func(c *signalhub.Context, room, text string) error {
				return c.Hub().SendToGroup(c.Context(), room, "Said", c.UserID(), text)
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

	alice.invoke("Join", "gophers")
	bob.invoke("Join", "gophers")
	fmt.Println("alice got:", alice.next())
	bob.invoke("Say", "gophers", "hi all")
	fmt.Println("alice got:", alice.next())
	fmt.Println("bob got:  ", bob.next())
	fmt.Println("members:  ", len(hub.GroupMembers("gophers")))
	// Output:
	// alice got: Joined ["bob"]
	// alice got: Said ["bob","hi all"]
	// bob got:   Said ["bob","hi all"]
	// members:   2
}

func ExampleNewJWTAuthenticator() {
	secret := []byte("a long random secret")
	auth, err := signalhub.NewJWTAuthenticator(signalhub.JWTOptions{
		Key:        secret,
		Algorithms: []string{"HS256"},
		Issuer:     "https://auth.example.com",
	})
	if err != nil {
		log.Fatal(err)
	}
	hub, err := signalhub.New(&signalhub.Options{Authenticate: auth})
	if err != nil {
		log.Fatal(err)
	}
	defer hub.Close()

	token, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice",
		"iss": "https://auth.example.com",
		"exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(secret)

	// Browsers send the token as a query parameter; other clients in the
	// Authorization header.
	r := httptest.NewRequest(http.MethodPost, "/chathub/negotiate?access_token="+token, nil)
	claims, err := auth(r)
	fmt.Println(signalhub.DefaultUserID(claims), err)

	r.URL.RawQuery = "access_token=forged." + token
	_, err = auth(r)
	fmt.Println(err != nil)
	// Output:
	// alice <nil>
	// true
}

// demoAuth trusts an X-Demo-User header. It stands in for real
// authentication (see NewJWTAuthenticator) to keep the examples short.
func demoAuth(r *http.Request) (signalhub.Claims, error) {
	if u := r.Header.Get("X-Demo-User"); u != "" {
		return signalhub.Claims{"sub": u}, nil
	}
	return nil, nil
}

// serve runs hub on a loopback test server.
func serve(hub *signalhub.Hub) (url string, stop func()) {
	mux := http.NewServeMux()
	hub.Mount(mux, "/hub")
	srv := httptest.NewServer(mux)
	return srv.URL + "/hub", func() {
		_ = hub.Shutdown(context.Background())
		srv.Close()
	}
}

// exampleClient is a bare-bones SignalR client so that the examples run on
// their own; apps use the official SignalR clients.
type exampleClient struct {
	ws      *websocket.Conn
	buf     []byte
	ids     int
	pending []string // invocations that arrived while invoke waited
}

func connect(hubURL, user string) *exampleClient {
	ctx := context.Background()
	header := http.Header{}
	if user != "" {
		header.Set("X-Demo-User", user)
	}
	ws, _, err := websocket.Dial(ctx, strings.Replace(hubURL, "http", "ws", 1), &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		log.Fatal(err)
	}
	c := &exampleClient{ws: ws}
	c.write(`{"protocol":"json","version":1}`)
	if rec := c.record(); string(rec) != "{}" {
		log.Fatalf("handshake: %s", rec)
	}
	return c
}

// next returns the next invocation the hub sent, as "Target [args]".
func (c *exampleClient) next() string {
	if len(c.pending) > 0 {
		s := c.pending[0]
		c.pending = c.pending[1:]
		return s
	}
	for {
		if s, ok := c.invocation(c.message()); ok {
			return s
		}
	}
}

func (c *exampleClient) invocation(m protocol.Message) (string, bool) {
	if m.Type != protocol.TypeInvocation {
		return "", false
	}
	args, _ := json.Marshal(m.Arguments)
	return m.Target + " " + string(args), true
}

// invoke calls a hub method and returns its result or error as text.
func (c *exampleClient) invoke(target string, args ...any) string {
	c.ids++
	id := fmt.Sprint(c.ids)
	enc, err := protocol.EncodeArguments(args)
	if err != nil {
		log.Fatal(err)
	}
	c.write(string(protocol.AppendInvocation(nil, id, target, enc)))
	for {
		m := c.message()
		if s, ok := c.invocation(m); ok {
			c.pending = append(c.pending, s)
		}
		if m.Type == protocol.TypeCompletion && m.InvocationID == id {
			if m.Error != "" {
				return "error: " + m.Error
			}
			return string(m.Result)
		}
	}
}

func (c *exampleClient) write(record string) {
	record = strings.TrimSuffix(record, "\x1e") + "\x1e"
	if err := c.ws.Write(context.Background(), websocket.MessageText, []byte(record)); err != nil {
		log.Fatal(err)
	}
}

// record returns the next record, reading frames as needed.
func (c *exampleClient) record() []byte {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if i := bytes.IndexByte(c.buf, 0x1e); i >= 0 {
			rec := c.buf[:i]
			c.buf = c.buf[i+1:]
			return rec
		}
		_, data, err := c.ws.Read(ctx)
		if err != nil {
			log.Fatal(err)
		}
		c.buf = append(c.buf, data...)
	}
}

func (c *exampleClient) message() protocol.Message {
	m, err := protocol.DecodeMessage(c.record())
	if err != nil {
		log.Fatal(err)
	}
	return m
}

// close ends the connection as the official clients do, with a Close
// message; the hub may have closed it already.
func (c *exampleClient) close() {
	_ = c.ws.Write(context.Background(), websocket.MessageText, []byte("{\"type\":7}\x1e"))
	_ = c.ws.Close(websocket.StatusNormalClosure, "")
}
