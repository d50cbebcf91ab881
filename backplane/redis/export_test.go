package redis

// QueueLen returns how many messages wait for b's Handler.
func QueueLen(b *Backplane) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.queue.len()
}

// QueueLength and ReadAhead are the limits of the Handler's queue.
const (
	QueueLength = queueLength
	ReadAhead   = readAhead
)
