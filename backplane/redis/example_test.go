package redis_test

import (
	"log"
	"net/http"

	goredis "github.com/redis/go-redis/v9"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/backplane/redis"
)

// Each hub node builds its own client and engine; nodes with the same
// prefix on the same Redis server form one cluster.
func ExampleNew() {
	client := goredis.NewClient(&goredis.Options{Addr: "localhost:6379"})
	defer client.Close() // the engine never closes it

	bp, err := redis.New(redis.Options{Client: client, Prefix: "chat"})
	if err != nil {
		log.Fatal(err)
	}
	hub, err := signalhub.New(&signalhub.Options{Backplane: bp, NodeID: "web-1"})
	if err != nil {
		log.Fatal(err) // Redis is unreachable, for one
	}
	defer hub.Close() // closes bp too

	http.Handle("/hub", hub)
}
