package signalhub

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/signalhub/signalhub/backplane"
)

// Backplane channels. Every node subscribes to chanAll and to its own node
// channel; a user's or a group's channel only while the node holds one of
// its connections, so a node never receives the traffic of groups it has
// no member of.
const (
	chanAll   = "all"
	chanNode  = "node:"
	chanUser  = "user:"
	chanGroup = "group:"
)

// remoteTimeout bounds a request to another node when the caller's context
// has no deadline: the owner of a connection is named in its ID, so a live
// owner answers within a round trip, and only a dead one makes us wait.
const remoteTimeout = 5 * time.Second

// startTimeout bounds starting the backplane in New.
const startTimeout = 10 * time.Second

// errNotFoundText is a Reply's payload when the connection is not there.
const errNotFoundText = "connection not found"

// errTooManyGroupsText is a Reply's payload when the connection is in
// Options.MaxGroupsPerConnection groups already.
const errTooManyGroupsText = "too many groups"

// cluster is the hub's side of a backplane. It is nil on a single node.
type cluster struct {
	bp     backplane.Backplane
	nodeID string

	// stripes serialise subscription changes per channel; the backplane
	// calls happen under a stripe lock, never under the hub lock.
	stripes [64]chan struct{} // capacity 1 each, so that waiting for one stops with ctx
	seed    maphash.Seed

	stopOnce      sync.Once
	stop          chan struct{} // closed to stop the heartbeat
	heartbeatDone chan struct{}

	// mu guards subscribed, retry, pending, nextReq, live and nodesChanged.
	mu         sync.Mutex
	subscribed map[string]bool
	retry      map[string]bool       // channels whose last reconcile failed
	pending    map[uint64]chan reply // requests waiting for Replies, by ID
	nextReq    uint64
	live       map[string]time.Time // other nodes, by when they were last heard
	// nodesChanged is closed and replaced when live gains or loses a node.
	nodesChanged chan struct{}

	// remoteSlots bounds the client invocations run for other nodes.
	remoteSlots chan struct{}
}

// startCluster starts the backplane and the node's fixed subscriptions.
func (h *Hub) startCluster(bp backplane.Backplane, nodeID string) error {
	if nodeID == "" {
		nodeID = newID()[:8]
	}
	for _, r := range nodeID {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("signalhub: Options.NodeID %q: only letters, digits, '-' and '_'", nodeID)
		}
	}
	if h.opts.NodeTimeout < 30*time.Millisecond {
		return fmt.Errorf("signalhub: Options.NodeTimeout %v is below 30ms", h.opts.NodeTimeout)
	}
	h.cl = &cluster{
		bp: bp, nodeID: nodeID, seed: maphash.MakeSeed(),
		stop: make(chan struct{}), heartbeatDone: make(chan struct{}),
		subscribed: make(map[string]bool), retry: make(map[string]bool), pending: make(map[uint64]chan reply),
		live: make(map[string]time.Time), nodesChanged: make(chan struct{}),
		remoteSlots: make(chan struct{}, maxRemoteInvocations),
	}
	for i := range h.cl.stripes {
		h.cl.stripes[i] = make(chan struct{}, 1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := bp.Start(ctx, h.onBackplane); err != nil {
		_ = bp.Close()
		return fmt.Errorf("signalhub: start backplane: %w", err)
	}
	for _, ch := range []string{chanAll, chanNode + nodeID} {
		if err := bp.Subscribe(ctx, ch); err != nil {
			_ = bp.Close()
			return fmt.Errorf("signalhub: subscribe %s: %w", ch, err)
		}
	}
	go h.heartbeatLoop()
	return nil
}

// NodeID returns the hub's node ID in a cluster, or "" without a
// backplane.
func (h *Hub) NodeID() string {
	if h.cl == nil {
		return ""
	}
	return h.cl.nodeID
}

// newConnID returns a connection ID; in a cluster it names the node that
// holds the connection, so any node can route to it.
func (h *Hub) newConnID() string {
	if h.cl == nil {
		return newID()
	}
	return h.cl.nodeID + "." + newID()
}

// ownerOf returns the node named in a connection ID.
func ownerOf(connID string) string {
	node, _, ok := strings.Cut(connID, ".")
	if !ok {
		return ""
	}
	return node
}

// reconcile makes the node's subscription to channel match whether it
// holds a connection of that user or group now. Any change of the indexes
// is followed by a reconcile, so the last one leaves the right state
// whatever the order in which they ran.
func (h *Hub) reconcile(ctx context.Context, channel string) error {
	cl := h.cl
	// Hub methods pass their connection's context, which has no deadline;
	// a stalled backplane must not hold the stripe for ever.
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	stripe := cl.stripes[maphash.String(cl.seed, channel)%uint64(len(cl.stripes))]
	select {
	case stripe <- struct{}{}:
	case <-ctx.Done():
		cl.mu.Lock()
		cl.retry[channel] = true
		cl.mu.Unlock()
		return fmt.Errorf("signalhub: %w: %w", ErrBackplaneUnavailable, ctx.Err())
	}
	defer func() { <-stripe }()

	h.mu.RLock()
	var want bool
	switch {
	case strings.HasPrefix(channel, chanUser):
		want = h.users.conns(channel[len(chanUser):]) != nil
	case strings.HasPrefix(channel, chanGroup):
		want = h.groups.conns(channel[len(chanGroup):]) != nil
	}
	h.mu.RUnlock()

	cl.mu.Lock()
	have := cl.subscribed[channel]
	cl.mu.Unlock()
	var err error
	switch {
	case want && !have:
		err = cl.bp.Subscribe(ctx, channel)
	case !want && have:
		err = cl.bp.Unsubscribe(ctx, channel)
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if err != nil {
		// The heartbeat loop tries again, so that members who joined
		// during an outage get their channel when the backplane is back.
		cl.retry[channel] = true
		return fmt.Errorf("signalhub: %w: %w", ErrBackplaneUnavailable, err)
	}
	delete(cl.retry, channel)
	if want {
		cl.subscribed[channel] = true
	} else {
		delete(cl.subscribed, channel)
	}
	return nil
}

// retryFailed reconciles the channels whose last reconcile failed.
func (h *Hub) retryFailed() {
	cl := h.cl
	cl.mu.Lock()
	channels := make([]string, 0, len(cl.retry))
	for ch := range cl.retry {
		channels = append(channels, ch)
	}
	cl.mu.Unlock()
	if len(channels) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.NodeTimeout/3)
	defer cancel()
	_ = h.reconcileAll(ctx, channels)
}

// reconcileAll reconciles several channels, returning the first error.
func (h *Hub) reconcileAll(ctx context.Context, channels []string) error {
	var first error
	for _, ch := range channels {
		if err := h.reconcile(ctx, ch); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// publish sends a send's records (records.wire: JSON, then MessagePack)
// to the other nodes. Local delivery has already happened.
func (h *Hub) publish(ctx context.Context, a *audience, payload []byte) error {
	cl := h.cl
	m := backplane.Message{Origin: cl.nodeID, Kind: backplane.Invocation, Except: a.except, Payload: payload}
	switch a.kind {
	case toAll:
		return h.publishTo(ctx, chanAll, &m)
	case toConnection, toConnections:
		ids := a.names
		if a.kind == toConnection {
			ids = []string{a.name}
		}
		byNode := map[string][]string{}
		h.mu.RLock()
		for _, id := range ids {
			if node := ownerOf(id); h.conns[id] == nil && node != "" && node != cl.nodeID {
				byNode[node] = append(byNode[node], id)
			}
		}
		h.mu.RUnlock()
		for node, ids := range byNode {
			m.Names = ids
			if err := h.publishTo(ctx, chanNode+node, &m); err != nil {
				return err
			}
		}
	case toUser:
		return h.publishTo(ctx, chanUser+a.name, &m)
	case toUsers:
		for i, u := range a.names {
			if !a.repeated(i) {
				if err := h.publishTo(ctx, chanUser+u, &m); err != nil {
					return err
				}
			}
		}
	case toGroup:
		return h.publishTo(ctx, chanGroup+a.name, &m)
	case toGroups:
		// One message on chanAll, so that each node picks its members of
		// all the groups at once, under one lock: per-group copies could
		// miss or repeat a connection whose membership changes between
		// them. Only multi-group sends pay for reaching every node.
		m.Names = a.names
		return h.publishTo(ctx, chanAll, &m)
	}
	return nil
}

func (h *Hub) publishTo(ctx context.Context, channel string, m *backplane.Message) error {
	data, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	start := h.publishStart()
	err = h.cl.bp.Publish(ctx, channel, data)
	h.published(m.Kind, start, err)
	if err != nil {
		return fmt.Errorf("signalhub: publish: %w: %w", ErrBackplaneUnavailable, err)
	}
	return nil
}

// onBackplane handles a message from another node.
func (h *Hub) onBackplane(channel string, data []byte) {
	var m backplane.Message
	if err := m.UnmarshalBinary(data); err != nil {
		// The channel's kind only: user channels are named after user IDs,
		// which stay out of the logs.
		kind, _, _ := strings.Cut(channel, ":")
		h.log.LogAttrs(context.Background(), slog.LevelWarn, "bad backplane message",
			slog.String("channel_kind", kind), slog.Any("err", err))
		return
	}
	if m.Origin == h.cl.nodeID {
		return // our own echo: delivered locally already
	}
	if m.Kind == backplane.Heartbeat && string(m.Payload) == heartbeatLeaving {
		h.forget(m.Origin)
		return
	}
	h.seen(m.Origin)
	switch m.Kind {
	case backplane.Invocation:
		a, ok := audienceOf(channel, &m)
		if !ok {
			return
		}
		a.prepare() // long lists become sets before the lock, as on the origin
		recs := splitRecords(m.Payload)
		h.mu.RLock()
		if !h.closed {
			h.deliverLocked(&a, &recs)
		}
		h.mu.RUnlock()
	case backplane.AddToGroup, backplane.RemoveFromGroup:
		if len(m.Names) != 2 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
		defer cancel()
		text := ""
		if err := h.changeLocalGroup(ctx, m.Names[0], m.Names[1], m.Kind == backplane.AddToGroup); errors.Is(err, ErrConnectionNotFound) || errors.Is(err, ErrHubClosed) {
			text = errNotFoundText // a closing node holds no connection any more
		} else if errors.Is(err, ErrTooManyGroups) {
			text = errTooManyGroupsText
		} else if err != nil {
			text = err.Error()
		}
		h.replyTo(m, []byte(text))
	case backplane.Reply:
		h.cl.mu.Lock()
		ch := h.cl.pending[m.ID]
		h.cl.mu.Unlock()
		if ch != nil {
			select {
			case ch <- reply{node: m.Origin, payload: string(m.Payload)}:
			default: // more answers than asked for
			}
		}
	case backplane.ClientInvocation:
		if len(m.Names) != 3 {
			return
		}
		select {
		case h.cl.remoteSlots <- struct{}{}:
		default:
			h.replyTo(m, append([]byte{replyFailed}, "too many client invocations waiting on the connection's node"...))
			return
		}
		// A read lock is enough: Shutdown sets closed under the write
		// lock before it waits for wg.
		h.mu.RLock()
		closed := h.closed
		if !closed {
			h.wg.Add(1)
		}
		h.mu.RUnlock()
		if closed {
			<-h.cl.remoteSlots
			h.replyTo(m, []byte{replyDisconnected})
			return
		}
		go h.answerClientInvocation(m)
	case backplane.Query:
		if len(m.Names) < 2 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
		defer cancel()
		h.replyTo(m, []byte(h.answerQuery(ctx, m.Names[0], m.Names[1:])))
	}
}

// audienceOf reads a received Invocation's audience from its channel.
func audienceOf(channel string, m *backplane.Message) (audience, bool) {
	switch {
	case channel == chanAll && len(m.Names) > 0:
		return audience{kind: toGroups, names: m.Names, except: m.Except}, true
	case channel == chanAll:
		return audience{kind: toAll, except: m.Except}, true
	case strings.HasPrefix(channel, chanNode):
		return audience{kind: toConnections, names: m.Names, except: m.Except}, true
	case strings.HasPrefix(channel, chanUser):
		return audience{kind: toUser, name: channel[len(chanUser):], except: m.Except}, true
	case strings.HasPrefix(channel, chanGroup):
		return audience{kind: toGroup, name: channel[len(chanGroup):], except: m.Except}, true
	}
	return audience{}, false
}

// changeRemoteGroup asks the node named in connID to change its
// membership, and waits for the answer within ctx (remoteTimeout when ctx
// has no deadline).
func (h *Hub) changeRemoteGroup(ctx context.Context, connID, group string, add bool) error {
	cl := h.cl
	node := ownerOf(connID)
	if node == "" || node == cl.nodeID {
		return fmt.Errorf("signalhub: group %q: connection %q: %w", group, connID, ErrConnectionNotFound)
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	replies := make(chan reply, 1)
	id, forget := cl.await(replies)
	defer forget()
	kind := backplane.RemoveFromGroup
	if add {
		kind = backplane.AddToGroup
	}
	m := backplane.Message{Origin: cl.nodeID, Kind: kind, ID: id, Names: []string{connID, group}}
	if err := h.publishTo(ctx, chanNode+node, &m); err != nil {
		return err
	}
	select {
	case r := <-replies:
		switch text := r.payload; text {
		case "":
			return nil
		case errNotFoundText:
			return fmt.Errorf("signalhub: group %q: connection %q: %w", group, connID, ErrConnectionNotFound)
		case errTooManyGroupsText:
			return fmt.Errorf("signalhub: group %q: connection %q on node %s: %w", group, connID, node, ErrTooManyGroups)
		default:
			return fmt.Errorf("signalhub: group %q: connection %q on node %s: %s", group, connID, node, text)
		}
	case <-ctx.Done():
		return fmt.Errorf("signalhub: group %q: connection %q: %w: node %s did not answer: %w",
			group, connID, ErrConnectionNotFound, node, ctx.Err())
	}
}

// await registers a request whose Replies go to ch, and returns its ID and
// the func that forgets it.
func (cl *cluster) await(ch chan reply) (id uint64, forget func()) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.nextReq++
	id = cl.nextReq
	cl.pending[id] = ch
	return id, func() {
		cl.mu.Lock()
		delete(cl.pending, id)
		cl.mu.Unlock()
	}
}

// withDefaultTimeout bounds ctx by remoteTimeout when it has no deadline.
func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, remoteTimeout)
}
