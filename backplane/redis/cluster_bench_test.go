package redis_test

import (
	"testing"

	"github.com/signalhub/signalhub/backplane"
	"github.com/signalhub/signalhub/backplane/redis"
	"github.com/signalhub/signalhub/hubtest"
)

// BenchmarkClusterGroupSend: group sends through Redis between 1 to 4 hub
// nodes (see hubtest.BenchmarkGroupSend).
//
//	go test -run '^$' -bench BenchmarkClusterGroupSend -benchtime 2000x ./backplane/redis
func BenchmarkClusterGroupSend(b *testing.B) {
	srv := startServer(b)
	hubtest.BenchmarkGroupSend(b, func(tb testing.TB) backplane.Backplane {
		bp, err := redis.New(redis.Options{Client: srv.client(tb), Prefix: prefix(tb), Logger: testLogger(tb)})
		if err != nil {
			tb.Fatal(err)
		}
		return bp
	})
}
