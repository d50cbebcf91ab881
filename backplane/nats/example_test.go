package nats_test

import (
	"fmt"
	"net/http"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/backplane/nats"
)

// A hub that joins its cluster through NATS. The application builds the
// connection with the options the package documentation recommends, and
// closes it after the hub, which closes the Backplane.
func ExampleNew() {
	nc, err := natsgo.Connect("nats://nats.internal:4222",
		natsgo.MaxReconnects(-1),            // never give up on the server
		natsgo.ReconnectBufSize(-1),         // fail publishes while disconnected
		natsgo.PingInterval(10*time.Second), // notice a silent server sooner
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()

	bp, err := nats.New(nats.Options{Conn: nc, Prefix: "chat"})
	if err != nil {
		fmt.Println(err)
		return
	}
	hub, err := signalhub.New(&signalhub.Options{Backplane: bp, NodeID: "web1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer hub.Close()

	mux := http.NewServeMux()
	hub.Mount(mux, "/chat")
	_ = http.ListenAndServe(":8080", mux)
}
