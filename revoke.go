package signalhub

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/coder/websocket"
)

// DisconnectUser closes every connection of the user, on every node of the
// cluster, with a Close message carrying reason (a generic text when
// empty) and no reconnect; OnDisconnected gets ErrUserDisconnected. Use it
// when a user's rights are revoked: groups are not a security feature, and
// claims checked at connect time do not change by themselves. It returns
// once every node has started closing the user's connections: from then
// on they are out of the user and group indexes (the user is offline,
// sends reach none of them, they join no group), while their Close
// messages are still on their way; they leave Stats and OnDisconnected
// runs once each close completes. If a node does not answer within ctx
// (5s without a deadline), the error wraps ErrBackplaneUnavailable.
func (h *Hub) DisconnectUser(ctx context.Context, userID, reason string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := h.checkUser(userID); err != nil {
		return fmt.Errorf("signalhub: disconnect user: %w", err)
	}
	if h.isClosed() {
		return ErrHubClosed
	}
	_, err := h.query(ctx, actDisconnectUser, userID, reason)
	return err
}

// disconnectLocalUser closes the user's connections on this node. They
// leave the user and group indexes at once, so that the user counts as
// offline and gets nothing more as soon as DisconnectUser returns, while
// their Close messages are still on their way.
func (h *Hub) disconnectLocalUser(ctx context.Context, userID, reason string) {
	if reason == "" {
		reason = "Connection closed by the server."
	}
	r := closeRequest{cause: ErrUserDisconnected, errMsg: reason, status: websocket.StatusPolicyViolation, reason: "disconnected"}
	h.mu.Lock()
	set := h.users.conns(userID)
	conns := make([]*conn, 0, len(set))
	for c := range set {
		conns = append(conns, c)
	}
	var channels []string
	for _, c := range conns {
		c.closeWith(r) // only flags and starts the writer: fine under the lock
		if h.cl != nil {
			for g := range h.groups.groupsOf(c) {
				channels = append(channels, chanGroup+g)
			}
		}
		h.groups.removeConn(c)
		h.users.remove(userID, c)
	}
	if h.cl != nil && len(conns) > 0 {
		channels = append(channels, chanUser+userID)
	}
	h.mu.Unlock()
	if len(channels) > 0 {
		if err := h.reconcileAll(ctx, channels); err != nil {
			h.log.LogAttrs(ctx, slog.LevelWarn, "backplane unsubscribe failed", slog.Any("err", err))
		}
	}
}

// RemoveUserFromGroup removes every connection of the user from the group,
// on every node of the cluster. It returns once every node has done so;
// errors are those of DisconnectUser.
func (h *Hub) RemoveUserFromGroup(ctx context.Context, userID, group string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := h.checkUser(userID); err != nil {
		return fmt.Errorf("signalhub: remove user from group: %w", err)
	}
	if err := h.checkGroup(group); err != nil {
		return fmt.Errorf("signalhub: remove user from group: %w", err)
	}
	if h.isClosed() {
		return ErrHubClosed
	}
	_, err := h.query(ctx, actRemoveUser, userID, group)
	return err
}

func (h *Hub) removeLocalUserFromGroup(ctx context.Context, userID, group string) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrHubClosed
	}
	for c := range h.users.conns(userID) {
		h.groups.remove(group, c)
	}
	h.mu.Unlock()
	if h.cl != nil {
		return h.reconcile(ctx, chanGroup+group)
	}
	return nil
}

func (h *Hub) isClosed() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.closed
}
