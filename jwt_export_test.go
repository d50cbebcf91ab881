package signalhub

// PendingNegotiations returns how many negotiated connection tokens wait
// for their connect, so that tests can check that a refused negotiate
// issued none.
func PendingNegotiations(h *Hub) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.tokens)
}
