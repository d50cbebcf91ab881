package signalhub

// PendingNegotiations reports how many negotiated connection tokens h holds
// and how many wait in its expiry queue, so that tests can check that a
// request leaves no more state behind than it should.
func PendingNegotiations(h *Hub) (tokens, queued int) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.tokens), len(h.tokenFIFO) - h.tokenHead
}

// PollWaiting reports whether a poll of the Long Polling connection with
// the given ID is waiting on h, so that tests know the order in which the
// hub saw their polls.
func PollWaiting(h *Hub, connectionID string) bool {
	h.mu.RLock()
	var c *conn
	for _, hc := range h.httpConns {
		if hc.id == connectionID {
			c = hc
		}
	}
	h.mu.RUnlock()
	p, ok := c.wireOrNil().(*pollWire)
	if !ok {
		return false
	}
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return p.waiting != nil
}
