package e2e

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
)

// TestStatefulReconnectWithOfficialClient drops the official client's
// WebSocket twice, under traffic both ways, and checks that the client
// resumes the same connection: nothing lost or repeated in either
// direction, the group membership kept, no reconnect or close seen by the
// app, OnConnected and OnDisconnected once each. With the JSON and the
// MessagePack hub protocols.
func TestStatefulReconnectWithOfficialClient(t *testing.T) {
	for _, protocol := range []string{"json", "messagepack"} {
		t.Run(protocol, func(t *testing.T) { testStatefulReconnect(t, protocol) })
	}
}

func testStatefulReconnect(t *testing.T, protocol string) {
	var mu sync.Mutex
	var recorded []int
	allRecorded := make(chan struct{})
	var connected, disconnected sync.WaitGroup
	connected.Add(1)
	disconnected.Add(1)
	const total = 300
	hub, err := signalhub.New(&signalhub.Options{
		StatefulReconnect: true,
		Metrics:           protocolCheck(t, protocol),
		InvocationRate:    -1, // the client sends in bursts
		OnConnected:       func(c *signalhub.Context) error { connected.Done(); return nil },
		OnDisconnected:    func(c *signalhub.Context, err error) { disconnected.Done() },
		Methods: map[string]any{
			"Join": func(c *signalhub.Context, group string) error {
				return c.Hub().AddToGroup(c.Context(), c.ConnectionID(), group)
			},
			"Record": func(c *signalhub.Context, n int) {
				mu.Lock()
				defer mu.Unlock()
				recorded = append(recorded, n)
				if len(recorded) == total {
					close(allRecorded)
				}
			},
		},
	})
	require.NoError(t, err)
	// Track the hijacked sockets, to cut them like a network failure.
	var smu sync.Mutex
	var sockets []net.Conn
	url := serveHub(t, hub, func(srv *http.Server) {
		srv.ConnState = func(c net.Conn, state http.ConnState) {
			if state == http.StateHijacked {
				smu.Lock()
				sockets = append(sockets, c)
				smu.Unlock()
			}
		}
	})
	cut := func() {
		smu.Lock()
		defer smu.Unlock()
		for _, c := range sockets {
			_ = c.Close()
		}
		sockets = nil
	}
	send := func(from, to int) {
		for i := from; i <= to; i++ {
			require.NoError(t, hub.SendToGroup(t.Context(), "room", "Msg", i))
		}
	}
	node := startNode(t, "stateful.mjs", url, protocol)
	command := func(line string) {
		_, err := io.WriteString(node.stdin, line+"\n")
		require.NoError(t, err)
	}
	node.next(t, "ready")

	// Traffic both ways across two drops.
	send(1, 50)
	command("send 1 50")
	cut()
	send(51, 100)
	node.next(t, "sent 50")
	command("send 51 150")
	send(101, 150)
	node.next(t, "sent 150")
	command("wait 150")
	node.next(t, "got "+seq(1, 150)+" same-id true")

	send(151, 200)
	cut()
	command("send 151 300")
	send(201, 300)
	node.next(t, "sent 300")
	command("wait 300")
	node.next(t, "got "+seq(1, 300)+" same-id true")

	select {
	case <-allRecorded:
	case <-time.After(stepTimeout):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("the server did not get every Record: %v", recorded)
	}
	mu.Lock()
	assert.Equal(t, seqInts(1, total), recorded, "the client's invocations, each once, in order")
	mu.Unlock()
	assert.Len(t, hub.GroupMembers("room"), 1, "the resumed connection is still in its group")

	command("stop")
	node.next(t, "done")
	require.NoError(t, node.wait(), "node exit status\n%s", node)
	connected.Wait()
	disconnected.Wait() // once: a second Done would panic
}

func seqInts(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func seq(from, to int) string {
	b := []byte{'['}
	for _, n := range seqInts(from, to) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(n), 10)
	}
	return string(append(b, ']'))
}
