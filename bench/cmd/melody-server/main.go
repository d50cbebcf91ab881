// Command melody-server serves a melody instance for the load generator.
//
// Clients connect at /ws with the query parameters user and group
// (optional). melody has no groups or users of its own, so the program keeps
// the two indexes an app would keep, and sends to a group with
// BroadcastMultiple over the group's sessions and to a user with
// Session.Write. A text frame "USER\nMESSAGE" from a client sends MESSAGE
// to USER. Each frame carries one message, as it came.
package main

import (
	"bytes"
	"net/http"
	"sync"

	"github.com/olahol/melody"

	"github.com/signalhub/signalhub/bench/internal/server"
)

// index maps names to sessions; a set's slice is rebuilt on the first send
// after a change, so sends do not allocate.
type index struct {
	mu   sync.RWMutex // guards sets
	sets map[string]*set
}

type set struct {
	members map[*melody.Session]struct{}
	list    []*melody.Session // nil after a change
}

func (x *index) add(name string, s *melody.Session) {
	x.mu.Lock()
	defer x.mu.Unlock()
	st := x.sets[name]
	if st == nil {
		st = &set{members: make(map[*melody.Session]struct{})}
		x.sets[name] = st
	}
	st.members[s] = struct{}{}
	st.list = nil
}

func (x *index) remove(name string, s *melody.Session) {
	x.mu.Lock()
	defer x.mu.Unlock()
	st := x.sets[name]
	if st == nil {
		return
	}
	delete(st.members, s)
	st.list = nil
	if len(st.members) == 0 {
		delete(x.sets, name)
	}
}

// sessions returns the sessions of name; the slice must not be changed.
func (x *index) sessions(name string) []*melody.Session {
	x.mu.RLock()
	st := x.sets[name]
	if st == nil {
		x.mu.RUnlock()
		return nil
	}
	list := st.list
	x.mu.RUnlock()
	if list != nil {
		return list
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if st.list == nil {
		st.list = make([]*melody.Session, 0, len(st.members))
		for s := range st.members {
			st.list = append(st.list, s)
		}
	}
	return st.list
}

func main() {
	m := melody.New()
	m.Config.MaxMessageSize = 4096
	groups := &index{sets: make(map[string]*set)}
	users := &index{sets: make(map[string]*set)}

	m.HandleConnect(func(s *melody.Session) {
		users.add(s.MustGet("user").(string), s)
		if g := s.MustGet("group").(string); g != "" {
			groups.add(g, s)
		}
		server.Conns.Add(1)
	})
	m.HandleDisconnect(func(s *melody.Session) {
		users.remove(s.MustGet("user").(string), s)
		if g := s.MustGet("group").(string); g != "" {
			groups.remove(g, s)
		}
		server.Conns.Add(-1)
	})
	m.HandleMessage(func(s *melody.Session, msg []byte) {
		to, body, ok := bytes.Cut(msg, []byte{'\n'})
		if !ok {
			return
		}
		// melody hands over a buffer it does not reuse, so body can be sent.
		_ = m.BroadcastMultiple(body, users.sessions(string(to)))
	})

	server.Main(server.System{
		Name: "melody",
		Register: func(mux *http.ServeMux) {
			mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
				q := r.URL.Query()
				_ = m.HandleRequestWithKeys(w, r, map[string]any{"user": q.Get("user"), "group": q.Get("group")})
			})
		},
		Publish: func(group string, msg []byte) error {
			return m.BroadcastMultiple(msg, groups.sessions(group))
		},
	})
}
