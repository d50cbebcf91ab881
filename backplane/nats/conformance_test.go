package nats_test

import (
	"testing"

	"github.com/signalhub/signalhub/backplane"
	"github.com/signalhub/signalhub/backplane/backplanetest"
)

// TestConformance runs the backplane contract's suite against one
// embedded server, each node with a connection of its own and each
// subtest under a prefix of its own.
func TestConformance(t *testing.T) {
	url := startServer(t, -1).ClientURL()
	backplanetest.Run(t, func(t *testing.T) backplane.Backplane {
		return newBackplane(t, connect(t, url), prefixOf(t.Name()))
	})
}
