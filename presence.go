package signalhub

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/signalhub/signalhub/backplane"
)

// What a Query asks of every node (its Names[0]).
const (
	queryGroupCount   = "group-count"   // [group]: its local members
	queryUserCount    = "user-count"    // [user]: its local connections
	queryGroupMembers = "group-members" // [group]: their IDs, one per line
	actDisconnectUser = "disconnect-user"
	actRemoveUser     = "remove-user-from-group"
)

// heartbeatLoop announces the node on chanAll every NodeTimeout/3, and
// retries failed subscription changes, until the cluster stops.
func (h *Hub) heartbeatLoop() {
	cl := h.cl
	defer close(cl.heartbeatDone)
	t := time.NewTicker(h.opts.NodeTimeout / 3)
	defer t.Stop()
	for {
		h.sendHeartbeat(chanAll)
		h.retryFailed()
		select {
		case <-t.C:
		case <-cl.stop:
			return
		}
	}
}

func (h *Hub) sendHeartbeat(channel string) {
	h.publishHeartbeat(channel, nil)
}

// heartbeatLeaving is the payload of the last heartbeat of a node that
// shuts down, so that the others stop counting on it at once.
const heartbeatLeaving = "leaving"

func (h *Hub) publishHeartbeat(channel string, payload []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.NodeTimeout/3)
	defer cancel()
	m := backplane.Message{Origin: h.cl.nodeID, Kind: backplane.Heartbeat, Payload: payload}
	_ = h.publishTo(ctx, channel, &m) // an outage shows in sends; peers expire us meanwhile
}

// forget drops a node that said it is leaving.
func (h *Hub) forget(node string) {
	h.cl.mu.Lock()
	if _, ok := h.cl.live[node]; ok {
		delete(h.cl.live, node)
		h.cl.nodesChangedLocked()
	}
	h.cl.mu.Unlock()
}

// nodesChangedLocked wakes AwaitNodes callers. The caller holds cl.mu.
func (cl *cluster) nodesChangedLocked() {
	close(cl.nodesChanged)
	cl.nodesChanged = make(chan struct{})
}

// seen records that node is alive. A node seen for the first time gets a
// heartbeat of ours straight away, so that a new node learns the cluster
// within a round trip instead of a heartbeat period.
func (h *Hub) seen(node string) {
	cl := h.cl
	cl.mu.Lock()
	_, known := cl.live[node]
	cl.live[node] = time.Now()
	if !known {
		cl.nodesChangedLocked()
	}
	cl.mu.Unlock()
	if !known {
		h.sendHeartbeat(chanNode + node)
	}
}

// liveNodes returns the other nodes heard from within NodeTimeout,
// forgetting the rest: a node that died without a word stops counting
// after NodeTimeout.
func (h *Hub) liveNodes() []string {
	cl := h.cl
	cutoff := time.Now().Add(-h.opts.NodeTimeout)
	cl.mu.Lock()
	defer cl.mu.Unlock()
	nodes := make([]string, 0, len(cl.live))
	for n, t := range cl.live {
		if t.Before(cutoff) {
			delete(cl.live, n)
			cl.nodesChangedLocked()
			continue
		}
		nodes = append(nodes, n)
	}
	return nodes
}

// answerQuery computes this node's share of a cluster-wide figure, or
// performs its part of a cluster-wide action (answering "").
func (h *Hub) answerQuery(ctx context.Context, what string, args []string) string {
	if len(args) == 0 {
		return ""
	}
	switch what {
	case actDisconnectUser:
		reason := ""
		if len(args) > 1 {
			reason = args[1]
		}
		h.disconnectLocalUser(ctx, args[0], reason)
		return ""
	case actRemoveUser:
		if len(args) > 1 {
			_ = h.removeLocalUserFromGroup(ctx, args[0], args[1])
		}
		return ""
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	switch what {
	case queryGroupCount:
		return strconv.Itoa(len(h.groups.conns(args[0])))
	case queryUserCount:
		return strconv.Itoa(len(h.users.conns(args[0])))
	case queryGroupMembers:
		return strings.Join(connIDs(h.groups.conns(args[0])), "\n")
	}
	return ""
}

// query gathers every live node's share of a figure, this node's
// included. It always publishes, so that an outage is an error even when
// no other node is known, and it fails, wrapping ErrBackplaneUnavailable,
// when a live node does not answer within ctx (remoteTimeout when ctx has
// no deadline).
func (h *Hub) query(ctx context.Context, what string, args ...string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if h.isClosed() {
		return nil, ErrHubClosed
	}
	local := h.answerQuery(ctx, what, args)
	if h.cl == nil {
		return []string{local}, nil
	}
	cl := h.cl
	nodes := h.liveNodes()
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	replies := make(chan reply, len(nodes))
	id, forget := cl.await(replies)
	defer forget()
	m := backplane.Message{Origin: cl.nodeID, Kind: backplane.Query, ID: id, Names: append([]string{what}, args...)}
	if err := h.publishTo(ctx, chanAll, &m); err != nil {
		return nil, err
	}
	shares := []string{local}
	waiting := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		waiting[n] = true
	}
	for len(waiting) > 0 {
		select {
		case r := <-replies:
			if waiting[r.node] {
				delete(waiting, r.node)
				shares = append(shares, r.payload)
			}
		case <-ctx.Done():
			missing := slices.Sorted(func(yield func(string) bool) {
				for n := range waiting {
					if !yield(n) {
						return
					}
				}
			})
			return nil, fmt.Errorf("signalhub: %s %q: %w: no answer from %s: %w",
				what, args, ErrBackplaneUnavailable, strings.Join(missing, ", "), ctx.Err())
		}
	}
	return shares, nil
}

// reply is one node's answer to a query.
type reply struct {
	node    string
	payload string
}

func (h *Hub) count(ctx context.Context, what, name string) (int, error) {
	check := h.checkUser
	if what == queryGroupCount {
		check = h.checkGroup
	}
	if err := check(name); err != nil {
		return 0, fmt.Errorf("signalhub: %s: %w", what, err)
	}
	shares, err := h.query(ctx, what, name)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, s := range shares {
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, fmt.Errorf("signalhub: %s %q: bad answer %q", what, name, s)
		}
		total += n
	}
	return total, nil
}

// GroupCount returns how many connections are in the group across the
// cluster (this hub alone without a backplane). In a cluster it asks every
// live node and fails, wrapping ErrBackplaneUnavailable, if one does not
// answer within ctx; a node that died stops being asked after
// Options.NodeTimeout.
func (h *Hub) GroupCount(ctx context.Context, group string) (int, error) {
	return h.count(ctx, queryGroupCount, group)
}

// UserCount returns how many connections the user has across the cluster;
// see GroupCount.
func (h *Hub) UserCount(ctx context.Context, userID string) (int, error) {
	return h.count(ctx, queryUserCount, userID)
}

// UserOnline reports whether the user has a connection anywhere in the
// cluster; see GroupCount.
func (h *Hub) UserOnline(ctx context.Context, userID string) (bool, error) {
	n, err := h.UserCount(ctx, userID)
	return n > 0, err
}

// GroupConnections returns the IDs of the group's connections across the
// cluster, sorted; see GroupCount. GroupMembers is the local, cheaper
// variant.
func (h *Hub) GroupConnections(ctx context.Context, group string) ([]string, error) {
	if err := h.checkGroup(group); err != nil {
		return nil, fmt.Errorf("signalhub: %s: %w", queryGroupMembers, err)
	}
	shares, err := h.query(ctx, queryGroupMembers, group)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, s := range shares {
		if s != "" {
			ids = append(ids, strings.Split(s, "\n")...)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// ClusterNodes returns the IDs of the nodes this hub knows to be alive,
// its own included, sorted; nil without a backplane. A node learns of
// another from its first heartbeat, within a round trip of either
// starting.
func (h *Hub) ClusterNodes() []string {
	if h.cl == nil {
		return nil
	}
	return slices.Sorted(slices.Values(append(h.liveNodes(), h.cl.nodeID)))
}

// AwaitNodes waits until this hub knows exactly n live nodes, itself
// included: for an app, until the cluster it expects has assembled; for a
// test, until a node that left is forgotten. A node expired for silence
// counts as gone when ClusterNodes or a count next looks. It returns
// ctx.Err() when ctx ends first; without a backplane, n must be 1.
func (h *Hub) AwaitNodes(ctx context.Context, n int) error {
	for {
		var changed chan struct{}
		if h.cl != nil {
			h.cl.mu.Lock()
			changed = h.cl.nodesChanged
			h.cl.mu.Unlock()
		}
		if len(h.ClusterNodes()) == n || (h.cl == nil && n == 1) {
			return nil
		}
		select {
		case <-changed: // nil without a backplane: wait for ctx
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
