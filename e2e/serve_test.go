package e2e

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
)

// serveHub mounts hub at /hub on an httptest server, after configure has
// set up the server, and returns the hub's URL. Cleanup closes the hub and
// then the server.
func serveHub(t *testing.T, hub *signalhub.Hub, configure ...func(*http.Server)) string {
	t.Helper()
	mux := http.NewServeMux()
	hub.Mount(mux, "/hub")
	srv := httptest.NewUnstartedServer(mux)
	for _, c := range configure {
		c(srv.Config)
	}
	srv.Start()
	t.Cleanup(func() {
		require.NoError(t, hub.Close())
		srv.Close()
	})
	return srv.URL + "/hub"
}

// protocolCheck returns Metrics that record the hub protocol of every
// connection that joins, and checks when the test ends that at least one
// joined and all of them used want: a subtest named for a protocol fails
// if its client negotiated another one.
func protocolCheck(t *testing.T, want string) *signalhub.Metrics {
	var mu sync.Mutex
	var seen []string
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			t.Errorf("no connection joined the hub")
		}
		for _, p := range seen {
			if p != want {
				t.Errorf("a connection negotiated the hub protocol %q, want %q", p, want)
			}
		}
	})
	return &signalhub.Metrics{ConnectionOpened: func(c signalhub.ConnectionInfo) {
		mu.Lock()
		seen = append(seen, c.Protocol)
		mu.Unlock()
	}}
}
