package signalhub

import "sync"

// replayBuffer keeps the records sent on a connection with stateful
// reconnect until the client acknowledges them, so that they can be sent
// again on the socket that replaces a dropped one. Records are numbered
// from 1 in the order they were sent. The writer adds records, the read
// goroutine trims them on Ack; a mutex keeps the two apart.
//
// It holds the records themselves, which are shared with other
// recipients and never modified: a record costs its slice header here.
type replayBuffer struct {
	mu    sync.Mutex
	recs  [][]byte // unacknowledged records, oldest first
	first int64    // sequence ID of recs[0] (of the next record when empty)
	bytes int      // total size of recs
	limit int      // Options.StatefulReconnectBufferSize
}

func newReplayBuffer(limit int) *replayBuffer {
	return &replayBuffer{first: 1, limit: limit}
}

// add numbers rec and keeps it until it is acknowledged. Once the buffer
// is full, the writer takes no more from the queue until an Ack makes room.
func (b *replayBuffer) add(rec []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.recs = append(b.recs, rec)
	b.bytes += len(rec)
}

// full reports whether the buffer has reached its limit.
func (b *replayBuffer) full() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bytes >= b.limit
}

// ack drops the records up to and including sequence ID id. It reports
// false for an ID beyond the last record sent, which no well-behaved
// client sends.
func (b *replayBuffer) ack(id int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	last := b.first + int64(len(b.recs)) - 1
	if id > last {
		return false
	}
	n := int(id - b.first + 1)
	if n <= 0 {
		return true // an old Ack
	}
	for _, r := range b.recs[:n] {
		b.bytes -= len(r)
	}
	clear(b.recs[:n])
	b.recs = b.recs[n:]
	b.first = id + 1
	if len(b.recs) == 0 {
		b.recs = nil
	}
	return true
}

// pending returns the sequence ID of the oldest unacknowledged record (of
// the next one when none is) and the unacknowledged records, oldest first:
// what a Sequence message announces and what follows it on a new socket.
func (b *replayBuffer) pending() (first int64, recs [][]byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.first, append([][]byte(nil), b.recs...)
}
