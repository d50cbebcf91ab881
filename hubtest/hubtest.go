// Package hubtest tests hub logic with real clients and no network, as
// net/http/httptest does for HTTP handlers.
//
// A Server serves a signalhub.Hub to clients built on the client package:
// in memory by default (NewServer: a real http.Server over in-memory pipes,
// so the WebSocket, the protocol encoding and the framing are the ones real
// connections use), or on a loopback port (NewNetworkServer). Clients
// connect as a given user with given claims, no token needed, and record
// everything the hub sends them:
//
//	srv := hubtest.NewServer(t, hubtest.NewHub(t, &signalhub.Options{Methods: methods}))
//	phone, laptop, bob := srv.Connect("alice"), srv.Connect("alice"), srv.Connect("bob")
//	bob.MustInvoke("SendPrivateMessage", "alice", "hi")
//	phone.Expect("ReceiveMessage", "bob", "hi")
//	laptop.Expect("ReceiveMessage", "bob", "hi")
//	bob.ExpectNothing()
//
// NewCluster serves several hubs joined by an in-memory backplane, as the
// nodes of one cluster, so that tests can show that sends, group changes,
// counts and revocation reach every node.
//
// Streaming hub methods are read whole with Client.Stream and MustStream,
// or item by item with OpenStream; a stream to the hub is an argument, as
// for the client package (slices.Values(items) uploads a slice):
//
//	s := alice.OpenStream("Countdown", 10)
//	s.Expect(10, 9, 8)
//	s.Cancel() // the hub method's Context ends
//	alice.MustInvoke("Sum", slices.Values([]int{1, 2, 3}))
//
// Every wait is bounded by Timeout and reports what arrived instead of what
// was expected. hubtest depends on testing.TB and the standard library only
// (besides this module), so tests may use any assertion library.
package hubtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/backplane/backplanetest"
)

// Timeout bounds every wait: connecting, invoking, Next, a whole Stream,
// and each wait for an item or the end of an OpenStream.
const Timeout = 5 * time.Second

// QuietPeriod is how long ExpectNothing listens before it concludes that
// nothing is coming. Short, to keep tests fast; a message that the hub
// queued before ExpectNothing was called arrives well within it.
const QuietPeriod = 100 * time.Millisecond

// claimsHeader carries a test client's claims to the server's middleware.
const claimsHeader = "X-Hubtest-Claims"

// NewHub returns a hub built from opts whose logs go to the test's output
// (unless opts.Logger is set), closed when the test ends.
func NewHub(tb testing.TB, opts *signalhub.Options) *signalhub.Hub {
	tb.Helper()
	var o signalhub.Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	hub, err := signalhub.New(&o)
	if err != nil {
		tb.Fatalf("hubtest: %v", err)
	}
	tb.Cleanup(func() { _ = hub.Close() })
	return hub
}

// Server serves a hub to test clients. Its methods must be called from the
// test's goroutine, or with care: they fail the test with tb.Fatalf.
type Server struct {
	// Hub is the hub under test.
	Hub *signalhub.Hub
	// URL is the hub's URL, for clients built by hand.
	URL string
	// HTTPClient reaches the server (in memory for NewServer).
	HTTPClient *http.Client

	tb testing.TB
}

// NewServer serves hub in memory, with no port: the clients' HTTP requests
// and WebSockets run over in-memory pipes to a real http.Server. The server
// and every client close when the test ends.
func NewServer(tb testing.TB, hub *signalhub.Hub) *Server {
	tb.Helper()
	ln := newMemListener()
	srv := &http.Server{Handler: handler(hub)}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	tb.Cleanup(func() {
		_ = hub.Close() // hijacked WebSockets are the hub's to close
		_ = srv.Close()
		<-served
	})
	return &Server{
		Hub:        hub,
		URL:        "http://hubtest/hub",
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: ln.DialContext}},
		tb:         tb,
	}
}

// NewNetworkServer serves hub on a loopback port through httptest.Server,
// for tests that need real TCP.
func NewNetworkServer(tb testing.TB, hub *signalhub.Hub) *Server {
	tb.Helper()
	srv := httptest.NewServer(handler(hub))
	tb.Cleanup(func() {
		_ = hub.Close()
		srv.Close()
	})
	return &Server{Hub: hub, URL: srv.URL + "/hub", HTTPClient: srv.Client(), tb: tb}
}

// handler mounts hub at /hub behind the middleware that turns a test
// client's claims header into request claims, as an app's own
// authentication middleware would.
func handler(hub *signalhub.Hub) http.Handler {
	mux := http.NewServeMux()
	hub.Mount(mux, "/hub")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get(claimsHeader); h != "" {
			claims, err := decodeClaims(h)
			if err != nil {
				http.Error(w, "hubtest: bad claims header", http.StatusBadRequest)
				return
			}
			r = r.WithContext(signalhub.ContextWithClaims(r.Context(), claims))
		}
		mux.ServeHTTP(w, r)
	})
}

func encodeClaims(c signalhub.Claims) (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func decodeClaims(s string) (signalhub.Claims, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	var c signalhub.Claims
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errors.New("hubtest: null claims")
	}
	return c, nil
}

// GroupMembers returns the connection IDs in group, sorted.
func (s *Server) GroupMembers(group string) []string {
	return slices.Sorted(slices.Values(s.Hub.GroupMembers(group)))
}

// UserConnections returns the user's connection IDs, sorted.
func (s *Server) UserConnections(user string) []string {
	return slices.Sorted(slices.Values(s.Hub.UserConnections(user)))
}

// ConnectionGroups returns the groups the connection is in, sorted.
func (s *Server) ConnectionGroups(connectionID string) []string {
	return slices.Sorted(slices.Values(s.Hub.ConnectionGroups(connectionID)))
}

func waitCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), Timeout)
}

// NewCluster serves n hubs built from opts, each in memory, joined by an
// in-memory backplane (backplanetest.Bus), as nodes "node1" to "nodeN" of
// one cluster. A client of one node reaches users and groups on every
// node. The bus is returned too, to simulate an outage with SetAvailable.
func NewCluster(tb testing.TB, n int, opts *signalhub.Options) ([]*Server, *backplanetest.Bus) {
	tb.Helper()
	bus := backplanetest.NewBus()
	nodes := make([]*Server, n)
	for i := range nodes {
		var o signalhub.Options
		if opts != nil {
			o = *opts
		}
		o.Backplane = bus.Node()
		o.NodeID = "node" + strconv.Itoa(i+1)
		nodes[i] = NewServer(tb, NewHub(tb, &o))
	}
	// The nodes learn of each other from their first heartbeats; wait for
	// that, so that cluster-wide counts are right from the start.
	ctx, cancel := waitCtx()
	defer cancel()
	for _, s := range nodes {
		if err := s.Hub.AwaitNodes(ctx, n); err != nil {
			tb.Fatalf("hubtest: %s knows nodes %v after %v, want %d", s.Hub.NodeID(), s.Hub.ClusterNodes(), Timeout, n)
		}
	}
	return nodes, bus
}
