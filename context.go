package signalhub

import (
	"context"

	"github.com/coder/websocket"
)

// Context is a connection as its hub methods and hooks see it: who is
// calling, a store for per-connection state, and audiences relative to the
// caller. It is safe for concurrent use. A streaming invocation gets a
// Context of its own, whose Context() also ends when the client cancels
// the stream; everything else about it is the connection's.
type Context struct {
	conn *conn
	ctx  context.Context // a streaming invocation's; nil: the connection's
}

// ConnectionID returns the public ID of the connection.
func (c *Context) ConnectionID() string { return c.conn.id }

// UserID returns the user the connection belongs to ("" when anonymous),
// as Options.UserID computed it at connect time.
func (c *Context) UserID() string { return c.conn.userID }

// Claims returns the connection's claims (nil when anonymous). Read-only.
func (c *Context) Claims() Claims { return c.conn.claims }

// Context returns a context that is cancelled when the connection ends or
// the hub shuts down, and for a streaming invocation also when the client
// cancels the stream or the method's stream ends. Use it for work a hub
// method starts on behalf of the connection. In OnDisconnected it is
// already done.
func (c *Context) Context() context.Context {
	if c.ctx != nil {
		return c.ctx
	}
	return c.conn.mctx
}

// Hub returns the hub the connection belongs to.
func (c *Context) Hub() *Hub { return c.conn.hub }

// Get returns the value stored under key in the connection's item store.
func (c *Context) Get(key any) (any, bool) {
	cn := c.conn
	cn.imu.Lock()
	defer cn.imu.Unlock()
	v, ok := cn.items[key]
	return v, ok
}

// Set stores value under key in the connection's item store. The store
// lives and dies with the connection.
func (c *Context) Set(key, value any) {
	cn := c.conn
	cn.imu.Lock()
	defer cn.imu.Unlock()
	if cn.items == nil {
		cn.items = make(map[any]any)
	}
	cn.items[key] = value
}

// Delete removes key from the connection's item store.
func (c *Context) Delete(key any) {
	cn := c.conn
	cn.imu.Lock()
	defer cn.imu.Unlock()
	delete(cn.items, key)
}

// Caller is the calling connection alone.
func (c *Context) Caller() Audience {
	return Audience{hub: c.conn.hub, kind: toConnection, name: c.conn.id}
}

// Others is every connection except the caller.
func (c *Context) Others() Audience {
	return Audience{hub: c.conn.hub, kind: toAll, except: []string{c.conn.id}}
}

// OthersInGroup is every member of group except the caller.
func (c *Context) OthersInGroup(group string) Audience {
	return Audience{hub: c.conn.hub, kind: toGroup, name: group, except: []string{c.conn.id}}
}

// Abort closes the connection after the messages already queued for it.
// The client gets a Close message without an error and does not reconnect;
// OnDisconnected gets a nil error, as for the client's own close.
func (c *Context) Abort() {
	c.conn.closeWith(closeRequest{status: websocket.StatusNormalClosure})
}

// Audience is a set of connections to send to, such as Context.Others. The
// zero value sends to nobody and returns ErrEmptyName.
type Audience struct {
	hub    *Hub
	kind   audienceKind
	name   string
	except []string
}

// Send invokes target on every connection of the audience with args,
// encoded once. It does not wait for delivery; see Hub.SendToAll for the
// errors it returns.
func (a Audience) Send(ctx context.Context, target string, args ...any) error {
	if a.hub == nil {
		return ErrEmptyName
	}
	return a.hub.send(ctx, audience{kind: a.kind, name: a.name, except: a.except}, target, args)
}
