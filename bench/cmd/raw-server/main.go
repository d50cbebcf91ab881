// Command raw-server is the floor the other systems are measured against:
// plain github.com/coder/websocket with the least a server can do. Each
// connection has one reader (the handler goroutine) and one writer
// goroutine fed by a bounded channel; a send that finds the channel full
// closes the connection as too slow instead of blocking, as coder's chat
// example does. There is no protocol: each text frame is one message.
//
// Clients connect at /ws with the query parameters user and group
// (optional). A text frame "USER\nMESSAGE" from a client sends MESSAGE to
// USER.
package main

import (
	"bytes"
	"context"
	"net/http"
	"sync"

	"github.com/coder/websocket"

	"github.com/signalhub/signalhub/bench/internal/server"
)

// queueLength bounds each connection's outgoing channel (melody's default
// buffer is the same).
const queueLength = 256

type client struct {
	ws    *websocket.Conn
	out   chan []byte
	once  sync.Once
	close chan struct{} // closed to stop the writer
}

func (c *client) send(msg []byte) {
	select {
	case c.out <- msg:
	default:
		c.once.Do(func() {
			close(c.close)
			go c.ws.Close(websocket.StatusPolicyViolation, "too slow")
		})
	}
}

func (c *client) writeLoop() {
	ctx := context.Background()
	for {
		select {
		case msg := <-c.out:
			if err := c.ws.Write(ctx, websocket.MessageText, msg); err != nil {
				return
			}
		case <-c.close:
			return
		}
	}
}

// index maps names to clients; a set's slice is rebuilt on the first send
// after a change.
type index struct {
	mu   sync.RWMutex // guards sets
	sets map[string]*set
}

type set struct {
	members map[*client]struct{}
	list    []*client // nil after a change
}

func (x *index) add(name string, c *client) {
	x.mu.Lock()
	defer x.mu.Unlock()
	st := x.sets[name]
	if st == nil {
		st = &set{members: make(map[*client]struct{})}
		x.sets[name] = st
	}
	st.members[c] = struct{}{}
	st.list = nil
}

func (x *index) remove(name string, c *client) {
	x.mu.Lock()
	defer x.mu.Unlock()
	st := x.sets[name]
	if st == nil {
		return
	}
	delete(st.members, c)
	st.list = nil
	if len(st.members) == 0 {
		delete(x.sets, name)
	}
}

func (x *index) send(name string, msg []byte) {
	x.mu.RLock()
	st := x.sets[name]
	if st == nil {
		x.mu.RUnlock()
		return
	}
	list := st.list
	x.mu.RUnlock()
	if list == nil {
		x.mu.Lock()
		if st.list == nil {
			st.list = make([]*client, 0, len(st.members))
			for c := range st.members {
				st.list = append(st.list, c)
			}
		}
		list = st.list
		x.mu.Unlock()
	}
	for _, c := range list {
		c.send(msg)
	}
}

func main() {
	groups := &index{sets: make(map[string]*set)}
	users := &index{sets: make(map[string]*set)}

	serve := func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		q := r.URL.Query()
		user, group := q.Get("user"), q.Get("group")
		c := &client{ws: ws, out: make(chan []byte, queueLength), close: make(chan struct{})}
		users.add(user, c)
		if group != "" {
			groups.add(group, c)
		}
		server.Conns.Add(1)
		go c.writeLoop()
		defer func() {
			users.remove(user, c)
			if group != "" {
				groups.remove(group, c)
			}
			c.once.Do(func() { close(c.close) })
			ws.CloseNow()
			server.Conns.Add(-1)
		}()
		ctx := context.Background()
		for {
			_, msg, err := ws.Read(ctx)
			if err != nil {
				return
			}
			if to, body, ok := bytes.Cut(msg, []byte{'\n'}); ok {
				users.send(string(to), body)
			}
		}
	}

	server.Main(server.System{
		Name:     "raw",
		Register: func(mux *http.ServeMux) { mux.HandleFunc("/ws", serve) },
		Publish: func(group string, msg []byte) error {
			groups.send(group, msg)
			return nil
		},
	})
}
