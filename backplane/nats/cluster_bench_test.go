package nats_test

import (
	"testing"

	"github.com/signalhub/signalhub/backplane"
	"github.com/signalhub/signalhub/hubtest"
)

// BenchmarkClusterGroupSend: group sends through NATS between 1 to 4 hub
// nodes (see hubtest.BenchmarkGroupSend).
//
//	go test -run '^$' -bench BenchmarkClusterGroupSend -benchtime 2000x ./backplane/nats
func BenchmarkClusterGroupSend(b *testing.B) {
	srv := startServer(b, -1)
	hubtest.BenchmarkGroupSend(b, func(tb testing.TB) backplane.Backplane {
		return newBackplane(tb, connect(tb, srv.ClientURL()), prefixOf(tb.Name()))
	})
}
