package signalhub

// PendingNegotiations reports how many negotiated connection tokens h holds
// and how many wait in its expiry queue, so that tests can check that a
// request leaves no more state behind than it should.
func PendingNegotiations(h *Hub) (tokens, queued int) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.tokens), len(h.tokenFIFO) - h.tokenHead
}
