package e2e

import (
	"net/http"
	"net/http/httptest"
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
