package signalhub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Hub tracks every connection by connection ID, by user and by group, and
// fans messages out to them. It is an http.Handler that serves SignalR's
// negotiate and transport endpoints (see Hub.Mount).
//
// A Hub is safe for concurrent use. Its Send methods only queue messages:
// they never wait for a socket, and a connection whose queue is full is
// closed rather than slowing the sender down (see Options.SendQueueLength).
type Hub struct {
	opts    Options
	methods map[string]*method
	log     *slog.Logger

	// The hooks wrapped in Options.Filters, composed once; nil when there
	// is nothing to run. invokeFiltered: a filter wraps invocations.
	onConnected    func(*Context) error
	onDisconnected func(*Context, error)
	invokeFiltered bool
	start          time.Time // origin of now(), a monotonic clock

	baseCtx    context.Context // parent of every connection's context
	cancelBase context.CancelFunc

	cl *cluster // nil without a backplane; set in New, then read-only

	// mu guards conns, users, groups, tokens, tokenFIFO, serving,
	// httpConns and closed. Under it: map work and non-blocking enqueues
	// only.
	mu        sync.RWMutex
	conns     map[string]*conn // handshaken connections by ID
	users     userIndex[*conn]
	groups    groupIndex[*conn]
	tokens    map[string]*tokenEntry // negotiated connection tokens
	tokenFIFO []string               // tokens in negotiate order, for expiry
	tokenHead int                    // tokenFIFO[:tokenHead] is spent
	serving   map[*conn]struct{}     // every accepted socket, handshaken or not
	httpConns map[string]*conn       // SSE and Long Polling connections by token
	accepting int                    // connects admitted but not yet in serving
	closed    bool

	// binaryConns counts the MessagePack connections in conns, so that a
	// send encodes MessagePack only when one may receive it. Written
	// under mu, read without it.
	binaryConns atomic.Int64

	wg sync.WaitGroup // one per accepted socket, until its cleanup is done
}

// tokenEntry is a negotiated connection waiting for, or holding, its
// WebSocket.
type tokenEntry struct {
	id       string
	expires  time.Time
	attached bool
	// stateful: negotiate granted stateful reconnect. conn is the
	// connection once its handshake turned it on, so that a new WebSocket
	// with the token can resume it.
	stateful bool
	conn     *conn
}

// expiredAt reports whether the token, negotiated and not yet used, has
// outlived Options.NegotiateTimeout at now.
func (e *tokenEntry) expiredAt(now time.Time) bool {
	return !e.attached && now.After(e.expires)
}

// New returns a Hub configured by opts; nil means defaults. It reports an
// invalid option or hub method signature as an error.
func New(opts *Options) (*Hub, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	methods, err := compileMethods(o.Methods)
	if err != nil {
		return nil, err
	}
	h := &Hub{
		opts:    o,
		methods: methods,
		log:     o.Logger,
		start:   time.Now(),
		conns:   make(map[string]*conn),
		tokens:  make(map[string]*tokenEntry),
		serving: make(map[*conn]struct{}),

		httpConns: make(map[string]*conn),
	}
	wrapsConnected, wrapsDisconnected := o.OnConnected != nil, o.OnDisconnected != nil
	for _, f := range o.Filters {
		h.invokeFiltered = h.invokeFiltered || f.Invoke != nil
		wrapsConnected = wrapsConnected || f.OnConnected != nil
		wrapsDisconnected = wrapsDisconnected || f.OnDisconnected != nil
	}
	if wrapsConnected {
		h.onConnected = h.connectedChain()
	}
	if wrapsDisconnected {
		h.onDisconnected = h.disconnectedChain()
	}
	h.baseCtx, h.cancelBase = context.WithCancel(context.Background())
	if o.Backplane != nil {
		if err := h.startCluster(o.Backplane, o.NodeID); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// now is the hub's monotonic clock in nanoseconds.
func (h *Hub) now() int64 { return int64(time.Since(h.start)) }

// Router is what Mount registers on: *http.ServeMux and most routers.
type Router interface {
	// Handle registers handler for requests that match pattern.
	Handle(pattern string, handler http.Handler)
}

// Mount registers the hub on mux at path (such as "/chathub"): the
// negotiate endpoint at path+"/negotiate" and the transports' endpoint
// (WebSocket connect, event stream, polls, POSTs and DELETE) at path
// itself, with no redirect in between (WebSocket clients do not follow
// redirects).
func (h *Hub) Mount(mux Router, path string) {
	mux.Handle(path, h)
	mux.Handle(path+"/negotiate", h)
}

// audienceKind says who a send goes to.
type audienceKind uint8

const (
	toAll audienceKind = iota
	toConnection
	toConnections
	toUser
	toUsers
	toGroup
	toGroups
)

// audience is the resolved target of a send. name is the single connection,
// user or group; names the plural forms; except the connection IDs left out.
type audience struct {
	kind   audienceKind
	name   string
	names  []string
	except []string

	// Set by prepare for long lists, so that checks under the hub lock
	// stay O(1) per recipient.
	exceptSet map[string]struct{}
	unique    bool // names holds no duplicates
}

// smallList is the length up to which a linear scan beats building a set.
const smallList = 16

// prepare readies long name lists before the hub lock is taken.
func (a *audience) prepare() {
	if len(a.except) > smallList {
		a.exceptSet = make(map[string]struct{}, len(a.except))
		for _, e := range a.except {
			a.exceptSet[e] = struct{}{}
		}
	}
	if len(a.names) > smallList {
		seen := make(map[string]struct{}, len(a.names))
		names := make([]string, 0, len(a.names))
		for _, n := range a.names {
			if _, dup := seen[n]; !dup {
				seen[n] = struct{}{}
				names = append(names, n)
			}
		}
		a.names, a.unique = names, true
	}
}

// excluded reports whether the connection is left out of the send.
func (a *audience) excluded(id string) bool {
	if a.exceptSet != nil {
		_, ok := a.exceptSet[id]
		return ok
	}
	for _, e := range a.except {
		if e == id {
			return true
		}
	}
	return false
}

// repeated reports whether names[i] already appeared in names[:i].
func (a *audience) repeated(i int) bool {
	if a.unique {
		return false
	}
	for _, n := range a.names[:i] {
		if n == a.names[i] {
			return true
		}
	}
	return false
}

// SendToAll invokes target with args on every connection. Like every Send
// method, it encodes args once, queues the message for each recipient and
// returns without waiting for delivery. An audience with nobody in it is
// not an error. It returns ErrEmptyName for an empty target, an encoding
// error for args that cannot be encoded as JSON, ctx.Err() if ctx is done,
// and ErrHubClosed after Shutdown.
func (h *Hub) SendToAll(ctx context.Context, target string, args ...any) error {
	return h.send(ctx, audience{kind: toAll}, target, args)
}

// SendToAllExcept invokes target on every connection but the excluded ones.
func (h *Hub) SendToAllExcept(ctx context.Context, excludedConnectionIDs []string, target string, args ...any) error {
	return h.send(ctx, audience{kind: toAll, except: excludedConnectionIDs}, target, args)
}

// SendToConnection invokes target on one connection.
func (h *Hub) SendToConnection(ctx context.Context, connectionID, target string, args ...any) error {
	return h.send(ctx, audience{kind: toConnection, name: connectionID}, target, args)
}

// SendToConnections invokes target on each listed connection once.
func (h *Hub) SendToConnections(ctx context.Context, connectionIDs []string, target string, args ...any) error {
	return h.send(ctx, audience{kind: toConnections, names: connectionIDs}, target, args)
}

// SendToUser invokes target on every connection of the user.
func (h *Hub) SendToUser(ctx context.Context, userID, target string, args ...any) error {
	return h.send(ctx, audience{kind: toUser, name: userID}, target, args)
}

// SendToUsers invokes target on every connection of each listed user, once
// per connection.
func (h *Hub) SendToUsers(ctx context.Context, userIDs []string, target string, args ...any) error {
	return h.send(ctx, audience{kind: toUsers, names: userIDs}, target, args)
}

// SendToGroup invokes target on every member of the group.
func (h *Hub) SendToGroup(ctx context.Context, group, target string, args ...any) error {
	return h.send(ctx, audience{kind: toGroup, name: group}, target, args)
}

// SendToGroups invokes target on every member of the listed groups, once
// per connection even when it is in several of them.
func (h *Hub) SendToGroups(ctx context.Context, groups []string, target string, args ...any) error {
	return h.send(ctx, audience{kind: toGroups, names: groups}, target, args)
}

// SendToGroupExcept invokes target on every member of the group but the
// excluded connections.
func (h *Hub) SendToGroupExcept(ctx context.Context, group string, excludedConnectionIDs []string, target string, args ...any) error {
	return h.send(ctx, audience{kind: toGroup, name: group, except: excludedConnectionIDs}, target, args)
}

// send validates, encodes once and delivers.
func (h *Hub) send(ctx context.Context, a audience, target string, args []any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if target == "" {
		return fmt.Errorf("signalhub: send: target: %w", ErrEmptyName)
	}
	switch a.kind {
	case toConnection:
		if a.name == "" {
			return fmt.Errorf("signalhub: send %s: %w", target, ErrEmptyName)
		}
	case toUser, toGroup:
		if err := h.checkAudienceName(a.kind, a.name); err != nil {
			return fmt.Errorf("signalhub: send %s: %w", target, err)
		}
	case toConnections, toUsers, toGroups:
		for _, n := range a.names {
			if err := h.checkAudienceName(a.kind, n); err != nil {
				return fmt.Errorf("signalhub: send %s: %w", target, err)
			}
		}
	}
	recs, err := h.encodeRecords(target, args)
	if err != nil {
		return fmt.Errorf("signalhub: send %s: %w", target, err)
	}
	a.prepare()
	h.mu.RLock()
	if h.closed {
		h.mu.RUnlock()
		return ErrHubClosed
	}
	h.deliverLocked(&a, &recs)
	h.mu.RUnlock()
	if h.cl != nil {
		// Local connections have their copy; a backplane failure leaves
		// them served and says the other nodes may not be.
		if err := h.publish(ctx, &a, recs.wire); err != nil {
			return fmt.Errorf("signalhub: send %s: %w", target, err)
		}
	}
	return nil
}

// checkAudienceName checks a name of an audience of the kind: non-empty for
// connection IDs, and within the limits of Options.MaxGroupNameLength and
// Options.MaxUserIDLength for groups and users.
func (h *Hub) checkAudienceName(kind audienceKind, name string) error {
	if name == "" {
		return ErrEmptyName
	}
	switch kind {
	case toGroup, toGroups:
		return h.checkGroup(name)
	case toUser, toUsers:
		return h.checkUser(name)
	}
	return nil
}

// checkGroup returns ErrEmptyName or ErrInvalidName (wrapped) for a group
// name the hub does not accept.
func (h *Hub) checkGroup(group string) error {
	if group == "" {
		return fmt.Errorf("group name: %w", ErrEmptyName)
	}
	return checkName("group name", group, h.opts.MaxGroupNameLength)
}

// checkUser is checkGroup for user IDs.
func (h *Hub) checkUser(userID string) error {
	if userID == "" {
		return fmt.Errorf("user ID: %w", ErrEmptyName)
	}
	return checkName("user ID", userID, h.opts.MaxUserIDLength)
}

// deliverLocked queues the record of its protocol for every connection of
// a. The caller holds h.mu (read). Enqueueing never blocks.
func (h *Hub) deliverLocked(a *audience, recs *records) {
	switch a.kind {
	case toAll:
		for _, c := range h.conns {
			if !a.excluded(c.id) {
				recs.deliver(c)
			}
		}
	case toConnection:
		if c := h.conns[a.name]; c != nil && !a.excluded(c.id) {
			recs.deliver(c)
		}
	case toConnections:
		for i, id := range a.names {
			if c := h.conns[id]; c != nil && !a.excluded(id) && !a.repeated(i) {
				recs.deliver(c)
			}
		}
	case toUser:
		h.deliverSet(h.users.conns(a.name), a, recs)
	case toUsers:
		for i, u := range a.names {
			if !a.repeated(i) {
				h.deliverSet(h.users.conns(u), a, recs)
			}
		}
	case toGroup:
		h.deliverSet(h.groups.conns(a.name), a, recs)
	case toGroups:
		for i, g := range a.names {
			if a.repeated(i) {
				continue
			}
			for c := range h.groups.conns(g) {
				if !a.excluded(c.id) && !h.inEarlierGroup(c, a.names[:i]) {
					recs.deliver(c)
				}
			}
		}
	}
}

func (h *Hub) deliverSet(set map[*conn]struct{}, a *audience, recs *records) {
	for c := range set {
		if !a.excluded(c.id) {
			recs.deliver(c)
		}
	}
}

// inEarlierGroup reports whether c already got the message as a member of
// one of groups, so that SendToGroups delivers once per connection without
// allocating a set.
func (h *Hub) inEarlierGroup(c *conn, groups []string) bool {
	for _, g := range groups {
		if h.groups.members.has(g, c) {
			return true
		}
	}
	return false
}

// AddToGroup adds the connection to the group; adding a member again does
// nothing. It returns ErrEmptyName for an empty ID or group,
// ErrConnectionNotFound for a connection the hub does not hold, and
// ErrHubClosed after Shutdown. Membership ends with the connection.
func (h *Hub) AddToGroup(ctx context.Context, connectionID, group string) error {
	return h.changeGroup(ctx, connectionID, group, true)
}

// RemoveFromGroup removes the connection from the group; removing a
// non-member does nothing. Errors are those of AddToGroup.
func (h *Hub) RemoveFromGroup(ctx context.Context, connectionID, group string) error {
	return h.changeGroup(ctx, connectionID, group, false)
}

func (h *Hub) changeGroup(ctx context.Context, connectionID, group string, add bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if connectionID == "" {
		return fmt.Errorf("signalhub: group change: connection ID: %w", ErrEmptyName)
	}
	if err := h.checkGroup(group); err != nil {
		if add {
			return fmt.Errorf("signalhub: add to group: %w", err)
		}
		return fmt.Errorf("signalhub: remove from group: %w", err)
	}
	err := h.changeLocalGroup(ctx, connectionID, group, add)
	if errors.Is(err, ErrConnectionNotFound) && h.cl != nil {
		return h.changeRemoteGroup(ctx, connectionID, group, add)
	}
	return err
}

// changeLocalGroup changes the membership of a connection of this node and,
// in a cluster, the node's subscription to the group's channel.
func (h *Hub) changeLocalGroup(ctx context.Context, connectionID, group string, add bool) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrHubClosed
	}
	c := h.conns[connectionID]
	if c == nil || (add && c.isClosing()) {
		h.mu.Unlock()
		return fmt.Errorf("signalhub: group %q: connection %q: %w", group, connectionID, ErrConnectionNotFound)
	}
	if add {
		if max := h.opts.MaxGroupsPerConnection; max > 0 && len(h.groups.groupsOf(c)) >= max && !h.groups.members.has(group, c) {
			h.mu.Unlock()
			return fmt.Errorf("signalhub: join group %q: the connection is in %d groups already: %w", group, max, ErrTooManyGroups)
		}
		h.groups.add(group, c)
	} else {
		h.groups.remove(group, c)
	}
	h.mu.Unlock()
	if h.cl != nil {
		// Subscribed before returning, so that a send from another node
		// right after AddToGroup reaches the new member.
		return h.reconcile(ctx, chanGroup+group)
	}
	return nil
}

// GroupMembers returns the IDs of the group's connections on this hub, in
// no particular order.
func (h *Hub) GroupMembers(group string) []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return connIDs(h.groups.conns(group))
}

// UserConnections returns the IDs of the user's connections on this hub, in
// no particular order.
func (h *Hub) UserConnections(userID string) []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return connIDs(h.users.conns(userID))
}

// ConnectionGroups returns the groups the connection is in, in no
// particular order.
func (h *Hub) ConnectionGroups(connectionID string) []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	c := h.conns[connectionID]
	if c == nil {
		return nil
	}
	set := h.groups.groupsOf(c)
	out := make([]string, 0, len(set))
	for g := range set {
		out = append(out, g)
	}
	return out
}

// Stats is a snapshot of the hub's indexes.
type Stats struct {
	Connections int // handshaken connections
	Users       int // users with at least one connection
	Groups      int // groups with at least one member
}

// Stats returns how many connections, users and groups the hub holds.
func (h *Hub) Stats() Stats {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return Stats{Connections: len(h.conns), Users: h.users.users(), Groups: h.groups.groups()}
}

func connIDs(set map[*conn]struct{}) []string {
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c.id)
	}
	return out
}

// register adds a handshaken connection to the indexes.
func (h *Hub) register(c *conn) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrHubClosed
	}
	if max := h.opts.MaxConnectionsPerUser; max > 0 && c.userID != "" && len(h.users.conns(c.userID)) >= max {
		return fmt.Errorf("signalhub: user has %d connections: %w", max, ErrTooManyConnections)
	}
	h.conns[c.id] = c
	h.users.add(c.userID, c)
	if c.proto.binary {
		h.binaryConns.Add(1)
	}
	return nil
}

// subscribeUser subscribes the node to a new connection's user channel
// before the handshake is answered, so that a send to the user from another
// node right after the client's start() resolves reaches it.
func (h *Hub) subscribeUser(ctx context.Context, c *conn) {
	if h.cl == nil || c.userID == "" {
		return
	}
	if err := h.reconcile(ctx, chanUser+c.userID); err != nil {
		h.log.LogAttrs(ctx, slog.LevelWarn, "backplane subscribe failed", slog.String("conn_id", c.id), slog.Any("err", err))
	}
}

// unregister removes a connection from every index: O(its groups). In a
// cluster it then drops the subscriptions nobody here needs any more.
func (h *Hub) unregister(c *conn) {
	h.mu.Lock()
	var channels []string
	if h.cl != nil {
		if c.userID != "" {
			channels = append(channels, chanUser+c.userID)
		}
		for g := range h.groups.groupsOf(c) {
			channels = append(channels, chanGroup+g)
		}
	}
	if h.conns[c.id] == c && c.proto.binary {
		h.binaryConns.Add(-1)
	}
	delete(h.conns, c.id)
	h.users.remove(c.userID, c)
	h.groups.removeConn(c)
	h.mu.Unlock()
	if len(channels) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
		defer cancel()
		if err := h.reconcileAll(ctx, channels); err != nil {
			h.log.LogAttrs(ctx, slog.LevelWarn, "backplane unsubscribe failed", slog.String("conn_id", c.id), slog.Any("err", err))
		}
	}
}

// release forgets an accepted socket once its cleanup is done.
func (h *Hub) release(c *conn) {
	h.mu.Lock()
	delete(h.serving, c)
	if c.token != "" {
		delete(h.tokens, c.token)
		delete(h.httpConns, c.token)
	}
	h.mu.Unlock()
}

// disconnected runs OnDisconnected outside any lock.
func (h *Hub) disconnected(c *conn, cause error) {
	if h.log.Enabled(context.Background(), slog.LevelDebug) {
		h.log.LogAttrs(context.Background(), slog.LevelDebug, "connection closed",
			slog.String("conn_id", c.id), slog.Any("err", cause))
	}
	if fn := h.onDisconnected; fn != nil {
		_ = h.callHook(c, "OnDisconnected", func() error { fn(&c.hctx, cause); return nil })
	}
}

// Shutdown stops the hub gracefully: new negotiations and connects get 503,
// sends and group changes return ErrHubClosed, and on each connection the
// hub method invocations already received run to their end, with their
// Context done (cause ErrHubClosed) so that they wrap up; their Completions
// go out, invocations that arrive meanwhile get an error Completion, and
// then, after whatever else was queued for it, the connection gets a Close
// message that lets clients with automatic reconnect come back (to another
// server). Shutdown returns nil
// when every connection's goroutines have exited and OnDisconnected has run
// for each. If ctx ends first, the remaining connections are dropped at
// once and their Contexts cancelled; Shutdown still waits for their
// goroutines, then returns ctx.Err().
//
// Shutdown and Close wait for running hub methods and hooks, so a hub
// method that ignores its Context delays them, and calling either from a
// hub method or hook deadlocks: start them in a goroutine of their own.
//
// http.Server.Shutdown does not wait for WebSockets, which are hijacked
// connections: register the hub's Shutdown with
// http.Server.RegisterOnShutdown, or call it yourself. A Long Polling
// connection's Close message goes out with its next poll; one whose client
// does not poll again is dropped after Options.DisconnectTimeout.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	first := !h.closed
	h.closed = true
	snapshot := h.servingLocked()
	// Connections not in conns have not completed the handshake, and now
	// never will (register checks closed): nothing to flush for them.
	var early, registered []*conn
	for _, c := range snapshot {
		if h.conns[c.id] != c {
			early = append(early, c)
		} else {
			registered = append(registered, c)
		}
	}
	h.mu.Unlock()
	if first {
		h.log.LogAttrs(ctx, slog.LevelInfo, "hub shutting down", slog.Int("connections", len(snapshot)))
	}
	for _, c := range registered {
		c.drain() // the writer, once running, flushes and closes
	}
	for _, c := range early {
		_ = c.wire.closeNow()
	}
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		h.stopCluster()
		h.cancelBase()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	h.dropAll()
	<-done
	return ctx.Err()
}

// Close stops the hub at once: like Shutdown, but every connection is
// dropped without waiting for its queue to drain, and its Context is
// cancelled. It returns when the connections' goroutines, running hub
// methods included, have exited (see Shutdown).
func (h *Hub) Close() error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.dropAll()
	h.wg.Wait()
	h.stopCluster()
	h.cancelBase()
	return nil
}

// stopCluster closes the backplane once the connections are gone. It is
// safe to call more than once.
func (h *Hub) stopCluster() {
	if h.cl != nil {
		h.cl.stopOnce.Do(func() {
			close(h.cl.stop)
			<-h.cl.heartbeatDone
			h.publishHeartbeat(chanAll, []byte(heartbeatLeaving))
			_ = h.cl.bp.Close()
		})
	}
}

// dropAll closes every accepted socket without a close handshake.
func (h *Hub) dropAll() {
	h.mu.RLock()
	snapshot := h.servingLocked()
	h.mu.RUnlock()
	for _, c := range snapshot {
		c.abort(ErrHubClosed)
	}
}

func (h *Hub) servingLocked() []*conn {
	out := make([]*conn, 0, len(h.serving))
	for c := range h.serving {
		out = append(out, c)
	}
	return out
}
